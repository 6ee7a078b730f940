"""The `mnsearch` command: a thin argparse layer over the library.

Every user error (bad preset, spec file, α, resolution, flag value…) ends as one line on stderr
and exit status 2, never a traceback: library code raises `MnsearchError` with actionable
text, and argparse's own errors are printed as one line too (`OneLineParser`). A stop signal
ends a command with 128 + its number (Ctrl-C 130, SIGTERM 143, SIGHUP 129), as a shell
reports a process the signal killed.

Command handlers import the library modules they run inside the handler, not at the top: the
parser is built for every command, and importing JAX/Flax (1.1 s), the dashboard (0.8 s) and
Optuna for `mnsearch cost` or `--help` (0.6 s all told without them) would triple their start.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from mnsearch.cli.allocator import restart_with_tcmalloc
from mnsearch.cli.cost import add_cost_parser
from mnsearch.cli.evaluate import add_evaluate_parser
from mnsearch.cli.export import add_export_parser, add_latency_parser
from mnsearch.cli.finalize import add_finalize_parser
from mnsearch.cli.results import add_dashboard_parser, add_report_parser
from mnsearch.cli.storage_proxy import add_storage_proxy_parser
from mnsearch.cli.sweep import add_sweep_parser
from mnsearch.cli.train import add_bench_parser, add_train_parser
from mnsearch.errors import MnsearchError

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as one line like every other error (argparse prints the
    whole usage first; `--help` still shows it). Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = OneLineParser(
        prog="mnsearch", description="Explore the MobileNet design space.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_cost_parser(commands)
    add_train_parser(commands)
    add_bench_parser(commands)
    add_sweep_parser(commands)
    add_finalize_parser(commands)
    add_export_parser(commands)
    add_evaluate_parser(commands)
    add_latency_parser(commands)
    add_dashboard_parser(commands)
    add_report_parser(commands)
    add_storage_proxy_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mnsearch` console script."""
    args = build_parser().parse_args(argv)
    try:
        if argv is None:  # the console script, not a library call: see mnsearch.cli.allocator
            restart_with_tcmalloc(["-m", "mnsearch", *sys.argv[1:]])
        return args.handler(args)
    except MnsearchError as error:
        print(f"mnsearch {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as error:  # a sweep's `Interrupted` carries the signal
        signum = getattr(error, "signum", signal.SIGINT)
        print(f"mnsearch {args.command}: interrupted by {signal.Signals(signum).name}",
              file=sys.stderr)
        return 128 + signum
