"""Float against int8 on a study's Pareto front: test accuracy, size, batch-1 latency.

Exports every front trial with `mnsearch export --pareto --formats spec,int8,card` (the
raw-pixel float ONNX model and its int8 QDQ quantization, both run by ONNX Runtime on the same
uint8 test pixels), then tabulates each trial's int8.json. The model files stay in a temporary
folder; the table (CSV and Markdown), the reports and the cards are written to --out.

    python experiments/int8_front.py --study paper_v1_grid \
        --storage experiments/results/fidelity/paper_v1_grid/studies.journal \
        --out experiments/results/int8/paper_v1_grid
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from mnsearch.export.export import ExportRequest, export
from mnsearch.spec.io import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--artifacts", default="mnsearch-artifacts")
    parser.add_argument("--calibration", type=int)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="mnsearch-int8-front-") as folder:
        exported = export(ExportRequest(args.study, Path(folder) / "front", args.storage,
                                        pareto=True, formats=("spec", "int8", "card"),
                                        artifacts=args.artifacts, calibration=args.calibration))
        rows = []
        args.out.mkdir(parents=True, exist_ok=True)
        for trial_folder in exported.folders:
            report = json.loads((trial_folder / "int8.json").read_text())
            spec = load_spec(trial_folder / "spec.yaml")
            rows.append({"trial": int(trial_folder.name.removeprefix("trial-")),
                         "alpha": spec.alpha, "resolution": spec.resolution, **report})
            for name in ("int8.json", "card.md"):
                shutil.copy(trial_folder / name, args.out / f"{trial_folder.name}-{name}")
    table = pd.DataFrame(rows).sort_values("trial")
    table.to_csv(args.out / "int8_front.csv", index=False)
    shown = pd.DataFrame({
        "trial": table["trial"], "α": table["alpha"], "px": table["resolution"],
        "float test": table["float_accuracy"].map("{:.2%}".format),
        "int8 test": table["int8_accuracy"].map("{:.2%}".format),
        "change (points)": (-100 * table["drop"]).map("{:+.2f}".format),
        "float MiB": (table["float_bytes"] / 2**20).map("{:.2f}".format),
        "int8 MiB": (table["int8_bytes"] / 2**20).map("{:.2f}".format),
        "size ratio": (table["float_bytes"] / table["int8_bytes"]).map("{:.2f}x".format),
        "float ms": table["float_latency_ms"].map("{:.3f}".format),
        "int8 ms": table["int8_latency_ms"].map("{:.3f}".format),
        "speed-up": (table["float_latency_ms"] / table["int8_latency_ms"]).map(
            "{:.2f}x".format)})
    markdown = "\n".join(["| " + " | ".join(shown.columns) + " |",
                          "|" + "---|" * len(shown.columns)]
                         + ["| " + " | ".join(map(str, row)) + " |"
                            for row in shown.itertuples(index=False)])
    (args.out / "int8_front.md").write_text(markdown + "\n")
    print(markdown)
    for warning in exported.warnings:
        print("WARNING", warning)
    print(f"{len(rows)} front models in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
