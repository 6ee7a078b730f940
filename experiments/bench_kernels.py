"""Training-step images/s of the native kernels against XLA's ops (`shifted`), on this CPU.

    .venv/bin/python experiments/bench_kernels.py [--steps 10] [--repeats 5] [--out CSV]

`auto` takes the native kernels only where `mnsearch.nn.native.faster_here()` says (x86-64 with
AVX2); this measures the claim on the machine at hand. Both step functions of a model are
built and compiled first, then timed in alternation (native, shifted, native, ...), so drift of
a noisy VM falls on both; each figure is the median over `repeats` windows of `steps` steps at
batch 128. Models: V1/V2/V3-Small at α 0.25 and 0.5 on 28×28×1 (stem stride 1), and the
Fashion-MNIST finals of experiments/results/fashion_front (their exported spec.yaml).
Runs under tcmalloc where it is installed, as `mnsearch` trains (mnsearch.cli.allocator), so the
ratio is the one training sees (under glibc's malloc an AVX2 EPYC ran mid-100-trial-0's shifted
step 1.47x slower).
Prints a table with the ratio native / shifted and the CPU, and writes it as CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mnsearch.cli.allocator import active_allocator, restart_with_tcmalloc
from mnsearch.nn import native
from mnsearch.spec.families import preset
from mnsearch.spec.io import load_spec
from mnsearch.train.benchmark import interleaved, step_function

FINALS = ("tiny-100-trial-0", "mid-100-trial-0", "mid-final-trial-2")
BATCH = 128


def models() -> dict[str, object]:
    """Name -> spec: the presets at 28×28×1, then the committed Fashion-MNIST finals."""
    specs = {f"{family} α={alpha}": preset(family, alpha, 28, num_classes=10, in_channels=1,
                                           stride_schedule="stem1")
             for family in ("v1", "v2", "v3-small") for alpha in (0.25, 0.5)}
    results = Path("experiments/results/fashion_front")
    for final in FINALS:
        if (results / final / "spec.yaml").exists():
            spec = load_spec(results / final / "spec.yaml")
            specs[f"fashion {final} ({spec.resolution}px)"] = spec
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/bench_kernels.csv"))
    args = parser.parse_args()
    restart_with_tcmalloc(sys.argv)
    if reason := native.unavailable_reason():
        raise SystemExit(f"bench_kernels: the native kernels cannot be built here: {reason}")
    cpu = native.cpu_name()
    rows = []
    for name, spec in models().items():
        steps = {kernels: step_function(spec, BATCH, "train", kernels)
                 for kernels in ("native", "shifted")}
        rates = interleaved(steps, args.steps, args.repeats, BATCH)
        rows.append({"model": name, "native": rates["native"], "shifted": rates["shifted"],
                     "ratio": rates["native"] / rates["shifted"]})
        print(f"{name:<40} native {rates['native']:8,.0f}  shifted {rates['shifted']:8,.0f}  "
              f"ratio {rows[-1]['ratio']:.2f}", flush=True)
    avx512 = "avx512f" in native.cpu_flags()
    table = pd.DataFrame(rows).assign(cpu=cpu, avx512=avx512,
                                      allocator=active_allocator())
    table.to_csv(args.out, index=False, float_format="%.3f")
    print(f"{cpu}; AVX-512: {avx512} (auto takes "
          f"{'native' if native.faster_here() else 'shifted'}); ratios "
          f"{table['ratio'].min():.2f}-{table['ratio'].max():.2f}; {args.out}")


if __name__ == "__main__":
    main()
