"""A sweep's worker processes: start and stop them, turn signals into a clean stop, and make
workers die with their parent.

Without this, `kill PID` (SIGTERM) of `mnsearch sweep` killed the parent alone: its workers ran
the rest of the sweep with nobody watching, and no results were written. Now:

- In the parent, `stop_signals` turns the first SIGINT, SIGTERM or SIGHUP into `Interrupted`
  (a KeyboardInterrupt that carries the signal): `run_sweep` stops its workers, keeps what
  finished and returns; the CLI writes the results and exits 128 + the signal number (130,
  143, 129), as a shell reports a process the signal killed.
- In a worker, `worker_signals` turns the same signals into one KeyboardInterrupt, which the
  worker's loop answers by failing its running trial and enqueueing it again (a rerun resumes
  it); `exit_by_signal` then ends the process as killed by that signal, so the parent tells a
  stopped worker from a finished one.
- `die_with_parent` asks Linux for SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG) and,
  on every platform, starts a thread that sends it when the parent pid changes (the orphan is
  re-parented): a parent killed with -9, which can handle nothing, still takes its workers.

A signal ignored when the process started (`nohup` ignores SIGHUP) stays ignored.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
STOP_GRACE_SECONDS = 10.0  # a worker re-queues its trial in well under a second; `docker stop`
# waits 10 s before its SIGKILL, so the parent still writes its results within that.
PARENT_POLL_SECONDS = 1.0
ORPHAN_GRACE_SECONDS = 5.0  # an orphan worker SIGTERMs itself each second this long, then
# exits outright (its main thread stuck in native code; the trial is then found stale)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Interrupted(KeyboardInterrupt):
    """The sweep's parent received a stop signal: SIGINT (Ctrl-C), SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """128 + the signal number: what a shell reports for a process the signal killed."""
        return 128 + self.signum


def _handled_signals() -> list[int]:
    """The stop signals not ignored by whoever started this process (nohup: SIGHUP)."""
    return [signum for signum in STOP_SIGNALS if signal.getsignal(signum) != signal.SIG_IGN]


class StopRequest:
    """The stop signal a process received (None: none yet), and whether it was `handled`.

    A handler's exception can be lost: raised while a garbage-collection callback runs (JAX
    registers one), Python prints "Exception ignored" and goes on. So every stop signal raises
    again until the code it stops has caught it and set `handled` (the parent's run_sweep, a
    worker starting to re-queue its trial); later ones only record, so they cannot cut that
    cleanup short. The parent sends its workers SIGTERM every second until they end, and loops
    call `raise_if_stopped`.
    """

    def __init__(self, interrupt: Callable[[int], BaseException]) -> None:
        self.interrupt = interrupt
        self.signum: int | None = None
        self.handled = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler (in a garbage-collection callback it only records: the next
        signal, or the next `raise_if_stopped`, raises)."""
        if self.signum is None:
            self.signum = signum
        if not _in_gc_callback(frame):
            self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        """Raise the interrupt of a signal received and not yet handled."""
        if self.signum is not None and not self.handled:
            raise self.interrupt(self.signum)


def _in_gc_callback(frame: FrameType | None) -> bool:
    """Whether `frame` runs a `gc.callbacks` function, where an exception is only printed."""
    return frame is not None and any(frame.f_code is getattr(callback, "__code__", None)
                                     for callback in gc.callbacks)


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Within the block, stop signals raise `Interrupted` until it is handled (then they only
    record); the previous handlers come back on exit.

    Python delivers signals to the main thread only: in another thread this installs nothing
    (the request is never set).
    """
    request = StopRequest(Interrupted)
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.signal(signum, request) for signum in _handled_signals()}
    try:
        yield request
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


worker_stop = StopRequest(lambda signum: KeyboardInterrupt())  # this process's, as a worker


def worker_signals() -> None:
    """In a worker: stop signals raise KeyboardInterrupt until `worker_stop.handled` (set
    where the worker starts failing and re-queueing its trial); the terminal's Ctrl-C and the
    parent's SIGTERM both arrive, and only one may interrupt."""
    for signum in _handled_signals():
        signal.signal(signum, worker_stop)


def exit_by_signal() -> None:
    """End this worker as killed by the stop signal it received (the parent then sees a
    negative exit code and knows it was stopped); returns when it received none."""
    signum = worker_stop.signum
    if signum is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(1.0)  # the default action ends the process; this line is not reached
    os._exit(128 + signum)


def die_with_parent(parent_pid: int) -> None:
    """Have this worker sent SIGTERM when `parent_pid` (the sweep's parent) dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the thread below covers it, a second later
    threading.Thread(target=_end_when_orphaned, args=(parent_pid,), daemon=True,
                     name="mnsearch-parent-watch").start()


def _end_when_orphaned(parent_pid: int) -> None:
    """Wait until the parent is gone (this process re-parented), then SIGTERM the main thread;
    exit outright if it is stuck in native code that long.

    The first check runs at once: it also catches a parent that died before prctl was asked.
    """
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    main = threading.main_thread().ident
    for _ in range(int(ORPHAN_GRACE_SECONDS / PARENT_POLL_SECONDS)):  # again: one can be lost
        if hasattr(signal, "pthread_kill") and main is not None:
            signal.pthread_kill(main, signal.SIGTERM)  # interrupts a blocking call there
        else:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(128 + int(signal.SIGTERM))


class WorkerPool:
    """The sweep's local worker processes, spawned (JAX is not fork-safe).

    Each worker is started as `target(*args, rank, parent_pid)`: its place in the pool (a
    replacement keeps the rank of the worker it replaces), and its parent to watch.
    """

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.target, self.args = target, args
        self.processes: list[BaseProcess] = []

    def start(self, index: int | None = None) -> BaseProcess:
        """Start a worker, appended or in place of worker `index` (one that died)."""
        rank = len(self.processes) if index is None else index
        process = self.context.Process(target=self.target,
                                       args=(*self.args, rank, os.getpid()))
        if index is None:
            self.processes.append(process)  # listed before it starts: a signal during
        else:  # start() still finds it when stopping
            self.processes[index] = process
        process.start()
        return process

    def alive(self) -> bool:
        """Whether any worker is still running."""
        return any(process.is_alive() for process in self.processes)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int:
        """SIGTERM every live worker (each fails and re-queues its trial), wait up to `grace`
        seconds, then SIGKILL the rest; returns how many had to be killed (their trials are
        left RUNNING, for `recover_stale_trials`)."""
        running = [process for process in self.processes if process.is_alive()]
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            for process in running:
                process.terminate()  # every second: the first one can be lost (StopRequest)
            wait([process.sentinel for process in running],
                 min(1.0, max(deadline - time.monotonic(), 0.0)))
            running = [process for process in running if process.is_alive()]
        killed = running
        for process in killed:
            process.kill()
            process.join(5.0)
        return len(killed)
