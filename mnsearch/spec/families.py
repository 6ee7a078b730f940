"""The published MobileNets as specs: V1, V2, V3-Large/Small and their minimalistic forms.

Each family is a table of block strings at width multiplier alpha = 1 (the grammar of
`mnsearch.spec.blocks`), as timm writes its architectures, plus ONE width rule that scales the
parsed table to any alpha. Tables and rules follow the reference code the ImageNet checkpoints
were trained with (TF-slim, as ported to `keras.applications`), because that is what "identical
to the published definition" can be checked against: the tests compare the papers' Mult-Adds and
Keras' parameter counts. Where that code differs from a paper's text, the comment says so.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Protocol, TypedDict, Unpack

from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.blocks import BlockSpec, HeadSpec, SpecError, make_divisible, parse_block
from mnsearch.spec.values import MAX_RESOLUTION, MAX_WIDTH, checked_int, checked_number, shown

Stages = tuple[tuple[BlockSpec, ...], ...]

# A table row may carry `r<n>` (as in timm): the block n times, the first copy with the written
# stride and the others with stride 1. Only the tables here use it; it is not part of the block
# grammar, because a spec holds every block of a network, not a recipe for them.
_REPEAT = re.compile(r"r([1-9][0-9]*)")


class SpecOptions(TypedDict, total=False):
    """The ArchSpec fields a preset leaves to its caller (defaults: ArchSpec's)."""

    num_classes: int
    in_channels: int
    stride_schedule: str
    padding: str
    input_scale: float
    input_offset: float


class PresetOptions(SpecOptions, total=False):
    """What `preset` changes besides width and resolution: SpecOptions, and the head's dropout."""

    dropout: float


class Preset(Protocol):
    """The signature of every family's builder in `PRESETS`."""

    def __call__(self, alpha: float = 1.0, resolution: int = 224,
                 **options: Unpack[PresetOptions]) -> ArchSpec: ...


_OPTIONS = tuple(PresetOptions.__annotations__)

# Every family's narrowest layer (16 channels) times this is MAX_WIDTH: a larger α gives no
# network a spec can hold, so it is refused by name instead of by the first too-wide layer.
MAX_ALPHA = MAX_WIDTH / 16


def _table(stem: str, *stages: tuple[str, ...]) -> tuple[BlockSpec, Stages]:
    """Parse a family's alpha = 1 table once, at import: a typo fails loudly, presets stay fast."""
    return parse_block(stem), tuple(tuple(block for text in stage for block in _rows(text))
                                    for stage in stages)


def _rows(text: str) -> tuple[BlockSpec, ...]:
    tokens = text.split("_")
    repeats = [int(match[1]) for token in tokens if (match := _REPEAT.fullmatch(token))]
    block = parse_block("_".join(token for token in tokens if not _REPEAT.fullmatch(token)))
    count = repeats[0] if repeats else 1
    return (block,) + (dataclasses.replace(block, stride=1),) * (count - 1)


# V1 (paper Table 1): depthwise separable blocks without residuals (`noskip`). The paper's text
# says ReLU; the released checkpoints (and Keras) use ReLU6.
_V1 = _table("cn_k3_s2_c32_relu6",
             ("ds_k3_s1_c64_relu6_noskip",),
             ("ds_r2_k3_s2_c128_relu6_noskip",),
             ("ds_r2_k3_s2_c256_relu6_noskip",),
             ("ds_r6_k3_s2_c512_relu6_noskip",),
             ("ds_r2_k3_s2_c1024_relu6_noskip",))

# V2 (paper Table 2, one row per stage), then the last 1x1 conv.
_V2 = _table("cn_k3_s2_c32_relu6",
             ("ir_k3_s1_e1_c16_relu6",),
             ("ir_r2_k3_s2_e6_c24_relu6",),
             ("ir_r3_k3_s2_e6_c32_relu6",),
             ("ir_r4_k3_s2_e6_c64_relu6",),
             ("ir_r3_k3_s1_e6_c96_relu6",),
             ("ir_r3_k3_s2_e6_c160_relu6",),
             ("ir_k3_s1_e6_c320_relu6",),
             ("cn_k1_s1_c1280_relu6",))

# V3 (paper Tables 1 and 2, as in Keras' stack_fn), then the last 1x1 conv (6x the last block).
# Stages group blocks of equal width. Expansions are Keras' ratios of expanded to input width
# (72/16 = 4.5, 88/24 = 11/3, 184/80 = 2.3), not the paper's rounded widths.
_V3_LARGE = _table("cn_k3_s2_c16_hswish",
                   ("ir_k3_s1_e1_c16_relu",),
                   ("ir_k3_s2_e4_c24_relu", "ir_k3_s1_e3_c24_relu"),
                   ("ir_r3_k5_s2_e3_c40_se0.25_relu",),
                   ("ir_k3_s2_e6_c80_hswish", "ir_k3_s1_e2.5_c80_hswish",
                    "ir_r2_k3_s1_e2.3_c80_hswish"),
                   ("ir_r2_k3_s1_e6_c112_se0.25_hswish",),
                   ("ir_r3_k5_s2_e6_c160_se0.25_hswish",),
                   ("cn_k1_s1_c960_hswish",))
_V3_SMALL = _table("cn_k3_s2_c16_hswish",
                   ("ir_k3_s2_e1_c16_se0.25_relu",),
                   ("ir_k3_s2_e4.5_c24_relu", "ir_k3_s1_e11/3_c24_relu"),
                   ("ir_k5_s2_e4_c40_se0.25_hswish", "ir_r2_k5_s1_e6_c40_se0.25_hswish"),
                   ("ir_r2_k5_s1_e3_c48_se0.25_hswish",),
                   ("ir_r3_k5_s2_e6_c96_se0.25_hswish",),
                   ("cn_k1_s1_c576_hswish",))


def mobilenet_v1(alpha: float = 1.0, resolution: int = 224,
                 **options: Unpack[PresetOptions]) -> ArchSpec:
    """MobileNet V1: every width, stem included, is int(c * alpha) (paper 3.2).

    BN momentum 0.99 as TF-slim/Keras; no width divisor, so V1 keeps widths like 24 or 768.
    """
    _check_alpha(alpha)
    stem, stages = _V1
    return _finish("v1", "v1", alpha, resolution, _widened(stem, int(stem.out_channels * alpha)),
                   _scaled(stages, lambda width: int(width * alpha)), HeadSpec(dropout=1e-3),
                   options, channel_divisor=1, bn_momentum=0.99)


def mobilenet_v2(alpha: float = 1.0, resolution: int = 224,
                 **options: Unpack[PresetOptions]) -> ArchSpec:
    """MobileNet V2: block widths make_divisible(int(c * alpha)); last conv 1280 unless alpha > 1.

    Keras truncates block widths before rounding but rounds the stem's 32 * alpha directly; both
    are kept, since they differ for some alphas (0.28: stem 16, truncated 8) and Keras' counts
    are the reference.
    """
    _check_alpha(alpha)
    stem, (*stages, (last,)) = _V2
    return _finish("v2", "v2", alpha, resolution,
                   _widened(stem, make_divisible(stem.out_channels * alpha)),
                   (*_scaled(tuple(stages), lambda width: make_divisible(int(width * alpha))),
                    (_widened(last, _unless_wider(last.out_channels, alpha)),)),
                   HeadSpec(), options, channel_divisor=8, bn_momentum=0.999)


def _mobilenet_v3(name: str, table: tuple[BlockSpec, Stages], head_channels: int,
                  minimal: bool, alpha: float, resolution: int,
                  options: PresetOptions) -> ArchSpec:
    """V3-Large and -Small: block widths make_divisible(c * alpha); stem 16 whatever alpha.

    The last conv is 6x the last block's scaled width (not 6x scaled separately), and the head
    conv (with bias, after pooling) keeps 1280/1024 unless alpha > 1.
    """
    _check_alpha(alpha)
    stem, (*stages, (last,)) = table
    if minimal:
        stem, last = _minimalistic(stem), _minimalistic(last)
        stages = [tuple(_minimalistic(block) for block in stage) for stage in stages]
    blocks = _scaled(tuple(stages), lambda width: make_divisible(width * alpha))
    last = _widened(last, make_divisible(blocks[-1][-1].out_channels * 6))
    head = HeadSpec(channels=_unless_wider(head_channels, alpha),
                    activation=last.activation, dropout=0.2)  # h-swish, or ReLU if minimal
    return _finish(name, "v3", alpha, resolution, stem, (*blocks, (last,)), head, options,
                   channel_divisor=8, bn_momentum=0.999)


def mobilenet_v3_large(alpha: float = 1.0, resolution: int = 224,
                       **options: Unpack[PresetOptions]) -> ArchSpec:
    """MobileNet V3-Large (paper Table 1): h-swish in the deep half, SE, 1280-wide head."""
    return _mobilenet_v3("v3-large", _V3_LARGE, 1280, False, alpha, resolution, options)


def mobilenet_v3_small(alpha: float = 1.0, resolution: int = 224,
                       **options: Unpack[PresetOptions]) -> ArchSpec:
    """MobileNet V3-Small (paper Table 2): SE from the first block, 1024-wide head."""
    return _mobilenet_v3("v3-small", _V3_SMALL, 1024, False, alpha, resolution, options)


def mobilenet_v3_large_minimal(alpha: float = 1.0, resolution: int = 224,
                               **options: Unpack[PresetOptions]) -> ArchSpec:
    """V3-Large minimalistic: kernel 3, ReLU, no SE (the slim/Keras 'minimalistic' models)."""
    return _mobilenet_v3("v3-large-minimal", _V3_LARGE, 1280, True, alpha, resolution, options)


def mobilenet_v3_small_minimal(alpha: float = 1.0, resolution: int = 224,
                               **options: Unpack[PresetOptions]) -> ArchSpec:
    """V3-Small minimalistic: kernel 3, ReLU, no SE."""
    return _mobilenet_v3("v3-small-minimal", _V3_SMALL, 1024, True, alpha, resolution, options)


PRESETS: dict[str, Preset] = {
    "v1": mobilenet_v1,
    "v2": mobilenet_v2,
    "v3-large": mobilenet_v3_large,
    "v3-small": mobilenet_v3_small,
    "v3-large-minimal": mobilenet_v3_large_minimal,
    "v3-small-minimal": mobilenet_v3_small_minimal,
}


def preset(name: str, alpha: float = 1.0, resolution: int = 224,
           **options: Unpack[PresetOptions]) -> ArchSpec:
    """The published network `name` at width `alpha` and input size `resolution`.

    Options: num_classes, in_channels, stride_schedule, padding, input_scale, input_offset,
    dropout.
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise SpecError(f"unknown preset {shown(name)} (allowed: {', '.join(PRESETS)})")
    try:
        return PRESETS[name](alpha, resolution, **options)
    except _TooWide as error:
        raise SpecError(f"{name} at alpha {alpha:g}: {error}: use a smaller alpha") from None


def _check_alpha(alpha: float) -> None:
    """α must be a finite number in (0, MAX_ALPHA]: NaN and infinity have no integer widths."""
    try:
        value = checked_number("alpha", alpha)
    except SpecError:
        value = math.nan
    if not 0 < value <= MAX_ALPHA:
        raise SpecError(f"alpha (width multiplier) must be a number > 0 and <= {MAX_ALPHA:g}, "
                        f"got {shown(alpha)}")


class _TooWide(SpecError):
    """A width rule gave a layer more than MAX_WIDTH channels (`preset` names the alpha)."""


def _widened(block: BlockSpec, width: int) -> BlockSpec:
    return dataclasses.replace(block, out_channels=_limited(width))


def _limited(width: int) -> int:
    if width > MAX_WIDTH:
        raise _TooWide(f"a layer of {width:,} channels, more than the limit of {MAX_WIDTH:,}")
    return width


def _scaled(stages: Stages, rule: Callable[[int], int]) -> Stages:
    """Apply a family's width rule to every block of its alpha = 1 stages."""
    return tuple(tuple(_widened(block, rule(block.out_channels)) for block in stage)
                 for stage in stages)


def _unless_wider(width: int, alpha: float) -> int:
    """V2's last conv and V3's head scale only for alpha > 1.

    The V2 paper (section 6.1) keeps the very last layer wide for multipliers below one because
    that improves small models; Keras' V3 does the same with its head conv.
    """
    return _limited(make_divisible(width * alpha)) if alpha > 1.0 else width


def _minimalistic(block: BlockSpec) -> BlockSpec:
    """Keras' minimalistic V3: ReLU for h-swish everywhere, and blocks with 3x3 kernels, no SE.

    TF-slim made these for hardware and quantizers that lack h-swish, SE or 5x5 depthwise
    kernels; they give up some ImageNet accuracy for it.
    """
    activation = "relu" if block.activation == "hswish" else block.activation
    if block.block_type != "ir":
        return dataclasses.replace(block, activation=activation)
    return dataclasses.replace(block, kernel_size=3, se_ratio=0.0, activation=activation)


def _finish(name: str, family: str, alpha: float, resolution: int, stem: BlockSpec,
            stages: Stages, head: HeadSpec, options: PresetOptions, *, channel_divisor: int,
            bn_momentum: float) -> ArchSpec:
    """Check the options and the resolution, and assemble the spec."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise SpecError(f"unknown preset option '{unknown[0]}' (allowed: {', '.join(_OPTIONS)})")
    if "dropout" in options:
        head = HeadSpec(head.channels, head.activation, options.pop("dropout"))
    checked_int("resolution", resolution, 1, MAX_RESOLUTION)
    fields: SpecOptions = options  # dropout popped: what is left are ArchSpec fields
    return ArchSpec(name=name, family=family, resolution=resolution, stem=stem, stages=stages,
                    head=head, alpha=float(alpha), bn_epsilon=1e-3,
                    channel_divisor=channel_divisor, bn_momentum=bn_momentum, **fields)
