"""The incremental study index against a full re-read, after every change of random histories.

A writer (its own storage object, as another worker would be) makes trials, enqueues them,
records attributes and rungs, and finishes them in random orders; a reader's `StudyIndex` is
refreshed at random points and must then agree with `study.get_trials()` on everything a worker
asks: the trials, the state counts, the owners of a configuration, the configurations finished,
the dominance counts at each rung, the Pareto front, the running trials.
"""

from __future__ import annotations

import uuid
from collections import Counter

import numpy as np
import optuna
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from mnsearch.pareto import pareto_mask
from mnsearch.search.early_stopping import dominating_count
from mnsearch.search.index import StudyIndex
from mnsearch.search.record import TrialRecord
from mnsearch.search.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
DIRECTIONS = ["maximize", "minimize"]
KEYS = ["a", "b", "c"]

operation = st.one_of(
    st.tuples(st.just("ask")),
    st.tuples(st.just("enqueue")),
    st.tuples(st.just("key"), st.integers(0, 30), st.sampled_from(KEYS)),
    st.tuples(st.just("duplicate"), st.integers(0, 30)),
    st.tuples(st.just("rung"), st.integers(0, 30), st.sampled_from([1, 2]),
              st.floats(0.1, 0.9)),
    st.tuples(st.just("cost"), st.integers(0, 30), st.sampled_from([1e6, 2e6, 3e6])),
    st.tuples(st.just("complete"), st.integers(0, 30), st.floats(0.1, 0.9),
              st.sampled_from([1e6, 2e6, 3e6])),
    st.tuples(st.just("prune"), st.integers(0, 30)),
    st.tuples(st.just("fail"), st.integers(0, 30)),
    st.tuples(st.just("refresh")),
)


def _apply(writer: optuna.Study, step: tuple, live: dict[int, optuna.Trial]) -> None:
    """One operation of the writer; operations on a trial that cannot take them are skipped."""
    name = step[0]
    if name == "ask":
        trial = writer.ask()
        live[trial.number] = trial
        trial.set_user_attr("madds", float(1e6 * (1 + trial.number % 3)))
        return
    if name == "enqueue":
        writer.enqueue_trial({}, user_attrs={"madds": 2e6})
        return
    if name in ("refresh",):
        return
    running = sorted(live)
    if not running:
        return
    trial = live[running[step[1] % len(running)]]
    if name == "key":
        trial.set_user_attr("config_key", step[2])
    elif name == "duplicate":
        trial.set_user_attr("duplicate_of", 0)
    elif name == "rung":
        trial.set_user_attr(f"rung_{step[2]}", step[3])
    elif name == "cost":
        trial.set_user_attr("madds", step[2])
    else:
        del live[trial.number]
        if name == "complete":
            writer.tell(trial, [step[2], step[3]])
        else:
            writer.tell(trial, state=TrialState.PRUNED if name == "prune" else TrialState.FAIL)


