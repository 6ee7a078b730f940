"""Sweeps: exact recorded costs, no retraining, rejections, kill -9 recovery, parallel workers."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from mnsearch.cli.main import main
from mnsearch.cli.sweep_display import sweep_and_write
from mnsearch.cost import cost
from mnsearch.data.load import load_dataset
from mnsearch.search.storage import open_existing_storage, open_storage
from mnsearch.search.study import SweepOptions, enqueue_grid
from mnsearch.search.worker import Worker
from mnsearch.spec.arch import spec_from_dict


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
    worker = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
    os.kill(worker, signal.SIGSTOP)  # frozen, it cannot re-queue on its parent's death
    process.kill()  # the parent first, so no one replaces the worker
    os.kill(worker, signal.SIGKILL)
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
    from mnsearch.search.options import max_jobs
    jobs = min(3, max_jobs()[0])  # --jobs above the cores or memory is refused
    process = _sweep_process(tmp_path, space_path, "--jobs", str(jobs))
    output, errors = process.communicate(timeout=900)
    assert process.returncode == 0, errors
    assert "locked" not in errors.lower()
    study = _study(tmp_path)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    workers = {trial.user_attrs["worker"] for trial in study.trials}
    assert len(workers) >= 2  # the work really was shared


def _trainings(study):
    """Trials that trained: `train_seconds` recorded, not answered from another's record."""
    return [trial for trial in study.trials
            if "train_seconds" in trial.user_attrs and "duplicate_of" not in trial.user_attrs]


