"""One lock per study, held by the storage itself, for check-and-write steps that must not
interleave across workers and machines (`search.claims`, `search.study.enqueue_grid`).

Optuna's attributes are plain writes, so a check-then-write ("is this configuration taken?
no: take it") lets two workers both take it. The lock is:

- a journal file: `flock` on the journal file (the kernel drops it when the process dies);
- PostgreSQL or MySQL: `SELECT … FOR UPDATE` on the study's row of a small table of our own,
  `mnsearch_locks`, in the same database (the server drops it with the connection);
- SQLite: `flock` on `<database>.mnsearch-lock` (SQLite's own locks would block Optuna's
  writes); an in-memory storage: a lock of this process;
- a gRPC proxy (`grpc://`): a lock study, below.

Behind a gRPC proxy a worker reaches no file and no database, only Optuna's storage API, so
the lock is a study of its own, `mnsearch-lock:<study>`, that exists while the lock is held:
creating it is the one atomic step the API offers (a second creator gets DuplicatedStudyError
from the database's unique name), deleting it releases. Its holder records a lease (a token
and a time) on it at once and renews it every 10 s from a thread. What this costs, against
the kernel's `flock` and the server's row lock:

- nothing notices that a holder died, so a lock study whose lease nobody renewed for
  `LEASE_SECONDS` (60 s) is broken (deleted) by a waiter: a crashed worker delays the others by
  up to a minute. A study that never got its lease (its creator died in between) is broken the
  same way. Each waiter times the silence on its own monotonic clock from when it first saw
  that lease, so no clocks of different machines are compared;
- a holder stalled past the lease (SIGSTOP, a frozen VM) loses the lock without knowing it
  until it releases (a warning): the lease is the only way to hear of a dead holder;
- a waiter breaks a lock only while it holds a second lock study, `mnsearch-lock:<study>:break`,
  after reading the lease again: where the database reuses deleted study ids (SQLite), two
  waiters breaking one lock at once could otherwise delete the lock that the first just took;
  PostgreSQL and MySQL never reuse them;
- six round trips to the proxy per acquisition and release, and waiters poll (5 ms, doubling to
  0.5 s);
- lock studies are hidden from `storage.study_names` (so from every mnsearch picker and error);
  other tools (optuna-dashboard) may show one for the moment it exists.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import BaseStorage, GrpcStorageProxy, JournalStorage, RDBStorage
from optuna.study import StudyDirection

LOCK_PREFIX = "mnsearch-lock:"  # lock studies (study names cannot hold ':')
LEASE_SECONDS = 60.0
LOGGER = logging.getLogger(__name__)
_LEASE = "mnsearch_lease"  # the lock study's user attribute
_RENEWALS_PER_LEASE = 6
_FIRST_POLL_SECONDS = 0.005
_MAX_POLL_SECONDS = 0.5

_PROCESS_LOCK = threading.Lock()
_METADATA = sqlalchemy.MetaData()
_LOCKS = sqlalchemy.Table("mnsearch_locks", _METADATA,
                          sqlalchemy.Column("name", sqlalchemy.String(512), primary_key=True))
_READY: set[tuple[str, str]] = set()  # (database, study) pairs whose lock row exists


def study_lock(study: optuna.Study) -> AbstractContextManager[object]:
    """The study's lock (see the module docstring); never taken twice by one thread."""
    storage = _unwrap(study)
    if isinstance(storage, GrpcStorageProxy):
        return study_mutex(storage, study.study_name)
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


@contextmanager
def study_mutex(storage: BaseStorage, study_name: str,
                lease: float = LEASE_SECONDS) -> Iterator[None]:
    """The study's lock as a lock study, for storages reached only through Optuna's API (a
    gRPC proxy): see the module docstring. `lease`: seconds of silence before a waiter breaks
    it (shorter in tests)."""
    name = LOCK_PREFIX + study_name
    study_id, value = _acquire(storage, name, lease)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(storage, study_id, value, lease, stop),
                               name=f"renew {name}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        if not _release(storage, study_id, value):
            LOGGER.warning("the lock of study '%s' was broken while held: its holder was "
                           "silent for over %g s (a stalled process?)", study_name, lease)


