"""Exact analytic cost of a spec: Mult-Adds, parameters, activation memory (no JAX import).

Counting convention (V1 paper, section 3): the Mult-Adds of a convolution are
K·K·Cin·Cout·Hout·Wout, of a depthwise convolution K·K·C·Hout·Wout, of a fully connected layer
(classifier, V3 head conv, SE convs on the pooled vector) Cin·Cout. BN, activations, pooling,
additions and the SE gate multiply are not counted: that is what the papers' tables count, and
what torchvision publishes as "GFLOPS" for its MobileNets. Parameters are counted as the papers
and torchvision do (weights, biases, BN scale and shift); `params_keras` adds the BN moving mean
and variance, as `keras.Model.count_params()` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.plan import PlannedBlock, layer_plan

if TYPE_CHECKING:  # pandas loads in layer_table: 0.7 s of import that costing never needs
    import pandas as pd

BYTES_PER_VALUE = 4  # float32 activations and weights


class LayerCost(NamedTuple):
    """One row of the per-layer table."""

    layer: str
    op: str
    kernel: int
    stride: int
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    madds: int
    params: int
    weights: int
    bn_channels: int
    live_values: int


@dataclass(frozen=True)
class Cost:
    """Totals for one image at the spec's resolution."""

    madds: int
    params: int
    params_keras: int
    peak_activation_bytes: int
    model_bytes: int

    def as_dict(self) -> dict[str, int]:
        return {"madds": self.madds, "params": self.params, "params_keras": self.params_keras,
                "peak_activation_bytes": self.peak_activation_bytes,
                "model_bytes": self.model_bytes}


def layer_costs(spec: ArchSpec) -> list[LayerCost]:
    """Every counted layer in execution order (the data behind `layer_table` and `cost`)."""
    stem_stride, stem_size, planned = layer_plan(spec)
    rows = [_conv("stem", "conv", spec.stem.kernel_size, stem_stride,
                  (spec.resolution, spec.in_channels), (stem_size, spec.stem.out_channels), 0)]
    for block in planned:
        rows.extend(_block_rows(block))
    last = planned[-1]
    features = last.block.out_channels
    rows.append(LayerCost("pool", "pool", last.out_size, 1, (last.out_size, last.out_size,
                          features), (1, 1, features), 0, 0, 0, 0,
                          last.out_size ** 2 * features + features))
    if spec.head.channels:
        rows.append(_dense("head", features, spec.head.channels))
        features = spec.head.channels
    rows.append(_dense("classifier", features, spec.num_classes))
    return rows


def cost(spec: ArchSpec) -> Cost:
    """Totals of `layer_costs`; cheap enough (tens of microseconds) to call inside a sampler."""
    rows = layer_costs(spec)
    madds = sum(row.madds for row in rows)
    params = sum(row.params for row in rows)
    bn_statistics = 2 * sum(row.bn_channels for row in rows)
    peak = max(row.live_values for row in rows) * BYTES_PER_VALUE
    return Cost(madds, params, params + bn_statistics, peak,
                (params + bn_statistics) * BYTES_PER_VALUE)


def layer_table(spec: ArchSpec) -> pd.DataFrame:
    """Per-layer table: layer, op, kernel, stride, input/output shape, Mult-Adds, params."""
    import pandas as pd

    table = pd.DataFrame([row._asdict() for row in layer_costs(spec)])
    table["params_keras"] = table["params"] + 2 * table["bn_channels"]
    for column in ("input_shape", "output_shape"):
        table[column] = table[column].map(lambda shape: "x".join(str(v) for v in shape))
    return table.drop(columns=["bn_channels", "live_values"])


def cost_by_op(spec: ArchSpec) -> pd.DataFrame:
    """Share of Mult-Adds and params by layer type, like the V1 paper's Table 2.

    `weights` counts kernels only (no biases, no BN): the V1 paper's Table 2 shares are of those.
    """
    table = layer_table(spec)
    table["type"] = table["op"] + " " + table["kernel"].astype(str) + "x" + \
        table["kernel"].astype(str)
    table.loc[table["op"].isin(["fc", "pool"]), "type"] = table["op"]
    grouped = table.groupby("type", sort=False)[["madds", "params", "weights"]].sum()
    for column in ("madds", "params", "weights"):
        grouped[f"{column}_share"] = grouped[column] / grouped[column].sum()
    return grouped.reset_index()


def _block_rows(block: PlannedBlock) -> list[LayerCost]:
    spec_block, name = block.block, block.name
    size_in, size_out = block.in_size, block.out_size
    shortcut = size_in * size_in * block.in_channels if block.residual else 0
    if spec_block.block_type == "cn":
        return [_conv(name, "conv" if spec_block.kernel_size > 1 else "pointwise",
                      spec_block.kernel_size, block.stride, (size_in, block.in_channels),
                      (size_out, spec_block.out_channels), 0)]
    rows = []
    expanded = block.expanded_channels
    if spec_block.block_type == "ir" and spec_block.expansion != 1.0:
        rows.append(_conv(f"{name}.expand", "pointwise", 1, 1, (size_in, block.in_channels),
                          (size_in, expanded), shortcut))
    rows.append(_depthwise(f"{name}.depthwise", spec_block.kernel_size, block.stride,
                           size_in, size_out, expanded, shortcut))
    if block.se_channels:
        rows.extend(_squeeze_excite(name, size_out, expanded, block.se_channels, shortcut))
    rows.append(_conv(f"{name}.project", "pointwise", 1, 1, (size_out, expanded),
                      (size_out, spec_block.out_channels), shortcut))
    return rows


def _conv(layer: str, op: str, kernel: int, stride: int, source: tuple[int, int],
          target: tuple[int, int], shortcut: int) -> LayerCost:
    (size_in, channels_in), (size_out, channels_out) = source, target
    weights = kernel * kernel * channels_in * channels_out
    live = size_in * size_in * channels_in + size_out * size_out * channels_out + shortcut
    return LayerCost(layer, op, kernel, stride, (size_in, size_in, channels_in),
                     (size_out, size_out, channels_out), weights * size_out * size_out,
                     weights + 2 * channels_out, weights, channels_out, live)


def _depthwise(layer: str, kernel: int, stride: int, size_in: int, size_out: int,
               channels: int, shortcut: int) -> LayerCost:
    weights = kernel * kernel * channels
    live = (size_in * size_in + size_out * size_out) * channels + shortcut
    return LayerCost(layer, "depthwise", kernel, stride, (size_in, size_in, channels),
                     (size_out, size_out, channels), weights * size_out * size_out,
                     weights + 2 * channels, weights, channels, live)


def _squeeze_excite(name: str, size: int, channels: int, squeeze: int,
                    shortcut: int) -> list[LayerCost]:
    """SE on the pooled vector: two FCs with bias; the feature map stays live meanwhile."""
    held = size * size * channels + shortcut
    return [
        LayerCost(f"{name}.se_reduce", "se", 1, 1, (1, 1, channels), (1, 1, squeeze),
                  channels * squeeze, channels * squeeze + squeeze, channels * squeeze, 0,
                  held + channels + squeeze),
        LayerCost(f"{name}.se_expand", "se", 1, 1, (1, 1, squeeze), (1, 1, channels),
                  squeeze * channels, squeeze * channels + channels, squeeze * channels, 0,
                  held + squeeze + channels),
    ]


def _dense(layer: str, features_in: int, features_out: int) -> LayerCost:
    return LayerCost(layer, "fc", 1, 1, (1, 1, features_in), (1, 1, features_out),
                     features_in * features_out, features_in * features_out + features_out,
                     features_in * features_out, 0, features_in + features_out)