@pytest.mark.parametrize("backend", ["journal", "postgresql"])
def test_two_sweeps_started_together_train_each_configuration_once(tmp_path, image_folder,
                                                                   backend, storage_url):
    """Two `mnsearch sweep` commands at the same instant (two machines, say): the grid is
    enqueued once between them and each configuration trained once."""
    url = storage_url(backend, str(tmp_path))
    study_name = f"toy-{os.getpid()}-{time.time_ns()}"
    space_path = _space(tmp_path, image_folder, alphas=(0.25, 0.5), rhos=(1.0, 0.75))
    processes = [subprocess.Popen(
        [sys.executable, "-m", "mnsearch", "sweep", str(space_path), "--study", study_name,
         "--storage", url, "--artifacts", str(tmp_path / "artifacts"),
         "--out", str(tmp_path / f"out{index}")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for index in range(2)]
    password = url.split("@")[0].rsplit(":", 1)[-1] if backend == "postgresql" else None
    for process in processes:
        output, errors = process.communicate(timeout=900)
        assert process.returncode == 0, errors
        assert password is None or password not in output + errors
    study = optuna.load_study(study_name=study_name, storage=open_existing_storage(url))
    trainings = _trainings(study)
    assert len(trainings) == 4, [(t.number, t.state, t.user_attrs.get("config_key"))
                                 for t in study.trials]
    assert len({trial.user_attrs["config_key"] for trial in trainings}) == 4
    assert len(study.trials) == 4  # enqueued once


def test_a_torn_last_journal_line_is_set_aside_and_its_trial_retried(tmp_path, image_folder,
                                                                     caplog):
    """A crash while the last trial's result was written: half of its line is in the journal.
    The rerun sets the half line aside, finds that trial stale and trains it once more."""
    space_path = _space(tmp_path, image_folder)
    sweep_and_write(space_path, _options(tmp_path), out=tmp_path / "out")
    journal = tmp_path / "s.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])  # the last tell: set_trial_state_values(COMPLETE)
    assert (last["op_code"], last["state"]) == (6, TrialState.COMPLETE.value), last
    journal.write_bytes(b"".join(lines[:-1]) + lines[-1][:len(lines[-1]) // 2])
    before = optuna.load_study(study_name="toy", storage=open_existing_storage(str(journal)))
    [victim] = before.get_trials(states=(TrialState.RUNNING,))  # its result was lost
    with caplog.at_level("WARNING", logger="mnsearch.search.journal"):
        again = sweep_and_write(space_path, _options(tmp_path), out=tmp_path / "out")
    assert again.complete == 4 and "last line was torn" in caplog.text
    [aside] = tmp_path.glob("s.journal.torn-*")
    assert aside.read_bytes() == lines[-1][:len(lines[-1]) // 2]
    assert all(json.loads(line) for line in journal.read_bytes().splitlines())
    study = _study(tmp_path)
    assert study.trials[victim.number].state == TrialState.FAIL
    [retry] = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert retry.state == TrialState.COMPLETE
    complete = [trial.user_attrs["config_key"] for trial in study.get_trials(
        states=(TrialState.COMPLETE,)) if "duplicate_of" not in trial.user_attrs]
    assert len(complete) == 4 and len(set(complete)) == 4  # each configuration once
    assert len(_trainings(study)) == 5  # the four, and the lost one once more


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


def _scripted_training(curves, calls):
    """A stand-in for train_and_evaluate: validation accuracy per epoch from `curves[alpha]`,
    stopping when the sweep's callback says so; each call's α is appended to `calls`."""
    from mnsearch.train.loop import TrainResult

    def scripted(spec, dataset, config, out_dir=None, resume=False, callback=None, **_):
        calls.append(spec.alpha)
        result = TrainResult()
        for epoch, accuracy in enumerate(curves[spec.alpha][:config.epochs]):
            result.val_accuracy.append(accuracy)
            result.epochs_done = epoch + 1
            if callback(epoch, result):
                result.status = "stopped"
                return result
        result.status, result.test_accuracy = "completed", result.val_accuracy[-1]
        return result

    return scripted


def test_early_stopping_stops_a_dominated_trial_at_its_rung(tmp_path, image_folder, monkeypatch):
    """Scripted curves: α 0.5 trails the cheaper α 0.25 at rung 1 and is stopped there."""
    from mnsearch.search import worker as search

    curves = {0.25: [0.5, 0.6, 0.7, 0.8], 0.5: [0.4, 0.9, 0.9, 0.9], 1.0: [0.7, 0.8, 0.9, 0.95]}
    monkeypatch.setattr(search, "train_and_evaluate", _scripted_training(curves, []))
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


def test_rerunning_a_sweep_with_stopped_trials_trains_nothing(tmp_path, image_folder,
                                                             monkeypatch):
    """A stopped configuration is answered from the record, like a completed one."""
    from mnsearch.search import worker as search
    from mnsearch.search.space import load_space

    calls = []
    monkeypatch.setattr(search, "train_and_evaluate",
                        _scripted_training({0.25: [0.6, 0.7], 0.5: [0.4, 0.9]}, calls))
    space = load_space(_space(tmp_path, image_folder, alphas=(0.25, 0.5), rhos=(1.0,)))
    options = _options(tmp_path, epochs=2, min_dominating=1)
    first = Worker(space, options, load_dataset(space.dataset))
    enqueue_grid(first.study, space, madds_of=lambda params: params["alpha"])
    first.run()
    states = sorted(trial.state.name for trial in first.study.trials)
    assert calls == [0.25, 0.5] and states == ["COMPLETE", "PRUNED"]
    again = Worker(space, options, load_dataset(space.dataset))  # the rerun of the command
    enqueue_grid(again.study, space, madds_of=lambda params: params["alpha"])
    again.run()
    for params in space.grid():  # a sampler re-proposing both configurations
        again.study.enqueue_trial(params)
    again.run()
    assert again.trainings == 0 and calls == [0.25, 0.5]
    answered = [trial for trial in again.study.trials if "duplicate_of" in trial.user_attrs]
    assert sorted(trial.state.name for trial in answered) == ["COMPLETE", "PRUNED"]


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


# --- space parsing: typed, finite values; ranges counted before they are expanded -----------

@pytest.mark.parametrize("body, message", [
    ("constraints: {max_madds: .nan}", "'constraints.max_madds': nan must be a number > 0"),
    ("constraints: {max_params: -5}", "'constraints.max_params': -5 must be a number > 0"),
    ("constraints: {max_madds: '1e6'}", "'1e6' must be a number > 0"),
    ("dimensions: {alpha: [.nan]}", "'dimensions.alpha': nan must be a number > 0 and finite"),
    ("dimensions: {alpha: [.inf]}", "inf must be a number > 0 and finite"),
    ("dimensions: {alpha: [true]}", "True must be a number > 0"),
    ("dimensions: {rho: [abc]}", "'dimensions.rho': 'abc' must be a number > 0"),
    ("dimensions: {resolution: [32.5]}", "32.5 must be an integer from 1 to 8192 (pixels)"),
    ("dimensions: {resolution: [true]}", "True must be an integer from 1 to 8192"),
    ("dimensions: {stages: {kernel: [true]}}", "True must be an odd integer from 1 to 63"),
    ("dimensions: {stages: {se: [.inf]}}", "inf must be a ratio in [0, 1]"),
    ("dimensions: {stages: {expansion: [.nan]}}", "nan must be a number > 0 and <= 64"),
    ("dimensions: {stages: {repeats: [1000000000]}}", "must be an integer from 1 to 32"),
    ("dimensions: {stages: {width: [0]}}", "0 must be a number > 0 and <= 16"),
    ("dimensions: {stages: {'1': {kernel: [3]}, 1: {se: [0]}}}", "stage 1 is given twice"),
    ("dimensions: {stages: {'5': {kernel: [3]}}}",
     "'dimensions.stages.5': no such stage (stages 0-4 of v1 can be searched)"),
    ("dimensions: {alpha: {low: 0.25, high: 1000000, step: 0.000001}}",
     "'dimensions.alpha': the range from 0.25 to 1e+06 in steps of 1e-06 has more than 10,000"),
    ("dimensions: {alpha: {low: 0, high: 1e308, step: 1e-308}}", "more than 10,000 values"),
    ("dimensions: {alpha: {low: .nan, high: 1, step: 0.1}}", "a range needs finite numbers"),
    ("dimensions: {alpha: {low: 1, high: 2, step: true}}", "a range needs finite numbers"),
    ("recipe: {epochs: abc}", "'recipe.epochs': expected an integer, got 'abc'"),
    ("recipe: {lr: .nan}", "'recipe.lr': expected a finite number, got nan"),
    ("recipe: {epochs: 2.5}", "'recipe.epochs': expected an integer, got 2.5"),
    ("recipe: {augment: 1}", "'recipe.augment': expected true or false, got 1"),
    ("recipe: {subset: [1]}", "'recipe.subset': expected a finite number or null"),
    ("recipe: {seed: -1}", "'recipe.seed': must be from 0 to 4294967295"),
    ("recipe: {optimizer: adam}", "key 'recipe': unknown optimizer 'adam'"),
    ("recipe: {weight_decay: -0.1}", "'recipe.weight_decay': must be >= 0"),
    ("recipe: {erasing: 1.5}", "key 'recipe': erasing must be a probability in [0, 1]"),
    ("recipe: {erasing: yes}", "'recipe.erasing': expected a finite number, got True"),
    ("objectives: 5", "unknown objective 5"),
    ("objectives: [accuracy, accuracy]", "an objective is named twice"),
    ("base: [v1]", "key 'base': unknown preset ['v1']"),
    ("sampler: [grid]", "unknown sampler ['grid']"),
    ("dataset: {a: 1}", "key 'dataset': expected text"),
    ("1: x", "unknown key '1'"),
])
def test_space_values_are_typed_finite_and_bounded(tmp_path, body, message):
    from mnsearch.search.space import SpaceError, load_space
    path = tmp_path / "s.yaml"
    path.write_text(f"base: v1\n{body}\n")
    with pytest.raises(SpaceError) as error:
        load_space(path)
    assert message in str(error.value), str(error.value)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


@pytest.mark.parametrize("content, message", [
    (b"\x00\xff\xfe\x89", "not a text file"),
    (b"[" * 100_000, "nested too deeply"),
    (b"dimensions: " + b"{a: " * 50_000, "nested too deeply"),
    (b"a: [1\nb", "not valid YAML"),
])
def test_binary_and_deeply_nested_space_files_are_one_line(tmp_path, content, message):
    from mnsearch.search.space import SpaceError, load_space
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(SpaceError) as error:
        load_space(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_ranges_keep_their_end_and_never_overshoot(tmp_path):
    from mnsearch.search.space import load_space
    path = tmp_path / "s.yaml"
    path.write_text("dimensions:\n  alpha: {low: 0.1, high: 0.3, step: 0.1}\n"
                    "  rho: {low: 0.2, high: 1, step: 0.6}\n"
                    "  stages: {2: {kernel: [3, 5]}, '03': {se: [0]}}\n"
                    "constraints: {max_madds: 1e7}\nrecipe: {subset: 2000, lr: 1}\n")
    space = load_space(path)
    assert space.choices["alpha"] == [0.1, 0.2, 0.3]
    assert space.choices["rho"] == [0.2, 0.8]  # 1.4 would overshoot `high`
    assert set(space.choices) == {"alpha", "rho", "stage2_kernel", "stage3_se"}
    assert space.constraints == {"max_madds": 1e7}  # YAML 1.1 would read '1e7' as text
    assert space.recipe == {"subset": 2000, "lr": 1}


def test_a_stage_width_multiplies_that_stage_only_rounded_as_alpha_is(tmp_path):
    """`width` scales one stage's output channels on top of α (V2/V3 to multiples of 8, as
    their α is), so a search can spend parameters early and save them late; the residual
    blocks inside the stage keep equal widths and the network still builds and runs."""
    import jax.numpy as jnp

    import mnsearch
    from mnsearch.cost import cost
    from mnsearch.nn.model import eval_view
    from mnsearch.search.space import build_spec, load_space

    path = tmp_path / "widths.yaml"
    path.write_text("base: v2\ndimensions: {alpha: [0.35], stages: "
                    "{'1': {width: [1, 2]}, '6': {width: [0.5]}}}\n")
    space = load_space(path)
    assert space.choices["stage1_width"] == [1, 2]

    def spec(width: float):
        return build_spec(space, {"alpha": 0.35, "stage1_width": width, "stage6_width": 0.5},
                          in_channels=1, num_classes=10, dataset_resolution=32)

    plain = mnsearch.preset("v2", 0.35, 32, num_classes=10, in_channels=1)
    wide = spec(2)
    widths = [[block.out_channels for block in stage] for stage in wide.stages]
    published = [[block.out_channels for block in stage] for stage in plain.stages]
    assert (published[1], widths[1]) == ([8, 8], [16, 16])
    assert (published[6], widths[6]) == ([112], [56])
    assert [w for i, w in enumerate(widths) if i not in (1, 6)] == \
        [w for i, w in enumerate(published) if i not in (1, 6)]
    assert cost(wide).params > cost(spec(1)).params
    model = eval_view(mnsearch.build(wide))
    assert model(jnp.zeros((2, 32, 32, 1))).shape == (2, 10)
