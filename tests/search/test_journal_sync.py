"""Which journal appends are synced: those that must survive a power cut, and no others."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

import mnsearch.search.journal as journal
from mnsearch.search.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_only_studies_enqueued_trials_and_trial_ends_are_synced(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(journal.os, "fsync", lambda handle: synced.append(handle))
    storage = open_storage(str(tmp_path / "sync.journal"))

    def syncs(action) -> int:
        synced.clear()
        action()
        return len(synced)

    study = optuna.create_study(study_name="sync", storage=storage, directions=["maximize"])
    assert syncs(lambda: study.set_user_attr("objectives", ["accuracy"])) == 1
    assert syncs(lambda: study.enqueue_trial({"x": 1})) == 1
    trial = study.ask()  # pops the enqueued trial: its RUNNING state is not a trial's end
    assert syncs(lambda: trial.suggest_int("x", 0, 3)) == 0
    assert syncs(lambda: trial.set_user_attr("heartbeat", 1.0)) == 0
    assert syncs(lambda: study.tell(trial, 0.5)) == 1
    fresh = study.ask()
    assert syncs(lambda: study.tell(fresh, state=TrialState.FAIL)) == 1
    assert syncs(lambda: study.ask()) == 0  # a new running trial


def test_unsynced_appends_are_read_by_other_processes_at_once(tmp_path):
    """Flushed, not synced: another storage object (another worker) reads them at once."""
    path = str(tmp_path / "seen.journal")
    writer = optuna.create_study(study_name="seen", storage=open_storage(path))
    trial = writer.ask()
    trial.set_user_attr("epochs_done", 3)
    reader = optuna.load_study(study_name="seen", storage=open_storage(path))
    assert reader.trials[0].user_attrs == {"epochs_done": 3}
