"""`mnsearch cost`: JSON fields, tables, spec files, and one-line errors with exit status 2."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
    assert result["mode"] == mode
    assert result["depthwise"] == ("native" if native.faster_here() else "shifted")


def test_bench_of_a_spec_file_keeps_its_resolution(capsys, tmp_path):
    """A spec file's resolution stands unless --resolution changes it (it used to become 224)."""
    spec_file = tmp_path / "small.yaml"
    save_spec(preset("v1", 0.25, 16, num_classes=4, in_channels=1, stride_schedule="stem1"),
              spec_file)
    result = _json(capsys, "bench", str(spec_file), "--batch-size", "4", "--steps", "1",
                   "--json")
    assert result["resolution"] == 16
    assert _json(capsys, "bench", str(spec_file), "--resolution", "20", "--batch-size", "4",
                 "--steps", "1", "--json")["resolution"] == 20


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


# Hostile inputs: what a command will use is checked before any work, as one line and exit 2.

def _refused(capsys, *argv):
    """Exit status 2 and one line on stderr, whether argparse or a library check refused."""
    try:
        status = main(list(argv))
    except SystemExit as exit_info:
        status = exit_info.code
    error = capsys.readouterr().err
    assert status == 2, error
    assert error.count("\n") == 1 and "Traceback" not in error, error
    return error


def _writable(folder: Path) -> bool:
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody here can write in: mode 0555, or /sys for root (root ignores modes)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if _writable(folder):
        folder.chmod(0o755)
        folder = Path("/sys")
        if not folder.is_dir() or _writable(folder):
            pytest.skip("no folder this user cannot write in")
    yield folder
    if folder.is_relative_to(tmp_path):
        folder.chmod(0o755)


