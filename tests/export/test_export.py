"""Export: round trips (cost, load), ONNX/StableHLO equivalence, latency, and every bad input."""

import json
import os
import shutil

import jax.numpy as jnp
import numpy as np
import optuna
import pytest
from flax import nnx
from optuna.trial import TrialState
from PIL import Image

import mnsearch
from mnsearch.cli.main import main
from mnsearch.data.load import load_dataset
from mnsearch.nn.convert import (
    check_onnx,
    check_stablehlo,
    onnx_bytes,
    onnx_session,
    stablehlo_bytes,
)
from mnsearch.nn.model import build, eval_view, example_images
from mnsearch.search.space import load_space
from mnsearch.search.storage import open_storage
from mnsearch.search.study import SweepOptions, enqueue_grid
from mnsearch.search.worker import Worker
from mnsearch.spec.families import preset
from mnsearch.train.evaluation import recalibrate_batch_norm
from mnsearch.train.weights import load_weights


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished 3-point sweep on a toy image folder: 2 trained trials, 1 rejected (too big)."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    for label in range(3):
        (root / "data" / f"class{label}").mkdir(parents=True)
        for index in range(24):
            image = rng.integers(0, 60, (12, 12), dtype=np.uint8)
            image[label * 4:(label + 1) * 4] += 150
            Image.fromarray(image).save(root / "data" / f"class{label}" / f"{index}.png")
    space = root / "space.yaml"
    space.write_text(
        f"name: toy\nbase: v1\ndataset: folder:{root / 'data'}\n"
        "recipe: {epochs: 1, batch_size: 16, lr: 0.003}\n"
        "dimensions:\n  alpha: [0.25, 0.5, 1.0]\n  rho: [1.0]\n  stride_schedule: [stem1]\n"
        "objectives: [accuracy, madds]\nconstraints: {max_madds: 1000000}\nsampler: grid\n")
    storage = str(root / "s.journal")
    space = load_space(space)
    worker = Worker(space, SweepOptions("toy", storage, artifacts=str(root / "artifacts")),
                    load_dataset(space.dataset))
    enqueue_grid(worker.study, space)
    worker.run()
    return root, storage, worker.study


def _export(swept, *extra):
    root, storage, _ = swept
    return main(["export", "--study", "toy", "--storage", storage, *extra])


def _front_trial(study):
    return min(trial.number for trial in study.best_trials)


def test_export_round_trips_cost_and_weights(swept, capsys):
    root, _, study = swept
    number = _front_trial(study)
    out = root / "exported"
    assert _export(swept, "--trial", str(number), "--out", str(out)) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert {path.name for path in out.iterdir()} >= {
        "spec.yaml", "weights.npz", "weights.json", "model.onnx", "model.stablehlo",
        "model.mlir", "card.md"}
    capsys.readouterr()
    assert main(["cost", str(out / "spec.yaml"), "--json"]) == 0
    recorded = json.loads(capsys.readouterr().out)
    trial = study.trials[number]
    assert recorded["madds"] == trial.user_attrs["madds"] == trial.values[1]
    assert recorded["params"] == trial.user_attrs["params"]
    # load() gives the trained model: the same outputs as the sweep's own checkpoint.
    loaded = mnsearch.load(out)
    trained = build(loaded.spec, 7)
    load_weights(trained, trial.user_attrs["checkpoint"])
    images = example_images(loaded.spec, 5)
    np.testing.assert_array_equal(np.asarray(loaded(jnp.asarray(images))),
                                  np.asarray(eval_view(trained)(jnp.asarray(images))))
    card = (out / "card.md").read_text()
    assert f"{trial.user_attrs['val_accuracy']:.4f}" in card and "## Latency" in card
    assert f"{trial.user_attrs['madds']:,}" in card and "mnsearch train spec.yaml" in card


def test_pareto_export_writes_one_folder_per_front_trial(swept):
    root, _, study = swept
    out = root / "front"
    assert _export(swept, "--pareto", "--out", str(out), "--formats", "spec,weights,card") == 0
    front = {f"trial-{trial.number}" for trial in study.best_trials}
    assert {path.name for path in out.iterdir()} == front
    for folder in out.iterdir():
        assert not (folder / "model.onnx").exists() and (folder / "weights.npz").exists()


