"""Exports a phone can use: raw-pixel ONNX with the normalisation inside, the input contract
recorded, and int8 models with their accuracy, size and latency measured."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from PIL import Image

import mnsearch
from mnsearch.cli.main import main
from mnsearch.data.load import load_dataset
from mnsearch.nn.convert import onnx_session
from mnsearch.search.space import load_space
from mnsearch.search.study import SweepOptions, enqueue_grid
from mnsearch.search.worker import Worker


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    """A finished sweep of V1, V2 and V3-Small blocks (α 0.25, stem1) on 16 px toy images."""
    root = tmp_path_factory.mktemp("phone")
    rng = np.random.default_rng(1)
    for label in range(3):
        (root / "data" / f"class{label}").mkdir(parents=True)
        for index in range(40):
            image = rng.integers(0, 80, (16, 16), dtype=np.uint8)
            image[:, label * 5:(label + 1) * 5] += 140
            Image.fromarray(image).save(root / "data" / f"class{label}" / f"{index}.png")
    space = root / "space.yaml"
    space.write_text(
        f"name: phone\nbase: v2\ndataset: folder:{root / 'data'}\n"
        "recipe: {epochs: 2, batch_size: 16, lr: 0.003, augment: false}\n"
        "dimensions:\n  block: [v1, v2, v3]\n  alpha: [0.25]\n  rho: [1.0]\n"
        "  stride_schedule: [stem1]\nobjectives: [accuracy, madds]\nsampler: grid\n")
    space = load_space(space)
    storage = str(root / "s.journal")
    worker = _KeepingWorker(space, SweepOptions("phone", storage, early_stopping=False,
                                                artifacts=str(root / "artifacts")),
                            load_dataset(space.dataset))
    enqueue_grid(worker.study, space)
    worker.run()
    return root, storage, worker.study


class _KeepingWorker(Worker):
    """Keeps every checkpoint (a sweep keeps the front's only): each family exports."""

    def _keep_front_checkpoints(self) -> None:
        return None


def _export(families, number, out, *extra):
    root, storage, _ = families
    return main(["export", "--study", "phone", "--storage", storage, "--trial", str(number),
                 "--out", str(out), "--artifacts", str(root / "artifacts"), *extra])


def _number(study, block):
    return next(trial.number for trial in study.trials if trial.params["block"] == block)


def test_raw_pixel_onnx_predicts_as_load_does_and_records_the_contract(families, tmp_path):
    root, _, study = families
    out = tmp_path / "v1"
    assert _export(families, _number(study, "v1"), out, "--formats",
                   "spec,weights,onnx,card") == 0
    dataset = load_dataset(f"folder:{root / 'data'}")
    pixels = np.asarray(dataset.test_images, np.uint8)  # 16 px: the model's own size
    session = onnx_session((out / "model.onnx").read_bytes())
    assert [(i.name, i.type) for i in session.get_inputs()] == [("pixels", "tensor(uint8)")]
    (onnx_logits,) = session.run(None, {"pixels": pixels})
    loaded = mnsearch.load(out)
    flax_logits = np.asarray(loaded(pixels))  # raw uint8: normalised as in training
    np.testing.assert_allclose(onnx_logits, flax_logits, atol=1e-4)
    assert (onnx_logits.argmax(-1) == flax_logits.argmax(-1)).all() and len(pixels) >= 20
    # The float variant takes normalised images, as mnsearch.load's float path does.
    contract = loaded.contract
    images = ((pixels / 255.0 - np.array(contract.mean)) / np.array(contract.std))
    (float_logits,) = onnx_session((out / "model-float.onnx").read_bytes()).run(
        None, {"images": images.astype(np.float32)})
    np.testing.assert_allclose(float_logits, onnx_logits, atol=1e-4)
    # The contract is written in spec.yaml, weights.json and the card.
    recorded = yaml.safe_load((out / "spec.yaml").read_text())["input"]
    assert recorded == json.loads((out / "weights.json").read_text())["input"]
    assert recorded["resolution"] == 16 and recorded["channels"] == 1
    assert recorded["dtype"] == "uint8" and recorded["value_range"] == [0, 255]
    assert recorded["mean"] == pytest.approx(list(contract.mean))
    assert "## Input" in (out / "card.md").read_text()


def test_evaluate_on_an_export_gives_the_trials_test_accuracy(families, tmp_path, capsys):
    root, _, study = families
    number, out = _number(study, "v2"), tmp_path / "v2"
    assert _export(families, number, out, "--formats", "spec,weights") == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--dataset", f"folder:{root / 'data'}", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == study.trials[number].user_attrs["test_accuracy"]


@pytest.mark.parametrize("block", ["v1", "v2", "v3"])
def test_int8_export_runs_and_reports_its_measured_accuracy(families, tmp_path, block):
    root, _, study = families
    out = tmp_path / block
    assert _export(families, _number(study, block), out, "--formats", "spec,int8,card",
                   "--calibration", "30") == 0
    assert not (out / "model.onnx").exists()  # int8 alone: its float source is not kept
    int8 = (out / "model-int8.onnx").read_bytes()
    graph = onnx.load_from_string(int8).graph
    assert any(node.op_type == "QuantizeLinear" for node in graph.node)
    report = json.loads((out / "int8.json").read_text())
    assert report["calibration_images"] == 30 and report["images"] >= 20
    assert 0 <= report["int8_accuracy"] <= 1 and report["int8_bytes"] == len(int8)
    assert report["int8_bytes"] < report["float_bytes"]
    session = onnx_session(int8)
    dataset = load_dataset(f"folder:{root / 'data'}")
    (logits,) = session.run(None, {"pixels": np.asarray(dataset.test_images, np.uint8)})
    measured = float(np.mean(logits.argmax(-1) == np.asarray(dataset.test_labels)))
    assert measured == pytest.approx(report["int8_accuracy"])
    card = (out / "card.md").read_text()
    assert "## int8" in card and f"{report['int8_accuracy']:.4f}" in card
    assert f"{report['int8_bytes'] / 2**20:.2f} MiB" in card


def test_a_large_accuracy_drop_is_reported_loudly(monkeypatch):
    from mnsearch.export.card import model_card
    from mnsearch.nn.quantize import Int8Report
    from mnsearch.spec.families import preset

    report = Int8Report(64, "test", 1000, 0.90, 0.80, 900_000, 300_000, 0.2, 0.15)
    assert report.drop == pytest.approx(0.10) and "above the 1% threshold" in report.warning
    assert Int8Report(64, "test", 1000, 0.90, 0.895, 1, 1, 1, 1).warning is None
    spec = preset("v1", 0.25, 16, num_classes=3, in_channels=1, stride_schedule="stem1")
    card = model_card(spec, {"study": "s", "number": 1}, None, {}, "mnsearch export",
                      int8=report.as_dict())
    assert card.splitlines()[2].startswith("> **WARNING: int8 accuracy 80.00% is 10.00% below")


@pytest.mark.parametrize("case", ["too-many", "no-tools", "no-weights"])
def test_bad_int8_requests_are_one_line_and_write_nothing(families, tmp_path, capsys,
                                                          monkeypatch, case):
    root, _, study = families
    number, arguments = _number(study, "v2"), ["--formats", "spec,int8"]
    expected = {"too-many": "--calibration 5000 is larger than trial",
                "no-tools": "int8 models need jax2onnx, onnx and onnxruntime: pip install",
                "no-weights": "has no checkpoint"}[case]
    if case == "too-many":
        arguments += ["--calibration", "5000"]
    elif case == "no-tools":
        import builtins
        real_import = builtins.__import__
        monkeypatch.setattr(builtins, "__import__", lambda name, *rest, **kw: (
            _raise(ImportError(name)) if name.startswith("onnxruntime.quantization")
            else real_import(name, *rest, **kw)))
    checkpoint = Path(study.trials[number].user_attrs["checkpoint"])
    if case == "no-weights":
        checkpoint.rename(tmp_path / "moved.npz")
    out = tmp_path / "bad"
    try:
        assert _export(families, number, out, *arguments) == 2
    finally:
        if case == "no-weights":
            (tmp_path / "moved.npz").rename(checkpoint)
    error = capsys.readouterr().err
    assert expected in error and len(error.strip().splitlines()) == 1
    assert not out.exists() and not any(tmp_path.glob(".bad.*"))


def _raise(error):
    raise error


def test_tflite_export_is_verified_and_predicts_as_onnx(families, tmp_path):
    pytest.importorskip("tensorflow", reason="the tflite extra (mnsearch[tflite]) is not here")
    from mnsearch.nn.convert import tflite_runner

    root, _, study = families
    out = tmp_path / "v3"
    assert _export(families, _number(study, "v3"), out, "--formats",
                   "spec,onnx,tflite,card") == 0
    dataset = load_dataset(f"folder:{root / 'data'}")
    pixels = np.asarray(dataset.test_images, np.uint8)
    tflite_logits = tflite_runner((out / "model.tflite").read_bytes())(pixels)
    (onnx_logits,) = onnx_session((out / "model.onnx").read_bytes()).run(None, {"pixels": pixels})
    scale = max(1.0, float(np.abs(onnx_logits).max()))
    assert np.abs(tflite_logits - onnx_logits).max() <= 2e-4 * scale
    assert (tflite_logits.argmax(-1) == onnx_logits.argmax(-1)).all()
    assert "| litert |" in (out / "card.md").read_text()


def test_tflite_without_its_extra_is_one_line(families, tmp_path, capsys, monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: (
        None if name == "tensorflow" else find_spec(name, *rest)))
    out = tmp_path / "bad"
    assert _export(families, _number(families[2], "v1"), out, "--formats", "spec,tflite") == 2
    error = capsys.readouterr().err
    assert "the tflite format needs tensorflow: pip install 'mnsearch[tflite]'" in error
    assert len(error.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(("formats", "named", "absent"), [
    (("spec", "weights", "onnx", "int8", "stablehlo"),
     ["`model.onnx` and `model-int8.onnx` take these uint8", "StableHLO take"], []),
    (("spec", "weights", "card"), ["`mnsearch.load(folder)` accepts"], ["onnx", "StableHLO"]),
    (("onnx",), ["`model.onnx` takes these uint8", "`model-float.onnx` takes the normalised"],
     ["model-int8", "StableHLO"]),
])
def test_the_card_names_only_the_files_written(formats, named, absent):
    from mnsearch.data.contract import InputContract
    from mnsearch.export.card import model_card
    from mnsearch.spec.families import preset

    spec = preset("v1", 0.25, 16, num_classes=3, in_channels=1, stride_schedule="stem1")
    card = model_card(spec, {"study": "s", "number": 1}, None, {}, "mnsearch export",
                      InputContract(16, 1, (0.5,), (0.25,)), formats=formats)
    section = card.split("## Input", 1)[1].split("\n## ", 1)[0]
    assert all(text in section for text in named), section
    assert not any(text in section for text in absent), section
