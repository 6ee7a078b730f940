"""One lock per study, held by the storage itself, for check-and-write steps that must not
interleave across workers and machines (`search.claims`, `search.study.enqueue_grid`).

Optuna's attributes are plain writes, so a check-then-write ("is this configuration taken?
no: take it") lets two workers both take it. The lock is:

- a journal file: `flock` on the journal file (the kernel drops it when the process dies);
- PostgreSQL or MySQL: `SELECT … FOR UPDATE` on the study's row of a small table of our own,
  `mnsearch_locks`, in the same database (the server drops it with the connection);
- SQLite: `flock` on `<database>.mnsearch-lock` (SQLite's own locks would block Optuna's
  writes); an in-memory storage: a lock of this process.
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
