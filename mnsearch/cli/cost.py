"""`mnsearch cost`: exact Mult-Adds, parameters and memory of one architecture or a grid."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from mnsearch.cli.common import add_arch_arguments
from mnsearch.cost import cost, layer_table
from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.io import resolve_arch


def add_cost_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "cost", help="exact Mult-Adds, params and memory of an architecture",
        description="Analytic cost per image. --alpha/--resolution accept lists for a grid.")
    add_arch_arguments(parser, lists=True)
    parser.add_argument("--layers", action="store_true", help="show the per-layer table")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=cost_command)


def cost_command(args: argparse.Namespace) -> int:
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


def _cost_row(spec: ArchSpec) -> dict[str, Any]:
    return {"name": spec.name, "alpha": spec.alpha, "resolution": spec.resolution,
            "rho": round(spec.rho, 4), **cost(spec).as_dict()}


def _totals_table(specs: list[ArchSpec]) -> Table:
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


def _layers_table(spec: ArchSpec) -> Table:
    frame = layer_table(spec)
    table = Table(title=f"{spec.name} α={spec.alpha:g} at {spec.resolution} px: layers")
    for column in ("layer", "op", "kernel", "stride", "input", "output", "Mult-Adds", "params"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    for row in frame.itertuples():
        table.add_row(row.layer, row.op, str(row.kernel), str(row.stride), row.input_shape,
                      row.output_shape, f"{row.madds:,}", f"{row.params:,}")
    return table