def _check(index: StudyIndex, reader: optuna.Study) -> None:
    trials = reader.get_trials(deepcopy=False)
    assert sorted(index.trials) == [trial.number for trial in trials]
    for trial in trials:
        seen = index.trials[trial.number]
        assert (seen.state, seen.user_attrs, seen.values) == \
            (trial.state, trial.user_attrs, trial.values)
    assert +index.counts == Counter(trial.state for trial in trials)
    for key in KEYS:
        assert [t.number for t in index.with_key(key)] == \
            [t.number for t in trials if TrialRecord.field_of(t, "config_key") == key]
    assert index.finished_keys == len({
        TrialRecord.field_of(t, "config_key") for t in trials
        if t.state.is_finished() and t.state != TrialState.FAIL
        and TrialRecord.field_of(t, "config_key")})
    assert [t.number for t in index.in_states(TrialState.RUNNING, TrialState.WAITING)] == \
        [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for epoch in (1, 2):
        for accuracy in (0.2, 0.5, 0.8):
            for madds in (1e6, 2e6, 3e6):
                others = [(t.user_attrs[f"rung_{epoch}"], {"madds": t.user_attrs["madds"]})
                          for t in trials if f"rung_{epoch}" in t.user_attrs and t.number != 0]
                assert index.rung(epoch).dominating(accuracy, [madds], 0) == \
                    dominating_count(accuracy, {"madds": madds}, others)
    complete = [t for t in trials if t.state == TrialState.COMPLETE
                and TrialRecord.field_of(t, "duplicate_of") is None]
    expected = ({t.number for t, keep in zip(complete, pareto_mask(
        np.array([t.values for t in complete]), DIRECTIONS), strict=True) if keep}
        if complete else set())
    assert set(index.front()) == expected


@pytest.mark.parametrize("kind", ["journal", "sqlite", "postgresql"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operation, min_size=1, max_size=40))
@example(steps=[("ask",), ("key", 0, "a"), ("refresh",), ("key", 0, "b")])  # a key rewritten
@example(steps=[("ask",), ("ask",), ("ask",), ("rung", 8, 1, 0.75), ("refresh",),
                ("rung", 8, 1, 0.5)])  # a rung rewritten after a refresh saw it (found in CI)
@example(steps=[("ask",), ("ask",), ("rung", 1, 1, 0.5), ("refresh",), ("cost", 1, 3e6)])  # a cost
def test_the_index_agrees_with_a_full_reread_after_every_change(kind, steps, tmp_path_factory,
                                                                storage_url):
    folder = str(tmp_path_factory.mktemp(kind))
    url = storage_url(kind, folder)
    name = f"index-{uuid.uuid4().hex[:12]}"  # a database outlives the test session
    writer = optuna.create_study(study_name=name, storage=open_storage(url),
                                 directions=DIRECTIONS)
    reader = optuna.load_study(study_name=name, storage=open_storage(url))
    index, live = StudyIndex(reader, ["madds"]), {}
    try:
        for step in steps:
            _apply(writer, step, live)
            if step[0] == "refresh":
                index.refresh()
                _check(index, reader)
        index.refresh()
        _check(index, reader)
    finally:  # a database has few connections: each example gives its two back
        for study in (writer, reader):
            engine = getattr(getattr(study._storage, "_backend", study._storage), "engine", None)
            if engine is not None:
                engine.dispose()


def test_a_refresh_reads_only_new_and_unfinished_trials(tmp_path):
    """After the first read, a refresh asks the storage for new trials and for the unfinished
    ones only: its cost does not grow with the finished trials of the study."""
    storage = open_storage(str(tmp_path / "reads.journal"))
    study = optuna.create_study(study_name="reads", storage=storage, directions=DIRECTIONS)
    for number in range(200):
        trial = study.ask()
        study.tell(trial, [0.5, float(number + 1)])
    running = study.ask()
    index = StudyIndex(study, ["madds"])
    index.refresh()
    original = storage.get_trial

    def reads_of_a_refresh() -> int:
        calls = []
        storage.get_trial = lambda trial_id: calls.append(trial_id) or original(trial_id)
        index.refresh()
        storage.get_trial = original
        return len(calls)

    assert reads_of_a_refresh() == 1  # the running trial, read again; no new one
    study.tell(running, [0.9, 1.0])
    study.ask()
    assert reads_of_a_refresh() == 2  # the one that finished, and the new one
    assert set(index.front()) == {running.number}


def test_the_front_of_a_large_first_read_and_of_later_ones_equals_pareto_mask(tmp_path):
    """The first read takes the whole study at once (one `pareto_mask`), later ones add trials
    one by one; both agree with `pareto_mask` over every complete trial, ties included."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(study_name="front", directions=DIRECTIONS,
                                storage=open_storage(str(tmp_path / "front.journal")))

    def add(count: int) -> None:
        for _ in range(count):
            study.tell(study.ask(), [float(rng.choice([0.5, 0.6, 0.7, 0.8])),
                                     float(rng.choice([1.0, 2.0, 3.0]))])

    def expected() -> set[int]:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        mask = pareto_mask(np.array([t.values for t in complete]), DIRECTIONS)
        return {t.number for t, keep in zip(complete, mask, strict=True) if keep}

    add(150)
    index = StudyIndex(study, ["madds"])
    index.refresh()
    assert set(index.front()) == expected()
    for _ in range(5):
        add(3)
        index.refresh()
        assert set(index.front()) == expected()
