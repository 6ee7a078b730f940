"""Export chosen trials of a study: spec, weights, ONNX, StableHLO and a model card, verified.

An export folder is written whole or not at all: everything goes into a temporary folder beside
the destination, every conversion is checked against the Flax model, and only then is the
folder renamed into place. A failed or pruned trial, a trial without the checkpoint its
weights need, a corrupted checkpoint, an unknown format or an existing destination each end
in one `ExportError` line and leave nothing behind.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnsearch.atomic import staging_folder
from mnsearch.data.contract import InputContract
from mnsearch.errors import MnsearchError
from mnsearch.export.formats import (
    verified_onnx,
    write_int8,
    write_onnx,
    write_stablehlo,
    write_tflite,
)
from mnsearch.export.inputs import TrialInputs
from mnsearch.nn.quantize import require_quantization_tools
from mnsearch.search.record import StudyRecord, TrialRecord
from mnsearch.search.storage import load_study, mask_password, open_existing_storage
from mnsearch.spec.arch import ArchSpec, spec_from_dict
from mnsearch.spec.blocks import SpecError

FORMATS = ("spec", "weights", "onnx", "int8", "tflite", "stablehlo", "card")
# tflite needs TensorFlow (the `tflite` extra, ~600 MB): asked for, never assumed
DEFAULT_FORMATS = tuple(name for name in FORMATS if name != "tflite")
NEEDS_WEIGHTS = ("weights", "onnx", "int8", "tflite", "stablehlo")


class ExportError(MnsearchError):
    """An export that cannot be made as asked, or a conversion that does not reproduce the
    model; nothing of it is left on disk."""


@dataclass(frozen=True)
class ExportRequest:
    """Which trials of which study, into which folder, in which formats."""

    study_name: str
    out: Path
    storage: str | None = None
    trial: int | None = None
    pareto: bool = False
    formats: tuple[str, ...] = DEFAULT_FORMATS
    artifacts: str = "mnsearch-artifacts"
    # training images that calibrate int8 (None: DEFAULT_CALIBRATION_IMAGES, or the whole
    # training split when it is smaller)
    calibration: int | None = None


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """`spec,weights` → ('spec', 'weights'); refuses names outside FORMATS."""
    names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text)]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ExportError(f"unknown format '{','.join(unknown)}' (allowed: {', '.join(FORMATS)})")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the trial folders, and warnings to show (an int8 model that lost
    more than `quantize.DROP_WARNING` of accuracy)."""

    folders: list[Path]
    warnings: list[str]


