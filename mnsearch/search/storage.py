"""Where studies live: the embedded journal file by default, or an RDB URL shared by machines.

Default: Optuna's JournalStorage on `mnsearch.journal` in the working directory. Optuna's FAQ
warns that SQLite fails under parallel writers ("database is locked"); the journal file is an
append-only log with a file lock, made for several processes on one machine (writers use
`journal.SafeJournalFileBackend`, which never appends after a line torn by a crash). For several
machines, pass an RDB URL (`postgresql://user:password@host/db`): workers started anywhere join
the same study. Past what one database server's connections allow, workers pass
`grpc://HOST:PORT`, Optuna's gRPC proxy in front of it (`search.grpc_proxy`).

Workers run trials with ask-and-tell, which starts no Optuna heartbeat thread (only
`study.optimize` does), so mnsearch keeps its own, for every storage: each running trial
records its host, pid and a timestamp it refreshes; `recover_stale_trials` fails the trials
whose process is gone (same host) or whose heartbeat is older than the grace period, and
enqueues their parameters again, so a `kill -9` loses no work that was not already lost.

A storage URL is shown only through `mask_password`, and errors that may quote it through
`hide_secrets`.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.trial import TrialState

from mnsearch.errors import MnsearchError
from mnsearch.search.grpc_proxy import ProxyError, connect_proxy, is_proxy_url
from mnsearch.search.journal import SafeJournalFileBackend
from mnsearch.search.journal_reader import JournalReader
from mnsearch.search.locks import LOCK_PREFIX
from mnsearch.search.rdb_storage import BulkReadRDBStorage
from mnsearch.search.record import TrialRecord, record

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_STORAGE = "mnsearch.journal"
HEARTBEAT_SECONDS = 30  # how often a worker waiting for another's trial beats
GRACE_SECONDS = 300
MASK = "***"
# A query parameter carrying a secret: password=, sslpassword=… (libpq and drivers take them).
_SECRET_PARAMETER = re.compile(r"([?&][^=&?]*password[^=&]*=)([^&]*)", re.IGNORECASE)


class StorageError(MnsearchError):
    """The storage URL is malformed or the storage cannot be reached."""


def mask_password(url: str) -> str:
    """The storage as it may be shown: `postgresql://user:***@host/db`, `?password=***`.

    SQLAlchemy's own rendering when it parses the URL the way its driver will; otherwise (it
    does not parse, or a raw `@` in the password made it take part of the password for the
    host) everything between the user name and the last `@` is masked. A journal path is
    shown as it is.
    """
    if "://" not in url:
        return url
    parsed = _parse(url)
    if parsed is None:
        return _mask_by_pattern(url)
    return _SECRET_PARAMETER.sub(rf"\1{MASK}", parsed.render_as_string(hide_password=True))


def hide_secrets(text: str, url: str) -> str:
    """`text` (a driver's error message, say) with the URL masked and no secret of it left."""
    text = text.replace(url, mask_password(url))
    for secret in _secrets(url):
        text = text.replace(secret, MASK)
    return text


def _parse(url: str) -> URL | None:
    """SQLAlchemy's parse of `url`, or None when it fails or cannot be trusted."""
    from sqlalchemy.engine import make_url  # here: every command imports this module

    try:
        parsed = make_url(url)
    except Exception:  # ArgumentError, ValueError (a bad port): fall back to the pattern
        return None
    return None if parsed.host and "@" in parsed.host else parsed


def _mask_by_pattern(url: str) -> str:
    scheme, _, rest = url.partition("://")
    userinfo, at, location = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:{MASK}@{location}"
    return _SECRET_PARAMETER.sub(rf"\1{MASK}", f"{scheme}://{rest}")


def _secrets(url: str) -> list[str]:
    """Every spelling of the URL's secrets (raw and decoded), longest first."""
    if "://" not in url:
        return []
    found = {value for _, value in _SECRET_PARAMETER.findall(url)}
    userinfo, at, _ = url.partition("://")[2].rpartition("@")
    if at and ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    parsed = _parse(url)
    if parsed is not None and parsed.password:
        found.add(str(parsed.password))
    found |= {unquote(secret) for secret in found}
    return sorted((secret for secret in found if secret and secret != MASK), key=len,
                  reverse=True)


def check_storage(url: str | None = None) -> None:
    """Fail now, as one line, on a storage that cannot be written: a journal path that is a
    folder, in a missing or read-only folder, or a URL whose password holds a raw `@`.

    A sweep checks this before loading data or starting a worker; a gRPC proxy
    (`grpc://HOST:PORT`) must answer.
    """
    url = url or DEFAULT_STORAGE
    if is_proxy_url(url):
        _open_proxy(url).close()
        return
    if "://" in url:
        if _raw_at_in_password(url):
            raise StorageError(f"cannot open storage {mask_password(url)}: its password holds "
                               "a raw '@'; percent-encode it as %40")
        return
    path = Path(url.removeprefix("journal:"))
    folder = path.parent
    if path.is_dir():
        raise StorageError(f"storage '{path}' is a folder, not a journal file: pass a file "
                           f"path such as {path / DEFAULT_STORAGE}")
    if not folder.is_dir():
        raise StorageError(f"storage '{path}': its folder '{folder}' does not exist: create it "
                           "or pass another --storage")
    if not _writable_folder(folder):
        raise StorageError(f"storage '{path}': its folder '{folder}' is not writable (the "
                           "journal and its lock file are written there): pass another --storage")
    try:
        if path.exists():
            open(path, "ab").close()  # appends nothing: only asks
    except OSError as error:
        raise StorageError(f"journal file '{path}' cannot be written ({error.strerror}): pass "
                           "another --storage") from None


def _raw_at_in_password(url: str) -> bool:
    """`user:p@ss@host`: SQLAlchemy (and so the driver) would take `ss@host` for the host."""
    from sqlalchemy.engine import make_url

    try:
        host = make_url(url).host
    except Exception:  # unparsable: the driver's own error says so, masked
        return False
    return bool(host and "@" in host)


def _writable_folder(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried: permissions do not bind root, and a
    read-only file system binds everyone)."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".mnsearch-probe-")
    except OSError:
        return False
    os.close(handle)
    os.unlink(probe)
    return True


class StudyNotFoundError(MnsearchError):
    """A study name that the storage does not hold; the message lists the ones it does."""


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Names of the studies in a storage, sorted (for pickers and error messages).

    Reads the study records only: `optuna.get_all_study_summaries` copies every trial, seconds
    for a 10,000-trial study. The lock studies of a gRPC proxy (`search.locks`) are not shown.
    """
    return sorted(study.study_name for study in storage.get_all_studies()
                  if not study.study_name.startswith(LOCK_PREFIX))


def load_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """The study called `name`, or a StudyNotFoundError naming the available ones."""
    names = study_names(storage)
    if name not in names:
        available = ", ".join(names) if names else "none (run `mnsearch sweep` first)"
        raise StudyNotFoundError(f"no study '{name}' in this storage; available: {available}")
    return optuna.load_study(study_name=name, storage=storage)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study was opened on, already read: a study's neighbours (its final or
    proxy study) read through it cost no second replay of a journal (90 s at 100,000 trials).
    Optuna has no public handle on it."""
    return study._storage


def open_storage(url: str | None = None) -> optuna.storages.BaseStorage:
    """Open a storage to write: a journal file (path or `journal:PATH`, default
    mnsearch.journal; made when missing, a torn last line set aside), an RDB URL, or a gRPC
    proxy (`grpc://HOST:PORT`)."""
    url = url or DEFAULT_STORAGE
    if is_proxy_url(url):
        return _open_proxy(url)
    check_storage(url)
    if "://" in url:
        return _open_rdb(url)
    return JournalStorage(SafeJournalFileBackend(url.removeprefix("journal:")))


def open_existing_storage(url: str | None = None) -> optuna.storages.BaseStorage:
    """Open a storage to read: a journal file must already exist (readers never make one, nor
    write to it: a torn last line is skipped, as Optuna's reader does, and a write is refused).

    Any failure (a missing file, a broken journal, a driver error) is one StorageError line
    naming the storage with its password masked.
    """
    url = url or DEFAULT_STORAGE
    path = Path(url.removeprefix("journal:"))
    if "://" not in url and not path.is_file():
        raise StorageError(f"no journal file '{url}': run `mnsearch sweep` here "
                           "first or pass --storage PATH_OR_URL")
    try:
        if is_proxy_url(url):
            return _open_proxy(url)
        if "://" in url:
            check_storage(url)
            return _open_rdb(url)
        return JournalReader(path)  # a one-pass replay: see search.journal_reader
    except StorageError:
        raise
    except Exception as error:  # a broken journal, a driver error: one line
        raise StorageError(f"cannot open storage {mask_password(url)}: "
                           f"{_reason(error, url)}") from None


def _open_rdb(url: str, attempts: int = 3) -> RDBStorage:
    """RDB storage (Optuna's, with a lighter bulk read: `search.rdb_storage`), retried because
    workers started together race to create the schema (one sees "relation already exists").
    No Optuna heartbeat: ask-and-tell never records one (and Optuna warns at every ask when it
    is set); mnsearch's own serves every storage."""
    for attempt in range(attempts):
        try:
            return BulkReadRDBStorage(url)
        except Exception as error:  # SQLAlchemy raises many types; one line for the user
            if attempt + 1 < attempts and "already exists" in str(error):
                time.sleep(1.0 + attempt)
                continue
            raise StorageError(f"cannot open storage {mask_password(url)}: "
                               f"{_reason(error, url)}") from None
    raise AssertionError("unreachable")


def _open_proxy(url: str) -> optuna.storages.GrpcStorageProxy:
    """A client of the gRPC proxy at `url`, once it answers (else one StorageError line)."""
    try:
        return connect_proxy(url)
    except ProxyError as error:
        raise StorageError(str(error)) from None


def _reason(error: BaseException, url: str) -> str:
    """The first line of an error, secrets hidden before it is cut (a cut could split one)."""
    lines = hide_secrets(str(error), url).splitlines() or [type(error).__name__]
    return lines[0][:200]


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(trial: optuna.Trial) -> None:
    """Refresh the trial's heartbeat (every storage: see the module docstring)."""
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


def recover_stale_trials(study: optuna.Study,
                         running: Iterable[optuna.trial.FrozenTrial] | None = None) -> int:
    """Fail stale running trials and enqueue their parameters again; returns how many.

    `running`: the study's running trials when the caller knows them (a worker's
    `search.index.StudyIndex`), saving a read of every trial.

    Safe to run in several processes at once: failing a trial another one failed first raises
    UpdateFinishedTrialError (both storages check under their own lock), and that one is left.
    """
    recovered = 0
    if running is None:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        if trial.state != TrialState.RUNNING or not is_stale(trial):
            continue
        try:
            _fail_trial(study, trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        # A trial that died before sampling has no params yet: its enqueued ones, if any.
        params = trial.params or trial.system_attrs.get("fixed_params", {})
        study.enqueue_trial(params, user_attrs=TrialRecord(retry_of=trial.number).attributes())
        recovered += 1
    return recovered


# Optuna has no public way to fail another process's running trial
# (optuna.storages.fail_stale_trials covers Optuna's own RDB heartbeats only, which ask-and-tell
# never records): the private names are used here, and nowhere else in this module.
def _fail_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
