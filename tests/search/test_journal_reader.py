"""The one-pass journal reader equals Optuna's own replay: on random operation logs (writes
Optuna's replay ignores included: duplicate studies, writes to missing or finished trials,
incompatible parameters, a second RUNNING), read at once or as the file grows with a torn last
line, and on every journal committed under experiments/; and it refuses writes."""

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mnsearch.search.journal_reader import JournalReader, ReadOnlyStorageError
from mnsearch.search.storage import open_existing_storage

ROOT = Path(__file__).resolve().parents[2]
# name → candidate distributions with a value of each (the second of x and c is incompatible
# with the first: another class, other choices)
DISTRIBUTIONS = {
    "x": [(FloatDistribution(0.0, 1.0), 0.25), (IntDistribution(0, 4), 3),
          (FloatDistribution(0.0, 2.0), 1.5)],
    "c": [(CategoricalDistribution(["a", "b"]), 1), (CategoricalDistribution([1, 2, 3]), 2)],
    "n": [(IntDistribution(1, 9), 5)],
}
STATES = [TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
          TrialState.WAITING]


def _time(rng):
    moment = datetime(2026, 11, 30, tzinfo=UTC) + timedelta(seconds=rng.random() * 1e5)
    return moment.isoformat()


def _param(rng):
    name = rng.choice(list(DISTRIBUTIONS))
    distribution, value = rng.choice(DISTRIBUTIONS[name])
    return name, distribution_to_json(distribution), value


def _operation(rng, trials):
    """One journal line: mostly plausible, often a write Optuna's replay must ignore."""
    code = rng.choices([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [4, 1, 2, 2, 12, 20, 12, 4, 10, 4])[0]
    log = {"op_code": code, "worker_id": f"w{rng.randrange(3)}"}
    study_id, trial_id = rng.randrange(4), rng.randrange(trials + 2)
    if code == 0:
        log |= {"study_name": rng.choice("abc"), "directions": rng.choice([[1], [2], [2, 1]])}
    elif code in (1, 2, 3):
        log["study_id"] = study_id
        if code > 1:
            log["user_attr" if code == 2 else "system_attr"] = {rng.choice("kl"): rng.random()}
    elif code == 4:
        log |= {"study_id": study_id,
                "datetime_start": None if rng.random() < 0.3 else _time(rng)}
        if rng.random() < 0.3:  # a template trial (add_trial, a copied trial)
            name, text, value = _param(rng)
            state = rng.choice(STATES)
            log |= {"state": state.value, "params": {name: value},
                    "distributions": {name: text}, "user_attrs": {"u": 1},
                    "system_attrs": {"s": [1, 2]}, "intermediate_values": {"3": 0.5}}
            if state == TrialState.COMPLETE:
                log |= {"values": [rng.random()], "datetime_complete": _time(rng)}
    elif code == 5:
        name, text, value = _param(rng)
        log |= {"trial_id": trial_id, "param_name": name, "param_value_internal": value,
                "distribution": text}
    elif code == 6:
        state = rng.choice(STATES)
        log |= {"trial_id": trial_id, "state": state.value,
                "values": [rng.random()] if state == TrialState.COMPLETE else None,
                "datetime_start": _time(rng) if state == TrialState.RUNNING else None,
                "datetime_complete": _time(rng) if state.is_finished() else None}
    elif code == 7:
        log |= {"trial_id": trial_id, "step": rng.randrange(5),
                "intermediate_value": rng.random()}
    else:
        log |= {"trial_id": trial_id,
                "user_attr" if code == 8 else "system_attr": {rng.choice("pq"): rng.random()}}
    return log


def _journal(path, seed, count):
    rng, lines, trials = random.Random(seed), [], 0
    for _ in range(count):
        log = _operation(rng, trials)
        trials += log["op_code"] == 4
        lines.append(json.dumps(log, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return lines


def _snapshot(storage):
    """Every study and trial as Optuna's storage API gives them."""
    return [(study.study_name, study.directions, study.user_attrs, study.system_attrs,
             storage.get_all_trials(study._study_id, deepcopy=False))
            for study in storage.get_all_studies()]


def _optuna(path):
    return _snapshot(JournalStorage(JournalFileBackend(str(path))))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 120))
def test_random_logs_read_as_optuna_reads_them(tmp_path_factory, seed, count):
    path = tmp_path_factory.mktemp("journal") / "s.journal"
    _journal(path, seed, count)
    assert _snapshot(JournalReader(path)) == _optuna(path)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(0, 80), max_size=4))
def test_a_growing_file_with_a_torn_last_line_reads_as_optuna(tmp_path_factory, seed, cuts):
    """Lines appended after the first read (the dashboard of a running sweep), each part
    first written torn, in half."""
    path = tmp_path_factory.mktemp("journal") / "s.journal"
    lines = _journal(path, seed, 80)
    path.write_text("")
    reader, written = JournalReader(path), 0
    for cut in [*sorted(cuts), len(lines)]:
        part = "".join(line + "\n" for line in lines[written:cut])
        with path.open("a") as journal:
            journal.write(part[:len(part) // 2])  # torn: the writer is mid-line
        reader.sync()
        with path.open("a") as journal:
            journal.write(part[len(part) // 2:])
        written = max(written, cut)
        assert _snapshot(reader) == _optuna(path)


COMMITTED = sorted(path for path in (ROOT / "experiments").rglob("*.journal")
                   if path.stat().st_size < 20_000_000)


@pytest.mark.parametrize("path", COMMITTED, ids=[str(p.relative_to(ROOT)) for p in COMMITTED])
def test_committed_journals_read_as_optuna_reads_them(path):
    assert _snapshot(open_existing_storage(str(path))) == _optuna(path)


def test_a_bad_line_before_the_end_is_an_error_and_writes_are_refused(tmp_path):
    path = tmp_path / "s.journal"
    _journal(path, 0, 20)
    reader = JournalReader(path)
    with pytest.raises(ReadOnlyStorageError, match="opened to read"):
        reader.create_new_study([])
    with pytest.raises(ReadOnlyStorageError):
        reader.set_trial_user_attr(0, "k", 1)
    path.write_text(path.read_text() + "{not json\n" + '{"op_code": 1, "study_id": 0}\n')
    with pytest.raises(ValueError, match="not JSON"):
        reader.sync()
