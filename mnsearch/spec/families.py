"""The published MobileNets as specs: V1, V2, V3-Large/Small and their minimalistic forms.

Each builder follows the reference code the ImageNet checkpoints were trained with (TF-slim, as
ported to `keras.applications`), because that is what "identical to the published definition"
can be checked against. Where that code differs from a paper's text, the comment says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.blocks import BlockSpec, HeadSpec, SpecError, make_divisible

# V1 (paper Table 1): (output channels, stride) of each depthwise separable block, by stage.
_V1_STAGES = (((64, 1),), ((128, 2), (128, 1)), ((256, 2), (256, 1)),
              ((512, 2),) + ((512, 1),) * 5, ((1024, 2), (1024, 1)))

# V2 (paper Table 2): expansion t, output channels c, repeats n, first stride s.
_V2_ROWS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))

# V3 (paper Tables 1 and 2, as in Keras' stack_fn): expansion, channels, kernel, stride, SE,
# h-swish. Kernel 5 / SE / h-swish become 3 / none / ReLU in the minimalistic variant. Stages
# group blocks of equal width. Expansions are Keras' ratios (72/16, 88/24, 184/80 ≈ 2.3).
_V3_LARGE = (((1, 16, 3, 1, False, False),),
             ((4, 24, 3, 2, False, False), (3, 24, 3, 1, False, False)),
             ((3, 40, 5, 2, True, False),) + ((3, 40, 5, 1, True, False),) * 2,
             ((6, 80, 3, 2, False, True), (2.5, 80, 3, 1, False, True),
              (2.3, 80, 3, 1, False, True), (2.3, 80, 3, 1, False, True)),
             ((6, 112, 3, 1, True, True),) * 2,
             ((6, 160, 5, 2, True, True),) + ((6, 160, 5, 1, True, True),) * 2)
_V3_SMALL = (((1, 16, 3, 2, True, False),),
             ((72 / 16, 24, 3, 2, False, False), (88 / 24, 24, 3, 1, False, False)),
             ((4, 40, 5, 2, True, True),) + ((6, 40, 5, 1, True, True),) * 2,
             ((3, 48, 5, 1, True, True),) * 2,
             ((6, 96, 5, 2, True, True),) + ((6, 96, 5, 1, True, True),) * 2)


def mobilenet_v1(alpha: float = 1.0, resolution: int = 224, **options: Any) -> ArchSpec:
    """MobileNet V1: widths int(c * alpha) (paper 3.2), ReLU6 and BN momentum 0.99 as TF-slim/Keras.

    The paper's text says ReLU; the released checkpoints (and Keras) use ReLU6. V1 has no
    residual connections (`noskip`).
    """
    _check_alpha(alpha)
    stem = BlockSpec("cn", 3, 2, int(32 * alpha), activation="relu6")
    stages = tuple(tuple(BlockSpec("ds", 3, stride, int(channels * alpha), activation="relu6",
                                   skip=False) for channels, stride in stage)
                   for stage in _V1_STAGES)
    return _finish("v1", "v1", alpha, resolution, stem, stages,
                   HeadSpec(dropout=1e-3), options, channel_divisor=1, bn_momentum=0.99)


def mobilenet_v2(alpha: float = 1.0, resolution: int = 224, **options: Any) -> ArchSpec:
    """MobileNet V2: widths make_divisible(int(c * alpha), 8); last conv 1280 unless alpha > 1."""
    _check_alpha(alpha)
    stem = BlockSpec("cn", 3, 2, make_divisible(32 * alpha), activation="relu6")
    stages = []
    for expansion, channels, repeats, stride in _V2_ROWS:
        width = make_divisible(int(channels * alpha))
        stages.append(tuple(BlockSpec("ir", 3, stride if index == 0 else 1, width,
                                      expansion=expansion, activation="relu6")
                            for index in range(repeats)))
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    stages.append((BlockSpec("cn", 1, 1, last, activation="relu6"),))
    return _finish("v2", "v2", alpha, resolution, stem, tuple(stages), HeadSpec(), options,
                   channel_divisor=8, bn_momentum=0.999)


def _mobilenet_v3(name: str, table: tuple, head_channels: int, minimal: bool, alpha: float,
                  resolution: int, options: dict[str, Any]) -> ArchSpec:
    """V3 builder shared by Large and Small: stem 16 unscaled, last conv 6x, head conv with bias."""
    _check_alpha(alpha)
    main_activation = "relu" if minimal else "hswish"
    stem = BlockSpec("cn", 3, 2, 16, activation=main_activation)
    stages = []
    channels = 16
    for stage in table:
        blocks = []
        for expansion, width, kernel, stride, squeeze, hswish in stage:
            channels = make_divisible(width * alpha)
            blocks.append(BlockSpec(
                "ir", 3 if minimal else kernel, stride, channels, expansion=float(expansion),
                se_ratio=0.25 if squeeze and not minimal else 0.0,
                activation=main_activation if hswish else "relu"))
        stages.append(tuple(blocks))
    stages.append((BlockSpec("cn", 1, 1, make_divisible(channels * 6),
                             activation=main_activation),))
    head_width = make_divisible(head_channels * alpha) if alpha > 1.0 else head_channels
    head = HeadSpec(channels=head_width, activation=main_activation, dropout=0.2)
    return _finish(name, "v3", alpha, resolution, stem, tuple(stages), head, options,
                   channel_divisor=8, bn_momentum=0.999)


def mobilenet_v3_large(alpha: float = 1.0, resolution: int = 224, **options: Any) -> ArchSpec:
    """MobileNet V3-Large (paper Table 1): h-swish in the deep half, SE, 1280-wide head."""
    return _mobilenet_v3("v3-large", _V3_LARGE, 1280, False, alpha, resolution, options)


def mobilenet_v3_small(alpha: float = 1.0, resolution: int = 224, **options: Any) -> ArchSpec:
    """MobileNet V3-Small (paper Table 2): SE from the first block, 1024-wide head."""
    return _mobilenet_v3("v3-small", _V3_SMALL, 1024, False, alpha, resolution, options)


def mobilenet_v3_large_minimal(alpha: float = 1.0, resolution: int = 224,
                               **options: Any) -> ArchSpec:
    """V3-Large minimalistic: kernel 3, ReLU, no SE (the slim/Keras 'minimalistic' models)."""
    return _mobilenet_v3("v3-large-minimal", _V3_LARGE, 1280, True, alpha, resolution, options)


def mobilenet_v3_small_minimal(alpha: float = 1.0, resolution: int = 224,
                               **options: Any) -> ArchSpec:
    """V3-Small minimalistic: kernel 3, ReLU, no SE."""
    return _mobilenet_v3("v3-small-minimal", _V3_SMALL, 1024, True, alpha, resolution, options)


PRESETS: dict[str, Callable[..., ArchSpec]] = {
    "v1": mobilenet_v1,
    "v2": mobilenet_v2,
    "v3-large": mobilenet_v3_large,
    "v3-small": mobilenet_v3_small,
    "v3-large-minimal": mobilenet_v3_large_minimal,
    "v3-small-minimal": mobilenet_v3_small_minimal,
}

_OPTIONS = ("num_classes", "in_channels", "stride_schedule", "padding", "input_scale",
            "input_offset", "dropout")


def preset(name: str, alpha: float = 1.0, resolution: int = 224, **options: Any) -> ArchSpec:
    """The published network `name` at width `alpha` and input size `resolution`.

    Options: num_classes, in_channels, stride_schedule, padding, input_scale, input_offset,
    dropout.
    """
    if name not in PRESETS:
        raise SpecError(f"unknown preset '{name}' (allowed: {', '.join(PRESETS)})")
    return PRESETS[name](alpha, resolution, **options)


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, int | float) or alpha <= 0:
        raise SpecError(f"alpha (width multiplier) must be a number > 0, got {alpha!r}")


def _finish(name: str, family: str, alpha: float, resolution: int, stem: BlockSpec,
            stages: tuple, head: HeadSpec, options: dict[str, Any], **numerics: Any) -> ArchSpec:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise SpecError(f"unknown preset option '{unknown[0]}' (allowed: {', '.join(_OPTIONS)})")
    if "dropout" in options:
        head = HeadSpec(head.channels, head.activation, options.pop("dropout"))
    if not isinstance(resolution, int) or resolution < 1:
        raise SpecError(f"resolution must be a positive integer (pixels), got {resolution!r}")
    return ArchSpec(name=name, family=family, resolution=resolution, stem=stem, stages=stages,
                    head=head, alpha=float(alpha), bn_epsilon=1e-3, **numerics, **options)