@pytest.mark.parametrize("family", ["v1", "v2", "v3-large", "v3-small"])
def test_onnx_and_stablehlo_reproduce_the_flax_model(family):
    spec = preset(family, alpha=0.35, resolution=32, num_classes=10)
    model = build(spec, 0)
    # Random init leaves eval-mode activations vanishing (BN statistics at 0/1); estimated
    # statistics give logits of order 1, so 1e-4 is a real test.
    recalibrate_batch_norm(model, example_images(spec, 64, seed=5), batch_size=32, batches=2)
    logits = np.asarray(nnx.jit(lambda view, x: view(x))(eval_view(model),
                                                         jnp.asarray(example_images(spec, 2))))
    assert np.abs(logits).max() > 0.1
    check = check_onnx(model, spec, onnx_bytes(model, spec))
    assert check.max_abs_difference <= 1e-4 and check.batch_sizes == (1, 3)
    reloaded = check_stablehlo(model, spec, stablehlo_bytes(model, spec))
    assert reloaded.max_abs_difference == 0.0


def test_onnx_model_has_a_dynamic_batch_dimension():
    spec = preset("v1", alpha=0.25, resolution=32, num_classes=4)
    session = onnx_session(onnx_bytes(build(spec, 0), spec))
    assert session.get_inputs()[0].name == "images"
    assert session.get_inputs()[0].shape == ["batch", 32, 32, 3]
    (logits,) = session.run(None, {"images": example_images(spec, 7)})
    assert logits.shape == (7, 4)


