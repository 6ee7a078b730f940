"""One training per configuration, across worker processes and machines.

Several workers share a study: `--jobs N`, two `mnsearch sweep` commands, or machines on one
PostgreSQL. Optuna's attributes are plain writes, so a check-then-write ("is this configuration
taken? no: take it") lets two workers both take it. Here every check-and-write that must not
interleave runs under one lock per study, held by the storage itself:

- a journal file: `flock` on the journal file (the kernel drops it when the process dies);
- PostgreSQL or MySQL: `SELECT … FOR UPDATE` on the study's row of a small table of our own,
  `mnsearch_locks`, in the same database (the server drops it with the connection);
- SQLite: `flock` on `<database>.mnsearch-lock` (SQLite's own locks would block Optuna's
  writes); an in-memory storage: a lock of this process.

The claim itself is the trial's record, so it needs no cleanup: a trial owns a configuration
key once `config_key` is recorded on it, under the lock, with no `duplicate_of` and no
`rejected`, while it runs, completes or is stopped early. A trial that fails (or is found
stale and failed) owns nothing any more. A worker whose configuration is owned by a finished
trial answers from its record; one owned by a running trial waits for it, and takes the
configuration over if that trial fails.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from mnsearch.search.record import TrialRecord, record
from mnsearch.search.storage import HEARTBEAT_SECONDS, beat, is_stale, recover_stale_trials

MAX_POLL_SECONDS = 5.0
_OWNER_STATES = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.RUNNING: 2}
_PROCESS_LOCK = threading.Lock()
_METADATA = sqlalchemy.MetaData()
_LOCKS = sqlalchemy.Table("mnsearch_locks", _METADATA,
                          sqlalchemy.Column("name", sqlalchemy.String(512), primary_key=True))
_READY: set[tuple[str, str]] = set()  # (database, study) pairs whose lock row exists


def study_lock(study: optuna.Study) -> AbstractContextManager[object]:
    """The study's lock (see the module docstring); never taken twice by one thread."""
    storage = _unwrap(study)
    if isinstance(storage, JournalStorage):
        path = _journal_path(storage)
        if path is not None:
            return _file_lock(path)
    if isinstance(storage, RDBStorage):
        engine = storage.engine
        if engine.dialect.name != "sqlite":
            return _row_lock(engine, study.study_name)
        database = engine.url.database
        if database and database != ":memory:":
            return _file_lock(f"{database}.mnsearch-lock")
    return _PROCESS_LOCK


def claim(study: optuna.Study, trial: optuna.Trial, key: str) -> FrozenTrial | None:
    """The trial owning `key`; None after making `trial` its owner (it is to train it)."""
    with study_lock(study):
        owner = find_owner(study.get_trials(deepcopy=False), key, trial.number)
        if owner is None:
            record(trial, config_key=key)
    return owner


def find_owner(trials: list[FrozenTrial], key: str, number: int) -> FrozenTrial | None:
    """The best answer for `key` among the other trials: complete, stopped early, running."""
    owners = [trial for trial in trials if trial.number != number and _owns(trial, key)]
    return min(owners, key=lambda trial: (_OWNER_STATES[trial.state], trial.number),
               default=None)


def owner_or_claim(study: optuna.Study, trial: optuna.Trial, key: str) -> FrozenTrial | None:
    """None once `trial` owns `key`; else the finished trial whose record answers it.

    A configuration running elsewhere is waited for rather than trained twice; if that trial
    fails (or is found stale), the claim is tried again and this trial may take it over.
    """
    while True:
        owner = claim(study, trial, key)
        if owner is None or owner.state.is_finished():
            return owner
        wait_for(study, trial, owner.number)


def wait_for(study: optuna.Study, trial: optuna.Trial, number: int,
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
        other = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
        if other.state.is_finished():
            return
        if is_stale(other):
            recover_stale_trials(study)
            return


def _owns(trial: FrozenTrial, key: str) -> bool:
    return (trial.state in _OWNER_STATES and TrialRecord.field_of(trial, "config_key") == key
            and TrialRecord.field_of(trial, "duplicate_of") is None
            and TrialRecord.field_of(trial, "rejected") is None)


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive `flock` on `path` (made if missing), released when the block ends or the
    process dies."""
    handle = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing drops the lock


@contextmanager
def _row_lock(engine: sqlalchemy.engine.Engine, name: str) -> Iterator[None]:
    """`SELECT … FOR UPDATE` on the study's row, in a transaction held for the block."""
    _ensure_row(engine, name)
    with engine.connect() as connection, connection.begin():
        locked = connection.execute(sqlalchemy.select(_LOCKS.c.name)
                                    .where(_LOCKS.c.name == name).with_for_update()).first()
        if locked is None:  # the row was deleted by hand: no lock without it
            raise RuntimeError(f"lost the row of study '{name}' in table mnsearch_locks")
        yield


def _ensure_row(engine: sqlalchemy.engine.Engine, name: str, attempts: int = 5) -> None:
    """Create the lock table and the study's row once; workers starting together race to
    create them, and the losers (a duplicate key, "already exists") look again."""
    ready = (str(engine.url), name)  # str(url) hides the password
    if ready in _READY:
        return
    for attempt in range(attempts):
        try:
            _METADATA.create_all(engine, checkfirst=True)
            with engine.begin() as connection:
                found = connection.execute(sqlalchemy.select(_LOCKS.c.name)
                                           .where(_LOCKS.c.name == name)).first()
                if found is None:
                    connection.execute(sqlalchemy.insert(_LOCKS).values(name=name))
            break
        except sqlalchemy.exc.DBAPIError:
            if attempt + 1 == attempts:
                raise
            time.sleep(0.1 * (attempt + 1))
    _READY.add(ready)


# Optuna has no public way to reach a study's storage (nor the file behind a journal): the
# private names are used here, and nowhere else in this module.
def _unwrap(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The study's storage, out of the cache Optuna wraps around an RDBStorage."""
    storage = study._storage
    if not isinstance(storage, JournalStorage | RDBStorage):
        storage = getattr(storage, "_backend", storage)
    return storage


def _journal_path(storage: JournalStorage) -> str | None:
    backend = storage._backend
    return getattr(backend, "path", None) or getattr(backend, "_file_path", None)
