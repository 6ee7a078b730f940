"""Storages under hostile inputs and faults: passwords never shown, journals torn by a crash,
unwritable journal paths, and workers racing for the same configuration (journal and, with
MNSEARCH_TEST_POSTGRES, PostgreSQL)."""

import io
import json
import logging
import os
import threading
import time
import urllib.request

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from mnsearch.cli.main import main
from mnsearch.data.load import load_dataset
from mnsearch.search import study as search_study
from mnsearch.search import worker as search_worker
from mnsearch.search.space import load_space
from mnsearch.search.storage import (
    StorageError,
    hide_secrets,
    mask_password,
    open_existing_storage,
    open_storage,
)
from mnsearch.search.study import SweepOptions, enqueue_grid
from mnsearch.search.worker import Worker
from mnsearch.testing.synthetic import synthetic_study

POSTGRES = os.environ.get("MNSEARCH_TEST_POSTGRES")
UNREACHABLE = "127.0.0.1:9"  # nothing listens on the discard port: refused at once
# (URL, its secret): an empty user, a password in the query, a raw '@' in the password.
SECRET_URLS = [
    (f"postgresql://:PASSWORD@{UNREACHABLE}/db", "PASSWORD"),
    (f"postgresql://user@{UNREACHABLE}/db?password=PW", "PW"),
    (f"postgresql://user:p@ss@{UNREACHABLE}/db", "p@ss"),
]




def _space(tmp_path, folder, alphas=(0.25, 0.5), rhos=(1.0, 0.75)):
    path = tmp_path / "space.yaml"
    path.write_text(
        f"name: toy\nbase: v1\ndataset: folder:{folder}\n"
        "recipe: {epochs: 1, batch_size: 16, optimizer: adamw, lr: 0.003}\n"
        f"dimensions:\n  alpha: {list(alphas)}\n  rho: {list(rhos)}\n"
        "  stride_schedule: [stem1]\nobjectives: [accuracy, madds]\nsampler: grid\n")
    return path


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "studies.journal"
    synthetic_study(open_storage(str(path)), "demo", 6, seed=3)
    return path


# --- passwords ---

@pytest.mark.parametrize("url, secret", SECRET_URLS + [
    ("postgresql+psycopg://u:a%40b@h:5432/d?sslmode=require&sslpassword=key-pw", "key-pw"),
    ("postgresql://u:pw1@h1:5432,h2:5432/db", "pw1"),  # not SQLAlchemy's: the pattern masks
])
def test_mask_password_hides_every_form(url, secret):
    shown = mask_password(url)
    assert secret not in shown and "***" in shown and mask_password(shown) == shown
    assert "127.0.0.1" in shown or "h" in shown  # the host is still shown
    assert secret not in hide_secrets(f"could not connect with {secret} to {url}", url)


def test_journal_paths_are_shown_as_they_are():
    assert mask_password("runs/mnsearch.journal") == "runs/mnsearch.journal"
    assert mask_password("journal:a@b:c.journal") == "journal:a@b:c.journal"
    assert mask_password("postgresql://bob:hunter2@db/x") == "postgresql://bob:***@db/x"