def export(request: ExportRequest) -> Exported:
    """Run an export; returns the trial folders written (under `request.out`)."""
    if request.out.exists():
        raise ExportError(f"output folder '{request.out}' exists: choose a new --out "
                          "(exports never overwrite)")
    if (request.trial is None) == (not request.pareto):
        raise ExportError("give exactly one of --trial N and --pareto")
    if "onnx" in request.formats or "int8" in request.formats:
        _require_onnx_tools()
    if "tflite" in request.formats:
        _require_tflite_tools()
    if "int8" in request.formats:
        require_quantization_tools()
        if request.calibration is not None and request.calibration < 1:
            raise ExportError(f"--calibration must be >= 1, got {request.calibration}")
    study = _load_study(request)
    if StudyRecord.of(study).simulated:
        raise ExportError(f"study '{study.study_name}' is SIMULATED (mnsearch sweep "
                          "--simulate): its accuracies are synthetic and it trained no model")
    trials = [_exportable(study, request.trial)] if request.trial is not None else \
        _front(study)
    inputs = TrialInputs(study)
    for trial in trials:  # everything that can be refused, before anything is written
        if any(name in request.formats for name in NEEDS_WEIGHTS):
            trial_checkpoint(study, trial, request.artifacts)
        if "int8" in request.formats:
            inputs.check_calibration(trial, request.calibration)
    request.out.parent.mkdir(parents=True, exist_ok=True)
    staging, notes = staging_folder(request.out), []
    try:
        for trial in trials:
            folder = staging if request.trial is not None else staging / f"trial-{trial.number}"
            folder.mkdir(exist_ok=True)
            notes.extend(export_trial(study, trial, folder, request, inputs))
            if any(name in request.formats for name in NEEDS_WEIGHTS):
                from mnsearch.train.loop import release_compiled_programs
                release_compiled_programs()  # a long front would exhaust memory maps
        staging.rename(request.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    folders = [request.out] if request.trial is not None else \
        [request.out / f"trial-{trial.number}" for trial in trials]
    return Exported(folders, notes)


def _require_onnx_tools() -> None:
    """Fail before any work (a --pareto export can take minutes) when the export extra is absent."""
    import importlib.util

    missing = [name for name in ("jax2onnx", "onnxruntime")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"the onnx format needs {' and '.join(missing)}: "
                          "pip install 'mnsearch[export]', or leave onnx out of --formats")


def _require_tflite_tools() -> None:
    """Fail before any work when the tflite extra is absent."""
    import importlib.util

    missing = [name for name in ("tensorflow", "ai_edge_litert")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"the tflite format needs {' and '.join(missing)}: pip install "
                          "'mnsearch[tflite]', or leave tflite out of --formats")


def _load_study(request: ExportRequest) -> optuna.Study:
    return load_study(open_existing_storage(request.storage), request.study_name)


def _exportable(study: optuna.Study, number: int) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise ExportError(f"study '{study.study_name}' has no trial {number} "
                          f"(trials 0-{len(trials) - 1})")
    trial = trials[number]
    if trial.state != TrialState.COMPLETE:
        record = TrialRecord.of(trial)
        reason = record.rejected or record.error or (
            "stopped early by the rung rule" if trial.state == TrialState.PRUNED else "")
        raise ExportError(f"trial {number} is {trial.state.name}"
                          f"{f' ({reason})' if reason else ''}: only complete trials export")
    return trial


def _front(study: optuna.Study) -> list[FrozenTrial]:
    front = [trial for trial in study.best_trials
             if TrialRecord.of(trial).duplicate_of is None]
    if not front:
        raise ExportError(f"study '{study.study_name}' has no complete trials: nothing to export")
    return sorted(front, key=lambda trial: trial.number)


def export_trial(study: optuna.Study, trial: FrozenTrial, folder: Path, request: ExportRequest,
                 inputs: TrialInputs | None = None) -> list[str]:
    """Write the requested formats of one complete trial into `folder` (verified); returns
    its warnings."""
    from mnsearch.spec.io import save_spec
    from mnsearch.train.checkpoint import save_state

    inputs = inputs or TrialInputs(study)
    spec = trial_spec(trial)
    checkpoint = None
    if any(name in request.formats for name in NEEDS_WEIGHTS):
        checkpoint = trial_checkpoint(study, trial, request.artifacts)
    model = trained_model(spec, checkpoint) if checkpoint else None
    contract = inputs.contract(spec, trial, checkpoint) if checkpoint else None
    described = {"input": contract.as_dict()} if contract else {}
    latency: dict[str, dict[str, float]] = {}
    int8: dict[str, Any] | None = None
    if "spec" in request.formats:
        save_spec(spec, folder / "spec.yaml", {"trial": _provenance(study, trial), **described})
    if model is not None and "weights" in request.formats:
        recipe = asdict(inputs.recipe(trial, checkpoint))
        save_state(folder / "weights.npz", {"model": model},
                   {"trial": _provenance(study, trial), "source": str(checkpoint),
                    "recipe": recipe, **described})
    if model is not None and contract is not None and {"onnx", "int8"} & set(request.formats):
        float_model, pixel_model = verified_onnx(model, spec, contract)
        if "onnx" in request.formats:  # int8 alone: the float models are only its source
            write_onnx(float_model, pixel_model, spec, folder, latency)
        if "int8" in request.formats:
            calibration = inputs.calibration(spec, trial, checkpoint, request.calibration)
            report = write_int8(pixel_model, folder, calibration, *inputs.test_pixels(spec))
            int8 = report.as_dict()
    if model is not None and contract is not None and "tflite" in request.formats:
        write_tflite(model, spec, contract, folder, latency)
    if model is not None and "stablehlo" in request.formats:
        write_stablehlo(model, spec, folder)
    if "card" in request.formats:
        _write_card(study, trial, spec, folder, request, checkpoint, latency, model,
                    contract, int8)
    return [f"trial {trial.number}: {int8['warning']}"] if int8 and int8["warning"] else []


def trial_spec(trial: FrozenTrial) -> ArchSpec:
    """The spec a trial recorded (the exact one it trained and costed)."""
    data = TrialRecord.of(trial).spec
    if data is None:
        raise ExportError(f"trial {trial.number} recorded no spec: not an mnsearch trial")
    try:
        return spec_from_dict(data, source=f"trial {trial.number}")
    except SpecError as error:
        raise ExportError(str(error)) from None


def trial_checkpoint(study: optuna.Study, trial: FrozenTrial, artifacts: str) -> Path:
    """The checkpoint holding a trial's trained weights (a duplicate uses its record's)."""
    source = trial
    duplicate_of = TrialRecord.of(trial).duplicate_of
    if duplicate_of is not None:
        source = study.get_trials(deepcopy=False)[duplicate_of]
    recorded = TrialRecord.of(source).checkpoint
    path = Path(recorded) if recorded else \
        Path(artifacts) / study.study_name / f"trial-{source.number}" / "checkpoint.npz"
    if not path.is_file():
        raise ExportError(
            f"trial {trial.number} has no checkpoint at {path} (sweeps keep checkpoints only "
            "while a trial is on the Pareto front): export without weights with "
            "--formats spec,card, or retrain it with `mnsearch train spec.yaml`")
    return path


def trained_model(spec: ArchSpec, checkpoint: Path) -> Any:
    """`spec` built with the weights of `checkpoint` (a corrupted or foreign one is one line)."""
    from mnsearch.nn.model import build
    from mnsearch.train.checkpoint import CheckpointError
    from mnsearch.train.weights import load_weights

    model = build(spec, 0)
    try:
        load_weights(model, checkpoint)
    except CheckpointError as error:
        raise ExportError(f"{error} (the checkpoint is corrupted or belongs to another "
                          "architecture)") from None
    return model


def _write_card(study: optuna.Study, trial: FrozenTrial, spec: ArchSpec, folder: Path,
                request: ExportRequest, checkpoint: Path | None,
                latency: dict[str, dict[str, float]], model: Any,
                contract: InputContract | None, int8: dict[str, Any] | None) -> None:
    from mnsearch.atomic import write_atomically
    from mnsearch.export.card import model_card
    from mnsearch.nn.latency import measure_latency
    from mnsearch.train.checkpoint import load_metadata

    recipe = TrialRecord.of(trial).recipe
    if recipe is None and checkpoint is not None:
        recipe = load_metadata(checkpoint).get("config")
    latency["xla"] = measure_latency(spec, 1, "xla", repeats=20, model=model).as_dict()
    text = model_card(spec, _provenance(study, trial), recipe, latency,
                      export_command(request, trial.number), contract, int8, request.formats)
    write_atomically(folder / "card.md", text.encode())


def _provenance(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """Where the weights come from; a final trial (`mnsearch finalize`) also names its proxy."""
    record, study_record = TrialRecord.of(trial), StudyRecord.of(study)
    proxy = ({"proxy_study": study_record.proxy_study, "proxy_trial": record.proxy_trial}
             if study_record.proxy_study is not None else {})
    return {"study": study.study_name, "number": trial.number,
            "dataset": study_record.dataset, "madds": record.madds,
            "params": record.params, "val_accuracy": record.val_accuracy,
            "test_accuracy": record.test_accuracy, "epochs_done": record.epochs_done, **proxy}


def export_command(request: ExportRequest, number: int) -> str:
    """The command line that makes this export (storage password masked)."""
    words = ["mnsearch", "export", "--study", request.study_name]
    if request.storage:
        words += ["--storage", mask_password(request.storage)]
    words += ["--trial", str(number), "--out", f"export-trial-{number}"]
    if request.formats != DEFAULT_FORMATS:
        words += ["--formats", ",".join(request.formats)]
    if request.calibration is not None and "int8" in request.formats:
        words += ["--calibration", str(request.calibration)]
    return shlex.join(words)