@dataclass
class _Watch:
    """What a waiter saw of a lock study (its id and lease) and since when, by its own clock."""

    seen: tuple[int, Any] | None = None
    since: float = 0.0

    def expired(self, seen: tuple[int, Any], lease: float) -> bool:
        """Whether `seen` has not changed for `lease` seconds (restarts the count if it has)."""
        now = time.monotonic()
        if seen != self.seen:
            self.seen, self.since = seen, now
            return False
        return now - self.since >= lease


def _acquire(storage: BaseStorage, name: str, lease: float) -> tuple[int, dict[str, Any]]:
    """Create the lock study `name`, waiting while it exists and breaking it once stale.

    Looks before creating: a failed create is an error in PostgreSQL's log, a look is not.
    """
    watch, break_watch = _Watch(), _Watch()
    poll = _FIRST_POLL_SECONDS
    while True:
        seen = _look(storage, name)
        if seen is None:
            created = _create(storage, name)
            if created is not None:
                return created
            continue  # another worker created it first: look at theirs
        if watch.expired(seen, lease):
            _break(storage, name, seen, break_watch, lease)
        time.sleep(poll * random.uniform(0.5, 1.5))  # jitter: waiters do not poll in step
        poll = min(2 * poll, _MAX_POLL_SECONDS)


def _look(storage: BaseStorage, name: str) -> tuple[int, Any] | None:
    """The lock study's id and lease, or None when there is none."""
    try:
        study_id = storage.get_study_id_from_name(name)
        return study_id, storage.get_study_user_attrs(study_id).get(_LEASE)
    except KeyError:  # none, or deleted between the two reads
        return None


def _create(storage: BaseStorage, name: str) -> tuple[int, dict[str, Any]] | None:
    """Create the lock study and record its lease; None when it exists already."""
    try:
        study_id = storage.create_new_study([StudyDirection.MINIMIZE], study_name=name)
    except DuplicatedStudyError:
        return None
    value = {"holder": f"{socket.gethostname()}:{os.getpid()}", "token": uuid.uuid4().hex,
             "renewed": time.time()}
    try:
        storage.set_study_user_attr(study_id, _LEASE, value)
    except KeyError:  # broken already (it cannot be, within a lease): not held
        return None
    return study_id, value


def _break(storage: BaseStorage, name: str, seen: tuple[int, Any], watch: _Watch,
           lease: float) -> None:
    """Delete the stale lock study `seen`, under the break lock (see the module docstring);
    a break lock whose breaker died is itself broken after a lease."""
    guard = _create(storage, name + ":break")
    if guard is None:
        other = _look(storage, name + ":break")
        if other is not None and watch.expired(other, lease):
            _delete(storage, other[0])
        return
    try:
        if _look(storage, name) == seen and _delete(storage, seen[0]):
            holder = (seen[1] or {}).get("holder", "unknown")
            LOGGER.warning("broke the lock study '%s' of %s, silent for %g s", name, holder,
                           lease)
    finally:
        _delete(storage, guard[0])


def _renew(storage: BaseStorage, study_id: int, value: dict[str, Any], lease: float,
           stop: threading.Event) -> None:
    """Renew the lease until `stop`; a lock found broken is left to the release to report."""
    while not stop.wait(lease / _RENEWALS_PER_LEASE):
        try:
            storage.set_study_user_attr(study_id, _LEASE, {**value, "renewed": time.time()})
        except KeyError:
            return
        except Exception:  # the proxy unreachable for a moment: the next renewal may pass
            continue


def _release(storage: BaseStorage, study_id: int, value: dict[str, Any]) -> bool:
    """Delete our lock study; False when it was broken. The token is read first: where ids
    are reused (SQLite), a lock broken while held may share our id with its next holder's."""
    try:
        lease = storage.get_study_user_attrs(study_id).get(_LEASE) or {}
    except KeyError:
        return False
    return lease.get("token") == value["token"] and _delete(storage, study_id)


def _delete(storage: BaseStorage, study_id: int) -> bool:
    """Delete a lock study; False when it was gone already."""
    try:
        storage.delete_study(study_id)
    except KeyError:
        return False
    return True


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
