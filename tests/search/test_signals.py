"""Signals and faults: a stopped sweep stops its workers, records what finished, writes its
results and exits 128 + the signal; a parent killed with -9 takes its workers with it; a
worker's unexpected error fails its trial (recorded) and the sweep's exit status.

The sweeps run as `python -m mnsearch sweep` subprocesses in a session of their own, so
"no process of it is left" is checked both ways: the processes seen before the signal (psutil,
else /proc by parent pid) and every member of its process group (/proc).
"""

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mnsearch.search.processes import Interrupted, StopRequest, stop_signals
from mnsearch.search.storage import open_storage

EPOCHS = "20"  # each trial runs long enough (several seconds here) to be caught RUNNING
LEFT_SECONDS = 10  # how long a stopped sweep's processes may take to be gone




def _command(tmp_path, folder):
    space = tmp_path / "space.yaml"
    space.write_text(
        f"name: toy\nbase: v1\ndataset: folder:{folder}\n"
        "recipe: {epochs: 1, batch_size: 16, optimizer: adamw, lr: 0.003}\n"
        "dimensions:\n  alpha: [0.25, 0.5, 0.75]\n  rho: [1.0]\n  stride_schedule: [stem1]\n"
        "objectives: [accuracy, madds]\nsampler: grid\n")
    return [sys.executable, "-m", "mnsearch", "sweep", str(space), "--study", "toy",
            "--storage", str(tmp_path / "s.journal"), "--artifacts", str(tmp_path / "artifacts"),
            "--out", str(tmp_path / "out"), "--epochs", EPOCHS]


def _default_signals():
    """In the child: SIGINT and SIGHUP as a terminal's foreground job has them (a test run in
    the background of a shell without job control inherits them ignored, and an ignored
    signal is left ignored)."""
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _start(tmp_path, command, env=None):
    """The sweep in a new session (its own process group), output to files (a full pipe
    would block it)."""
    with open(tmp_path / "stdout.txt", "w") as out, open(tmp_path / "stderr.txt", "w") as err:
        return subprocess.Popen(command, stdout=out, stderr=err, start_new_session=True,
                                env=env, preexec_fn=_default_signals)


def _study(tmp_path):
    return optuna.load_study(study_name="toy", storage=open_storage(str(tmp_path / "s.journal")))


def _running_trial(tmp_path, process):
    """Wait until a trial is training (its worker recorded); returns it."""
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
        if (tmp_path / "s.journal").exists():
            running = _study(tmp_path).get_trials(states=(TrialState.RUNNING,))
            if running and "worker" in running[0].user_attrs:
                time.sleep(1.0)  # into its training
                return running[0]
    raise AssertionError(f"no trial started: {(tmp_path / 'stderr.txt').read_text()}")


def _state(pid):
    """A process's state letter ('Z': a zombie, dead), or None when there is no such process."""
    try:
        import psutil
        try:
            return "Z" if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE else "R"
        except psutil.NoSuchProcess:
            return None
    except ImportError:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None


def _proc_stats():
    """(pid, ppid, process group) of every live process, from /proc (Linux)."""
    stats = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            stats.append((int(entry.name), int(fields[1]), int(fields[2])))
    return stats


def _family(pid):
    """The process and its descendants (psutil, else /proc by parent pid)."""
    try:
        import psutil
        return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
    except ImportError:
        family, stats = {pid}, _proc_stats()
        for _ in range(5):
            family |= {child for child, parent, _ in stats if parent in family}
        return family


def _left(family, group):
    alive = {pid for pid in family if _state(pid) not in (None, "Z")}
    if Path("/proc").is_dir():
        alive |= {pid for pid, _, pgid in _proc_stats() if pgid == group}
    return alive


def _assert_none_left(family, group):
    deadline = time.time() + LEFT_SECONDS
    while _left(family, group) and time.time() < deadline:
        time.sleep(0.2)
    assert not _left(family, group), f"processes left: {_left(family, group)}"


