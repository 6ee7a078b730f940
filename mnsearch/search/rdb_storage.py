"""Optuna's RDB storage with a lighter bulk read of a study's trials.

Every full read of a study on an RDB — a worker's or the live display's first look at it, the
result files at the end of a sweep, the report, the dashboard — goes through Optuna's
`RDBStorage._get_trials` (`_CachedStorage` calls it for the trials it has not cached yet). That
loads ORM objects with `selectinload`: about 70 objects per trial of `v3_stages.yaml` (24
parameters, ~40 attributes), each parameter's distribution parsed from JSON twice. At 100,000
trials on PostgreSQL it took over 5 minutes and 7.4 GB in each process.

`BulkReadRDBStorage` is the same storage with `_get_trials` done as one plain SQL query per
table (trials, values, parameters, attributes, intermediate values), streamed from the server
and merged by trial id: rows are tuples, each distinct distribution text is parsed once, and
attribute values go through `orjson`. Everything else — writes, single-trial reads, the
schema — is Optuna's. Both `_CachedStorage` (which `optuna.load_study` puts in front of any
`RDBStorage`) and plain reads use it. All tables are read in one REPEATABLE READ transaction
on PostgreSQL and MySQL, a snapshot, so a trial's rows agree with its state (SQLite's driver
reads each query apart: a trial finishing meanwhile may show its values while still running,
and is read again as unfinished, as `_CachedStorage` does anyway). `_get_trials` is Optuna's
private hook, unchanged in signature since Optuna 2; `tests/search/test_rdb_storage.py`
checks that this one returns what Optuna's own returns, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Container, Iterable, Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState

_ROWS_PER_FETCH = 10_000
_MAX_LISTED_IDS = 1_000  # more unfinished ids (a grid enqueues up to 100,000) are not bound
# one by one: SQLite and PostgreSQL cap a statement's parameters (32,766 and 65,535)
_TRIALS = models.TrialModel.__table__
_LONG_DIGITS = re.compile(r"[0-9]{19}")  # see `_loads`


class BulkReadRDBStorage(RDBStorage):
    """`RDBStorage` whose bulk read of trials streams plain rows instead of ORM objects."""

    def _get_trials(self, study_id: int, states: Container[TrialState] | None,
                    included_trial_ids: set[int], trial_id_greater_than: int,
                    ) -> list[FrozenTrial]:
        """The trials of `study_id` in `states` (all if None) whose id is in
        `included_trial_ids` (among those not above `trial_id_greater_than`) or above
        `trial_id_greater_than`, in trial-id order: Optuna's contract, as its
        `_CachedStorage` uses it."""
        included = {trial_id for trial_id in included_trial_ids
                    if trial_id <= trial_id_greater_than}
        condition, wanted = _TRIALS.c.study_id == study_id, None
        if trial_id_greater_than > -1:
            newer = _TRIALS.c.trial_id > trial_id_greater_than
            if len(included) > _MAX_LISTED_IDS:  # from the oldest, the rest dropped here
                condition &= _TRIALS.c.trial_id >= min(included)
                wanted = included
            elif included:
                condition &= sa.or_(_TRIALS.c.trial_id.in_(included), newer)
            else:
                condition &= newer
        if states is not None:
            assert isinstance(states, Iterable)
            condition &= _TRIALS.c.state.in_(list(states))
        options: dict[str, Any] = {"stream_results": True, "yield_per": _ROWS_PER_FETCH}
        if self.engine.dialect.name in ("postgresql", "mysql"):
            options["isolation_level"] = "REPEATABLE READ"  # one snapshot for all tables
        with self.engine.connect().execution_options(**options) as connection, \
                connection.begin():
            studies = models.StudyModel.__table__
            if connection.execute(sa.select(studies.c.study_id)
                                  .where(studies.c.study_id == study_id)).first() is None:
                raise KeyError(models.NOT_FOUND_MSG)  # as Optuna's read of a missing study
            return _read(connection, condition, wanted, trial_id_greater_than)


def _read(connection: sa.Connection, condition: sa.ColumnElement[bool],
          wanted: set[int] | None, newer_than: int) -> list[FrozenTrial]:
    """The trials `condition` selects (of those, when `wanted` is given, only the ones in it
    or newer than `newer_than`), with their rows from every other table."""
    trials: dict[int, dict[str, Any]] = {}
    for trial_id, number, state, start, complete in connection.execute(
            sa.select(_TRIALS.c.trial_id, _TRIALS.c.number, _TRIALS.c.state,
                      _TRIALS.c.datetime_start, _TRIALS.c.datetime_complete)
            .where(condition).order_by(_TRIALS.c.trial_id)):
        if wanted is not None and trial_id not in wanted and trial_id <= newer_than:
            continue
        trials[trial_id] = {"number": number, "state": state, "datetime_start": start,
                            "datetime_complete": complete, "values": {}, "params": {},
                            "distributions": {}, "user_attrs": {}, "system_attrs": {},
                            "intermediate_values": {}}
    rows = functools.partial(_rows, connection, condition, trials)
    value_type = models.TrialValueModel
    for trial_id, objective, value, kind in rows(value_type, (
            "objective", "value", "value_type"), "trial_value_id"):
        trials[trial_id]["values"][objective] = value_type.stored_repr_to_value(value, kind)
    parsed: dict[str, BaseDistribution] = {}
    for trial_id, name, value, text in rows(models.TrialParamModel, (
            "param_name", "param_value", "distribution_json"), "param_id"):
        distribution = parsed.get(text) or parsed.setdefault(text, json_to_distribution(text))
        trials[trial_id]["params"][name] = distribution.to_external_repr(value)
        trials[trial_id]["distributions"][name] = distribution
    for field, model in (("user_attrs", models.TrialUserAttributeModel),
                         ("system_attrs", models.TrialSystemAttributeModel)):
        for trial_id, key, text in rows(model, ("key", "value_json"),
                                        model.__table__.primary_key.columns[0].name):
            trials[trial_id][field][key] = _loads(text)
    step_type = models.TrialIntermediateValueModel
    for trial_id, step, value, kind in rows(step_type, (
            "step", "intermediate_value", "intermediate_value_type"),
            "trial_intermediate_value_id"):
        trials[trial_id]["intermediate_values"][step] = \
            step_type.stored_repr_to_intermediate_value(value, kind)
    return [_frozen(trial_id, fields) for trial_id, fields in trials.items()]


def _rows(connection: sa.Connection, condition: sa.ColumnElement[bool], trials: Container[int],
          model: Any, columns: tuple[str, ...], order: str) -> Iterator[Sequence[Any]]:
    """(trial_id, *columns) of `model`'s rows that belong to `trials`, streamed."""
    table = model.__table__
    rows = connection.execute(
        sa.select(table.c.trial_id, *(table.c[name] for name in columns))
        .join(_TRIALS, _TRIALS.c.trial_id == table.c.trial_id)
        .where(condition).order_by(table.c.trial_id, table.c[order]))
    return (row for row in rows if row[0] in trials)


def _loads(text: str) -> Any:
    """`json.loads`, through orjson when it can. orjson refuses NaN and Infinity (which
    Python's json writes), and reads an integer beyond 64 bits as a float, silently: text with
    19 digits in a row (every such integer has them; Python writes floats with at most 17) goes
    to json."""
    if _LONG_DIGITS.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _frozen(trial_id: int, fields: dict[str, Any]) -> FrozenTrial:
    values = fields.pop("values")
    return FrozenTrial(value=None, values=[values[objective] for objective in sorted(values)]
                       if values else None, trial_id=trial_id, **fields)
