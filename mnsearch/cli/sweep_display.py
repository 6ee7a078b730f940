"""What `mnsearch sweep` shows and writes: a live progress table, a summary, result files."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import optuna
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from mnsearch.atomic import write_atomically
from mnsearch.plots.report import study_report
from mnsearch.plots.study import accuracy_vs_madds
from mnsearch.results.fidelity import fidelity, fidelity_pair
from mnsearch.results.frames import pareto_frame, study_objectives, trials_frame
from mnsearch.results.progress import Progress, ProgressTracker, RunningTrial, snapshot
from mnsearch.search.record import StudyRecord
from mnsearch.search.runner import SweepOutcome, SweepStart
from mnsearch.search.space import SearchSpace
from mnsearch.search.storage import DEFAULT_STORAGE, storage_of
from mnsearch.search.study import SweepOptions


class LiveTable:
    """A `SweepMonitor` drawing the study's progress once a second with rich."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.start: SweepStart | None = None
        self.tracker: ProgressTracker | None = None
        self.progress: Progress | None = None  # the last one read
        self.storage_lost = False
        self.started_at = time.time()
        self.logged: str | None = None  # the last progress line (a console without a terminal)

    def started(self, start: SweepStart) -> None:
        self.start, self.started_at = start, time.time()
        simulated = "[bold red]SIMULATED[/] " if StudyRecord.of(start.study).simulated else ""
        self.console.print(
            f"{simulated}study [bold]{start.study.study_name}[/] in {start.storage}: "
            f"{start.space.name}, "
            f"{start.space.size:,} configurations, {start.jobs} worker(s)"
            + (f", {start.recovered} interrupted trial(s) re-queued" if start.recovered else ""))
        self.live = Live(self._table(), console=self.console, refresh_per_second=1)
        self.live.start()

    def tick(self, messages: list[str]) -> None:
        assert self.live is not None
        for message in messages:
            self.live.console.print(message)
        self.live.update(self._table())
        self._log()

    def _log(self) -> None:
        """Without a terminal (a log file, a batch job) rich keeps only the table's last frame:
        a line each time a trial finishes or a running one ends an epoch keeps the log a record
        of the run while it lasts."""
        if self.console.is_terminal or self.progress is None or self.start is None:
            return
        line = progress_line(self.progress, self.start.total, self.start.epochs)
        if line != self.logged:
            self.logged = line
            self.console.print(f"{time.strftime('%H:%M:%S')} {line}, "
                               f"{time.time() - self.started_at:.0f} s",
                               highlight=False, soft_wrap=True)

    def finished(self, outcome: SweepOutcome) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.stop()
            if not self.console.is_terminal:  # rich leaves the last frame without a newline
                self.console.print()
            self._log()
        if outcome.signal is not None:
            self.console.print(
                f"interrupted by {signal.Signals(outcome.signal).name}: workers stopped, their "
                "running trials failed and re-queued (finished trials are kept; rerun the same "
                "command to resume)")

    def _table(self) -> Group:
        assert self.start is not None
        if self.tracker is None:  # reads what changed each second, not the whole study
            self.tracker = ProgressTracker(self.start.study, self.start.space.objectives)
        try:
            progress = self.tracker.update()
        except Exception as error:  # a storage gone (a stopped proxy, a lost database): the
            # display keeps its last table and says so once; the workers report their own
            if self.progress is None:
                raise
            if not self.storage_lost:
                self.storage_lost = True
                self.console.print(  # the type only: a driver's message may quote the URL
                    f"[yellow]the study cannot be read now[/] ({type(error).__name__}): "
                    "the table below is the last one read")
            progress = self.progress
        self.progress = progress
        parts: list[Table] = [progress_table(progress, self.start.total,
                                             time.time() - self.started_at)]
        if progress.running_trials:
            parts.append(running_table(progress.running_trials, self.start.epochs))
        return Group(*parts)


def running_table(trials: tuple[RunningTrial, ...], epochs: int) -> Table:
    """What each running trial is (α, resolution, block types) and how far it got."""
    table = Table(show_header=True, box=None, title="running", title_justify="left")
    for column in ("trial", "α", "resolution", "blocks", "epoch", "images/s"):
        table.add_column(column, justify="left" if column == "blocks" else "right")
    for trial in trials:
        table.add_row(f"#{trial.number}", "—" if trial.alpha is None else f"{trial.alpha:g}",
                      "—" if trial.resolution is None else f"{trial.resolution} px",
                      trial.block_types or "—", f"{trial.epochs_done} / {epochs}",
                      "—" if trial.images_per_second is None
                      else f"{trial.images_per_second:,.0f}")
    return table