def test_latency_command_prints_a_float(capsys):
    for runtime in ("xla", "onnxruntime"):
        assert main(["latency", "v1", "--alpha", "0.25", "--resolution", "32", "--repeats", "3",
                     "--runtime", runtime, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert isinstance(result["latency_ms"], float) and result["latency_ms"] > 0
        assert result["runtime"] == runtime and result["p10_ms"] <= result["p90_ms"]


def test_sweep_with_a_latency_objective_runs_end_to_end(swept, tmp_path):
    root = swept[0]
    space = tmp_path / "latency.yaml"
    space.write_text(
        f"name: fast\nbase: v1\ndataset: folder:{root / 'data'}\n"
        "recipe: {epochs: 1, batch_size: 16}\n"
        "dimensions:\n  alpha: [0.25, 0.5]\n  rho: [1.0]\n  stride_schedule: [stem1]\n"
        "objectives: [accuracy, latency]\nconstraints: {max_latency_ms: 10000}\n"
        "sampler: grid\n")
    space = load_space(space)
    options = SweepOptions("fast", str(tmp_path / "s.journal"),
                           artifacts=str(tmp_path / "artifacts"))
    worker = Worker(space, options, load_dataset(space.dataset))  # in-process: no spawn
    enqueue_grid(worker.study, space)
    worker.run()
    complete = worker.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2 and worker.trainings == 2
    for trial in complete:
        assert trial.values[1] == trial.user_attrs["latency_ms"] > 0


def _no_leftovers(root, name):
    return not any(path.name.startswith(f".{name}.") or path.name == name
                   for path in root.iterdir())


@pytest.mark.parametrize("case", ["pruned", "failed", "no-checkpoint", "corrupted",
                                  "unknown-format", "exists", "unknown-study", "no-trial",
                                  "no-onnx-tools"])
def test_bad_exports_give_one_line_exit_2_and_write_nothing(swept, capsys, monkeypatch, case):
    root, storage, study = swept
    out, number = root / f"bad-{case}", _front_trial(study)
    arguments = ["--trial", str(number), "--out", str(out)]
    expected = {"pruned": "PRUNED", "failed": "FAIL", "no-checkpoint": "no checkpoint",
                "corrupted": "checkpoint", "unknown-format": "unknown format 'tensorrt'",
                "exists": "exists", "no-trial": "no trial 99",
                "unknown-study": "no study 'nope' in this storage; available: ",
                "no-onnx-tools": "the onnx format needs jax2onnx: pip install 'mnsearch[export]'"}
    if case == "pruned":
        arguments[1] = str(study.get_trials(states=(TrialState.PRUNED,))[0].number)
    elif case == "failed":
        failed = optuna.create_study(study_name="broken", storage=open_storage(storage),
                                     directions=["maximize", "minimize"], load_if_exists=True)
        failed.tell(failed.ask(), state=TrialState.FAIL)
        code = main(["export", "--study", "broken", "--storage", storage, "--trial", "0",
                     "--out", str(out)])
        arguments = None
    elif case == "unknown-format":
        arguments += ["--formats", "spec,tensorrt"]
    elif case == "exists":
        out.mkdir()
    elif case == "unknown-study":
        code = main(["export", "--study", "nope", "--storage", storage, *arguments])
        arguments = None
    elif case == "no-trial":
        arguments[1] = "99"
    elif case == "no-onnx-tools":
        import importlib.util
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: (
            None if name == "jax2onnx" else find_spec(name, *rest)))
    checkpoint = study.trials[number].user_attrs["checkpoint"]
    if case in ("no-checkpoint", "corrupted"):
        shutil.copy(checkpoint, root / "saved.npz")
        if case == "corrupted":
            with open(checkpoint, "r+b") as stream:
                stream.seek(100)
                stream.write(b"\0" * 64)
        else:
            os.remove(checkpoint)
    try:
        if arguments is not None:
            code = _export(swept, *arguments)
    finally:
        if case in ("no-checkpoint", "corrupted"):
            shutil.copy(root / "saved.npz", checkpoint)
    error = capsys.readouterr().err
    assert code == 2 and expected[case] in error and len(error.strip().splitlines()) == 1
    assert case == "exists" or _no_leftovers(root, out.name)


# --- the card's "reproduce" command ---------------------------------------------------------

def _card_train_command(card: str) -> list[str]:
    """The words of the card's `mnsearch train spec.yaml --dataset …` line (comment dropped)."""
    import shlex
    line = next(line for line in card.splitlines()
                if line.startswith("mnsearch train spec.yaml --dataset") and "--init" not in line)
    return shlex.split(line, comments=True)


def _parsed_config(words):
    from mnsearch.cli.main import build_parser
    from mnsearch.cli.train import _flag_values
    from mnsearch.train.config import config_from_settings
    args = build_parser().parse_args(words[1:])
    return args, config_from_settings(_flag_values(args), args.set)


def test_card_reproduces_the_recipe_and_the_resolution(tmp_path):
    """Every field that differs from TrainConfig's defaults is in the command, as --set, and
    the spec file trains at its own resolution (24 px), not the dataset's (28 px)."""
    from dataclasses import asdict

    from mnsearch.cli.train import _train_resolution
    from mnsearch.export.card import model_card
    from mnsearch.spec.io import resolve_arch, save_spec
    from mnsearch.train.config import TrainConfig

    config = TrainConfig(epochs=3, batch_size=128, learning_rate=0.003, warmup_epochs=0.3,
                         subset=4000, augment=False, ema_decay=0.999, bn_momentum=None,
                         schedule="step", compute_dtype="bfloat16", seed=7, weight_decay=0)
    spec = preset("v1", 0.5, 24, num_classes=10, in_channels=1, stride_schedule="stem1")
    trial = {"study": "s", "number": 3, "dataset": "folder:/data/my images"}
    card = model_card(spec, trial, asdict(config), {}, "mnsearch export --study s")
    assert "sweep-fidelity numbers" in card
    final = model_card(spec, {**trial, "proxy_study": "p", "proxy_trial": 5}, asdict(config),
                       {}, "mnsearch export --study s-final")
    assert "sweep-fidelity" not in final and "from trial 5 of the sweep 'p'" in final
    words = _card_train_command(card)
    assert "--set" in words and "epochs=10" not in " ".join(words)  # defaults left out
    args, reproduced = _parsed_config(words)
    assert reproduced == config and args.dataset == "folder:/data/my images"
    save_spec(spec, tmp_path / "spec.yaml")
    args.arch = str(tmp_path / "spec.yaml")
    assert _train_resolution(args, 28) is None
    trained = resolve_arch(args.arch, args.alpha, _train_resolution(args, 28), num_classes=10,
                           in_channels=1, stride_schedule=args.stride_schedule)
    assert trained == spec and trained.resolution == 24
    args.arch = "v1"  # a preset still trains at the dataset's size by default
    assert _train_resolution(args, 28) == 28
    args.resolution = 20
    assert _train_resolution(args, 28) == 20


def test_exported_card_command_gives_the_trials_recorded_recipe(swept, tmp_path):
    from mnsearch.search.record import TrialRecord
    from mnsearch.train.config import TrainConfig

    root, _, study = swept
    number = _front_trial(study)
    out = tmp_path / "card-only"
    assert _export(swept, "--trial", str(number), "--out", str(out), "--formats",
                   "spec,card") == 0
    recorded = TrainConfig(**TrialRecord.of(study.trials[number]).recipe)
    args, reproduced = _parsed_config(_card_train_command((out / "card.md").read_text()))
    assert reproduced == recorded and recorded != TrainConfig()
    assert args.dataset == study.user_attrs["dataset"]
