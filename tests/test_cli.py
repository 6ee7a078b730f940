"""`mnsearch cost`: JSON fields, tables, spec files, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from mnsearch.cli.main import main
from mnsearch.nn import native
from mnsearch.spec.families import preset
from mnsearch.spec.io import load_spec, save_spec


def _json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_cost_json_has_integer_fields(capsys):
    result = _json(capsys, "cost", "v1", "--alpha", "0.25", "--resolution", "224",
                   "--classes", "1000", "--json")
    assert round(result["madds"] / 1e6) == 41
    assert all(isinstance(result[key], int) for key in ("madds", "params", "params_keras"))


def test_cost_grid_lists_every_combination(capsys):
    rows = _json(capsys, "cost", "v1", "--alpha", "1,0.5", "--resolution", "224,128", "--json")
    assert [(row["alpha"], row["resolution"]) for row in rows] == \
        [(1.0, 224), (1.0, 128), (0.5, 224), (0.5, 128)]


def test_cost_table_and_layers_are_readable(capsys):
    assert main(["cost", "v3-small", "--layers", "--resolution", "96"]) == 0
    output = capsys.readouterr().out
    assert "stage1.block0.expand" in output and "Mult-Adds" in output


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_spec_file_round_trip_gives_the_same_cost(tmp_path, capsys, suffix):
    spec = preset("v3-large", 0.75, 160, num_classes=10, in_channels=1)
    path = tmp_path / f"spec{suffix}"
    save_spec(spec, path)
    assert load_spec(path) == spec
    from_file = _json(capsys, "cost", str(path), "--json")
    from_preset = _json(capsys, "cost", "v3-large", "--alpha", "0.75", "--resolution", "160",
                        "--classes", "10", "--in-channels", "1", "--json")
    assert from_file == from_preset


def _error(capsys, *argv):
    assert main(list(argv)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    return error


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys):
    assert "unknown architecture 'v9'" in _error(capsys, "cost", "v9")
    assert "alpha" in _error(capsys, "cost", "v1", "--alpha", "0")
    assert "alpha" in _error(capsys, "cost", "v1", "--alpha", "-0.5")
    assert ">= 17" in _error(capsys, "cost", "v2", "--resolution", "12")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfamily: v2\nresolution: 32\nstem: cn_k3_s2_c16\n"
                   "stages: [[ir_k3_s1_e6_c16_relu6, ir_k3_sX_c8]]\n")
    assert "unknown token 'sX'" in _error(capsys, "cost", str(bad))
    extra = tmp_path / "extra.yaml"
    save_spec(preset("v2", 0.5, 32), extra)
    extra.write_text(extra.read_text() + "colour: blue\n")
    message = _error(capsys, "cost", str(extra))
    assert "extra.yaml: unknown field 'colour'" in message and "allowed:" in message
    assert "does not exist" in _error(capsys, "cost", str(tmp_path / "missing.yaml"))
    assert "presets only" in _error(capsys, "cost", str(extra), "--alpha", "0.5")


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "mnsearch", "cost", "v1", "--alpha", "1,2x"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "comma-separated list" in result.stderr


@pytest.mark.parametrize("mode", ["train", "infer"])
def test_bench_json_reports_images_per_second(capsys, mode):
    result = _json(capsys, "bench", "v1", "--alpha", "0.25", "--resolution", "16",
                   "--in-channels", "1", "--classes", "4", "--schedule", "stem1",
                   "--batch-size", "8", "--steps", "2", "--mode", mode, "--json")
    assert isinstance(result["images_per_second"], float) and result["images_per_second"] > 0
    assert result["mode"] == mode and result["depthwise"] == "native"


@pytest.mark.parametrize("choice, message", [
    ("bogus", "MNSEARCH_DEPTHWISE='bogus' is not one of auto, native, shifted, lax"),
    ("native", "MNSEARCH_DEPTHWISE=native: compiling "),
])
def test_bad_kernel_choice_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys, choice,
                                                  message):
    """A bad MNSEARCH_DEPTHWISE, or `native` where the kernels cannot be compiled."""
    monkeypatch.setenv("MNSEARCH_DEPTHWISE", choice)
    monkeypatch.setattr(native, "_register", lambda: "compiling mnsearch/nn/csrc with false "
                                                      "failed (exit 1): no message")
    assert main(["bench", "v1", "--alpha", "0.25", "--resolution", "32", "--in-channels", "1",
                 "--classes", "2", "--batch-size", "2", "--steps", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mnsearch bench: error: ") and message in error
    assert "\n" not in error
