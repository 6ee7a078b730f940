"""Sweeps: exact recorded costs, no retraining, rejections, kill -9 recovery, parallel workers."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from PIL import Image

from mnsearch.cli.main import main
from mnsearch.cli.sweep_display import sweep_and_write
from mnsearch.cost import cost
from mnsearch.data.load import load_dataset
from mnsearch.search.storage import open_storage
from mnsearch.search.worker import SweepOptions, Worker, enqueue_grid
from mnsearch.spec.arch import spec_from_dict


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Four classes of 12x12 grayscale squares, 30 images each: a dataset that trains in seconds."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for label in range(4):
        (root / f"class{label}").mkdir()
        for index in range(30):
            image = rng.integers(0, 60, (12, 12), dtype=np.uint8)
            row, column = divmod(label, 2)
            image[row * 6:(row + 1) * 6, column * 6:(column + 1) * 6] += 150
            Image.fromarray(image).save(root / f"class{label}" / f"{index}.png")
    return root


def _space(tmp_path, folder, alphas=(0.25, 0.5), rhos=(1.0, 0.75), extra=""):
    path = tmp_path / "space.yaml"
    path.write_text(
        "name: toy\nbase: v1\n"
        f"dataset: folder:{folder}\n"
        "recipe: {epochs: 1, batch_size: 16, optimizer: adamw, lr: 0.003}\n"
        f"dimensions:\n  alpha: {list(alphas)}\n  rho: {list(rhos)}\n"
        "  stride_schedule: [stem1]\n"
        "objectives: [accuracy, madds]\nsampler: grid\n" + extra)
    return path


def _study(tmp_path, name="toy"):
    return optuna.load_study(study_name=name, storage=open_storage(str(tmp_path / "s.journal")))


def _options(tmp_path, **changes):
    values = {"study_name": "toy", "storage": str(tmp_path / "s.journal"),
              "artifacts": str(tmp_path / "artifacts"), **changes}
    return SweepOptions(**values)


def test_four_trial_sweep_records_exact_costs(tmp_path, image_folder):
    final = sweep_and_write(_space(tmp_path, image_folder), _options(tmp_path),
                            out=tmp_path / "out")
    assert final.complete == 4 and final.failed == 0
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    assert 1 <= len(pareto) <= 4 and (tmp_path / "out" / "pareto.html").stat().st_size > 1000
    trials = _study(tmp_path).get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4
    for trial in trials:
        spec = spec_from_dict(trial.user_attrs["spec"])
        assert trial.user_attrs["madds"] == cost(spec).madds == trial.values[1]
        assert trial.user_attrs["params"] == cost(spec).params
        assert 0.0 <= trial.values[0] <= 1.0 and trial.user_attrs["test_accuracy"] is not None
    # Only Pareto-front trials keep a checkpoint (for export).
    kept = {path.name for path in (tmp_path / "artifacts" / "toy").iterdir()}
    assert kept and kept <= {f"trial-{trial.number}" for trial in trials}
    # Rerunning the finished grid trains nothing more.
    again = sweep_and_write(_space(tmp_path, image_folder), _options(tmp_path),
                            out=tmp_path / "out")
    assert again.complete == 4 and again.trained == 4


def test_repeated_configuration_is_answered_from_the_record(tmp_path, image_folder):
    space_path = _space(tmp_path, image_folder, alphas=(0.25,), rhos=(1.0, 0.75))
    from mnsearch.search.space import load_space
    space = load_space(space_path)
    worker = Worker(space, _options(tmp_path), load_dataset(space.dataset))
    enqueue_grid(worker.study, space)
    for params in space.grid():  # a sampler re-proposing both configurations
        worker.study.enqueue_trial(params)
    worker.run()
    trials = worker.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 4 and worker.trainings == 2
    duplicates = [trial for trial in trials if "duplicate_of" in trial.user_attrs]
    assert len(duplicates) == 2
    for trial in duplicates:
        original = worker.study.trials[trial.user_attrs["duplicate_of"]]
        assert trial.values == original.values


def test_constraint_violations_are_rejected_without_training(tmp_path, image_folder):
    space_path = _space(tmp_path, image_folder, alphas=(0.25, 1.0), rhos=(1.0,),
                        extra="constraints: {max_madds: 1000000}\n")
    from mnsearch.search.space import load_space
    space = load_space(space_path)
    worker = Worker(space, _options(tmp_path), load_dataset(space.dataset))
    enqueue_grid(worker.study, space)
    worker.run()
    rejected = worker.study.get_trials(states=(TrialState.PRUNED,))
    assert worker.trainings == 1 and len(rejected) == 1
    assert "madds" in rejected[0].user_attrs["rejected"]


def _sweep_process(tmp_path, space_path, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "mnsearch", "sweep", str(space_path), "--study", "toy",
         "--storage", str(tmp_path / "s.journal"), "--artifacts", str(tmp_path / "artifacts"),
         "--out", str(tmp_path / "out"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _running_trial(tmp_path):
    """Wait for a trial with a recorded worker to run; returns it."""
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(0.5)
        if not (tmp_path / "s.journal").exists():
            continue
        running = _study(tmp_path).get_trials(states=(TrialState.RUNNING,))
        if running and "worker" in running[0].user_attrs:
            return running[0]
    raise AssertionError("no trial started")


def _completes_each_once(tmp_path, victim):
    study = _study(tmp_path)
    assert study.trials[victim.number].state == TrialState.FAIL
    keys = [trial.user_attrs["config_key"] for trial in study.get_trials(
        states=(TrialState.COMPLETE,))]
    assert len(keys) == 3 and len(set(keys)) == 3


def test_kill_9_of_the_whole_sweep_then_rerun_completes_every_trial_once(tmp_path,
                                                                          image_folder):
    space_path = _space(tmp_path, image_folder, alphas=(0.25, 0.5, 0.75), rhos=(1.0,))
    process = _sweep_process(tmp_path, space_path)
    victim = _running_trial(tmp_path)
    process.kill()  # the parent first, so no one replaces the worker
    os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    process.communicate(timeout=120)
    assert _study(tmp_path).trials[victim.number].state == TrialState.RUNNING  # left hanging
    rerun = _sweep_process(tmp_path, space_path)
    output, errors = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, errors
    assert "re-queued" in " ".join(output.split())
    _completes_each_once(tmp_path, victim)


def test_a_killed_worker_is_replaced_and_its_trial_retried(tmp_path, image_folder):
    space_path = _space(tmp_path, image_folder, alphas=(0.25, 0.5, 0.75), rhos=(1.0,))
    process = _sweep_process(tmp_path, space_path)
    victim = _running_trial(tmp_path)
    os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    output, errors = process.communicate(timeout=600)
    assert process.returncode == 0, errors
    assert "worker 1 was killed by signal 9: started another" in " ".join(output.split())
    _completes_each_once(tmp_path, victim)


def test_three_local_processes_share_one_study_without_lock_errors(tmp_path, image_folder):
    space_path = _space(tmp_path, image_folder, alphas=(0.25, 0.5), rhos=(1.0, 0.75))
    process = _sweep_process(tmp_path, space_path, "--jobs", "3")
    output, errors = process.communicate(timeout=900)
    assert process.returncode == 0, errors
    assert "locked" not in errors.lower()
    study = _study(tmp_path)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    workers = {trial.user_attrs["worker"] for trial in study.trials}
    assert len(workers) >= 2  # the work really was shared


@pytest.mark.skipif("MNSEARCH_TEST_POSTGRES" not in os.environ,
                    reason="set MNSEARCH_TEST_POSTGRES=postgresql://… (.ci/run starts a server)")
def test_two_workers_on_postgresql(tmp_path, image_folder):
    url = os.environ["MNSEARCH_TEST_POSTGRES"]
    study_name = f"toy-{os.getpid()}-{time.time_ns()}"
    space_path = _space(tmp_path, image_folder, alphas=(0.25, 0.5), rhos=(1.0, 0.75))
    command = [sys.executable, "-m", "mnsearch", "sweep", str(space_path), "--study",
               study_name, "--storage", url, "--artifacts", str(tmp_path / "artifacts"),
               "--out", str(tmp_path / "out")]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    for process in processes:
        output, errors = process.communicate(timeout=900)
        assert process.returncode == 0, errors
        password = url.split("@")[0].rsplit(":", 1)[-1]
        assert password not in output + errors
    study = optuna.load_study(study_name=study_name, storage=url)
    keys = [t.user_attrs["config_key"] for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(set(keys)) == 4


@pytest.mark.parametrize("body, message", [
    ("dimensions: {alpah: [1.0]}", "unknown key 'dimensions.alpah'"),
    ("dimensions: {alpha: [0.0]}", "must be a number > 0"),
    ("dimensions: {alpha: []}", "the choice list is empty"),
    ("dimensions: {block: [v4]}", "unknown value 'v4' (allowed: v1, v2, v3"),
    ("dimensions: {alpha: [1.0]}\nconstraints: {max_madds: 10}", "no configuration meets"),
    ("sampler: bayes", "unknown sampler 'bayes'"),
    ("colour: blue", "unknown key 'colour'"),
    ("sampler: grid\ndimensions: {alpha: [%s], rho: [%s]}" % (  # noqa: UP031
        ", ".join(f"{0.1 + 0.01 * i:.2f}" for i in range(400)),
        ", ".join(f"{0.4 + 0.002 * i:.3f}" for i in range(300))), "120,000 configurations"),
])
def test_bad_space_files_give_one_line_and_exit_2(tmp_path, capsys, image_folder, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"base: v1\ndataset: folder:{image_folder}\n{body}\n")
    assert main(["sweep", str(path), "--storage", str(tmp_path / "s.journal")]) == 2
    error = capsys.readouterr().err
    assert message in error and "bad.yaml" in error and error.count("\n") == 1


def test_nonpositive_counts_are_usage_errors(tmp_path, capsys, image_folder):
    for flag in ("--jobs", "--trials", "--epochs"):
        with pytest.raises(SystemExit) as exit_info:
            main(["sweep", str(_space(tmp_path, image_folder)), flag, "0"])
        assert exit_info.value.code == 2
        assert f"argument {flag}: must be >= 1, got 0" in capsys.readouterr().err


def test_storage_passwords_are_masked():
    from mnsearch.search.storage import StorageError, mask_password
    assert mask_password("postgresql://bob:hunter2@db/x") == "postgresql://bob:***@db/x"
    with pytest.raises(StorageError) as error:
        open_storage("postgresql://bob:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(error.value)
    json.dumps(str(error.value))


def test_early_stopping_stops_a_dominated_trial_at_its_rung(tmp_path, image_folder, monkeypatch):
    """Scripted curves: α 0.5 trails the cheaper α 0.25 at rung 1 and is stopped there."""
    from mnsearch.search import worker as search
    from mnsearch.train.loop import TrainResult

    curves = {0.25: [0.5, 0.6, 0.7, 0.8], 0.5: [0.4, 0.9, 0.9, 0.9], 1.0: [0.7, 0.8, 0.9, 0.95]}

    def scripted(spec, dataset, config, out_dir=None, resume=False, callback=None, **_):
        result = TrainResult()
        for epoch, accuracy in enumerate(curves[spec.alpha][:config.epochs]):
            result.val_accuracy.append(accuracy)
            result.epochs_done = epoch + 1
            if callback(epoch, result):
                result.status = "stopped"
                return result
        result.status, result.test_accuracy = "completed", result.val_accuracy[-1]
        return result

    monkeypatch.setattr(search, "train_and_evaluate", scripted)
    from mnsearch.search.space import load_space
    space = load_space(_space(tmp_path, image_folder, alphas=(0.25, 0.5, 1.0), rhos=(1.0,)))
    worker = Worker(space, _options(tmp_path, epochs=4, min_dominating=1),
                    load_dataset(space.dataset))
    enqueue_grid(worker.study, space, madds_of=lambda params: params["alpha"])
    worker.run()
    trials = {trial.user_attrs["alpha"]: trial for trial in worker.study.trials}
    stopped = trials[0.5]
    assert stopped.state == TrialState.PRUNED and stopped.user_attrs["epochs_done"] == 1
    assert stopped.user_attrs["rung_1"] == 0.4 and "rung_2" not in stopped.user_attrs
    # The dearer α 1.0 beats α 0.25 at every rung; α 0.25 has nothing cheaper: both complete.
    assert trials[1.0].state == trials[0.25].state == TrialState.COMPLETE
    assert trials[1.0].user_attrs["epochs_done"] == 4


def test_live_hypervolume_counts_the_cost_of_stopped_trials(tmp_path, image_folder):
    """The live display and the report agree: a dearest trial stopped early sets the reference."""
    from optuna.trial import create_trial

    from mnsearch.results.progress import snapshot
    from mnsearch.search.space import load_space

    space = load_space(_space(tmp_path, image_folder, alphas=(0.25,), rhos=(1.0,)))
    study = optuna.create_study(directions=space.directions)
    for accuracy, madds in ((0.9, 50), (0.7, 25)):
        study.add_trial(create_trial(values=[accuracy, madds], user_attrs={
            "madds": madds, "val_accuracy": accuracy}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"madds": 200,
                                                                     "epochs_done": 1}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={
        "madds": 400, "rejected": "madds 400 > max_madds 300"}))
    progress = snapshot(study, space.objectives)
    assert (progress.complete, progress.pruned, progress.pareto_size) == (2, 2, 2)
    # losses (0.1, .25), (0.3, .125) against reference 200: 0.9 * .75 + 0.7 * .125 = 0.7625.
    assert progress.hypervolume == pytest.approx(0.7625)
