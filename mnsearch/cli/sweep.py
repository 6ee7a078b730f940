"""`mnsearch sweep`: create or resume a multi-objective study over a search-space file."""

from __future__ import annotations

import argparse
from typing import Any

from mnsearch.search.early_stopping import MIN_DOMINATING
from mnsearch.search.space import SAMPLERS


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse turns the error into one usage line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_sweep_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sweep", help="Pareto sweep over a search space (resumable, parallel)",
        description="Create or resume a multi-objective Optuna study. Rerunning the same "
        "command resumes it; finished trials are never lost or retrained.")
    parser.add_argument("space", help="search-space YAML file (see search_spaces/)")
    parser.add_argument("--study", help="study name (default: the space's name)")
    parser.add_argument("--storage", help="journal file path (default mnsearch.journal) or an "
                        "RDB URL such as postgresql://user:password@host/db")
    parser.add_argument("--trials", type=_positive_int, help="stop after this many finished trials")
    parser.add_argument("--timeout", type=float, help="stop starting trials after S seconds")
    parser.add_argument("--sampler", choices=SAMPLERS, help="default: the space's sampler")
    parser.add_argument("--jobs", type=_positive_int, default=1, help="local worker processes")
    parser.add_argument("--epochs", type=_positive_int,
                        help="override the space's epochs (fidelity)")
    parser.add_argument("--subset", type=float, help="override the space's training subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-early-stopping", action="store_true",
                        help="train every trial for the full budget")
    parser.add_argument("--min-dominating", type=_positive_int, default=MIN_DOMINATING,
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
    from mnsearch.cli.sweep_display import sweep_and_write
    from mnsearch.search.space import load_space
    from mnsearch.search.worker import SweepOptions

    space = load_space(args.space)
    if args.download:
        from mnsearch.data.load import load_dataset
        load_dataset(space.dataset, download=True)  # into the cache the workers read
    options = SweepOptions(study_name=args.study or space.name, storage=args.storage,
                           trials=args.trials, timeout=args.timeout, sampler=args.sampler,
                           jobs=args.jobs, epochs=args.epochs, subset=args.subset, seed=args.seed,
                           early_stopping=not args.no_early_stopping,
                           min_dominating=args.min_dominating, artifacts=args.artifacts)
    final = sweep_and_write(args.space, options, out=args.out)
    return 0 if final.failed == 0 else 1
