"""`mnsearch export` and `mnsearch latency`: ship a chosen trial, time a model on this machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from mnsearch.cli.common import add_arch_arguments, positive_int


def add_export_parser(commands: Any) -> None:
    from mnsearch.export.export import DEFAULT_FORMATS, FORMATS
    from mnsearch.nn.quantize import DEFAULT_CALIBRATION_IMAGES

    parser = commands.add_parser(
        "export", help="export trials of a study: spec, weights, ONNX, StableHLO, model card",
        description="One verified folder per trial, written to a temporary folder and renamed "
                    "into place only when every format checked out.")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--storage", help="storage URL or journal file (default mnsearch.journal)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, help="trial number")
    which.add_argument("--pareto", action="store_true",
                       help="every trial on the Pareto front (OUT/trial-N each)")
    parser.add_argument("--out", required=True, type=Path, help="new output folder")
    parser.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                        help=f"comma-separated subset of {','.join(FORMATS)} (default: all "
                        "but tflite, which needs the tflite extra)")
    parser.add_argument("--calibration", type=positive_int,
                        help="training images that calibrate the int8 model (default "
                        f"{DEFAULT_CALIBRATION_IMAGES}, or the whole training split when it "
                        "is smaller)")
    parser.add_argument("--artifacts", default="mnsearch-artifacts",
                        help="the sweep's --artifacts folder (for studies that did not record "
                             "checkpoint paths)")
    parser.set_defaults(handler=export_command)


def export_command(args: argparse.Namespace) -> int:
    from mnsearch.export.export import ExportRequest, export, parse_formats
    from mnsearch.search.options import check_writable_folder

    check_writable_folder(args.out, "--out")  # before opening the study or any checkpoint
    request = ExportRequest(args.study, args.out, args.storage, args.trial, args.pareto,
                            parse_formats(args.formats), args.artifacts, args.calibration)
    console = Console()
    with console.status("exporting and verifying…"):
        exported = export(request)
    for folder in exported.folders:
        files = ", ".join(sorted(path.name for path in folder.iterdir()))
        console.print(f"[bold]{folder}[/]: {files}")
    for warning in exported.warnings:
        console.print(f"[bold red]WARNING[/] {warning}", highlight=False)
    return 0


def add_latency_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "latency", help="median inference latency of an architecture on this machine",
        description="Median of repeated forward passes after warm-up (compile excluded).")
    add_arch_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--runtime", default="xla", help="xla (default) or onnxruntime")
    parser.add_argument("--repeats", type=positive_int, default=50)
    parser.add_argument("--threads", type=positive_int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--json", action="store_true", help="print JSON (field latency_ms)")
    parser.set_defaults(handler=latency_command)


def latency_command(args: argparse.Namespace) -> int:
    from mnsearch.nn.latency import measure_latency
    from mnsearch.spec.io import resolve_arch

    spec = resolve_arch(args.arch, args.alpha, args.resolution, num_classes=args.num_classes,
                        in_channels=args.in_channels, stride_schedule=args.stride_schedule)
    result = measure_latency(spec, args.batch_size, args.runtime, args.repeats,
                             threads=args.threads)
    if args.json:
        print(json.dumps({"name": spec.name, "alpha": spec.alpha,
                          "resolution": spec.resolution, **result.as_dict()}))
    else:
        print(f"{spec.name} α={spec.alpha:g} {spec.resolution}px batch {args.batch_size} "
              f"on {args.runtime}: {result.latency_ms:.3f} ms median "
              f"(p10 {result.p10_ms:.3f}, p90 {result.p90_ms:.3f}, {result.repeats} runs)")
    return 0
