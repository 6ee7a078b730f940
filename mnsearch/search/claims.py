"""One training per configuration, across worker processes and machines.

Several workers share a study: `--jobs N`, two `mnsearch sweep` commands, or machines on one
PostgreSQL. A claim is a check-and-write under the study's lock (`search.locks`).

The claim itself is the trial's record, so it needs no cleanup: a trial owns a configuration
key once `config_key` is recorded on it, under the lock, with no `duplicate_of` and no
`rejected`, while it runs, completes or is stopped early. A trial that fails (or is found
stale and failed) owns nothing any more. A worker whose configuration is owned by a finished
trial answers from its record; one owned by a running trial waits for it, and takes the
configuration over if that trial fails.
"""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnsearch.search.index import StudyIndex
from mnsearch.search.locks import study_lock
from mnsearch.search.record import TrialRecord, record
from mnsearch.search.storage import HEARTBEAT_SECONDS, beat, is_stale, recover_stale_trials

MAX_POLL_SECONDS = 5.0
_OWNER_STATES = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.RUNNING: 2}


def claim(study: optuna.Study, trial: optuna.Trial, key: str,
          index: StudyIndex) -> FrozenTrial | None:
    """The trial owning `key`; None after making `trial` its owner (it is to train it).

    The index is refreshed under the lock, so it holds every claim made before this one.
    """
    with study_lock(study):
        index.refresh()
        owner = find_owner(index.with_key(key), key, trial.number)
        if owner is None:
            record(trial, config_key=key)
    return owner


def find_owner(trials: list[FrozenTrial], key: str, number: int) -> FrozenTrial | None:
    """The best answer for `key` among the other trials: complete, stopped early, running."""
    owners = [trial for trial in trials if trial.number != number and _owns(trial, key)]
    return min(owners, key=lambda trial: (_OWNER_STATES[trial.state], trial.number),
               default=None)


def owner_or_claim(study: optuna.Study, trial: optuna.Trial, key: str,
                   index: StudyIndex) -> FrozenTrial | None:
    """None once `trial` owns `key`; else the finished trial whose record answers it.

    A configuration running elsewhere is waited for rather than trained twice; if that trial
    fails (or is found stale), the claim is tried again and this trial may take it over.
    """
    while True:
        owner = claim(study, trial, key, index)
        if owner is None or owner.state.is_finished():
            return owner
        wait_for(study, trial, owner.number, index)


def wait_for(study: optuna.Study, trial: optuna.Trial, number: int, index: StudyIndex,
             poll: float = 0.5) -> None:
    """Until trial `number` finishes, or is stale and failed; `trial` keeps beating meanwhile
    (so no one takes the waiting worker for dead)."""
    beaten = time.time()
    while True:
        time.sleep(poll)
        poll = min(poll * 1.5, MAX_POLL_SECONDS)
        if time.time() - beaten >= HEARTBEAT_SECONDS:
            beat(trial)
            beaten = time.time()
        index.refresh()
        other = index.trials[number]
        if other.state.is_finished():
            return
        if is_stale(other):
            recover_stale_trials(study, index.in_states(TrialState.RUNNING))
            return


def _owns(trial: FrozenTrial, key: str) -> bool:
    return (trial.state in _OWNER_STATES and TrialRecord.field_of(trial, "config_key") == key
            and TrialRecord.field_of(trial, "duplicate_of") is None
            and TrialRecord.field_of(trial, "rejected") is None)
