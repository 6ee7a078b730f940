"""`mnsearch finalize`: train a sweep's chosen trials at full fidelity in a linked study."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mnsearch.cli.common import number_list, positive_int
from mnsearch.cli.sweep import subset_argument

# Written out, not imported: the parser is built for every command and importing
# mnsearch.search.finalize (Optuna) would slow `mnsearch cost` and `--help` (tests check them).
FINAL_SUFFIX = "-final"
DEFAULT_EPOCHS = 5


def add_finalize_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "finalize", help="train chosen trials of a sweep at full fidelity (a linked study)",
        description="Train the chosen configurations of a sweep with every training image and "
        f"a longer recipe, in a linked study (default STUDY{FINAL_SUFFIX}) with the sweep's "
        "machinery: resumable, never training a configuration twice, several workers or "
        "machines. Then `mnsearch report --study STUDY` compares the proxy and final fronts.")
    parser.add_argument("--study", required=True, help="the sweep's (proxy) study")
    parser.add_argument("--storage", help="journal file path (default mnsearch.journal) or an "
                        "RDB URL; the final study is made in the same storage")
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--pareto", action="store_true", help="the proxy study's Pareto front")
    chosen.add_argument("--trials", type=number_list(int),
                        help="trial numbers, comma-separated (complete or stopped early)")
    chosen.add_argument("--top", type=positive_int,
                        help="the K most accurate complete trials (validation accuracy)")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS,
                        help="epochs of the final recipe (default %(default)s)")
    parser.add_argument("--subset", type=subset_argument,
                        help="training images of the final recipe (default: all of them)")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="change a field of the final recipe (the "
                        "proxy's otherwise), e.g. --set augment=true; repeatable")
    parser.add_argument("--jobs", type=positive_int, default=1, help="local worker processes")
    parser.add_argument("--final-study", help=f"name of the final study (default STUDY"
                        f"{FINAL_SUFFIX})")
    parser.add_argument("--early-stopping", action="store_true",
                        help="stop final trials early by the rung rule (off by default)")
    parser.add_argument("--artifacts", default="mnsearch-artifacts",
                        help="folder for the final checkpoints (all kept, for export)")
    parser.add_argument("--out", help="folder for trials.csv, pareto.csv and report.html "
                        "(default runs/FINAL_STUDY)")
    parser.set_defaults(handler=finalize_command)


def finalize_command(args: argparse.Namespace) -> int:
    """Check everything (study, selection, recipe, final study, folders) before any worker
    starts, train, write the results; exit statuses as `mnsearch sweep`'s."""
    from mnsearch.cli.sweep_display import run_and_write
    from mnsearch.search.finalize import FinalizeOptions, Selection, prepare_finalize
    from mnsearch.search.options import check_writable_folder

    options = FinalizeOptions(
        study_name=args.study, storage=args.storage,
        selection=Selection(pareto=args.pareto, trials=tuple(args.trials or ()), top=args.top),
        final_study=args.final_study, epochs=args.epochs, subset=args.subset,
        settings=tuple(args.settings), jobs=args.jobs, early_stopping=args.early_stopping,
        artifacts=args.artifacts)
    out = check_writable_folder(args.out or Path("runs") / options.final_name, "--out")
    check_writable_folder(args.artifacts, "--artifacts")
    space, sweep_options = prepare_finalize(options)
    outcome, final = run_and_write(space, sweep_options, out=out)
    if outcome.signal is not None:
        return 128 + outcome.signal
    return 0 if final.failed == 0 and outcome.worker_errors == 0 else 1