@pytest.mark.parametrize("url, secret", SECRET_URLS)
def test_commands_never_print_the_password(url, secret, tmp_path, image_folder, capsys,
                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = _space(tmp_path, image_folder)
    commands = [["sweep", str(space), "--storage", url],
                ["report", "--study", "toy", "--storage", url],
                ["export", "--study", "toy", "--storage", url, "--trial", "0", "--out", "x"],
                ["dashboard", "--storage", url]]
    for command in commands:
        assert main(command) == 2, command
        output = capsys.readouterr()
        assert secret not in output.out + output.err, command
        assert output.err.count("\n") == 1 and "***" in output.err, output.err
    assert not (tmp_path / "mnsearch-artifacts" / "toy").exists()


@pytest.mark.parametrize("url, secret", SECRET_URLS[:2])
def test_sweep_first_line_masks_the_password(url, secret, tmp_path, image_folder, monkeypatch):
    from mnsearch.cli.sweep_display import LiveTable
    from mnsearch.search.runner import prepare_sweep

    monkeypatch.setattr(search_study, "open_storage",
                        lambda _: optuna.storages.InMemoryStorage())
    start = prepare_sweep(_space(tmp_path, image_folder),
                          SweepOptions("toy", url, artifacts=str(tmp_path / "a")))
    stream = io.StringIO()
    table = LiveTable(Console(file=stream, width=200))
    table.started(start)
    table.live.stop()
    assert secret not in stream.getvalue() and f"in {mask_password(url)}:" in stream.getvalue()


def _dash_post(client, app, output_part, values):
    """Call the callback whose outputs include `output_part`, as the page would."""
    key = next(key for key in app.callback_map if output_part in key)
    spec = app.callback_map[key]
    inputs = [{**item, "value": values.get(item["id"])} for item in spec["inputs"]]
    state = [{**item, "value": values.get(item["id"])} for item in spec["state"]]
    outputs = [dict(zip(("id", "property"), part.split(".", 1), strict=True))
               for part in key.strip(".").split("...")]
    body = {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": inputs, "state": state,
            "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:500]
    return json.dumps(response.get_json())  # undo Dash's escapes ("/" is sent as \u002f)


@pytest.mark.parametrize("url, secret", SECRET_URLS)
def test_dashboard_start_line_pages_and_callbacks_hide_the_password(url, secret, journal,
                                                                   capsys, monkeypatch):
    import mnsearch.dashboard
    from mnsearch.dashboard.data import DashboardData

    # The studies come from a journal; the URL is only what the dashboard was told.
    monkeypatch.setattr(DashboardData, "storage",
                        lambda self: open_existing_storage(str(journal)))
    served = []

    def serve(app, host, port, verbose):
        client = app.server.test_client()
        served.append(client.get("/").get_data(as_text=True))
        served.append(json.dumps(client.get("/_dash-layout").get_json()))
        served.append(_dash_post(client, app, "studies.options", {"url": ""}))
        served.append(_dash_post(client, app, "trial-card.children", {
            "pareto-graph": {"points": [{"customdata": ["demo", 2]}]}}))
        served.append(_dash_post(client, app, "pareto-graph.figure", {
            "studies": ["demo"], "color-by": "alpha"}))

    monkeypatch.setattr(mnsearch.dashboard, "serve", serve)
    assert main(["dashboard", "--storage", url, "--study", "demo"]) == 0
    start_line = capsys.readouterr().out
    assert secret not in start_line and mask_password(url) in start_line
    assert len(served) == 5 and all(secret not in text for text in served)
    assert "card-export" in served[3] and mask_password(url) in served[3]
    assert "Replace *** with the storage password" in served[3]


def test_a_served_dashboard_page_hides_the_password(journal, monkeypatch):
    """Through a real server too: the page and its layout as a browser gets them."""
    from mnsearch.dashboard.app import create_app, make_dashboard_server
    from mnsearch.dashboard.data import DashboardData

    monkeypatch.setattr(DashboardData, "storage",
                        lambda self: open_existing_storage(str(journal)))
    data = DashboardData("postgresql://user:p@ss@db.example/sweeps")
    server = make_dashboard_server(create_app(data, ["demo"]), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pages = [urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}",
                                        timeout=30).read().decode()
                 for path in ("/", "/_dash-layout")]
        pages[1] = json.dumps(json.loads(pages[1]))
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert "user:***@db.example" in pages[1] and not any("p@ss" in page for page in pages)


# --- journal paths that cannot be written ---

def _unwritable_folder(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").touch()
    except OSError:
        return folder
    pytest.skip("permissions do not bind this user (root): /proc covers a read-only folder")


@pytest.mark.parametrize("case", ["folder", "missing-folder", "read-only", "proc"])
def test_unwritable_journal_paths_fail_as_one_line_before_training(case, tmp_path, image_folder,
                                                                  capsys, monkeypatch):
    if case == "proc" and not os.path.isdir("/proc"):
        pytest.skip("no /proc here")
    monkeypatch.chdir(tmp_path)
    path = {"folder": lambda: tmp_path,
            "missing-folder": lambda: tmp_path / "absent" / "s.journal",
            "read-only": lambda: _unwritable_folder(tmp_path) / "s.journal",
            "proc": lambda: "/proc/mnsearch-test.journal"}[case]()
    expected = {"folder": "is a folder", "missing-folder": "does not exist",
                "read-only": "not writable", "proc": "not writable"}[case]
    with pytest.raises(StorageError, match=expected):
        open_storage(str(path))
    assert main(["sweep", str(_space(tmp_path, image_folder)), "--storage", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(path) in error and "Traceback" not in error
    assert not (tmp_path / "mnsearch-artifacts" / "toy").exists()  # nothing trained


# --- a journal torn by a crash ---

def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def _torn_files(path):
    return sorted(path.parent.glob(f"{path.name}.torn-*"))


def _all_parse(path):
    return all(isinstance(json.loads(line), dict) for line in _lines(path))


def test_readers_read_every_complete_line_of_a_torn_journal(journal, tmp_path, capsys):
    from mnsearch.dashboard.data import DashboardData

    torn = _lines(journal)[-1][:40]  # half a record, no newline: a write cut short
    with open(journal, "ab") as stream:
        stream.write(torn)
    before = journal.read_bytes()
    study = optuna.load_study(study_name="demo", storage=open_existing_storage(str(journal)))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert len(DashboardData(str(journal)).frame("demo")) == 6
    assert main(["report", "--study", "demo", "--storage", str(journal),
                 "--out", str(tmp_path / "r.html")]) == 0
    # Export reads the study, then finds no weights (a synthetic trial was never trained).
    assert main(["export", "--study", "demo", "--storage", str(journal), "--trial", "0",
                 "--out", str(tmp_path / "e")]) == 2
    assert "checkpoint" in capsys.readouterr().err
    assert journal.read_bytes() == before and not _torn_files(journal)  # readers never write


def test_a_writer_sets_a_torn_last_line_aside(journal, caplog):
    complete = journal.read_bytes()
    torn = _lines(journal)[-1][:40]
    with open(journal, "ab") as stream:
        stream.write(torn)
    with caplog.at_level(logging.WARNING, logger="mnsearch.search.journal"):
        study = optuna.load_study(study_name="demo", storage=open_storage(str(journal)))
    [aside] = _torn_files(journal)
    assert aside.read_bytes() == torn and journal.read_bytes() == complete
    [message] = [record.getMessage() for record in caplog.records
                 if record.name == "mnsearch.search.journal"]
    assert "torn" in message and aside.name in message
    study.tell(study.ask(), [0.5, 1e6])  # appends after the last complete line
    assert _all_parse(journal)
    reread = optuna.load_study(study_name="demo", storage=open_existing_storage(str(journal)))
    assert len(reread.get_trials(states=(TrialState.COMPLETE,))) == 7


def test_a_record_missing_only_its_newline_is_kept(tmp_path):
    path = tmp_path / "s.journal"
    study = optuna.create_study(study_name="a", storage=open_storage(str(path)))
    study.tell(study.ask(), 1.0)
    path.write_bytes(path.read_bytes()[:-1])  # the crash cut the newline only: COMPLETE kept
    reopened = optuna.load_study(study_name="a", storage=open_storage(str(path)))
    assert reopened.trials[0].state == TrialState.COMPLETE and not _torn_files(path)
    assert path.read_bytes().endswith(b"\n") and _all_parse(path)


def test_a_line_torn_by_another_writer_is_set_aside_before_the_next_append(journal):
    study = optuna.load_study(study_name="demo", storage=open_storage(str(journal)))
    with open(journal, "ab") as stream:  # another process crashes mid-write now
        stream.write(b'{"op_code":5,"worker_id":"x","trial_id":')
    study.tell(study.ask(), [0.5, 1e6])
    assert _all_parse(journal) and len(_torn_files(journal)) == 1


def test_a_corrupt_terminated_last_line_is_set_aside_on_open(journal):
    """What older versions left: torn bytes fused with the next record, then a newline."""
    with open(journal, "ab") as stream:
        stream.write(b'{"op_code":5,"wor{"op_code":8,"worker_id":"y"}\n')
    optuna.load_study(study_name="demo", storage=open_storage(str(journal)))
    assert _all_parse(journal) and len(_torn_files(journal)) == 1


# --- workers racing for a configuration ---

@pytest.fixture(params=["journal", "postgresql"])
def shared_storage(request, tmp_path):
    if request.param == "postgresql":
        if not POSTGRES:
            pytest.skip("set MNSEARCH_TEST_POSTGRES=postgresql://… (.ci/run starts a server)")
        return POSTGRES, f"race-{os.getpid()}-{time.time_ns()}"
    return str(tmp_path / "s.journal"), "race"


def test_enqueueing_the_grid_from_two_processes_at_once_enqueues_it_once(shared_storage,
                                                                         tmp_path, image_folder):
    storage, name = shared_storage
    space = load_space(_space(tmp_path, image_folder, alphas=(0.25, 0.5, 0.75), rhos=(1.0, 0.5)))
    barrier, added = threading.Barrier(3), []

    def enqueue():
        study = optuna.create_study(study_name=name, storage=open_storage(storage),
                                    directions=space.directions, load_if_exists=True)
        barrier.wait()
        added.append(enqueue_grid(study, space))

    threads = [threading.Thread(target=enqueue) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    assert sorted(added) == [0, 0, 6] and len(study.trials) == 6


def _scripted_training(outcomes, started, release):
    """A stand-in for `train_and_evaluate`: blocks until released, then returns the next
    scripted outcome ("completed" or "failed")."""
    from mnsearch.train.loop import TrainResult

    def train(spec, dataset, config, out_dir=None, resume=False, callback=None, **_):
        started.set()
        assert release.wait(timeout=120)
        result = TrainResult()
        result.val_accuracy, result.epochs_done = [0.6], 1
        result.status = outcomes.pop(0)
        if result.status == "completed":
            result.test_accuracy = 0.55
        else:
            result.error = "scripted failure"
        return result
    return train


@pytest.mark.parametrize("first", ["completed", "failed"])
def test_a_configuration_running_elsewhere_is_waited_for_not_trained(
        first, shared_storage, tmp_path, image_folder, monkeypatch):
    """Two workers, one configuration enqueued twice: the second waits for the first and
    answers from its record; if the first fails, the second takes it over and trains it."""
    storage, name = shared_storage
    space = load_space(_space(tmp_path, image_folder, alphas=(0.25,), rhos=(1.0,)))
    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(search_worker, "train_and_evaluate",
                        _scripted_training([first, "completed"], started, release))
    dataset = load_dataset(space.dataset)
    options = SweepOptions(name, storage, artifacts=str(tmp_path / "artifacts"))
    workers = [Worker(space, options, dataset) for _ in range(2)]
    enqueue_grid(workers[0].study, space)
    workers[0].study.enqueue_trial(space.grid()[0])  # the same point again (a re-proposal)
    threads = [threading.Thread(target=worker.run) for worker in workers]
    threads[0].start()
    assert started.wait(timeout=120)
    started.clear()
    threads[1].start()
    deadline = time.time() + 60
    while time.time() < deadline and not _both_running(workers[0].study):
        time.sleep(0.2)
    time.sleep(1.0)
    assert not started.is_set()  # the second worker waits: it does not train
    release.set()
    for thread in threads:
        thread.join(timeout=120)
    trials = optuna.load_study(study_name=name, storage=open_storage(storage)).trials
    assert [worker.trainings for worker in workers] == [1, 0 if first == "completed" else 1]
    if first == "completed":
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
        assert trials[1].user_attrs["duplicate_of"] == 0 and trials[1].values == trials[0].values
    else:
        assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
        assert "duplicate_of" not in trials[1].user_attrs
        assert trials[1].user_attrs["config_key"] == trials[0].user_attrs["config_key"]


def _both_running(study):
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return len(running) == 2 and all("worker" in trial.user_attrs for trial in running)
