"""Run a sweep: validate everything, open the study, then N worker processes until done.

Workers are separate processes (spawned, since JAX is not fork-safe) that share the study
through its storage, so `--jobs 3` here and `mnsearch sweep` on another machine with the same
`--storage postgresql://…` are the same mechanism. The parent watches the workers and replaces
one killed by a signal (its running trial is then found stale and re-queued). What is shown
while it runs is the caller's business: `SweepMonitor` receives the events (the CLI draws a live
table from them), and `run_sweep` returns the study, writing no file.

Stopping is `search.processes`'s: Ctrl-C, SIGTERM and SIGHUP stop the workers (each fails its
running trial and enqueues it again) and `run_sweep` returns with the signal in the outcome;
workers die with a parent killed outright. A worker's unexpected error fails its trial with
the error recorded and re-queued, and stops that worker; the outcome counts it.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from mnsearch.cost import cost
from mnsearch.data.load import load_dataset
from mnsearch.nn.quantize import require_quantization_tools
from mnsearch.search.options import (
    check_jobs,
    check_subset_fits,
    check_writable_folder,
)
from mnsearch.search.processes import (
    Interrupted,
    StopRequest,
    WorkerPool,
    die_with_parent,
    exit_by_signal,
    stop_signals,
    worker_signals,
    worker_stop,
)
from mnsearch.search.record import TrialRecord, record
from mnsearch.search.space import (
    SearchSpace,
    SpaceError,
    build_spec,
    check_satisfiable,
    load_space,
)
from mnsearch.search.storage import (
    DEFAULT_STORAGE,
    check_storage,
    mask_password,
    recover_stale_trials,
)
from mnsearch.search.study import SweepOptions, enqueue_grid, open_study, recipe
from mnsearch.search.worker import Worker
from mnsearch.spec.blocks import SpecError
from mnsearch.train.compilation import enable_compilation_cache

MAX_GRID = 100_000  # enqueueing is one storage write per point; beyond this, sample instead
MAX_WORKER_RESTARTS = 3  # a worker that keeps dying has a cause to fix, not to retry forever


WORKER_ERROR_EXIT = 1  # a worker's exit status after an unexpected error (one a signal is < 0)


def _worker_main(space: SearchSpace, options: SweepOptions, deadline: float | None,
                 rank: int, parent_pid: int) -> None:
    """Entry point of one worker process (`WorkerPool` appends its rank and the parent's
    pid)."""
    worker_signals()
    die_with_parent(parent_pid)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    enable_compilation_cache()  # a rerun, or a second worker, loads what was compiled
    try:
        _GuardedWorker(space, options, load_dataset(space.dataset), rank).run(deadline)
    except KeyboardInterrupt:
        worker_stop.handled = True
        exit_by_signal()  # its trial is failed and re-queued by Worker.run
    except Exception:  # a bug, not a user error (those fail in the parent): say where
        print(f"mnsearch sweep: worker {os.getpid()} stopped on an unexpected error:",
              file=sys.stderr)
        traceback.print_exc()
        sys.exit(WORKER_ERROR_EXIT)


class _GuardedWorker(Worker):
    """A `Worker` whose unexpected errors fail the trial they happen in, with the error
    recorded, and enqueue it again, before stopping the worker.

    Without this the trial stayed RUNNING for ever (its process alive on the same host, or
    its heartbeat not yet stale) and the sweep exited 0 as if nothing had happened.
    """

    def evaluate(self, trial: optuna.Trial) -> None:
        try:
            super().evaluate(trial)
        except KeyboardInterrupt:
            worker_stop.handled = True  # no more interrupts: Worker.run re-queues it
            raise
        except Exception as error:
            self._fail(trial, error)
            raise

    def _fail(self, trial: optuna.Trial, error: Exception) -> None:
        message = (f"{type(error).__name__}: {error}".splitlines() or ["error"])[0][:500]
        try:
            record(trial, error=message)
            self.study.tell(trial, state=TrialState.FAIL)
        except (RuntimeError, ValueError):  # already told: the error came after its result
            return
        self.study.enqueue_trial(trial.params,
                                 user_attrs=TrialRecord(retry_of=trial.number).attributes())


@dataclass(frozen=True)
class SweepStart:
    """What a sweep is about to do, once the study is open and the grid enqueued."""

    study: optuna.Study
    space: SearchSpace
    storage: str  # the storage as it may be shown: any password masked
    total: int
    jobs: int
    recovered: int
    epochs: int  # the budget of a trial (the recipe's, or --epochs)


@dataclass(frozen=True)
class SweepOutcome:
    """How a sweep ended: its study, and whether a signal cut it short or workers failed.

    `signal` is the stop signal's number (SIGINT for Ctrl-C, SIGTERM, SIGHUP), None when the
    sweep ran to its end; `worker_errors` counts workers that stopped on an unexpected error
    (or were killed too often to be replaced): their trials are recorded as failed.
    """

    study: optuna.Study
    space: SearchSpace
    seconds: float
    interrupted: bool
    signal: int | None = None
    worker_errors: int = 0


class SweepMonitor(Protocol):
    """Receives a sweep's events; the CLI's live table is one."""

    def started(self, start: SweepStart) -> None: ...

    def tick(self, messages: list[str]) -> None: ...  # about once a second

    def finished(self, outcome: SweepOutcome) -> None: ...


def prepare_sweep(space: str | Path | SearchSpace, options: SweepOptions) -> SweepStart:
    """Validate the space (a file, or one built in code), dataset and recipe, open the study
    and enqueue the grid.

    Everything that can be wrong with the inputs fails here, in the parent, before any worker
    starts (one `MnsearchError` line).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_storage(options.storage)  # a journal that cannot be written fails before the data loads
    if not isinstance(space, SearchSpace):
        space = load_space(space)
    if (options.sampler or space.sampler) == "grid" and space.size > MAX_GRID:
        raise SpaceError(f"{space.source}: the grid has {space.size:,} configurations, more "
                         f"than a grid sweep enumerates ({MAX_GRID:,}): use --sampler nsga2, "
                         "tpe, random or gp, or fewer choices per dimension")
    if "int8_accuracy" in space.objectives:
        require_quantization_tools()  # the workers quantize every trained model
    dataset = load_dataset(space.dataset)  # fail here, once, before spawning workers
    config = recipe(space, options)
    check_subset_fits(config, dataset, "--subset" if options.subset is not None
                      else f"{space.source}: recipe.subset")
    check_satisfiable(space, dataset.in_channels, dataset.num_classes, dataset.image_size[0])
    study = open_study(space, options)
    recovered = recover_stale_trials(study)
    if (options.sampler or space.sampler) == "grid":
        geometry = {"in_channels": dataset.in_channels, "num_classes": dataset.num_classes,
                    "dataset_resolution": dataset.image_size[0]}

        def madds_of(params: dict[str, Any]) -> float:
            try:
                return cost(build_spec(space, params, **geometry)).madds
            except SpecError:
                return float("inf")  # refused (with its reason) when its turn comes
        enqueue_grid(study, space, madds_of)
    return SweepStart(study, space, mask_password(options.storage or DEFAULT_STORAGE),
                      options.trials or space.size, options.jobs, recovered, config.epochs)


