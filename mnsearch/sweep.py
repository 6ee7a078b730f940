"""Run a sweep: N worker processes on one study, a live progress display, a closing summary.

Workers are separate processes (spawned, since JAX is not fork-safe) that share the study
through its storage, so `--jobs 3` here and `mnsearch sweep` on another machine with the same
`--storage postgresql://…` are the same mechanism. The parent watches the storage, and replaces
a worker killed by a signal (its running trial is then found stale and re-queued).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console
from rich.live import Live
from rich.table import Table

from mnsearch.arch import SpecError
from mnsearch.cost import cost
from mnsearch.datasets import load_dataset
from mnsearch.results import (
    completed,
    pareto_frame,
    study_hypervolume,
    trials_frame,
    write_sweep_results,
)
from mnsearch.search import SweepOptions, Worker, enqueue_grid, open_study, recipe
from mnsearch.space import (
    SearchSpace,
    SpaceError,
    build_spec,
    check_satisfiable,
    load_space,
)
from mnsearch.storage import mask_password, recover_stale_trials

MAX_GRID = 100_000  # enqueueing is one storage write per point; beyond this, sample instead
MAX_WORKER_RESTARTS = 3  # a worker that keeps dying has a cause to fix, not to retry forever


@dataclass(frozen=True)
class Progress:
    """A snapshot of a study, as the live display and the summary show it.

    `failed` counts failed trials that were not retried (a killed worker's trial is retried).
    """

    complete: int
    running: int
    waiting: int
    pruned: int
    failed: int
    pareto_size: int
    hypervolume: float
    trained: int


def snapshot(study: optuna.Study, space: SearchSpace) -> Progress:
    """Counts, Pareto size and hypervolume, computed as the report computes them.

    One read of the storage (`trials_frame`): the live display calls this every second.
    """
    frame = trials_frame(study)
    if frame.empty:
        return Progress(0, 0, 0, 0, 0, 0, 0.0, 0)
    states = frame["state"].value_counts()
    retried = set(frame["retry_of"].dropna())
    failed = int(((frame["state"] == "FAIL") & ~frame["number"].isin(retried)).sum())
    return Progress(int(states.get("COMPLETE", 0)), int(states.get("RUNNING", 0)),
                    int(states.get("WAITING", 0)), int(states.get("PRUNED", 0)), failed,
                    len(pareto_frame(frame, space.objectives)),
                    study_hypervolume(frame, space.objectives), len(completed(frame)))


def _worker_main(space_path: str, options: SweepOptions, deadline: float | None) -> None:
    """Entry point of one worker process."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_path)
    try:
        Worker(space, options, load_dataset(space.dataset)).run(deadline)
    except KeyboardInterrupt:
        pass


def run_sweep(space_path: str | Path, options: SweepOptions, console: Console | None = None,
              out: str | Path | None = None) -> Progress:
    """Create or resume the study, run the workers, write results to `out`, return a snapshot.

    `out` (default runs/<study>) receives trials.csv, pareto.csv, pareto.html and report.html.
    """
    console = console or Console()
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
                    "native": dataset.image_size[0]}
        def madds_of(params: dict[str, Any]) -> float:
            try:
                return cost(build_spec(space, params, **geometry)).madds
            except SpecError:
                return float("inf")  # refused (with its reason) when its turn comes
        enqueue_grid(study, space, madds_of)
    total = options.trials or space.size
    console.print(f"study [bold]{options.study_name}[/] in "
                  f"{mask_password(options.storage or 'mnsearch.journal')}: {space.name}, "
                  f"{space.size:,} configurations, {options.jobs} worker(s)"
                  + (f", {recovered} interrupted trial(s) re-queued" if recovered else ""))
    deadline = time.time() + options.timeout if options.timeout else None
    context = multiprocessing.get_context("spawn")

    def start_worker() -> Any:
        worker = context.Process(target=_worker_main, args=(str(space_path), options, deadline))
        worker.start()
        return worker

    started = time.time()
    workers = [start_worker() for _ in range(options.jobs)]
    try:
        _watch(workers, start_worker, lambda: _table(snapshot(study, space), total, started),
               console)
    except KeyboardInterrupt:
        console.print("interrupted: stopping workers (finished trials are kept; rerun the same "
                      "command to resume)")
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
    final = snapshot(study, space)
    console.print(_summary(options.study_name, final, time.time() - started))
    paths = write_sweep_results(study, out or Path("runs") / options.study_name)
    console.print(f"Pareto table: {paths['pareto']}  figure: {paths['figure']}  "
                  f"all trials: {paths['trials']}")
    console.print(f"report: {paths['report']}")
    return final


def _watch(workers: list[Any], start_worker: Callable[[], Any], table: Callable[[], Table],
           console: Console) -> None:
    """Show live progress until every worker is gone; replace workers killed by a signal."""
    restarts = 0
    with Live(table(), console=console, refresh_per_second=1) as live:
        while any(worker.is_alive() for worker in workers):
            time.sleep(1.0)
            for index, worker in enumerate(workers):
                # A negative exit code is a signal: kill -9, the OOM killer, a crash.
                if (worker.exitcode or 0) < 0 and restarts < MAX_WORKER_RESTARTS:
                    restarts += 1
                    live.console.print(
                        f"worker {index + 1} was killed by signal {-worker.exitcode}: started "
                        f"another ({restarts} of at most {MAX_WORKER_RESTARTS}); its trial is "
                        "re-queued")
                    workers[index] = start_worker()
            live.update(table())


def _table(progress: Progress, total: int, started: float) -> Table:
    done = progress.complete + progress.pruned + progress.failed
    elapsed = time.time() - started
    remaining = max(total - done, 0)
    eta = elapsed / done * remaining if done else float("nan")
    table = Table(show_header=True)
    for column in ("done / total", "running", "pruned", "failed", "Pareto", "hypervolume",
                   "elapsed", "ETA"):
        table.add_column(column, justify="right")
    table.add_row(f"{done} / {total}", str(progress.running), str(progress.pruned),
                  str(progress.failed), str(progress.pareto_size), f"{progress.hypervolume:.4f}",
                  f"{elapsed:.0f} s", "—" if eta != eta else f"{eta:.0f} s")
    return table


def _summary(name: str, progress: Progress, seconds: float) -> str:
    return (f"study {name}: {progress.complete} complete ({progress.trained} trained), "
            f"{progress.pruned} pruned/rejected, {progress.failed} failed, "
            f"{progress.waiting} waiting; Pareto front {progress.pareto_size}; "
            f"hypervolume {progress.hypervolume:.4f}; {seconds:.0f} s")

