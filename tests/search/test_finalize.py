"""`mnsearch finalize`: a linked study of full-fidelity trials, resumable, refusing bad input."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from mnsearch.cli.main import main
from mnsearch.cli.sweep_display import sweep_and_write, write_sweep_results
from mnsearch.search.finalize import FinalizeOptions, Selection, prepare_finalize
from mnsearch.search.record import StudyRecord, TrialRecord
from mnsearch.search.storage import open_existing_storage, open_storage
from mnsearch.search.study import SweepOptions


def _proxy(tmp_path, folder, alphas=(0.25, 0.5), rhos=(1.0, 0.75)):
    """A finished 4-trial proxy sweep (1 epoch on 12 px toy images) in tmp_path/s.journal."""
    space = tmp_path / "space.yaml"
    space.write_text(
        "name: toy\nbase: v1\n"
        f"dataset: folder:{folder}\n"
        "recipe: {epochs: 1, batch_size: 16, optimizer: adamw, lr: 0.003, subset: 40}\n"
        f"dimensions:\n  alpha: {list(alphas)}\n  rho: {list(rhos)}\n"
        "  stride_schedule: [stem1]\n"
        "objectives: [accuracy, madds]\nsampler: grid\n")
    options = SweepOptions(study_name="toy", storage=str(tmp_path / "s.journal"),
                           artifacts=str(tmp_path / "artifacts"))
    sweep_and_write(space, options, out=tmp_path / "out")
    return _load(tmp_path, "toy")


def _load(tmp_path, name):
    return optuna.load_study(study_name=name,
                             storage=open_existing_storage(str(tmp_path / "s.journal")))


def _arguments(tmp_path, *selection, study="toy", epochs="2"):
    return ["finalize", "--study", study, "--storage", str(tmp_path / "s.journal"),
            "--artifacts", str(tmp_path / "artifacts"), "--out", str(tmp_path / "final-out"),
            "--epochs", epochs, *selection]


@pytest.fixture(scope="module")
def proxy_folder(tmp_path_factory, image_folder):
    """One proxy sweep shared by the module's tests (each copies its journal)."""
    folder = tmp_path_factory.mktemp("proxy")
    _proxy(folder, image_folder)
    return folder


@pytest.fixture
def proxy(tmp_path, proxy_folder):
    (tmp_path / "s.journal").write_bytes((proxy_folder / "s.journal").read_bytes())
    return _load(tmp_path, "toy")


def _trainings(study):
    return [trial for trial in study.trials
            if "train_seconds" in trial.user_attrs and "duplicate_of" not in trial.user_attrs]


def test_finalize_two_trials_makes_a_linked_study_equal_to_its_proxies(tmp_path, proxy):
    assert main(_arguments(tmp_path, "--trials", "0,2")) == 0
    final = _load(tmp_path, "toy-final")
    record = StudyRecord.of(final)
    assert record.proxy_study == "toy" and record.objectives == ("accuracy", "madds")
    assert record.recipe["epochs"] == 2 and record.recipe["subset"] is None
    complete = final.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2 and len(_trainings(final)) == 2
    for trial in complete:
        answer = TrialRecord.of(trial)
        source = TrialRecord.of(proxy.trials[answer.proxy_trial])
        assert answer.proxy_trial in (0, 2)
        assert (answer.spec, answer.madds, answer.params) == (source.spec, source.madds,
                                                              source.params)
        assert answer.recipe["epochs"] == 2 and answer.recipe["subset"] is None
        assert len(answer.curve) == 2 and answer.test_accuracy is not None
        assert os.path.isfile(answer.checkpoint)  # every final checkpoint is kept
    # Its results hold the fidelity of the 2 pairs; the proxy's report includes the final study.
    fidelity = pd.read_csv(tmp_path / "final-out" / "fidelity.csv")
    assert sorted(fidelity["proxy_trial"]) == [0, 2]
    assert "Proxy fidelity: toy → toy-final" in (tmp_path / "final-out" / "report.html").read_text()
    assert main(["report", "--study", "toy", "--storage", str(tmp_path / "s.journal"),
                 "--out", str(tmp_path / "report.html")]) == 0
    report = (tmp_path / "report.html").read_text()
    assert "Proxy fidelity: toy → toy-final" in report and "Studies compared" in report
    # The final models export and verify like a sweep's.
    assert main(["export", "--study", "toy-final", "--pareto", "--storage",
                 str(tmp_path / "s.journal"), "--out", str(tmp_path / "export"),
                 "--formats", "spec,weights,onnx,card"]) == 0
    exported = sorted(path.name for path in (tmp_path / "export").iterdir())
    assert exported and all((tmp_path / "export" / name / "model.onnx").is_file()
                            for name in exported)
    card = (tmp_path / "export" / exported[0] / "card.md").read_text()
    assert "A final model" in card and "of the sweep 'toy'" in card
    # A rerun trains nothing; a wider selection trains only what is new.
    assert main(_arguments(tmp_path, "--trials", "0,2")) == 0
    assert len(_trainings(_load(tmp_path, "toy-final"))) == 2
    assert main(_arguments(tmp_path, "--trials", "0,1,2")) == 0
    final = _load(tmp_path, "toy-final")
    assert len(_trainings(final)) == 3
    assert sorted(TrialRecord.of(t).proxy_trial for t in final.trials) == [0, 1, 2]


