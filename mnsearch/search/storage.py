"""Where studies live: the embedded journal file by default, or an RDB URL shared by machines.

Default: Optuna's JournalStorage on `mnsearch.journal` in the working directory. Optuna's FAQ
warns that SQLite fails under parallel writers ("database is locked"); the journal file is an
append-only log with a file lock, made for several processes on one machine. For several
machines, pass an RDB URL (`postgresql://user:password@host/db`): workers started anywhere join
the same study, and Optuna's heartbeat fails the trials of workers that died.

A journal has no heartbeat, so mnsearch keeps its own: every running trial records its host,
pid and a timestamp it refreshes; `recover_stale_trials` fails the trials whose process is gone
(same host) or whose heartbeat is older than the grace period, and enqueues their parameters
again, so a `kill -9` loses no work that was not already lost.
"""

from __future__ import annotations

import os
import re
import socket
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mnsearch.errors import MnsearchError
from mnsearch.search.record import TrialRecord, record

DEFAULT_STORAGE = "mnsearch.journal"
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 300


class StorageError(MnsearchError):
    """The storage URL is malformed or the storage cannot be reached."""


def mask_password(url: str) -> str:
    """`postgresql://user:***@host/db`: storage URLs are printed only this way."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str | None = None) -> optuna.storages.BaseStorage:
    """A journal file (path or `journal:PATH`, default mnsearch.journal) or an RDB URL."""
    url = url or DEFAULT_STORAGE
    if "://" in url:
        return _open_rdb(url)
    path = Path(url.removeprefix("journal:"))
    if not path.parent.exists():
        raise StorageError(f"storage folder '{path.parent}' does not exist")
    return JournalStorage(JournalFileBackend(str(path)))


def open_existing_storage(url: str | None = None) -> optuna.storages.BaseStorage:
    """Open a storage to read: a journal file must already exist (readers never make one).

    Any failure (a missing file, a broken journal, a driver error) is one StorageError line
    naming the storage with its password masked.
    """
    url = url or DEFAULT_STORAGE
    if "://" not in url and not Path(url.removeprefix("journal:")).is_file():
        raise StorageError(f"no journal file '{url}': run `mnsearch sweep` here "
                           "first or pass --storage PATH_OR_URL")
    try:
        return open_storage(url)
    except StorageError:
        raise
    except Exception as error:  # a broken journal, a driver error: one line
        raise StorageError(f"cannot open storage {mask_password(url)}: "
                           f"{str(error).splitlines()[0][:200]}") from None


def _open_rdb(url: str, attempts: int = 3) -> RDBStorage:
    """RDB storage with heartbeats; retried because workers started together race to create
    the schema (one sees "relation already exists")."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.8
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
                return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS,
                                  grace_period=GRACE_SECONDS,
                                  heartbeat_stale_trial_callback=retry)
        except Exception as error:  # SQLAlchemy raises many types; one line for the user
            if attempt + 1 < attempts and "already exists" in str(error):
                time.sleep(1.0 + attempt)
                continue
            reason = str(error).splitlines()[0][:200].replace(url, mask_password(url))
            raise StorageError(f"cannot open storage {mask_password(url)}: {reason}") from None
    raise AssertionError("unreachable")


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(trial: optuna.Trial) -> None:
    """Refresh the trial's heartbeat (journal storages; RDB storages beat by themselves)."""
    record(trial, heartbeat=time.time())


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead but not yet reaped (orphans in a container without an init)
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal test above is all there is


def is_stale(trial: optuna.trial.FrozenTrial, now: float | None = None) -> bool:
    """A running trial whose worker is gone (same host) or silent for GRACE_SECONDS."""
    trial_record = TrialRecord.of(trial)
    host, _, pid = (trial_record.worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        if not _process_alive(int(pid)):
            return True
    heartbeat = trial_record.heartbeat
    now = time.time() if now is None else now
    return heartbeat is not None and now - heartbeat > GRACE_SECONDS


def recover_stale_trials(study: optuna.Study) -> int:
    """Fail stale running trials and enqueue their parameters again; returns how many."""
    if isinstance(_storage_of(study), RDBStorage):
        optuna.storages.fail_stale_trials(study)
        return 0
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_stale(trial):
            continue
        try:
            _fail_trial(study, trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        study.enqueue_trial(trial.params,
                            user_attrs=TrialRecord(retry_of=trial.number).attributes())
        recovered += 1
    return recovered


# Optuna has no public way to reach a study's storage or to fail another process's running
# trial (optuna.storages.fail_stale_trials covers RDB heartbeats only): the private names are
# used here, and nowhere else.
def _storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    return study._storage


def _fail_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
