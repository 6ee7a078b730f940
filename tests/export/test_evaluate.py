"""`mnsearch evaluate`: a trained model's accuracy recomputed from its files, bad input refused."""

import json

import numpy as np
import pytest
from PIL import Image

from mnsearch.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, image_folder):
    """A 1-epoch V1 α=0.25 run on the 12 px toy folder, trained at 10 px (a resize to check)."""
    out = tmp_path_factory.mktemp("evaluate") / "run"
    assert main(["train", "v1", "--alpha", "0.25", "--schedule", "stem1", "--resolution", "10",
                 "--dataset", f"folder:{image_folder}", "--epochs", "2", "--batch-size", "16",
                 "--out", str(out)]) == 0
    return out


def _evaluate(capsys, *arguments):
    code = main(["evaluate", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_recomputes_the_accuracies_training_reported(trained, image_folder, capsys):
    metrics = json.loads((trained / "metrics.json").read_text())
    code, out, _ = _evaluate(capsys, trained, "--dataset", f"folder:{image_folder}", "--json")
    result = json.loads(out)
    assert code == 0 and result["accuracy"] == metrics["test_accuracy"]
    assert result["images"] == 24 and result["split"] == "test" and result["loss"] > 0
    code, out, _ = _evaluate(capsys, trained, "--dataset", f"folder:{image_folder}",
                             "--split", "val", "--json")
    assert code == 0 and json.loads(out)["accuracy"] == metrics["val_accuracy"][-1]
    code, out, _ = _evaluate(capsys, trained / "spec.yaml", "--weights",
                             trained / "checkpoint.npz", "--dataset", f"folder:{image_folder}")
    assert code == 0 and f"accuracy {metrics['test_accuracy']:.4f}" in out


def _folder(root, size, mode):
    for label in range(4):
        (root / f"class{label}").mkdir(parents=True)
        for index in range(6):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            Image.fromarray(np.full(shape, 40 * label, np.uint8), mode).save(
                root / f"class{label}" / f"{index}.png")
    return root


@pytest.mark.parametrize(("case", "message"), [
    ("no-weights", "no weights.npz or checkpoint.npz"),
    ("size", "has 16×16 images, the model was trained from 12×12 images"),
    ("channels", "has 3 channel(s), the model takes 1"),
    ("spec-alone", "a spec file needs --weights"),
    ("against-weights-alone", "--against-weights needs --against"),
])
def test_bad_inputs_are_one_line_and_exit_2(trained, image_folder, tmp_path, capsys, case,
                                            message):
    model, dataset = trained, f"folder:{image_folder}"
    if case == "no-weights":
        model = tmp_path / "spec-only"
        model.mkdir()
        (model / "spec.yaml").write_text((trained / "spec.yaml").read_text())
    elif case == "size":
        dataset = f"folder:{_folder(tmp_path / 'big', 16, 'L')}"
    elif case == "channels":
        dataset = f"folder:{_folder(tmp_path / 'rgb', 12, 'RGB')}"
    elif case == "spec-alone":
        model = trained / "spec.yaml"
    extra = ["--against-weights", trained] if case == "against-weights-alone" else []
    code, _, error = _evaluate(capsys, model, "--dataset", dataset, *extra)
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def other_seed(tmp_path_factory, image_folder):
    """The same run with seed 1: other weights, and another validation split."""
    out = tmp_path_factory.mktemp("evaluate-other") / "run"
    assert main(["train", "v1", "--alpha", "0.25", "--schedule", "stem1", "--resolution", "10",
                 "--dataset", f"folder:{image_folder}", "--epochs", "2", "--batch-size", "16",
                 "--seed", "1", "--out", str(out)]) == 0
    return out


def test_against_pairs_two_models_on_the_same_images(trained, other_seed, image_folder, capsys):
    dataset = f"folder:{image_folder}"
    code, out, _ = _evaluate(capsys, trained, "--dataset", dataset, "--against", other_seed,
                             "--json")
    result = json.loads(out)
    alone = [json.loads((run / "metrics.json").read_text())["test_accuracy"]
             for run in (trained, other_seed)]
    comparison = result["comparison"]
    assert code == 0 and [result["accuracy"], result["against"]["accuracy"]] == alone
    assert comparison["images"] == 24
    assert comparison["a_only"] - comparison["b_only"] == round(24 * (alone[0] - alone[1]))
    assert 0 < comparison["p_value"] <= 1
    code, out, _ = _evaluate(capsys, trained, "--dataset", dataset, "--against", trained,
                             "--split", "val")
    assert code == 0 and "A - B: +0.00 points" in out and "no detectable difference (p = 1)" in out


def test_against_refuses_models_whose_validation_splits_differ(trained, other_seed,
                                                               image_folder, capsys):
    code, _, error = _evaluate(capsys, trained, "--dataset", f"folder:{image_folder}",
                               "--against", other_seed, "--split", "val")
    assert code == 2 and "different validation splits" in error
    assert len(error.strip().splitlines()) == 1


def test_a_fixed_split_seed_pairs_other_seeds_on_validation(trained, image_folder, tmp_path,
                                                           capsys):
    dataset = f"folder:{image_folder}"
    out = tmp_path / "seed1-split0"
    assert main(["train", "v1", "--alpha", "0.25", "--schedule", "stem1", "--resolution", "10",
                 "--dataset", dataset, "--epochs", "2", "--batch-size", "16", "--seed", "1",
                 "--set", "split_seed=0", "--out", str(out)]) == 0
    capsys.readouterr()
    code, output, _ = _evaluate(capsys, out, "--dataset", dataset, "--against", trained,
                                "--split", "val", "--json")
    result = json.loads(output)
    metrics = json.loads((out / "metrics.json").read_text())
    assert code == 0 and result["accuracy"] == metrics["val_accuracy"][-1]
    assert result["comparison"]["images"] == result["against"]["images"]
