"""Sweeps through Optuna's gRPC storage proxy: `mnsearch storage-proxy` in a subprocess over
a SQLite file (over PostgreSQL when MNSEARCH_TEST_POSTGRES is set), a simulated sweep of 2
worker processes through it (`--storage grpc://127.0.0.1:PORT`), the lock study behind it
(4 threads, each with its own proxy client, never hold it together; a stale lock is broken
after its lease, a renewed one is not), and the one-line errors.

Tested at 2 sweep workers (`--jobs 2`: the cores the test machine has) and 4 lock contenders.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from mnsearch.cli.main import main
from mnsearch.search.grpc_proxy import connect_proxy, proxy_address
from mnsearch.search.locks import LOCK_PREFIX, study_mutex
from mnsearch.search.record import TrialRecord
from mnsearch.search.storage import (
    StorageError,
    load_study,
    open_existing_storage,
    open_storage,
    study_names,
)

pytest.importorskip("grpc", reason="the grpc extra: pip install -e '.[grpc]'")
POSTGRES = os.environ.get("MNSEARCH_TEST_POSTGRES")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _default_sigint():
    """In the child: SIGINT as a terminal's foreground job has it (a test run in the
    background of a shell without job control inherits it ignored, and Python leaves an
    ignored SIGINT ignored: Ctrl-C would then never reach the proxy)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """`mnsearch storage-proxy` on a free port; yields its URL; stopped with Ctrl-C."""
    backend = POSTGRES or f"sqlite:///{tmp_path_factory.mktemp('proxy') / 'proxy.db'}"
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mnsearch", "storage-proxy", "--storage", backend,
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint)
    url = f"grpc://127.0.0.1:{port}"
    try:
        connect_proxy(url, timeout=60).close()
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err  # Ctrl-C: stopped cleanly, 128 + SIGINT
    assert out.startswith(f"storage proxy for {backend.replace('ci-secret-7', '***')} on "
                          f"{url} (Ctrl-C stops it)")
    assert err.strip() == "mnsearch storage-proxy: interrupted by SIGINT"
    assert "ci-secret-7" not in out + err  # the CI password (tests/search/test_storage.py)


def _space(tmp_path, folder):
    path = tmp_path / "space.yaml"
    path.write_text(
        f"name: sim\nbase: v1\ndataset: folder:{folder}\n"
        "recipe: {epochs: 2, batch_size: 16}\n"
        "dimensions:\n  alpha: [0.25, 0.5, 0.75, 1.0]\n  rho: [1.0, 0.75]\n"
        "  stride_schedule: [stem1]\nobjectives: [accuracy, madds]\nsampler: grid\n")
    return path


def _study_name(prefix: str) -> str:
    """Unique on a shared PostgreSQL; plain in a test's own SQLite file."""
    return f"{prefix}-{os.getpid()}-{time.time_ns()}" if POSTGRES else prefix


def test_two_workers_through_the_proxy_train_each_configuration_once(proxy, tmp_path,
                                                                     image_folder, capsys):
    name = _study_name("grpc")
    assert main(["sweep", str(_space(tmp_path, image_folder)), "--simulate", "--jobs", "2",
                 "--no-early-stopping", "--storage", proxy, "--study", name,
                 "--artifacts", str(tmp_path / "artifacts"), "--out", str(tmp_path / "out")]) == 0
    assert f" in {proxy}:" in capsys.readouterr().out  # the storage as shown
    storage = open_existing_storage(proxy)
    study = load_study(storage, name)
    trials = study.get_trials(deepcopy=False)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    trained = [TrialRecord.of(trial).config_key for trial in complete
               if TrialRecord.of(trial).duplicate_of is None]
    assert len(trained) == 8 and len(set(trained)) == 8  # every configuration, each once
    assert all(trial.state == TrialState.COMPLETE for trial in trials)
    assert len({TrialRecord.of(trial).worker for trial in trials}) == 2  # both took part
    assert name in study_names(storage)
    assert not [study.study_name for study in storage.get_all_studies()
                if study.study_name.startswith(LOCK_PREFIX)]  # every lock released


def test_the_lock_study_is_held_by_one_contender_at_a_time(proxy):
    name, holders, most, errors = _study_name("mutex"), [], [0], []

    def contend():
        storage = open_storage(proxy)  # a client of its own, as a worker process has
        try:
            for _ in range(10):
                with study_mutex(storage, name):
                    holders.append(threading.get_ident())
                    most[0] = max(most[0], len(holders))
                    time.sleep(0.002)
                    holders.pop()
        except Exception as error:  # reported below: a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and most == [1]
    assert LOCK_PREFIX + name not in [study.study_name for study in
                                      open_storage(proxy).get_all_studies()]