@pytest.fixture(scope="module")
def toy_space(tmp_path_factory):
    """A grid space over four classes of 12x12 images, 30 each (86 left for training)."""
    root = tmp_path_factory.mktemp("toy")
    for label in range(4):
        (root / f"class{label}").mkdir()
        for index in range(30):
            pixels = np.full((12, 12), 40 * label + index, dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{label}" / f"{index}.png")
    space = root / "space.yaml"
    space.write_text(f"name: toy\nbase: v1\ndataset: folder:{root}\n"
                     "recipe: {epochs: 1, batch_size: 16}\n"
                     "dimensions: {alpha: [0.25], rho: [1.0], stride_schedule: [stem1]}\n"
                     "objectives: [accuracy, madds]\nsampler: grid\n")
    return space


def _sweep_refused(capsys, tmp_path, space, *flags):
    """A refused sweep: one line, exit 2, and nothing made (no study, artifacts or results)."""
    defaults = {"--storage": str(tmp_path / "s.journal"), "--out": str(tmp_path / "out"),
                "--artifacts": str(tmp_path / "artifacts")}
    given = set(flags[::2])
    extra = [item for flag, value in defaults.items() if flag not in given
             for item in (flag, value)]
    error = _refused(capsys, "sweep", str(space), *flags, *extra)
    assert error.startswith("mnsearch sweep: error: ")
    for name in ("s.journal", "out", "artifacts"):
        assert not (tmp_path / name).exists(), name
    return error


@pytest.mark.parametrize("flags, message", [
    (("--subset", "-5"), "--subset must be a count of images (a whole number >= 1) or a "
                         "fraction in (0, 1], got -5"),
    (("--subset", "1.5"), "--subset must be a count of images"),
    (("--subset", "100000"), "--subset: subset size 100000 gives 100000 images: allowed: a "
                             "count from 4 (the number of classes) to 86"),
    (("--timeout", "-5"), "--timeout must be a number of seconds > 0, got -5.0"),
    (("--timeout", "nan"), "--timeout must be a number of seconds > 0, got nan"),
    (("--seed", "-1"), "--seed must be a whole number from 0 to 4294967295, got -1"),
    (("--study", "../../x"), "--study '../../x' is not a single safe file name (it names the "
                             "folders runs/STUDY and ARTIFACTS/STUDY): use letters, digits"),
    (("--study", "a/b"), "is not a single safe file name"),
    (("--study", ".hidden"), "not starting with '.' or '-'"),
    (("--study", "x" * 101), "--study: the study name is 101 bytes long, more than the 100 "
                             "allowed"),
    (("--jobs", "0"), "argument --jobs: must be >= 1, got 0"),
    (("--jobs", "64000"), "--jobs 64000 is more than this machine holds: "),
])
def test_bad_sweep_values_are_refused_before_any_work(tmp_path, capsys, toy_space, flags,
                                                      message):
    assert message in _sweep_refused(capsys, tmp_path, toy_space, *flags)


def test_jobs_are_capped_by_cores_and_by_memory(tmp_path, capsys, toy_space, monkeypatch):
    from mnsearch.search import options
    cores = options.available_cpus()
    error = _sweep_refused(capsys, tmp_path, toy_space, "--jobs", str(cores + 1))
    assert f"this machine has {cores} CPU core(s), so at most --jobs {cores}" in error
    monkeypatch.setattr(options, "available_cpus", lambda: 16)
    monkeypatch.setattr(options, "available_memory", lambda: 5 * 2**30)
    error = _sweep_refused(capsys, tmp_path, toy_space, "--jobs", "3")
    assert "5.0 GiB of memory is available and a worker needs about 2.0 GiB, so at most " \
           "--jobs 2" in error
    monkeypatch.setattr(options, "available_memory", lambda: 2**30)
    assert options.max_jobs()[0] == 1  # one worker is always allowed


def test_simulated_sweeps_may_run_several_workers_a_core(monkeypatch):
    """A simulated worker trains nothing (load tests of 4 workers on 2 cores); memory binds."""
    from mnsearch.search import options
    monkeypatch.setattr(options, "available_cpus", lambda: 2)
    monkeypatch.setattr(options, "available_memory", lambda: 64 * 2**30)
    assert options.max_jobs()[0] == 2
    limit, reason = options.max_jobs(simulate=True)
    assert limit == 2 * options.SIMULATED_WORKERS_PER_CORE and "--simulate allows" in reason
    options.check_jobs(4, simulate=True)
    with pytest.raises(options.OptionsError, match="at most --jobs 2"):
        options.check_jobs(4)
    monkeypatch.setattr(options, "available_memory", lambda: 5 * 2**30)
    assert options.max_jobs(simulate=True)[0] == 2  # memory: 2 workers of 2 GiB


def test_sweep_folders_must_be_writable(tmp_path, capsys, toy_space, read_only):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [
        (("--artifacts", str(read_only / "a")), f"--artifacts '{read_only / 'a'}': cannot write "
                                                f"in '{read_only}' ("),
        (("--artifacts", str(a_file)), f"--artifacts '{a_file}' is a file: give a folder"),
        (("--out", str(read_only)), f"--out '{read_only}': cannot write in '{read_only}' ("),
        (("--out", str(a_file)), f"--out '{a_file}' is a file: give a folder"),
        (("--out", str(a_file / "x")), f"--out '{a_file / 'x'}' is inside '{a_file}', a file"),
        (("--storage", str(read_only / "s.journal")), "is not writable"),  # search.storage's
        (("--storage", str(tmp_path)), "is a folder, not a journal file"),
    ]
    for flags, message in cases:
        error = _sweep_refused(capsys, tmp_path, toy_space, *flags)
        assert message in error, error
    assert {path.name for path in tmp_path.iterdir()} == {"a-file", "read-only"}


def test_writability_is_tried_and_leaves_nothing_behind(tmp_path):
    from mnsearch.search.options import check_writable_folder
    assert check_writable_folder(tmp_path / "new" / "deeper", "--out") == \
        tmp_path / "new" / "deeper"
    assert list(tmp_path.iterdir()) == []  # no probe file, no folder made


def test_report_refuses_to_overwrite_or_write_where_it_cannot(tmp_path, capsys, read_only):
    from mnsearch.search.storage import open_storage
    from mnsearch.testing.synthetic import synthetic_study
    journal = str(tmp_path / "s.journal")
    synthetic_study(open_storage(journal), "main", 5, seed=1)
    report = ["report", "--study", "main", "--storage", journal, "--out"]
    existing = tmp_path / "report.html"
    existing.write_text("mine")
    error = _refused(capsys, *report, str(existing))
    assert f"--out '{existing}' exists: pass --force to overwrite it" in error
    assert existing.read_text() == "mine"
    assert f"--out '{tmp_path}' is a folder: give a file name" in _refused(
        capsys, *report, str(tmp_path))
    assert "cannot write in" in _refused(capsys, *report, str(read_only / "r.html"))
    assert main([*report, str(existing), "--force"]) == 0
    assert existing.read_text().startswith("<!DOCTYPE html>")


def test_train_and_export_outputs_are_checked_first(tmp_path, capsys, read_only):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    # Checked before the dataset (missing here) or the study (absent) is even looked at.
    train = ["train", "v1", "--dataset", f"folder:{tmp_path / 'none'}", "--out"]
    assert f"--out '{a_file}' is a file: give a folder" in _refused(capsys, *train, str(a_file))
    assert f"--out '{read_only}': cannot write in" in _refused(capsys, *train, str(read_only))
    export = ["export", "--study", "toy", "--storage", str(tmp_path / "none.journal"),
              "--trial", "0", "--out"]
    assert f"--out '{read_only / 'x'}': cannot write in" in _refused(
        capsys, *export, str(read_only / "x"))
    assert "is inside" in _refused(capsys, *export, str(a_file / "x"))


@pytest.mark.parametrize("argv, message", [
    (["bench", "v1", "--steps", "0"], "mnsearch bench: error: argument --steps: must be >= 1, "
                                      "got 0"),
    (["bench", "v1", "--batch-size", "-2"], "argument --batch-size: must be >= 1, got -2"),
    (["latency", "v1", "--repeats", "0"], "argument --repeats: must be >= 1, got 0"),
    (["dashboard", "--port", "70000"], "mnsearch dashboard: error: argument --port: must be a "
                                       "port from 1 to 65535, got 70000"),
    (["dashboard", "--port", "0"], "must be a port from 1 to 65535, got 0"),
])
def test_out_of_range_numbers_are_one_line_usage_errors(capsys, argv, message):
    assert message in _refused(capsys, *argv)
