"""The journal file, safe against a torn last line.

Optuna's `JournalFileBackend` appends one JSON line per operation. A crash in the middle of an
append (power loss, a full disk, a killed machine) leaves a partial last line. Optuna's reader
skips an unterminated last line, so readers are not hurt; but the next append lands right after
the partial bytes, fusing them with a good record into one corrupt line in the middle of the
file, and from then on every read of the journal fails.

`SafeJournalFileBackend` sets such a tail aside before it can be fused: when a journal is opened
for writing, and before every append, under Optuna's own journal lock (so a tail is never
mistaken for another writer's append in progress). The torn bytes go to `<journal>.torn-<time>`
first (written and synced), and only then is the journal truncated to its last complete line:
a second crash between the two steps loses nothing, it only repeats the repair. The operation
whose line was torn is lost; a trial it would have finished stays RUNNING, is found stale
(its worker is gone) and is retried like any interrupted trial.

Appends are synced (`fsync`) when they make something that must survive a power cut: a study
or its attributes, an enqueued trial, a trial's end (its state and values). Every other append
— parameters, attributes and heartbeats of a running trial, ~40 a trial — is only flushed to
the kernel, so other processes see it at once and a killed process loses nothing; after a
power cut, what was appended since the last sync may be lost, which can only be part of a
running trial (the next sync, at its end, also makes everything before it durable: the file is
append-only). Optuna's own backend syncs every append; at 0.5–3 ms a sync, that was the largest
cost of a cheap trial (`experiments/bench_scale.py`).

Readers keep Optuna's plain backend: it already reads every complete line and ignores the torn
tail, and a reader (report, dashboard, export) never needs write access to the folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from optuna.storages.journal import JournalFileBackend

from mnsearch.atomic import write_atomically

LOGGER = logging.getLogger(__name__)
_CHUNK = 1 << 16
# Optuna's journal operation codes (`JournalOperation`, part of the file format).
_STUDY_OPERATIONS = {0, 1, 2, 3}  # create, delete, set user / system attribute
_CREATE_TRIAL, _SET_TRIAL_STATE_VALUES = 4, 6
_WAITING, _FINISHED = 4, {1, 2, 3}  # TrialState: WAITING; COMPLETE, PRUNED, FAIL


class FlockJournalLock:
    """An exclusive `flock` on `<journal>.append.lock`, the file kept open.

    Optuna's default lock creates and removes a symlink per append (~0.14 ms, two metadata
    writes: 7 ms of a cheap simulated trial's ~55 appends); a `flock` on an open file is a
    system call of a microsecond, and the kernel drops it if the process dies. All of a
    journal's writers must use the same lock: mnsearch's writers all use this one (plain
    Optuna only ever reads mnsearch's journals here).
    """

    def __init__(self, journal: str) -> None:
        self.path = f"{journal}.append.lock"
        self._handle: int | None = None

    def acquire(self) -> None:
        if self._handle is None:
            self._handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self._handle, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)


class SafeJournalFileBackend(JournalFileBackend):
    """Optuna's journal file backend that never appends after a torn last line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = FlockJournalLock(path)
        super().__init__(path)  # Optuna's own lock is left unused: its appends are ours
        self._handle: int | None = None  # the journal, open for appends
        if _tail_is_suspect(path):
            with self._locked():
                set_aside_torn_tail(path, check_json=True)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Optuna's append (same format, one write), after setting aside a torn tail; synced
        when a log must survive a power cut (`must_sync`)."""
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with self._locked():
            if self._handle is None:
                self._handle = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
            size = os.fstat(self._handle).st_size
            if size and os.pread(self._handle, 1, size - 1) != b"\n":  # a torn tail
                set_aside_torn_tail(self.path, check_json=False)
            data = memoryview(text.encode("utf-8"))
            while data:  # one write unless a signal or a full disk cuts it short
                data = data[os.write(self._handle, data):]
            if any(must_sync(log) for log in logs):
                os.fsync(self._handle)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the journal's append lock."""
        self.lock.acquire()
        try:
            yield
        finally:
            self.lock.release()


def must_sync(log: dict[str, Any]) -> bool:
    """Whether a journal operation must be durable once appended (module docstring): a study
    operation, an enqueued trial, a trial's end."""
    operation = log.get("op_code")
    if operation in _STUDY_OPERATIONS:
        return True
    if operation == _CREATE_TRIAL:
        return log.get("state") == _WAITING
    return operation == _SET_TRIAL_STATE_VALUES and log.get("state") in _FINISHED


def set_aside_torn_tail(path: str | Path, check_json: bool = True) -> Path | None:
    """Make the journal end with a complete line; returns where torn bytes were put, if any.

    A last line without its newline is torn, unless it is a whole JSON record (only the newline
    was lost): that one is completed. With `check_json`, a terminated last line that is not
    JSON (left by an older version that appended after a torn line) is set aside too; appends
    skip that read and only look at the last byte. The caller holds the journal's lock.
    """
    with open(path, "r+b") as stream:
        size = stream.seek(0, os.SEEK_END)
        if size == 0:
            return None
        stream.seek(size - 1)
        terminated = stream.read(1) == b"\n"
        if terminated and not check_json:
            return None
        start = _line_start(stream, size - 1 if terminated else size)
        stream.seek(start)
        tail = stream.read()
        if _is_record(tail):
            if not terminated:
                _sync_append(stream, b"\n")
            return None
        aside = _aside_path(Path(path))
        write_atomically(aside, tail)  # synced before a single complete line is cut
        stream.truncate(start)
        stream.flush()
        os.fsync(stream.fileno())
    LOGGER.warning("%s: its last line was torn (%d bytes, a write cut short by a crash) and is "
                   "set aside in %s; the journal now ends at its last complete line (a trial "
                   "that write would have finished is retried once found stale)",
                   path, len(tail), aside)
    return aside


def _tail_is_suspect(path: str) -> bool:
    """Whether the last line is unterminated or not JSON (read without the lock: a hint only)."""
    with open(path, "rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        if size == 0:
            return False
        stream.seek(size - 1)
        if stream.read(1) != b"\n":
            return True
        stream.seek(_line_start(stream, size - 1))
        return not _is_record(stream.read())


def _line_start(stream: BinaryIO, end: int) -> int:
    """Offset of the first byte after the last newline before `end` (0 when there is none)."""
    position = end
    while position > 0:
        step = min(_CHUNK, position)
        stream.seek(position - step)
        chunk = stream.read(step)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return position - step + newline + 1
        position -= step
    return 0


def _is_record(line: bytes) -> bool:
    """A whole journal record: one JSON object (a proper prefix of one never parses)."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return False


def _sync_append(stream: BinaryIO, data: bytes) -> None:
    stream.seek(0, os.SEEK_END)
    stream.write(data)
    stream.flush()
    os.fsync(stream.fileno())


def _aside_path(path: Path) -> Path:
    """`<journal>.torn-<UTC time>`, numbered if that name is taken (two repairs in a second)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = path.with_name(f"{path.name}.torn-{stamp}")
    number = 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}.torn-{stamp}-{number}")
    return candidate