def test_a_stale_lock_study_is_broken_after_its_lease_and_a_renewed_one_is_not(proxy):
    storage = open_storage(proxy)
    name = _study_name("stale")
    # A crashed holder: a lock study that nobody renews, and that never got its lease.
    storage.create_new_study([optuna.study.StudyDirection.MINIMIZE],
                             study_name=LOCK_PREFIX + name)
    assert name not in study_names(storage) and not any(
        shown.startswith(LOCK_PREFIX) for shown in study_names(storage))
    started = time.monotonic()
    with study_mutex(storage, name, lease=1.0):
        waited = time.monotonic() - started
    assert 1.0 <= waited < 15

    # A live holder renews its lease (every lease / 6), so it keeps the lock past the lease.
    entered, released = threading.Event(), threading.Event()

    def hold():
        with study_mutex(open_storage(proxy), name, lease=0.6):
            entered.set()
            time.sleep(2.0)
            released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(30)
    with study_mutex(storage, name, lease=0.6):
        assert released.is_set()  # not broken while its holder was alive
    holder.join(timeout=30)


@pytest.mark.parametrize("command", [
    ["sweep", "SPACE", "--simulate", "--artifacts", "TMP", "--out", "TMP"],
    ["report", "--study", "sim"],
    ["dashboard"],
])
def test_an_unreachable_proxy_is_one_line_and_exit_2(tmp_path, image_folder, capsys,
                                                     monkeypatch, command):
    monkeypatch.setattr("mnsearch.search.grpc_proxy.READY_SECONDS", 0.5)  # default 5 s
    port = _free_port()  # free: nothing answers there
    paths = {"SPACE": str(_space(tmp_path, image_folder)), "TMP": str(tmp_path / "out")}
    command = [paths.get(part, part) for part in command]
    assert main([*command, "--storage", f"grpc://127.0.0.1:{port}"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert f"no storage proxy answers at grpc://127.0.0.1:{port} (waited 0.5 s)" in error


@pytest.mark.parametrize(("url", "message"), [
    ("grpc://127.0.0.1:99999", "port from 1 to 65535"),
    ("grpc://127.0.0.1:port", "port from 1 to 65535"),
    ("grpc://user:SECRET@127.0.0.1:13000", "no user, password"),
    ("grpc://127.0.0.1:13000/db", "no user, password, path or query"),
    ("grpc://:13000", "got no host"),
])
def test_a_malformed_proxy_address_is_one_line_without_secrets(url, message):
    with pytest.raises(StorageError, match=message) as raised:
        open_storage(url)
    assert "SECRET" not in str(raised.value) and "\n" not in str(raised.value)


def test_proxy_addresses():
    assert proxy_address("grpc://proxy.example:13001") == ("proxy.example", 13001)
    assert proxy_address("grpc://10.0.0.5") == ("10.0.0.5", 13000)  # Optuna's default port


@pytest.mark.parametrize(("storage", "message"), [
    ("runs.journal", "fails on a journal file"),
    ("grpc://127.0.0.1:13000", "not another proxy"),
    ("postgresql://user:SECRET@127.0.0.1:9/db", "cannot open storage postgresql://user:***@"),
])
def test_the_proxy_refuses_what_it_cannot_serve_in_one_line(capsys, storage, message):
    assert main(["storage-proxy", "--storage", storage, "--port", str(_free_port())]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert "SECRET" not in error


def test_a_taken_port_is_one_line(proxy, tmp_path, capsys):
    port = proxy_address(proxy)[1]
    assert main(["storage-proxy", "--storage", f"sqlite:///{tmp_path / 'other.db'}",
                 "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error
    assert len(error.strip().splitlines()) == 1


STUCK_PROXY = """
import sys, threading
from optuna.storages import InMemoryStorage
from mnsearch.search.grpc_proxy import serve_proxy

class Stuck(InMemoryStorage):  # a database that stopped answering
    def get_all_studies(self):
        print("stuck", flush=True)
        threading.Event().wait()

try:
    serve_proxy(Stuck(), "127.0.0.1", int(sys.argv[1]), lambda: print("ready", flush=True), 0.5)
except KeyboardInterrupt:
    sys.exit(130)
"""


def _call_and_ignore_the_end(client):
    """The call that gets stuck; it ends in an error once the proxy is gone."""
    with contextlib.suppress(Exception):
        client.get_all_studies()


def test_ctrl_c_stops_a_proxy_whose_storage_call_never_returns():
    """A handler stuck in the storage used to keep a Ctrl-C'd proxy alive for good (Python
    joins a thread pool's threads at exit); its threads are daemons now."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", STUCK_PROXY, str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_default_sigint)
    try:
        assert process.stdout.readline().strip() == "ready"
        client = connect_proxy(f"grpc://127.0.0.1:{port}", timeout=60)
        threading.Thread(target=_call_and_ignore_the_end, args=(client,), daemon=True).start()
        assert process.stdout.readline().strip() == "stuck"
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