def test_selections_pick_the_front_and_the_top(proxy):
    front = {trial.number for trial in proxy.best_trials}
    by_accuracy = sorted(proxy.get_trials(states=(TrialState.COMPLETE,)),
                         key=lambda t: (-t.values[0], t.number))
    space, options = prepare_finalize(FinalizeOptions("toy", Selection(pareto=True),
                                                      storage=_storage(proxy)))
    assert set(space.listed) == front and options.study_name == "toy-final"
    space, _ = prepare_finalize(FinalizeOptions("toy", Selection(top=2), storage=_storage(proxy)))
    assert set(space.listed) == {trial.number for trial in by_accuracy[:2]}


def _storage(study):
    return study._storage.path


def test_kill_9_of_a_finalize_worker_then_rerun_resumes_it_and_completes_each_once(tmp_path,
                                                                                  proxy):
    """The killed trial's retry continues from the checkpoint of its last finished epoch."""
    epochs = 40  # long enough to be caught between two epochs
    command = [sys.executable, "-m", "mnsearch", *_arguments(tmp_path, "--trials", "0,1,3",
                                                             epochs=str(epochs))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = open_storage(str(tmp_path / "s.journal"))
    deadline, victim = time.time() + 240, None
    while victim is None and time.time() < deadline:
        time.sleep(0.2)
        if "toy-final" not in {study.study_name for study in storage.get_all_studies()}:
            continue
        running = optuna.load_study(study_name="toy-final", storage=storage).get_trials(
            states=(TrialState.RUNNING,))
        folder = tmp_path / "artifacts" / "toy-final" / f"trial-{running[0].number}" \
            if running else None
        if folder and "worker" in running[0].user_attrs and \
                (folder / "checkpoint.json").exists():
            victim = running[0]
    assert victim is not None, "no final trial reached its first checkpoint"
    worker = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
    os.kill(worker, signal.SIGSTOP)
    process.kill()  # the parent first, so no one replaces the worker
    os.kill(worker, signal.SIGKILL)
    process.communicate(timeout=120)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    final = _load(tmp_path, "toy-final")
    assert final.trials[victim.number].state == TrialState.FAIL
    complete = final.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(TrialRecord.of(trial).proxy_trial for trial in complete) == [0, 1, 3]
    retry = TrialRecord.of(next(trial for trial in complete
                                if TrialRecord.of(trial).retry_of == victim.number))
    assert 1 <= retry.resumed_epochs < epochs and retry.epochs_done == len(retry.curve) == epochs
    assert not (tmp_path / "artifacts" / "toy-final" / f"trial-{victim.number}").exists()


@pytest.mark.parametrize(("selection", "message"), [
    (["--study", "nope", "--pareto"], "no study 'nope' in this storage; available: toy"),
    (["--trials", "9"], "study 'toy' has no trial 9 (trials 0-3)"),
    (["--trials", "1", "--set", "colour=red"], "--set 'colour=red': expected KEY=VALUE"),
    (["--trials", "1", "--subset", "100000"], "--subset:"),
    (["--trials", "1", "--final-study", "../x"], "--final-study '../x' is not a single safe"),
    (["--trials", "1", "--final-study", "toy"], "--final-study must differ from --study"),
])
def test_bad_requests_are_one_line_and_train_nothing(tmp_path, proxy, capsys, selection,
                                                     message):
    arguments = _arguments(tmp_path, *selection)
    if "--study" in selection:  # replace the default study
        index = arguments.index("--study")
        del arguments[index:index + 2]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
    assert "toy-final" not in {study.study_name for study in
                               open_storage(str(tmp_path / "s.journal")).get_all_studies()}


def _tell_extra(proxy, state, **attributes):
    """Add a trial in `state` to the proxy study; returns its number."""
    proxy = optuna.load_study(study_name=proxy.study_name,  # writable: `_load` only reads
                              storage=open_storage(_storage(proxy)))
    trial = proxy.ask()
    for name, value in attributes.items():
        trial.set_user_attr(name, value)
    proxy.tell(trial, state=state)
    return trial.number


@pytest.mark.parametrize(("state", "attributes", "shown"), [
    (TrialState.FAIL, {"error": "NaN loss"}, "is FAIL (NaN loss)"),
    (TrialState.PRUNED, {"rejected": "madds 9 > 1"}, "is REJECTED (madds 9 > 1)"),
])
def test_failed_or_rejected_trials_are_refused(tmp_path, proxy, capsys, state, attributes,
                                               shown):
    number = _tell_extra(proxy, state, **attributes)
    assert main(_arguments(tmp_path, "--trials", f"0,{number}")) == 2
    assert f"trial {number} of study 'toy' {shown}" in capsys.readouterr().err


def test_an_empty_selection_is_refused(tmp_path, capsys):
    storage = open_storage(str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name="toy", storage=storage,
                                directions=["maximize", "minimize"])
    StudyRecord(dataset="fashion-mnist").write(study)
    assert main(_arguments(tmp_path, "--pareto")) == 2
    assert "the Pareto front selects no trial" in capsys.readouterr().err


def test_a_final_study_of_another_proxy_or_recipe_is_refused(tmp_path, proxy, capsys):
    optuna.create_study(study_name="taken", storage=open_storage(str(tmp_path / "s.journal")),
                        directions=["maximize", "minimize"])
    assert main(_arguments(tmp_path, "--trials", "1", "--final-study", "taken")) == 2
    assert "study 'taken' exists and is a sweep's study" in capsys.readouterr().err
    other = optuna.create_study(study_name="other-final", directions=["maximize", "minimize"],
                                storage=open_storage(str(tmp_path / "s.journal")))
    StudyRecord(dataset="x", proxy_study="other").write(other)
    assert main(_arguments(tmp_path, "--trials", "1", "--final-study", "other-final")) == 2
    assert "is the final study of 'other'" in capsys.readouterr().err
    assert main(_arguments(tmp_path, "--trials", "1", "--subset", "20", epochs="1")) == 0
    assert main(_arguments(tmp_path, "--trials", "1", epochs="1")) == 2
    assert "was trained with subset=20" in capsys.readouterr().err


def test_finalize_on_postgresql(tmp_path, image_folder, storage_url):
    """The sweep, then finalize, on one PostgreSQL database (as machines sharing it would)."""
    url = storage_url("postgresql", str(tmp_path))
    name = f"pg-{os.getpid()}-{time.time_ns()}"
    space = tmp_path / "space.yaml"
    space.write_text(
        f"name: toy\nbase: v1\ndataset: folder:{image_folder}\n"
        "recipe: {epochs: 1, batch_size: 16, lr: 0.003, subset: 40}\n"
        "dimensions:\n  alpha: [0.25, 0.5]\n  stride_schedule: [stem1]\n"
        "objectives: [accuracy, madds]\nsampler: grid\n")
    common = ["--storage", url, "--artifacts", str(tmp_path / "artifacts")]
    assert main(["sweep", str(space), "--study", name, *common,
                 "--out", str(tmp_path / "proxy")]) == 0
    finalize = ["finalize", "--study", name, "--top", "2", "--epochs", "1", *common,
                "--out", str(tmp_path / "final")]
    assert main(finalize) == 0 and main(finalize) == 0  # the rerun trains nothing
    final = optuna.load_study(study_name=f"{name}-final", storage=open_existing_storage(url))
    assert StudyRecord.of(final).proxy_study == name
    complete = final.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2 and len(_trainings(final)) == 2
    assert sorted(TrialRecord.of(trial).proxy_trial for trial in complete) == [0, 1]


def test_the_commands_defaults_are_the_librarys():
    """The parser writes them out (importing the library would slow every command's start)."""
    from mnsearch.cli import finalize as command
    from mnsearch.search import finalize as library

    assert (command.FINAL_SUFFIX, command.DEFAULT_EPOCHS) == (library.FINAL_SUFFIX,
                                                              library.DEFAULT_EPOCHS)


def test_results_of_a_final_study_stopped_before_any_model_finished(tmp_path, proxy):
    """A finalize interrupted in its first epochs still writes its (empty) fidelity table."""
    storage = open_storage(str(tmp_path / "s.journal"))
    final = optuna.create_study(study_name="toy-final", storage=storage,
                                directions=proxy.directions)
    replace(StudyRecord.of(proxy), proxy_study="toy").write(final)
    final.enqueue_trial(proxy.trials[0].params, user_attrs={"proxy_trial": 0})
    paths = write_sweep_results(final, tmp_path / "out", str(tmp_path / "s.journal"))
    assert pd.read_csv(paths["fidelity"]).empty
    assert "toy-final" in paths["report"].read_text()