def run_sweep(space: str | Path | SearchSpace, options: SweepOptions,
              monitor: SweepMonitor | None = None) -> SweepOutcome:
    """Create or resume the study and run `options.jobs` workers until the sweep is done.

    Ctrl-C, SIGTERM or SIGHUP stop the workers (finished trials are kept, running ones failed
    and re-queued: the same call resumes) and return with `interrupted` and `signal` set. A
    signal before the workers start raises `Interrupted`.
    """
    check_jobs(options.jobs, options.simulate)
    check_writable_folder(options.artifacts, "--artifacts")
    with stop_signals() as stop:
        start = prepare_sweep(space, options)
        deadline = time.time() + options.timeout if options.timeout else None
        pool = WorkerPool(_worker_main, (start.space, options, deadline))
        started, signum, errors = time.time(), None, 0
        try:
            if monitor:
                monitor.started(start)
            for _ in range(options.jobs):
                stop.raise_if_stopped()
                pool.start()
            errors = _watch(pool, monitor, stop)
        except Interrupted as interruption:
            stop.handled, signum = True, interruption.signum
        finally:
            if pool.stop():  # workers that outlived the grace period: their trials again
                recover_stale_trials(start.study)
    outcome = SweepOutcome(start.study, start.space, time.time() - started, signum is not None,
                           signum, errors)
    if monitor:
        monitor.finished(outcome)
    return outcome


@dataclass
class _WatchState:
    restarts: int = 0
    errors: int = 0
    reported: set[int] = field(default_factory=set)  # ids of dead workers already handled


def _watch(pool: WorkerPool, monitor: SweepMonitor | None, stop: StopRequest) -> int:
    """Wait until every worker is gone, replacing workers killed by a signal; returns how
    many stopped on an error (or were killed too often to be replaced). Raises `Interrupted`
    on a stop signal."""
    state = _WatchState()
    while True:
        running = pool.alive()
        if running:
            time.sleep(1.0)
        stop.raise_if_stopped()  # a signal whose exception was lost (see StopRequest)
        messages = _examine(pool, state)
        if monitor:
            monitor.tick(messages)
        if not running and not pool.alive():
            return state.errors


def _examine(pool: WorkerPool, state: _WatchState) -> list[str]:
    """Replace workers killed by a signal (kill -9, the OOM killer, a crash: a negative exit
    code); count the others that died, once each."""
    messages = []
    for index, worker in enumerate(list(pool.processes)):
        code = worker.exitcode
        if not code or id(worker) in state.reported:
            continue
        state.reported.add(id(worker))
        if code < 0 and state.restarts < MAX_WORKER_RESTARTS:
            state.restarts += 1
            messages.append(
                f"worker {index + 1} was killed by signal {-code}: started another "
                f"({state.restarts} of at most {MAX_WORKER_RESTARTS}); its trial is re-queued")
            pool.start(index)
            continue
        state.errors += 1
        messages.append(
            f"worker {index + 1} was killed by signal {-code} and not replaced (it happened "
            f"{MAX_WORKER_RESTARTS + 1} times): its trial is re-queued" if code < 0 else
            f"worker {index + 1} stopped on an unexpected error (exit status {code}): its "
            "trial is failed with the error recorded and re-queued")
    return messages