def progress_line(progress: Progress, total: int, epochs: int) -> str:
    """The live table in one line: the counts, then each running trial's epoch."""
    running = "; ".join(f"#{trial.number} epoch {trial.epochs_done}/{epochs}"
                        + ("" if trial.images_per_second is None
                           else f" ({trial.images_per_second:,.0f} images/s)")
                        for trial in progress.running_trials)
    return (f"done {progress.done}/{total} ({progress.complete} complete, {progress.pruned} "
            f"pruned/rejected, {progress.failed} failed), Pareto {progress.pareto_size}"
            + (f"; running {running}" if running else ""))


def progress_table(progress: Progress, total: int, elapsed: float) -> Table:
    """done / total, running, pruned, failed, Pareto size, hypervolume, elapsed and ETA."""
    done = progress.done
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


def summary(name: str, progress: Progress, seconds: float) -> str:
    """The closing lines of a sweep: counts, the front's accuracy range, the best model."""
    lines = [f"study {name}: {progress.complete} complete ({progress.trained} trained), "
             f"{progress.pruned} pruned/rejected, {progress.failed} failed, "
             f"{progress.waiting} waiting; Pareto front {progress.pareto_size}; "
             f"hypervolume {progress.hypervolume:.4f}; {seconds:.0f} s"]
    if progress.front_accuracy is not None:
        low, high = progress.front_accuracy
        lines.append(f"front: validation accuracy {low:.2%} – {high:.2%}")
    if progress.best is not None:
        best = progress.best
        test = "" if best.test_accuracy is None else f", test {best.test_accuracy:.2%}"
        alpha = "?" if best.alpha is None else f"{best.alpha:g}"
        lines.append(f"best: trial #{best.number} (α {alpha}, {best.resolution} px, "
                     f"{best.madds / 1e6:,.2f} M Mult-Adds): validation "
                     f"{best.val_accuracy:.2%}{test}")
    if progress.steady_share is not None:
        lines.append(f"time: {progress.steady_share:.0%} of the trials' time in steady-state "
                     "training steps (the report's 'Where the time went' has every phase)")
    return "\n".join(lines)


def write_sweep_results(study: optuna.Study, folder: str | Path,
                        storage: str | None = None) -> dict[str, Path]:
    """trials.csv, pareto.csv, the accuracy-vs-Mult-Adds figure and report.html of a study;
    for a proxy or final study (`storage` given: the pair is read through the study's own,
    already read storage), fidelity.csv and the report's fidelity section too."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study)
    objectives = study_objectives(study)
    paths = {"trials": folder / "trials.csv", "pareto": folder / "pareto.csv",
             "figure": folder / "pareto.html", "report": folder / "report.html"}
    write_atomically(paths["trials"], frame.to_csv(index=False).encode())
    write_atomically(paths["pareto"], pareto_frame(frame, objectives).to_csv(index=False).encode())
    figure = accuracy_vs_madds(frame, title=f"{study.study_name}: accuracy vs Mult-Adds")
    write_atomically(paths["figure"], figure.to_html(include_plotlyjs=True).encode())
    pair = fidelity_pair(storage_of(study), study) if storage else None
    if pair is not None:
        result = fidelity(trials_frame(pair[0]), trials_frame(pair[1]), objectives)
        paths["fidelity"] = folder / "fidelity.csv"
        write_atomically(paths["fidelity"], result.pairs.to_csv(index=False).encode())
    write_atomically(paths["report"], study_report([study], fidelity_pair=pair).encode())
    return paths


def sweep_and_write(space: str | Path | SearchSpace, options: SweepOptions,
                    out: str | Path | None = None, console: Console | None = None) -> Progress:
    """Run a sweep with the live table, then write its results to `out` (default runs/STUDY)."""
    return run_and_write(space, options, out, console)[1]


def run_and_write(space: str | Path | SearchSpace, options: SweepOptions,
                  out: str | Path | None = None,
                  console: Console | None = None) -> tuple[SweepOutcome, Progress]:
    """`sweep_and_write`, also returning how the sweep ended (the command's exit status
    depends on it). The results are written also when a signal stopped the sweep."""
    from mnsearch.search.runner import run_sweep

    console = console or Console()
    outcome = run_sweep(space, options, LiveTable(console))
    final = snapshot(outcome.study, outcome.space.objectives)
    console.print(summary(outcome.study.study_name, final, outcome.seconds))
    paths = write_sweep_results(outcome.study, out or Path("runs") / outcome.study.study_name,
                                options.storage or DEFAULT_STORAGE)
    console.print(f"Pareto table: {paths['pareto']}  figure: {paths['figure']}  "
                  f"all trials: {paths['trials']}")
    console.print(f"report: {paths['report']}")
    return outcome, final
