"""Blocks and their text form: the vocabulary every spec is written in (no JAX).

Block-string grammar (tokens joined by ``_``, the block type first, the rest in any order)::

    cn | ds | ir    block type: conv-BN-act, V1 depthwise separable, V2/V3 inverted residual
    k<int>          kernel size of the spatial (depthwise, or stem) convolution
    s<int>          stride (1 or 2); the spec's stride schedule may turn early 2s into 1s
    e<num>          expansion ratio of ``ir`` blocks, a decimal or a fraction such as 11/3
    c<int>          output channels (already width-scaled: a spec holds real widths)
    se<num>         squeeze-excite ratio of the expanded width (0 = no SE)
    relu | relu6 | hswish | identity    activation (``ir``: of the expand and depthwise convs)
    noskip          no residual connection even where shapes allow one

Example: ``ir_k5_s2_e6_c40_se0.25_hswish``. References: MobileNet V1 (arXiv 1704.04861), V2
(arXiv 1801.04381), V3 (arXiv 1905.02244); the grammar follows timm's block strings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TypedDict

from mnsearch.spec.values import (
    MAX_EXPANSION,
    MAX_KERNEL,
    MAX_WIDTH,
    check_choice,
    checked_int,
    checked_number,
    shown,
    store,
)
from mnsearch.spec.values import SpecError as SpecError  # the spec layer's error, as before

BLOCK_TYPES = ("cn", "ds", "ir")
ACTIVATIONS = ("relu", "relu6", "hswish", "identity")
PADDINGS = ("same", "symmetric", "keras_v1")
SE_GATES = ("hard_sigmoid", "sigmoid")

# A named stride schedule says how many of the network's first stride-2 layers (stem first) run
# at stride 1. "paper" keeps the published 32x total stride; small inputs (28-32 px) lose most of
# their pixels there, so "stem1" (16x) and "cifar" (8x) trade compute (~4-5x per halving,
# ../shared/reference/measured.md) for spatial detail.
STRIDE_SCHEDULES: dict[str, int] = {"paper": 0, "stem1": 1, "cifar": 2}

# Numbers in block strings: ASCII digits only (`int` would also take '٣' and ' 3'), a decimal
# with an optional exponent (as `repr` writes small ratios: 1e-05), or a fraction p/q.
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?")
_FRACTION = re.compile(r"[0-9]{1,9}/[0-9]{1,9}")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of `divisor`, never more than 10% below `value`.

    The rule of the TF-slim/Keras MobileNet V2/V3 code (`_make_divisible`/`_depth`); divisor 1
    degenerates to ordinary rounding.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockSpec:
    """One block: plain conv, depthwise separable (V1) or inverted residual (V2/V3)."""

    block_type: str
    kernel_size: int
    stride: int
    out_channels: int
    expansion: float = 1.0
    se_ratio: float = 0.0
    activation: str = "relu"
    skip: bool = True

    def __post_init__(self) -> None:
        check_choice("block type", self.block_type, BLOCK_TYPES)
        check_choice("activation", self.activation, ACTIVATIONS)
        store(self, "kernel_size", checked_int("kernel_size", self.kernel_size, 1, MAX_KERNEL))
        store(self, "stride", checked_int("stride", self.stride))
        store(self, "out_channels", checked_int("out_channels", self.out_channels))
        store(self, "expansion", checked_number("expansion", self.expansion))
        store(self, "se_ratio", checked_number("se_ratio", self.se_ratio))
        if not isinstance(self.skip, bool):
            raise SpecError(f"field 'skip': expected true or false, got {shown(self.skip)}")
        if self.kernel_size % 2 == 0:
            raise SpecError(f"block kernel_size must be odd, got {self.kernel_size}")
        if self.stride not in (1, 2):
            raise SpecError(f"block stride must be 1 or 2, got {self.stride}")
        if not 0 < self.expansion <= MAX_EXPANSION:
            raise SpecError(f"block expansion must be > 0 and <= {MAX_EXPANSION:g}, "
                            f"got {self.expansion}")
        if self.block_type != "ir" and self.expansion != 1.0:
            raise SpecError(f"expansion applies to 'ir' blocks only, got it on '{self.block_type}'")
        if not 0.0 <= self.se_ratio <= 1.0:
            raise SpecError(f"block se_ratio must be in [0, 1], got {self.se_ratio}")
        if self.block_type == "cn" and self.se_ratio:
            raise SpecError("squeeze-excite applies to 'ds' and 'ir' blocks, not 'cn'")


@dataclass(frozen=True)
class HeadSpec:
    """What follows global pooling: an optional 1x1 conv with bias (V3), dropout, classifier."""

    channels: int = 0
    activation: str = "identity"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_choice("head activation", self.activation, ACTIVATIONS)
        store(self, "channels", checked_int("head.channels", self.channels, 0, MAX_WIDTH))
        store(self, "dropout", checked_number("head.dropout", self.dropout))
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError(f"head dropout must be in [0, 1), got {self.dropout}")


def format_number(value: float) -> str:
    """Shortest exact text for a ratio: ``6``, ``4.5``, or a small fraction such as ``11/3``."""
    if float(value).is_integer():
        return str(int(value))
    text = repr(float(value))
    fraction = Fraction(value).limit_denominator(64)
    if len(text) > 6 and float(fraction) == value:
        return f"{fraction.numerator}/{fraction.denominator}"
    return text


def parse_number(text: str, token: str) -> float:
    """Parse a decimal or ``p/q`` fraction from a block-string token (finite numbers only).

    `float` alone would also accept 'nan', 'inf' and '1e999', which no comparison refuses.
    """
    if _FRACTION.fullmatch(text):
        numerator, denominator = text.split("/")
        if int(denominator):
            return float(Fraction(int(numerator), int(denominator)))
    elif _DECIMAL.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    raise SpecError(f"token {shown(token)}: {shown(text)} is not a number "
                    "(a finite decimal or a fraction p/q)")


def format_block(block: BlockSpec) -> str:
    """The block string of `block`; `parse_block(format_block(b)) == b` for every block."""
    tokens = [block.block_type, f"k{block.kernel_size}", f"s{block.stride}"]
    if block.block_type == "ir":
        tokens.append(f"e{format_number(block.expansion)}")
    tokens.append(f"c{block.out_channels}")
    if block.se_ratio:
        tokens.append(f"se{format_number(block.se_ratio)}")
    tokens.append(block.activation)
    if not block.skip:
        tokens.append("noskip")
    return "_".join(tokens)


class _BlockFields(TypedDict, total=False):
    """The BlockSpec fields after the block type, as tokens give them (one per token)."""

    kernel_size: int
    stride: int
    out_channels: int
    expansion: float
    se_ratio: float
    activation: str
    skip: bool


def parse_block(text: str) -> BlockSpec:
    """Parse a block string such as ``ir_k3_s2_e6_c24_relu6`` (grammar in the module docstring)."""
    if not isinstance(text, str) or not text:
        raise SpecError(f"a block string must be a non-empty string, got {shown(text)}")
    block_type, *tokens = text.split("_")
    if block_type not in BLOCK_TYPES:
        raise SpecError(f"block {shown(text)}: unknown block type {shown(block_type)} "
                        f"(allowed: {', '.join(BLOCK_TYPES)})")
    fields: _BlockFields = {}
    for token in tokens:
        parsed = _parse_token(token, text)
        name = next(iter(parsed))
        if name in fields:
            raise SpecError(f"block {shown(text)}: '{name}' is given twice")
        fields.update(parsed)
    missing = [key for key in ("kernel_size", "stride", "out_channels") if key not in fields]
    if missing:
        letters = {"kernel_size": "k<int>", "stride": "s<int>", "out_channels": "c<int>"}
        needed = ", ".join(letters[key] for key in missing)
        raise SpecError(f"block {shown(text)}: missing {needed}")
    try:
        return BlockSpec(block_type, **fields)
    except SpecError as error:
        raise SpecError(f"block {shown(text)}: {error}") from None


def _parse_token(token: str, text: str) -> _BlockFields:
    if token in ACTIVATIONS:
        return {"activation": token}
    if token == "noskip":
        return {"skip": False}
    for prefix in ("se", "k", "s", "c", "e"):  # "se" before "s": se0.25 is not a stride
        if token.startswith(prefix) and len(token) > len(prefix):
            value = token[len(prefix):]
            if prefix == "se":
                return {"se_ratio": parse_number(value, token)}
            if prefix == "e":
                return {"expansion": parse_number(value, token)}
            if not _INTEGER.fullmatch(value):
                continue
            if len(value) > 9:  # beyond every limit; and int() refuses 4,300 digits
                raise SpecError(f"block {shown(text)}: token {shown(token)} is too large")
            if prefix == "k":
                return {"kernel_size": int(value)}
            if prefix == "s":
                return {"stride": int(value)}
            return {"out_channels": int(value)}
    allowed = "k<int>, s<int>, e<num>, c<int>, se<num>, " + ", ".join(ACTIVATIONS) + ", noskip"
    raise SpecError(f"block {shown(text)}: unknown token {shown(token)} (allowed: {allowed})")
