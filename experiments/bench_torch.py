"""Training-step throughput: mnsearch (JAX, CPU fast path) against PyTorch channels_last.

Command (needs the `bench` extra: `.venv/bin/pip install -e '.[bench]'`):

    .venv/bin/python experiments/bench_torch.py [--steps 10] [--out experiments/results]

Both frameworks train the same spec (built from mnsearch's layer plan, so widths, SE, h-swish
and residuals agree), batch 128, in the same process, alternating, so machine noise hits both;
the script re-runs itself under tcmalloc as the `mnsearch` command does (mnsearch.cli.allocator),
which is also the allocator PyTorch's CPU performance guide recommends;
mnsearch steps with its training default (AdamW, weight decay, label smoothing), PyTorch with
SGD + momentum, so the comparison slightly favours PyTorch. Run it on an otherwise idle
machine: PyTorch's OpenMP threads lose far more than XLA's pool when the cores are shared.
Rows: V1, V2, V3-small at α ∈ {0.25, 0.5, 1.0} on 28×28×1 and 32×32×3.
Prints a Markdown table with images/s and the ratio mnsearch / PyTorch; writes a CSV.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from mnsearch.cli.allocator import active_allocator, restart_with_tcmalloc
from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.families import preset
from mnsearch.spec.plan import layer_plan
from mnsearch.train.benchmark import throughput

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish,
               "identity": nn.Identity}


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, activation: str,
             groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(cout, eps=1e-3), ACTIVATIONS[activation]())


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        return x * nn.functional.hardsigmoid(self.expand(torch.relu(self.reduce(scale))))


class _Block(nn.Module):
    def __init__(self, planned):
        super().__init__()
        block, layers = planned.block, []
        self.residual = planned.residual
        if block.block_type == "cn":
            layers.append(_conv_bn(planned.in_channels, block.out_channels, block.kernel_size,
                                   planned.stride, block.activation))
        else:
            expanded = planned.expanded_channels
            if block.block_type == "ir" and block.expansion != 1.0:
                layers.append(_conv_bn(planned.in_channels, expanded, 1, 1, block.activation))
            layers.append(_conv_bn(expanded, expanded, block.kernel_size, planned.stride,
                                   block.activation, groups=expanded))
            if planned.se_channels:
                layers.append(_SqueezeExcite(expanded, planned.se_channels))
            projection = block.activation if block.block_type == "ds" else "identity"
            layers.append(_conv_bn(expanded, block.out_channels, 1, 1, projection))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def torch_model(spec: ArchSpec) -> nn.Module:
    """The PyTorch twin of `spec` (same layer plan)."""
    stem_stride, _, planned = layer_plan(spec)
    layers = [_conv_bn(spec.in_channels, spec.stem.out_channels, spec.stem.kernel_size,
                       stem_stride, spec.stem.activation)]
    layers += [_Block(block) for block in planned]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    features = spec.blocks[-1].out_channels
    if spec.head.channels:
        layers += [nn.Linear(features, spec.head.channels), ACTIVATIONS[spec.head.activation]()]
        features = spec.head.channels
    layers.append(nn.Linear(features, spec.num_classes))
    return nn.Sequential(*layers)


def torch_throughput(spec: ArchSpec, batch_size: int, steps: int, repeats: int = 3) -> float:
    model = torch_model(spec).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch_size, spec.in_channels, spec.resolution, spec.resolution)
    images = images.to(memory_format=torch.channels_last)
    labels = torch.randint(0, spec.num_classes, (batch_size,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    for _ in range(2):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    restart_with_tcmalloc(sys.argv)
    print(f"allocator: {active_allocator()}")
    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    print("| net | α | input | mnsearch img/s | PyTorch CL img/s | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for name in ("v1", "v2", "v3-small"):
        for alpha in (0.25, 0.5, 1.0):
            for resolution, channels in ((28, 1), (32, 3)):
                spec = preset(name, alpha, resolution, num_classes=10, in_channels=channels)
                ours = throughput(spec, args.batch_size, "train", args.steps)
                theirs = torch_throughput(spec, args.batch_size, args.steps)
                rows.append({"net": name, "alpha": alpha, "input": f"{resolution}x{resolution}x"
                             f"{channels}", "mnsearch": round(ours, 1),
                             "pytorch_channels_last": round(theirs, 1),
                             "ratio": round(ours / theirs, 3)})
                row = rows[-1]
                print(f"| {name} | {alpha} | {row['input']} | {ours:,.0f} | {theirs:,.0f} | "
                      f"{row['ratio']:.2f} |", flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with open(Path(args.out) / "bench_torch.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
