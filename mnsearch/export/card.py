"""The model card of an export: what the architecture costs, how well it did, how it was measured.

Pure text from plain data (no JAX), so the card can be tested and regenerated without a model.
Accuracy numbers always carry their provenance (dataset, split, epochs), since a 3-epoch
sweep accuracy and a full-training accuracy are different claims.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Collection, Mapping
from typing import Any

from mnsearch.cost import cost, layer_table
from mnsearch.data.contract import InputContract
from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.blocks import format_block
from mnsearch.train.config import TrainConfig


def model_card(spec: ArchSpec, trial: dict[str, Any], recipe: dict[str, Any] | None,
               latency: dict[str, float], export_command: str,
               contract: InputContract | None = None,
               int8: Mapping[str, Any] | None = None,
               formats: Collection[str] = ("onnx", "int8", "stablehlo")) -> str:
    """Markdown card. `trial` holds study, number, dataset, val/test accuracy and epochs;
    `contract` the input the model expects; `int8` the quantization report
    (`Int8Report.as_dict`) when an int8 model was exported; `formats` those written (the
    card names only files that are there)."""
    sections = [
        f"# {spec.name} α={spec.alpha:g}, {spec.resolution} px "
        f"(trial {trial['number']} of study '{trial['study']}')",
        *([_int8_warning(int8)] if int8 and int8.get("warning") else []),
        _cost_section(spec), _accuracy_section(trial, recipe), _input_section(contract, formats),
        *([_int8_section(int8)] if int8 else []), _latency_section(latency),
        _architecture_section(spec), _reproduce_section(trial, recipe, export_command),
    ]
    return "\n\n".join(sections) + "\n"


def _int8_warning(int8: Mapping[str, Any]) -> str:
    return f"> **WARNING: {int8['warning']}**"


def _input_section(contract: InputContract | None, formats: Collection[str]) -> str:
    if contract is None:
        return "## Input\n\nNot recorded (a checkpoint from before input contracts)."
    raw = [name for name, kind in (("`model.onnx`", "onnx"), ("`model-int8.onnx`", "int8"))
           if kind in formats]
    normalised = [name for name, kind in (("`model-float.onnx`", "onnx"),
                                          ("StableHLO", "stablehlo")) if kind in formats]
    sentences = [contract.describe()]
    if raw:
        sentences.append(f"{' and '.join(raw)} take{'s' if len(raw) == 1 else ''} these uint8 "
                         "pixels (input `pixels`) and normalise inside the graph.")
    if normalised:
        sentences.append(f"{' and '.join(normalised)} take{'s' if len(normalised) == 1 else ''}"
                         " the normalised float32 images (input `images`).")
    sentences.append("`mnsearch.load(folder)` accepts uint8 pixels or normalised images.")
    return "## Input\n\n" + sentences[0] + "\n\n" + " ".join(sentences[1:])


def _int8_section(int8: Mapping[str, Any]) -> str:
    rows = [(f"{int8['split']} accuracy ({int8['images']:,} images)",
             f"{int8['float_accuracy']:.4f}", f"{int8['int8_accuracy']:.4f}"),
            ("size", f"{int8['float_bytes'] / 2**20:.2f} MiB",
             f"{int8['int8_bytes'] / 2**20:.2f} MiB"),
            ("batch-1 latency, ONNX Runtime CPU", f"{int8['float_latency_ms']:.3f} ms",
             f"{int8['int8_latency_ms']:.3f} ms")]
    return ("## int8 (post-training static quantization)\n\n"
            f"ONNX Runtime QDQ, per-channel int8 weights, int8 activations, MinMax calibration "
            f"on {int8['calibration_images']:,} training images; both models evaluated on the "
            f"same uint8 pixels. Accuracy change: {-int8['drop']:+.2%}.\n\n"
            + _table(("", "model.onnx (float)", "model-int8.onnx"), rows))


def _cost_section(spec: ArchSpec) -> str:
    totals = cost(spec)
    rows = [("Mult-Adds per image", f"{totals.madds:,}"),
            ("parameters (papers' count: no BN)", f"{totals.params:,}"),
            ("parameters (Keras count: with BN)", f"{totals.params_keras:,}"),
            ("peak activation memory (batch 1, float32)",
             f"{totals.peak_activation_bytes / 1024:,.0f} KiB"),
            ("weights (float32)", f"{totals.model_bytes / 2**20:,.2f} MiB")]
    return "## Cost (analytic, exact)\n\n" + _table(("quantity", "value"), rows)


def _accuracy_section(trial: dict[str, Any], recipe: dict[str, Any] | None) -> str:
    lines = ["## Accuracy", ""]
    dataset = trial.get("dataset") or "the sweep's dataset"
    if recipe:
        budget = (f"{trial.get('epochs_done', recipe['epochs'])} epochs of "
                  f"{recipe['optimizer']} (lr {recipe['learning_rate']:g}, "
                  f"{recipe['schedule']} schedule, batch {recipe['batch_size']})")
        share = f"subset {recipe['subset']}" if recipe.get("subset") else "all training images"
        lines += [f"Trained on {dataset} ({share}, seed {recipe['seed']}) for {budget}.", ""]
        fraction = recipe.get("validation_fraction", 0.1)
    else:
        fraction = 0.1
        lines += [f"Trained on {dataset}; the training recipe was not recorded.", ""]
    if trial.get("val_accuracy") is not None:
        lines.append(f"- validation accuracy: **{trial['val_accuracy']:.4f}** (a stratified "
                     f"{fraction:.0%} of the training split, held out; the search objective)")
    if trial.get("test_accuracy") is not None:
        lines.append(f"- test accuracy: **{trial['test_accuracy']:.4f}** (the test split, "
                     "evaluated once after training; never used for selection)")
    if trial.get("proxy_study"):
        lines += ["", f"A final model: trained at full fidelity by `mnsearch finalize`, chosen "
                  f"from trial {trial.get('proxy_trial')} of the sweep '{trial['proxy_study']}'."]
    else:
        lines += ["", "These are sweep-fidelity numbers: train longer (below) before comparing "
                  "with published accuracies."]
    return "\n".join(lines)


def _latency_section(latency: dict[str, float]) -> str:
    if not latency:
        return "## Latency\n\nNot measured."
    rows = [(runtime, f"{values['latency_ms']:.3f}",
             f"{values['p10_ms']:.3f} - {values['p90_ms']:.3f}", str(values["batch_size"]))
            for runtime, values in latency.items()]
    return ("## Latency (measured at export, on the exporting machine)\n\n" +
            _table(("runtime", "median ms", "p10 - p90 ms", "batch"), rows))


def _architecture_section(spec: ArchSpec) -> str:
    blocks = "\n".join(f"    {format_block(block)}" for block in spec.blocks)
    frame = layer_table(spec)
    rows = [(row.layer, row.op, str(row.kernel), str(row.stride), row.input_shape,
             row.output_shape, f"{row.madds:,}", f"{row.params:,}")
            for row in frame.itertuples()]
    header = ("layer", "op", "kernel", "stride", "input", "output", "Mult-Adds", "params")
    return (f"## Architecture\n\nBlocks (mnsearch block strings), stride schedule "
            f"'{spec.stride_schedule}', padding '{spec.padding}':\n\n{blocks}\n\n"
            f"### Layers\n\n{_table(header, rows)}")


def _reproduce_section(trial: dict[str, Any], recipe: dict[str, Any] | None,
                       export_command: str) -> str:
    dataset = trial.get("dataset") or "DATASET"
    fine_tune = ["mnsearch", "train", "spec.yaml", "--dataset", dataset, "--init", ".",
                 "--epochs", "100", "--out", "full-run"]
    return ("## Reproduce\n\n```sh\n"
            f"mnsearch cost spec.yaml --layers       # the cost above\n"
            f"{reproduce_command(trial.get('dataset'), recipe)}   # this training run\n"
            f"{shlex.join(fine_tune)}   # fine-tune from these weights\n"
            f"{export_command}   # this export\n```\n\n"
            "In Python: `model = mnsearch.load(\"THIS_FOLDER\")` gives the model in eval mode; "
            "call it on uint8 pixels (resized and normalised as in training) or on normalised "
            "float32 images.")


def reproduce_command(dataset: str | None, recipe: Mapping[str, Any] | None) -> str:
    """`mnsearch train spec.yaml` with the trial's dataset and its whole recipe.

    Every TrainConfig field that differs from its default becomes `--set field=value`, so the
    command trains with exactly the recorded recipe (warm-up, schedule, EMA, augmentation...)
    and keeps doing so if a flag's default changes; spec.yaml carries the resolution.
    """
    words = ["mnsearch", "train", "spec.yaml", "--dataset", dataset or "DATASET"]
    for name, text in recipe_settings(recipe or {}):
        words += ["--set", f"{name}={text}"]
    return shlex.join(words)


def recipe_settings(recipe: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, text) of each recorded recipe field that differs from TrainConfig's default."""
    settings = []
    for field in dataclasses.fields(TrainConfig):
        if field.name in recipe and recipe[field.name] != field.default:
            settings.append((field.name, _setting_text(recipe[field.name])))
    return settings


def _setting_text(value: object) -> str:
    """The text `--set` reads back as `value`: none, true/false, and floats by repr (exact)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
