"""The bulk read of `BulkReadRDBStorage` against Optuna's own `RDBStorage._get_trials`.

Random studies — parameters of every distribution, enqueued and running trials, attributes
with NaN, infinities and nesting, intermediate values, values with infinities, pruned and failed
trials — are written through plain Optuna, then read back by both storages with each filter
Optuna's `_CachedStorage` uses (all trials, by state, unfinished ids plus newer ones: the ids
listed in the query or, past `_MAX_LISTED_IDS`, filtered after it); the trials must be equal
field by field.
"""

from __future__ import annotations

import json
import math
import uuid

import optuna
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.trial import FrozenTrial, TrialState

from mnsearch.search import rdb_storage
from mnsearch.search.rdb_storage import BulkReadRDBStorage
from mnsearch.search.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

attribute = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.booleans(), st.none(),
    st.lists(st.floats(0, 1), max_size=3), st.dictionaries(st.text(max_size=3),
                                                             st.integers(), max_size=2))
number = st.floats(-1e6, 1e6) | st.sampled_from([math.inf, -math.inf])
operation = st.one_of(
    st.tuples(st.just("ask")),  # its parameters are sampled by Optuna (every distribution)
    st.tuples(st.just("enqueue"), st.floats(0.001, 1.0)),
    st.tuples(st.just("user"), st.integers(0, 30), st.sampled_from("abc"), attribute),
    st.tuples(st.just("system"), st.integers(0, 30), st.sampled_from("xy"), attribute),
    st.tuples(st.just("report"), st.integers(0, 30), st.integers(0, 3),
              number | st.just(math.nan)),
    st.tuples(st.just("complete"), st.integers(0, 30), number, number),
    st.tuples(st.just("prune"), st.integers(0, 30)),
    st.tuples(st.just("fail"), st.integers(0, 30)),
)


def _apply(study: optuna.Study, step: tuple, live: dict[int, optuna.Trial]) -> None:
    name = step[0]
    if name == "ask":
        trial = study.ask()
        trial.suggest_float("width", 0.001, 1.0, log=True)
        trial.suggest_int("depth", 1, 9)
        trial.suggest_categorical("block", ["v1", "v2", None, True])
        live[trial.number] = trial
        return
    if name == "enqueue":
        study.enqueue_trial({"width": step[1]}, user_attrs={"retry_of": 0})
        return
    if not live:
        return
    trial = live[sorted(live)[step[1] % len(live)]]
    if name == "user":
        trial.set_user_attr(step[2], step[3])
    elif name == "system":
        trial.storage.set_trial_system_attr(trial._trial_id, step[2], step[3])
    elif name == "report":  # Optuna's report refuses a multi-objective study; storages do not
        trial.storage.set_trial_intermediate_value(trial._trial_id, step[2], step[3])
    else:
        del live[trial.number]
        if name == "complete":
            study.tell(trial, [step[2], step[3]])
        else:
            study.tell(trial, state=TrialState.PRUNED if name == "prune" else TrialState.FAIL)


def _fields(trial: FrozenTrial) -> str:
    """A trial's fields, dictionaries sorted, as text (NaN equals NaN there)."""
    return repr({name: sorted(value.items(), key=repr) if isinstance(value, dict) else value
                 for name, value in vars(trial).items()})


def _same(bulk: list[FrozenTrial], optuna_trials: list[FrozenTrial]) -> None:
    assert [_fields(trial) for trial in bulk] == [_fields(trial) for trial in optuna_trials]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operation, min_size=1, max_size=30), cut=st.integers(0, 30))
@example(steps=[("ask",), ("user", 0, "a", -(2**63) - 6)], cut=0)  # orjson: a float, silently
def test_bulk_reads_equal_optunas_for_every_filter(kind, steps, cut, tmp_path_factory,
                                                   monkeypatch, storage_url):
    url = storage_url(kind, str(tmp_path_factory.mktemp(kind)))
    optunas, bulk = RDBStorage(url), BulkReadRDBStorage(url)
    try:
        study = optuna.create_study(study_name=f"bulk-{uuid.uuid4().hex[:12]}", storage=optunas,
                                    directions=["maximize", "minimize"])
        live: dict[int, optuna.Trial] = {}
        for step in steps:
            _apply(study, step, live)
        study_id = study._study_id
        ids = [trial._trial_id for trial in study.get_trials(deepcopy=False)]
        unfinished = {trial._trial_id for trial in study.get_trials(
            deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))}
        greater = ids[cut % len(ids)] if ids else -1
        for listed in (1_000, 1):  # unfinished ids bound one by one, or read from the oldest
            monkeypatch.setattr(rdb_storage, "_MAX_LISTED_IDS", listed)
            for arguments in [(None, set(), -1),
                              ((TrialState.COMPLETE, TrialState.RUNNING), set(), -1),
                              (None, unfinished, greater),
                              ((TrialState.WAITING,), unfinished, greater)]:
                _same(bulk._get_trials(study_id, *arguments),
                      optunas._get_trials(study_id, *arguments))
    finally:
        for storage in (optunas, bulk):
            storage.engine.dispose()


@pytest.mark.parametrize("value", [-(2**63) - 6, 2**64, -(2**70), 2**63 - 1, 1e300, math.inf,
                                   [1, {"a": 2**80}], "12345678901234567890", 0.1])
def test_attribute_text_reads_back_as_json_wrote_it(value):
    text = json.dumps(value)
    assert rdb_storage._loads(text) == json.loads(text)
    assert type(rdb_storage._loads(text)) is type(json.loads(text))


def test_a_missing_study_is_optunas_key_error(tmp_path):
    storage = BulkReadRDBStorage(f"sqlite:///{tmp_path}/missing.db")
    with pytest.raises(KeyError):
        storage._get_trials(12345, None, set(), -1)


def test_open_storage_reads_rdb_studies_in_bulk_through_optunas_cache(tmp_path):
    """`open_storage` gives the bulk reader; `optuna.load_study` puts its cache in front, whose
    incremental reads (the trials unfinished or new since the last one) stay Optuna's."""
    url = f"sqlite:///{tmp_path}/cached.db"
    storage = open_storage(url)
    assert isinstance(storage, BulkReadRDBStorage)
    writer = optuna.create_study(study_name="cached", storage=RDBStorage(url))
    running = writer.ask()
    for value in range(5):
        writer.tell(writer.ask(), float(value))
    reader = optuna.load_study(study_name="cached", storage=storage)
    assert isinstance(reader._storage, _CachedStorage)
    assert [trial.state for trial in reader.get_trials()] == \
        [TrialState.RUNNING] + [TrialState.COMPLETE] * 5
    running.set_user_attr("seen", True)
    writer.tell(running, 9.0)
    writer.tell(writer.ask(), 10.0)
    _same(reader.get_trials(), writer.get_trials())
