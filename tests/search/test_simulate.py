"""`mnsearch sweep --simulate`: the sweep machinery without training, labelled everywhere."""

import math

import optuna
import pytest
from optuna.trial import TrialState

from mnsearch.cli.main import main
from mnsearch.dashboard.callbacks import study_options, study_title
from mnsearch.search.record import StudyRecord
from mnsearch.search.simulate import simulate_training, simulated_accuracy
from mnsearch.search.storage import open_existing_storage
from mnsearch.spec.families import preset
from mnsearch.train.config import TrainConfig


def _space(tmp_path, folder):
    path = tmp_path / "space.yaml"
    path.write_text(
        f"name: sim\nbase: v1\ndataset: folder:{folder}\n"
        "recipe: {epochs: 4, batch_size: 16}\n"
        "dimensions:\n  alpha: [0.25, 0.5, 0.75, 1.0]\n  rho: [1.0, 0.75]\n"
        "  stride_schedule: [stem1]\nobjectives: [accuracy, madds]\nsampler: grid\n")
    return path


def _sweep(tmp_path, folder, *extra):
    return main(["sweep", str(_space(tmp_path, folder)), "--storage", str(tmp_path / "s.journal"),
                 "--artifacts", str(tmp_path / "artifacts"), "--out", str(tmp_path / "out"),
                 *extra])


def test_simulated_curves_follow_the_documented_function():
    spec = preset("v1", 0.5, 16, num_classes=4, in_channels=1, stride_schedule="stem1")
    config = TrainConfig(epochs=6)
    first, again = (simulate_training(spec, None, config) for _ in range(2))
    assert first.val_accuracy == again.val_accuracy and len(first.val_accuracy) == 6
    assert first.status == "completed" and first.test_accuracy is not None
    # The converged value is the cost function, within its noise (3 standard deviations).
    from mnsearch.cost import cost
    expected = simulated_accuracy(cost(spec).madds, 4, 0.0)
    assert abs(first.val_accuracy[-1] - expected) < 3 * math.hypot(0.02, 0.005)
    assert first.val_accuracy[0] < first.val_accuracy[-1]
    stopped = simulate_training(spec, None, config, callback=lambda epoch, result: epoch == 1)
    assert stopped.status == "stopped" and stopped.epochs_done == 2


def test_a_simulated_sweep_trains_nothing_and_is_labelled(tmp_path, image_folder, capsys):
    assert _sweep(tmp_path, image_folder, "--simulate") == 0
    output = capsys.readouterr().out
    assert output.startswith("SIMULATED study sim")
    assert "done 8/8 (" in output  # without a terminal, the table's counts as log lines
    storage = open_existing_storage(str(tmp_path / "s.journal"))
    study = optuna.load_study(study_name="sim", storage=storage)
    assert StudyRecord.of(study).simulated is True
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 8 and not (tmp_path / "artifacts").exists()  # no checkpoint
    assert all(len(trial.user_attrs["curve"]) == trial.user_attrs["epochs_done"]
               for trial in finished)
    assert "(SIMULATED)" in (tmp_path / "out" / "report.html").read_text()
    assert study_title(["sim"], {"sim"}) == "sim · SIMULATED"
    assert study_options(["real", "sim"], {"sim"})[1]["label"] == "sim (SIMULATED)"


@pytest.mark.parametrize(("command", "message"), [
    (["export", "--study", "sim", "--pareto", "--out", "x"], "study 'sim' is SIMULATED"),
    (["finalize", "--study", "sim", "--pareto"], "study 'sim' is SIMULATED"),
])
def test_simulated_studies_are_refused_by_export_and_finalize(tmp_path, image_folder, capsys,
                                                              command, message):
    assert _sweep(tmp_path, image_folder, "--simulate") == 0
    capsys.readouterr()
    assert main([*command, "--storage", str(tmp_path / "s.journal")]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_a_simulated_study_cannot_be_resumed_for_real(tmp_path, image_folder, capsys):
    assert _sweep(tmp_path, image_folder, "--simulate") == 0
    capsys.readouterr()
    assert _sweep(tmp_path, image_folder) == 2
    assert "is simulated (--simulate): add --simulate to resume it" in capsys.readouterr().err


def test_each_worker_and_each_resume_draws_its_own_sampler_stream(tmp_path, image_folder):
    """With one --seed, workers and resumed sweeps used to re-propose the same points."""
    from mnsearch.search.study import sampler_seed

    assert sampler_seed(0, 0, 0) == sampler_seed(0, 0, 0)  # a fresh sweep is reproducible
    seeds = {sampler_seed(0, trials, rank) for trials in (0, 10) for rank in (0, 1)}
    assert len(seeds) == 4
    assert _sweep(tmp_path, image_folder, "--simulate", "--sampler", "random",
                  "--trials", "3") == 0
    assert _sweep(tmp_path, image_folder, "--simulate", "--sampler", "random",
                  "--trials", "6") == 0
    study = optuna.load_study(study_name="sim",
                              storage=open_existing_storage(str(tmp_path / "s.journal")))
    first, resumed = ([tuple(sorted(t.params.items())) for t in study.trials[start:start + 3]]
                      for start in (0, 3))
    assert first != resumed  # the resumed sweep did not replay the first one's draws
