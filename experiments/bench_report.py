"""Seconds that `mnsearch report` takes on a 100,000-trial study, and where they go.

    .venv/bin/python experiments/bench_report.py [--trials 100000] [--journal PATH]

Builds the synthetic study of `bench_dashboard.py` (or reuses `--journal`), times the command
as a user runs it (a subprocess: imports, reading the journal, the frame, the figures, writing
the file), then each step again in this process: reading the trials (Optuna's journal replay),
`trials_frame`, `report_html`. Goal: at most 30 s at 100,000 trials.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from bench_dashboard import write_study

from mnsearch.plots.report import report_html
from mnsearch.results.frames import study_objectives, trials_frame
from mnsearch.search.storage import load_study, open_existing_storage


def timed(label: str, function, *args):
    started = time.perf_counter()
    result = function(*args)
    print(f"  {label}: {time.perf_counter() - started:.1f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--journal", help="journal file to reuse (made there if absent)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        journal = Path(args.journal or Path(folder) / "bench.journal")
        write_study(journal, args.trials)
        out = Path(folder) / "report.html"
        command = [sys.executable, "-m", "mnsearch", "report", "--study", "bench", "--storage",
                   str(journal), "--out", str(out)]
        print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        print(f"mnsearch report on {args.trials:,} trials: {seconds:.1f} s, "
              f"{out.stat().st_size / 1e6:.1f} MB (goal <= 30 s)")
        print("the same steps in this process:")
        storage = timed("open the journal (one-pass replay, search.journal_reader)",
                        open_existing_storage, str(journal))
        study = load_study(storage, "bench")
        frame = timed("trials_frame", trials_frame, study)
        timed("report_html", report_html, [frame], study_objectives(study))


if __name__ == "__main__":
    main()
