"""The `mnsearch` command: a thin argparse layer over the library.

Every user error (bad preset, spec file, α, resolution…) ends as one line on stderr and exit
status 2, never a traceback: library code raises `ValueError` subclasses with actionable text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table

from mnsearch.cli.allocator import restart_with_tcmalloc
from mnsearch.cli.export import add_export_parser, add_latency_parser
from mnsearch.cli.results import add_dashboard_parser, add_report_parser
from mnsearch.cli.sweep import add_sweep_parser
from mnsearch.cli.train import add_bench_parser, add_train_parser
from mnsearch.cost import cost, layer_table
from mnsearch.errors import MnsearchError
from mnsearch.spec.families import PRESETS
from mnsearch.spec.io import resolve_arch

EXIT_USAGE = 2


class CommandError(MnsearchError):
    """A command-line problem that is not a spec problem (bad flag value, missing file…)."""


def _number_list(kind: Callable[[str], float | int]) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(item) for item in text.split(",") if item]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {kind.__name__}s, got '{text}'") from None
    return parse


def _add_arch_arguments(parser: argparse.ArgumentParser, lists: bool = False) -> None:
    parser.add_argument("arch", help=f"preset ({', '.join(PRESETS)}) or spec file (YAML/JSON)")
    parser.add_argument("--alpha", type=_number_list(float) if lists else float,
                        help="width multiplier α (presets only)" +
                        (", or a comma-separated list" if lists else ""))
    parser.add_argument("--resolution", type=_number_list(int) if lists else int,
                        help="input size in pixels (ρ = resolution / 224)" +
                        (", or a comma-separated list" if lists else ""))
    parser.add_argument("--classes", type=int, dest="num_classes", help="number of classes")
    parser.add_argument("--in-channels", type=int, help="input channels (1 for grayscale)")
    parser.add_argument("--schedule", dest="stride_schedule",
                        help="stride schedule: paper, stem1 or cifar")


def _cost_command(args: argparse.Namespace) -> int:
    alphas = args.alpha or [None]
    resolutions = args.resolution or [None]
    specs = [resolve_arch(args.arch, alpha, resolution, num_classes=args.num_classes,
                          in_channels=args.in_channels, stride_schedule=args.stride_schedule)
             for alpha in alphas for resolution in resolutions]
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.json:
        rows = [_cost_row(spec) | ({"layers": layer_table(spec).to_dict("records")}
                                   if args.layers else {}) for spec in specs]
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
        return 0
    if args.layers:
        for spec in specs:
            console.print(_layers_table(spec))
    console.print(_totals_table(specs))
    return 0


def _cost_row(spec) -> dict:
    return {"name": spec.name, "alpha": spec.alpha, "resolution": spec.resolution,
            "rho": round(spec.rho, 4), **cost(spec).as_dict()}


def _totals_table(specs: list) -> Table:
    table = Table(title="Cost per image (Mult-Adds = MACs; params as the papers count them)")
    for column in ("model", "α", "resolution", "ρ", "Mult-Adds (M)", "params (M)",
                   "params (Keras)", "peak act. (KiB)"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for spec in specs:
        totals = cost(spec)
        table.add_row(spec.name, f"{spec.alpha:g}", str(spec.resolution), f"{spec.rho:.3f}",
                      f"{totals.madds / 1e6:,.2f}", f"{totals.params / 1e6:.3f}",
                      f"{totals.params_keras:,}", f"{totals.peak_activation_bytes / 1024:,.0f}")
    return table


def _layers_table(spec) -> Table:
    frame = layer_table(spec)
    table = Table(title=f"{spec.name} α={spec.alpha:g} at {spec.resolution} px: layers")
    for column in ("layer", "op", "kernel", "stride", "input", "output", "Mult-Adds", "params"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    for row in frame.itertuples():
        table.add_row(row.layer, row.op, str(row.kernel), str(row.stride), row.input_shape,
                      row.output_shape, f"{row.madds:,}", f"{row.params:,}")
    return table


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mnsearch", description="Explore the MobileNet design space.")
    commands = parser.add_subparsers(dest="command", required=True)
    cost_parser = commands.add_parser(
        "cost", help="exact Mult-Adds, params and memory of an architecture",
        description="Analytic cost per image. --alpha/--resolution accept lists for a grid.")
    _add_arch_arguments(cost_parser, lists=True)
    cost_parser.add_argument("--layers", action="store_true", help="show the per-layer table")
    cost_parser.add_argument("--json", action="store_true", help="print JSON")
    cost_parser.set_defaults(handler=_cost_command)
    add_train_parser(commands, _add_arch_arguments)
    add_bench_parser(commands, _add_arch_arguments)
    add_sweep_parser(commands)
    add_export_parser(commands)
    add_latency_parser(commands, _add_arch_arguments)
    add_dashboard_parser(commands)
    add_report_parser(commands)
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
    except KeyboardInterrupt:
        print(f"mnsearch {args.command}: interrupted", file=sys.stderr)
        return 130