def _assert_failed_and_requeued(tmp_path, victim):
    study = _study(tmp_path)
    assert study.trials[victim.number].state == TrialState.FAIL
    retries = [trial for trial in study.get_trials(states=(TrialState.WAITING,))
               if trial.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1


def _stop(tmp_path, image_folder, signum, to_group=False):
    """Start a sweep, signal it while a trial runs; returns (exit status, victim trial)."""
    process = _start(tmp_path, _command(tmp_path, image_folder))
    victim = _running_trial(tmp_path, process)
    family = _family(process.pid)
    assert len(family) >= 2  # the parent and its worker at least
    if to_group:  # as the terminal sends Ctrl-C: to every process of the foreground group
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)
    status = process.wait(timeout=120)
    _assert_none_left(family, process.pid)
    return status, victim


def test_sigterm_stops_workers_writes_results_exits_143_and_a_rerun_completes(tmp_path,
                                                                            image_folder):
    status, victim = _stop(tmp_path, image_folder, signal.SIGTERM)
    assert status == 143, (tmp_path / "stderr.txt").read_text()
    assert "interrupted by SIGTERM" in " ".join((tmp_path / "stdout.txt").read_text().split())
    _assert_failed_and_requeued(tmp_path, victim)
    assert (tmp_path / "out" / "trials.csv").is_file()
    assert (tmp_path / "out" / "report.html").is_file()
    rerun = subprocess.run(_command(tmp_path, image_folder), capture_output=True, text=True,
                           timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    study = _study(tmp_path)
    assert not study.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))
    finished = [trial for trial in study.trials
                if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sorted(trial.params["alpha"] for trial in finished) == [0.25, 0.5, 0.75]


@pytest.mark.parametrize("signum, to_group, status", [
    (signal.SIGHUP, False, 129),  # the terminal closed
    (signal.SIGINT, True, 130),  # Ctrl-C: parent and workers all receive it
])
def test_sighup_and_ctrl_c_stop_the_sweep_too(tmp_path, image_folder, signum, to_group, status):
    assert _stop(tmp_path, image_folder, signum, to_group)[0] == status
    assert (tmp_path / "out" / "pareto.csv").is_file()


def test_kill_9_of_the_parent_takes_its_workers_with_it(tmp_path, image_folder):
    status, victim = _stop(tmp_path, image_folder, signal.SIGKILL)
    assert status == -signal.SIGKILL
    _assert_failed_and_requeued(tmp_path, victim)  # the worker did it, on its way out


def test_a_worker_error_fails_its_trial_and_the_sweep(tmp_path, image_folder):
    """An unexpected exception in training (a bug, injected here through sitecustomize in
    the worker processes): the trial is FAIL with the error recorded, and the sweep exits 1
    instead of 0 with the trial left RUNNING."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import multiprocessing, sys\n"
        "if 'spawn_main' in ' '.join(sys.argv) or '--multiprocessing-fork' in sys.argv:\n"
        "    import mnsearch.search.worker as worker\n"
        "    def broken(*args, **kwargs):\n"
        "        raise RuntimeError('injected bug')\n"
        "    worker.train_and_evaluate = broken\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(hooks), os.environ.get("PYTHONPATH")])))
    process = _start(tmp_path, _command(tmp_path, image_folder), env)
    assert process.wait(timeout=300) == 1, (tmp_path / "stderr.txt").read_text()
    failed = _study(tmp_path).get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1 and failed[0].user_attrs["error"] == "RuntimeError: injected bug"
    assert not _study(tmp_path).get_trials(states=(TrialState.RUNNING,))
    output = " ".join((tmp_path / "stdout.txt").read_text().split())
    assert "worker 1 stopped on an unexpected error (exit status 1)" in output


def test_stop_signals_raise_interrupted_once_and_restore_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught, stop_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)  # the handler runs before this returns
    assert caught.value.exit_status == 143 and stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before


def test_an_ignored_signal_stays_ignored():
    """`nohup` ignores SIGHUP: a sweep started under it must survive the terminal closing."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals() as stop:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.1)
        assert stop.signum is None
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_signal_during_garbage_collection_is_kept_for_later():
    """Raised in a gc callback, the exception would be printed and lost: it is deferred."""
    frames = []

    def callback(phase, info):
        frames.append(sys._getframe())

    request = StopRequest(Interrupted)
    gc.callbacks.append(callback)
    try:
        callback("start", {})
        request(signal.SIGTERM, frames[0])  # no exception here
    finally:
        gc.callbacks.remove(callback)
    with pytest.raises(Interrupted):
        request.raise_if_stopped()
    request.handled = True
    request(signal.SIGTERM, None)  # handled: later signals only record
