"""The layer plan of a spec: where each block sits, its strides, sizes and widths (no JAX).

One function decides padding (`padding_amounts`) and one places blocks (`layer_plan`); the cost
model and the NNX builder both read them, so the counted network is the built network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mnsearch.spec.blocks import STRIDE_SCHEDULES, BlockSpec, SpecError, make_divisible
from mnsearch.spec.values import MAX_RESOLUTION, MAX_WIDTH

if TYPE_CHECKING:  # specs validate themselves with the plan; the plan only reads them
    from mnsearch.spec.arch import ArchSpec


@dataclass(frozen=True)
class PlannedBlock:
    """A block placed in the network: its effective stride, input shape and widths."""

    index: int
    name: str
    block: BlockSpec
    stride: int
    in_channels: int
    in_size: int
    out_size: int
    expanded_channels: int
    se_channels: int
    residual: bool


def padding_amounts(
    padding: str, kernel_size: int, stride: int, size: int, depthwise: bool = False
) -> tuple[int, int]:
    """Zero padding (before, after) of one spatial axis; the one rule the cost model and NNX share.

    ``same`` is TensorFlow's SAME (output = ceil(size / stride); extra pixel at the end), which the
    papers' shapes and Keras V2/V3 use. ``symmetric`` pads k//2 on both sides (PyTorch).
    ``keras_v1`` pads stride-2 depthwise convs by (k//2 - 1, k//2) as Keras' MobileNet V1 does
    (equal to SAME for even sizes, one pixel smaller output for odd ones), the rest like SAME.
    """
    if padding == "symmetric":
        return kernel_size // 2, kernel_size // 2
    if padding == "keras_v1" and stride == 2 and depthwise:
        return kernel_size // 2 - 1, kernel_size // 2
    output = math.ceil(size / stride)
    total = max((output - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def output_size(
    padding: str, kernel_size: int, stride: int, size: int, depthwise: bool = False
) -> int:
    """Spatial output size of a convolution under `padding` (see `padding_amounts`)."""
    before, after = padding_amounts(padding, kernel_size, stride, size, depthwise)
    return (size + before + after - kernel_size) // stride + 1


def effective_strides(spec: ArchSpec) -> tuple[int, ...]:
    """Strides of the stem and every block after the stride schedule is applied."""
    strides = [spec.stem.stride] + [block.stride for block in spec.blocks]
    to_remove = STRIDE_SCHEDULES[spec.stride_schedule]
    for position, stride in enumerate(strides):
        if to_remove and stride == 2:
            strides[position] = 1
            to_remove -= 1
    return tuple(strides)


def layer_plan(spec: ArchSpec) -> tuple[int, int, tuple[PlannedBlock, ...]]:
    """Place every block: returns (stem stride, stem output size, planned blocks).

    Raises SpecError when the resolution is too small for the stride schedule: every strided
    layer must see at least 2 pixels, or it would downsample nothing.
    """
    stem_stride, *block_strides = effective_strides(spec)
    size = _checked_output(spec, "stem", spec.stem, stem_stride, spec.resolution)
    channels = spec.stem.out_channels
    planned = []
    for index, (block, stride) in enumerate(zip(spec.blocks, block_strides, strict=True)):
        out_size = _checked_output(spec, f"block {index}", block, stride, size)
        expanded = _expanded_channels(spec, block, channels)
        if expanded > MAX_WIDTH:
            raise SpecError(f"block {index}: expands to {expanded:,} channels, more than the "
                            f"limit of {MAX_WIDTH:,}: lower its expansion or width")
        se_channels = make_divisible(expanded * block.se_ratio, spec.channel_divisor) \
            if block.se_ratio else 0
        residual = (block.skip and block.block_type != "cn" and stride == 1
                    and channels == block.out_channels)
        planned.append(PlannedBlock(index, _block_name(spec, index), block, stride, channels,
                                    size, out_size, expanded, se_channels, residual))
        channels, size = block.out_channels, out_size
    return stem_stride, planned[0].in_size, tuple(planned)


def _expanded_channels(spec: ArchSpec, block: BlockSpec, in_channels: int) -> int:
    if block.block_type == "ir":
        if block.expansion == 1.0:
            return in_channels
        return make_divisible(in_channels * block.expansion, spec.channel_divisor)
    if block.block_type == "ds":
        return in_channels
    return block.out_channels


def _block_name(spec: ArchSpec, index: int) -> str:
    position = 0
    for stage_index, stage in enumerate(spec.stages):
        if index < position + len(stage):
            return f"stage{stage_index}.block{index - position}"
        position += len(stage)
    raise IndexError(index)


def _checked_output(spec: ArchSpec, where: str, block: BlockSpec, stride: int, size: int) -> int:
    if stride > 1 and size < 2:
        minimum = minimum_resolution(spec)
        raise SpecError(
            f"resolution {spec.resolution} is too small for stride schedule "
            f"'{spec.stride_schedule}': {where} would downsample a {size}x{size} map "
            f"(use resolution >= {minimum}, or a schedule from {', '.join(STRIDE_SCHEDULES)})"
        )
    out = output_size(spec.padding, block.kernel_size, stride, size, block.block_type != "cn")
    if out < 1:
        raise SpecError(f"resolution {spec.resolution}: {where} produces an empty feature map")
    return out


def minimum_resolution(spec: ArchSpec) -> int:
    """Smallest input size at which every strided layer still sees at least 2 pixels."""
    blocks = (spec.stem, *spec.blocks)
    strides = effective_strides(spec)
    for resolution in range(1, MAX_RESOLUTION + 1):
        size = resolution
        for block, stride in zip(blocks, strides, strict=True):
            if stride > 1 and size < 2:
                break
            depthwise = block.block_type != "cn"
            size = output_size(spec.padding, block.kernel_size, stride, size, depthwise)
        else:
            return resolution
    raise SpecError(f"no resolution up to {MAX_RESOLUTION} fits this stride schedule")
