"""The int8_accuracy objective: a sweep that optimises the quantized model's accuracy."""

import builtins

from optuna.trial import TrialState

from mnsearch.cli.main import main
from mnsearch.cli.sweep_display import sweep_and_write
from mnsearch.search.study import SweepOptions


def _space(tmp_path, folder):
    path = tmp_path / "space.yaml"
    path.write_text(
        f"name: robust\nbase: v1\ndataset: folder:{folder}\n"
        "recipe: {epochs: 1, batch_size: 16, lr: 0.003}\n"
        "dimensions:\n  alpha: [0.25, 0.5]\n  stride_schedule: [stem1]\n"
        "objectives: [int8_accuracy, madds]\nsampler: grid\n")
    return path


def test_a_sweep_optimises_int8_validation_accuracy(tmp_path, image_folder):
    import optuna

    from mnsearch.search.storage import open_existing_storage

    options = SweepOptions("robust", str(tmp_path / "s.journal"),
                           artifacts=str(tmp_path / "artifacts"))
    final = sweep_and_write(_space(tmp_path, image_folder), options, out=tmp_path / "out")
    assert final.complete == 2 and final.failed == 0
    study = optuna.load_study(study_name="robust",
                              storage=open_existing_storage(str(tmp_path / "s.journal")))
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        int8 = trial.user_attrs["int8_accuracy"]
        assert 0.0 <= int8 <= 1.0 and trial.values[0] == int8
        assert trial.user_attrs["val_accuracy"] is not None  # the float one, for comparison
    assert "int8_accuracy" in (tmp_path / "out" / "trials.csv").read_text()


def test_the_objective_without_the_export_extra_is_refused_before_training(
        tmp_path, image_folder, capsys, monkeypatch):
    real_import = builtins.__import__

    def without_quantization(name, *rest, **keywords):
        if name.startswith("onnxruntime.quantization"):
            raise ImportError(name)
        return real_import(name, *rest, **keywords)

    monkeypatch.setattr(builtins, "__import__", without_quantization)
    assert main(["sweep", str(_space(tmp_path, image_folder)), "--storage",
                 str(tmp_path / "s.journal"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "int8 models need jax2onnx, onnx and onnxruntime" in error
    assert len(error.strip().splitlines()) == 1 and not (tmp_path / "s.journal").exists()
