"""Run a sweep: validate everything, open the study, then N worker processes until done.

Workers are separate processes (spawned, since JAX is not fork-safe) that share the study
through its storage, so `--jobs 3` here and `mnsearch sweep` on another machine with the same
`--storage postgresql://…` are the same mechanism. The parent watches the workers and replaces
one killed by a signal (its running trial is then found stale and re-queued). What is shown
while it runs is the caller's business: `SweepMonitor` receives the events (the CLI draws a live
table from them), and `run_sweep` returns the study, writing no file.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna

from mnsearch.cost import cost
from mnsearch.data.load import load_dataset
from mnsearch.search.space import (
    SearchSpace,
    SpaceError,
    build_spec,
    check_satisfiable,
    load_space,
)
from mnsearch.search.storage import mask_password, recover_stale_trials
from mnsearch.search.worker import SweepOptions, Worker, enqueue_grid, open_study, recipe
from mnsearch.spec.blocks import SpecError

MAX_GRID = 100_000  # enqueueing is one storage write per point; beyond this, sample instead
MAX_WORKER_RESTARTS = 3  # a worker that keeps dying has a cause to fix, not to retry forever


def _worker_main(space_path: str, options: SweepOptions, deadline: float | None) -> None:
    """Entry point of one worker process."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_path)
    try:
        Worker(space, options, load_dataset(space.dataset)).run(deadline)
    except KeyboardInterrupt:
        pass


@dataclass(frozen=True)
class SweepStart:
    """What a sweep is about to do, once the study is open and the grid enqueued."""

    study: optuna.Study
    space: SearchSpace
    storage: str  # the storage as it may be shown: any password masked
    total: int
    jobs: int
    recovered: int


@dataclass(frozen=True)
class SweepOutcome:
    """How a sweep ended: its study, and whether Ctrl-C cut it short."""

    study: optuna.Study
    space: SearchSpace
    seconds: float
    interrupted: bool


class SweepMonitor(Protocol):
    """Receives a sweep's events; the CLI's live table is one."""

    def started(self, start: SweepStart) -> None: ...

    def tick(self, messages: list[str]) -> None: ...  # about once a second

    def finished(self, outcome: SweepOutcome) -> None: ...


def prepare_sweep(space_path: str | Path, options: SweepOptions) -> SweepStart:
    """Validate the space, dataset and recipe, open the study and enqueue the grid.

    Everything that can be wrong with the inputs fails here, in the parent, before any worker
    starts (one `MnsearchError` line).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_path)
    if (options.sampler or space.sampler) == "grid" and space.size > MAX_GRID:
        raise SpaceError(f"{space.source}: the grid has {space.size:,} configurations, more "
                         f"than a grid sweep enumerates ({MAX_GRID:,}): use --sampler nsga2, "
                         "tpe, random or gp, or fewer choices per dimension")
    dataset = load_dataset(space.dataset)  # fail here, once, before spawning workers
    recipe(space, options)
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
    return SweepStart(study, space, mask_password(options.storage or "mnsearch.journal"),
                      options.trials or space.size, options.jobs, recovered)


def run_sweep(space_path: str | Path, options: SweepOptions,
              monitor: SweepMonitor | None = None) -> SweepOutcome:
    """Create or resume the study and run `options.jobs` workers until the sweep is done.

    Ctrl-C stops the workers (finished trials are kept; the same call resumes) and returns
    with `interrupted` set.
    """
    start = prepare_sweep(space_path, options)
    if monitor:
        monitor.started(start)
    deadline = time.time() + options.timeout if options.timeout else None
    context = multiprocessing.get_context("spawn")

    def start_worker() -> Any:
        worker = context.Process(target=_worker_main, args=(str(space_path), options, deadline))
        worker.start()
        return worker

    started = time.time()
    workers = [start_worker() for _ in range(options.jobs)]
    interrupted = False
    try:
        _watch(workers, start_worker, monitor)
    except KeyboardInterrupt:
        interrupted = True
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
    outcome = SweepOutcome(start.study, start.space, time.time() - started, interrupted)
    if monitor:
        monitor.finished(outcome)
    return outcome


def _watch(workers: list[Any], start_worker: Any, monitor: SweepMonitor | None) -> None:
    """Wait until every worker is gone; replace workers killed by a signal."""
    restarts = 0
    while any(worker.is_alive() for worker in workers):
        time.sleep(1.0)
        messages = []
        for index, worker in enumerate(workers):
            # A negative exit code is a signal: kill -9, the OOM killer, a crash.
            if (worker.exitcode or 0) < 0 and restarts < MAX_WORKER_RESTARTS:
                restarts += 1
                messages.append(
                    f"worker {index + 1} was killed by signal {-worker.exitcode}: started "
                    f"another ({restarts} of at most {MAX_WORKER_RESTARTS}); its trial is "
                    "re-queued")
                workers[index] = start_worker()
        if monitor:
            monitor.tick(messages)
