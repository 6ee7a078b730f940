"""`mnsearch sweep`: create or resume a multi-objective study over a search-space file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mnsearch.cli.common import positive_int
from mnsearch.search.early_stopping import MIN_DOMINATING
from mnsearch.search.space import SAMPLERS


def subset_argument(text: str) -> float | int:
    """argparse type: '5000' is a count of images, '0.1' or '1.0' a fraction (as `train`);
    the range is the library's check (SweepOptions), which names what is allowed."""
    try:
        return float(text) if "." in text or "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got '{text}'") from None


def add_sweep_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sweep", help="Pareto sweep over a search space (resumable, parallel)",
        description="Create or resume a multi-objective Optuna study. Rerunning the same "
        "command resumes it; finished trials are never lost or retrained.")
    parser.add_argument("space", help="search-space YAML file (see search_spaces/)")
    parser.add_argument("--study", help="study name (default: the space's name): letters, "
                        "digits, '.', '_', '-', at most 100 bytes (it names folders)")
    parser.add_argument("--storage", help="journal file path (default mnsearch.journal) or an "
                        "RDB URL such as postgresql://user:password@host/db, or grpc://HOST:PORT "
                        "(mnsearch storage-proxy)")
    parser.add_argument("--trials", type=positive_int, help="stop after this many finished trials")
    parser.add_argument("--timeout", type=float, help="stop starting trials after S seconds "
                        "(> 0)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="default: the space's sampler")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="local worker processes (at most the CPU cores, and what memory "
                        "holds at about 2 GiB per worker)")
    parser.add_argument("--epochs", type=positive_int,
                        help="override the space's epochs (fidelity)")
    parser.add_argument("--subset", type=subset_argument, help="override the space's training "
                        "subset: a count of images (5000) or a fraction (0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulate", action="store_true",
                        help="load test: run the whole sweep machinery with a synthetic "
                        "accuracy (a noisy function of cost) instead of training; the study is "
                        "marked SIMULATED and cannot be exported")
    parser.add_argument("--no-early-stopping", action="store_true",
                        help="train every trial for the full budget")
    parser.add_argument("--min-dominating", type=positive_int, default=MIN_DOMINATING,
                        help="stop a trial at a rung when this many cheaper trials were more "
                        "accurate there (default %(default)s; see README, early stopping)")
    parser.add_argument("--artifacts", default="mnsearch-artifacts",
                        help="folder for the checkpoints of Pareto-front trials")
    parser.add_argument("--download", action="store_true",
                        help="download Fashion-MNIST (checksummed) if it is not installed")
    parser.add_argument("--out", help="folder for trials.csv, pareto.csv and pareto.html "
                        "(default runs/STUDY)")
    parser.set_defaults(handler=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
    """Validate everything (options, folders, space, dataset) before any worker starts, run
    the sweep, write its results; exit 128 + the signal when one stopped it, 1 when trials or
    workers failed."""
    from mnsearch.cli.sweep_display import run_and_write
    from mnsearch.search.options import check_writable_folder
    from mnsearch.search.space import load_space
    from mnsearch.search.study import SweepOptions

    space = load_space(args.space)
    options = SweepOptions(study_name=args.study or space.name, storage=args.storage,
                           trials=args.trials, timeout=args.timeout, sampler=args.sampler,
                           jobs=args.jobs, epochs=args.epochs, subset=args.subset, seed=args.seed,
                           early_stopping=not args.no_early_stopping,
                           min_dominating=args.min_dominating, artifacts=args.artifacts,
                           simulate=args.simulate)
    out = check_writable_folder(args.out or Path("runs") / options.study_name, "--out")
    if args.download:
        from mnsearch.data.load import load_dataset
        load_dataset(space.dataset, download=True)  # into the cache the workers read
    outcome, final = run_and_write(args.space, options, out=out)
    if outcome.signal is not None:
        return 128 + outcome.signal
    return 0 if final.failed == 0 and outcome.worker_errors == 0 else 1
