"""Argument helpers shared by the commands that take an architecture (cost, train, bench…)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mnsearch.spec.families import PRESETS


def number_list(kind: Callable[[str], float | int]) -> Callable[[str], list]:
    """argparse type: a comma-separated list of `kind` values."""
    def parse(text: str) -> list:
        try:
            return [kind(item) for item in text.split(",") if item]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {kind.__name__}s, got {text!r}") from None
    return parse


def add_arch_arguments(parser: argparse.ArgumentParser, lists: bool = False) -> None:
    """ARCH (a preset or a spec file) and the flags that resolve it: α, resolution, classes…"""
    parser.add_argument("arch", help=f"preset ({', '.join(PRESETS)}) or spec file (YAML/JSON)")
    parser.add_argument("--alpha", type=number_list(float) if lists else float,
                        help="width multiplier α (presets only)" +
                        (", or a comma-separated list" if lists else ""))
    parser.add_argument("--resolution", type=number_list(int) if lists else int,
                        help="input size in pixels (ρ = resolution / 224)" +
                        (", or a comma-separated list" if lists else ""))
    parser.add_argument("--classes", type=int, dest="num_classes", help="number of classes")
    parser.add_argument("--in-channels", type=int, help="input channels (1 for grayscale)")
    parser.add_argument("--schedule", dest="stride_schedule",
                        help="stride schedule: paper, stem1 or cifar")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (a count of steps, repeats, workers…)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def tcp_port(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535 (a larger number used to bind another port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got '{text}'") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {value}")
    return value
