"""Studies at scale: a simulated sweep's per-trial worker overhead with 1k, 10k and 100k trials
already in the study, on the journal file and on PostgreSQL, with 1 and 4 workers.

    .venv/bin/python experiments/bench_scale.py [--sizes 1000 10000 100000] [--workers 1 4] \
        [--storages journal postgresql] [--measure 200] [--seed-trials 1000] \
        [--postgres URL] [--code CHECKOUT] [--cache DIR] [--csv FILE] [--timeout 1800]

Seed: one real simulated sweep (`mnsearch sweep search_spaces/v3_stages.yaml --simulate
--sampler random --trials SEED --no-early-stopping`), cached in --cache. Prefill: the seed's
trials copied until the study holds N (copy c shifts every trial id by c * SEED and appends
`-c<c>` to each configuration key, so the copies are N distinct finished trials), written as
a journal file (cached in --cache per seed and N, copied afresh before every run) and, for
PostgreSQL (--postgres or $MNSEARCH_TEST_POSTGRES; skipped when neither is given), bulk-inserted
with Optuna's own table definitions into a template database once per N, each run getting a
fresh database copied from it (`CREATE DATABASE ... TEMPLATE`), dropped afterwards.

Measure: `python -m mnsearch sweep ... --study scale --trials N+M --jobs W` on the prefilled
storage, as a subprocess with PYTHONPATH=--code (default: this checkout), so the same script
benchmarks an older checkout (a `git worktree`) for a before/after table. From the storage
afterwards, the new trials (number >= N): wall seconds from the first one's start to the last
one's end, ms per trial (wall / new trials) and worker-ms per trial (wall * W / new trials);
the command's total seconds (start-up and the replay of the study included) are shown apart.
With several workers, which start one after another (each replays or reads the study first),
the steady figure counts only the window in which every worker was at work: from the last
worker's first trial to the first worker's last one (`worker` attribute of each trial); it is
the one the goal uses. Goal (issue #19): steady ms per trial at the largest size within 2x of
the smallest, per storage and worker count. Rows go to --csv with the commit of --code. A run
that fails or passes --timeout is reported as such. A simulated sweep may run 4 workers a
core (`search.options.check_jobs`); an older checkout (before that) refuses more workers than
cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages._rdb import models
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from mnsearch.search.storage import mask_password

ROOT = Path(__file__).resolve().parents[1]
SPACE = "search_spaces/v3_stages.yaml"
STUDY = "scale"
GOAL = 2.0
BATCH = 5_000  # trials per PostgreSQL insert batch
FINISHED = {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}
_OP = re.compile(r'"op_code":\s*(\d+)')
_TRIAL_ID = re.compile(r'"trial_id":\s*(\d+)')
_CONFIG_KEY = re.compile(r'"config_key":\s*"[^"]*')  # up to the value's closing quote
_WORKER = re.compile(r'"user_attr":\s*\{"worker":\s*"([^"]+)"')
_DUPLICATE_OF = re.compile(r'"duplicate_of":\s*(\d+)')  # a trial number: shifted like ids
_CREATE_TRIAL, _SET_STATE = 4, 6


@dataclass
class Row:
    commit: str
    storage: str
    before: int  # trials in the study when the run started
    workers: int
    status: str  # ok, timeout, or the failure's last line
    new: int = 0  # finished trials the run added
    failed: int = 0
    duplicates: int = 0
    wall_s: float = math.nan  # first new trial's start to last new trial's end
    ms_per_trial: float = math.nan
    worker_ms_per_trial: float = math.nan
    steady_trials: int = 0  # finished while every worker was at work
    steady_ms_per_trial: float = math.nan
    command_s: float = math.nan  # the whole command, start-up and replay included
    prefill_s: float = math.nan  # this run's storage made ready (a copy, or a database)


@dataclass
class NewTrials:
    new: int
    failed: int
    duplicates: int
    wall_s: float
    steady_trials: int = 0
    steady_s: float = math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--storages", nargs="+", default=["journal", "postgresql"],
                        choices=["journal", "postgresql"])
    parser.add_argument("--measure", type=int, default=200, help="trials each run adds")
    parser.add_argument("--seed-trials", type=int, default=1_000)
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="checkout whose mnsearch runs the sweeps (PYTHONPATH)")
    parser.add_argument("--postgres", default=os.environ.get("MNSEARCH_TEST_POSTGRES"),
                        help="server URL (default $MNSEARCH_TEST_POSTGRES); a database is "
                             "created and dropped per run")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mnsearch-bench-scale"))
    parser.add_argument("--csv", type=Path,
                        default=ROOT / "experiments/results/scale/bench_scale.csv")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    code = args.code.resolve()
    commit = git_commit(code)
    print(f"code: {code} ({commit}); mnsearch imported from {imported_from(code)}")
    storages = list(args.storages)
    if "postgresql" in storages and not args.postgres:
        print("PostgreSQL skipped: pass --postgres URL or set MNSEARCH_TEST_POSTGRES")
        storages.remove("postgresql")
    args.cache.mkdir(parents=True, exist_ok=True)
    seed = make_seed(code, args.seed_trials, args.cache, args.timeout)
    rows: list[Row] = []
    for size in args.sizes:
        journal, seconds = prefilled_journal(seed, size, args.cache)
        made = f"{seconds:.1f} s" if seconds else "cached"
        print(f"prefilled journal, {size:,} trials: {journal} ({made})")
        if "journal" in storages:
            for workers in args.workers:
                rows.append(measure_journal(code, commit, journal, size, workers, args))
                print_row(rows[-1])
        if "postgresql" in storages:
            with template_database(args.postgres, journal, size) as template:
                for workers in args.workers:
                    rows.append(measure_postgres(code, commit, template, size, workers, args))
                    print_row(rows[-1])
    print_table(rows)
    write_csv(rows, args.csv)


def git_commit(code: Path) -> str:
    done = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def sweep_env(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code)}


def imported_from(code: Path) -> str:
    """Where `python -m mnsearch` will import the package from (a check of --code)."""
    done = subprocess.run([sys.executable, "-c", "import mnsearch; print(mnsearch.__file__)"],
                          cwd=code, env=sweep_env(code), capture_output=True, text=True)
    return str(Path(done.stdout.strip()).parent) if done.returncode == 0 else done.stderr


def sweep(code: Path, storage: str, trials: int, jobs: int, scratch: Path,
          timeout: float) -> tuple[str, float]:
    """Run one simulated sweep; returns its status (ok, timeout or its error) and seconds."""
    command = [sys.executable, "-m", "mnsearch", "sweep", str(code / SPACE), "--simulate",
               "--sampler", "random", "--study", STUDY, "--storage", storage,
               "--trials", str(trials), "--jobs", str(jobs), "--no-early-stopping",
               "--out", str(scratch / "runs"), "--artifacts", str(scratch / "artifacts")]
    log = scratch / "sweep.log"
    started = time.perf_counter()
    with open(log, "w") as stream:
        process = subprocess.Popen(command, cwd=code, env=sweep_env(code), stdout=stream,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(process)
            return "timeout", time.perf_counter() - started
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else ""
        return f"exit {process.returncode}: {last}"[:300], seconds
    return "ok", seconds


def stop_group(process: subprocess.Popen[Any]) -> None:
    """Stop a timed-out sweep and its workers (its own process group), politely first."""
    for signum, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


# --- the seed and the prefilled journal ---

def make_seed(code: Path, trials: int, cache: Path, timeout: float) -> Path:
    """The seed study: `trials` real simulated trials in a journal, made once (cached)."""
    path = cache / f"seed-{trials}.journal"
    if path.exists():
        print(f"seed: {path} (cached)")
        return path
    with tempfile.TemporaryDirectory(dir=cache) as folder:
        scratch = Path(folder)
        status, seconds = sweep(code, str(scratch / "seed.journal"), trials, 1, scratch, timeout)
        if status != "ok":
            raise SystemExit(f"the seed sweep failed ({status}); its log: {scratch}/sweep.log")
        journal = scratch / "seed.journal"
        created, finished = seed_trials(journal)
        if created != trials or finished != trials:
            raise SystemExit(f"the seed has {created} trials, {finished} finished; "
                             f"expected {trials} finished")
        os.replace(journal, path)
    print(f"seed: {trials:,} simulated trials in {seconds:.1f} s: {path}")
    return path


def seed_trials(journal: Path) -> tuple[int, int]:
    """Trials created in a journal, and how many of them reached a finished state."""
    created, finished = 0, set()
    with open(journal) as stream:
        for line in stream:
            op = int(_OP.search(line)[1])
            if op == _CREATE_TRIAL:
                created += 1
            elif op == _SET_STATE and json.loads(line)["state"] in (1, 2, 3):
                finished.add(int(_TRIAL_ID.search(line)[1]))
    return created, len(finished)


def prefilled_journal(seed: Path, size: int, cache: Path) -> tuple[Path, float]:
    """A journal holding `size` finished trials (cached); seconds to write it (0 if cached)."""
    path = cache / f"{seed.stem}-n{size}.journal"
    if path.exists():
        return path, 0.0
    started = time.perf_counter()
    head, trials = parse_seed(seed)
    per_copy = len(trials)
    with tempfile.NamedTemporaryFile("w", dir=cache, suffix=".part", delete=False) as stream:
        stream.writelines(head)
        for copy in range(math.ceil(size / per_copy)):
            keep = min(per_copy, size - copy * per_copy)
            stream.writelines(render(pieces, copy, per_copy)
                              for trial in trials[:keep] for pieces in trial)
    os.replace(stream.name, path)
    return path, time.perf_counter() - started


def parse_seed(seed: Path) -> tuple[list[str], list[list[list[str]]]]:
    """The seed's study lines, and each trial's lines (in creation order) cut into pieces:
    literal text alternating with the numbers to shift (trial ids, `duplicate_of`), and a
    configuration key to mark, so that a copy is a join."""
    head: list[str] = []
    trials: list[list[list[str]]] = []
    with open(seed) as stream:
        for line in stream:
            op = int(_OP.search(line)[1])
            if op == _CREATE_TRIAL:
                trials.append([[line]])
                continue
            number = _TRIAL_ID.search(line)
            if number is None:
                head.append(line)
                continue
            trials[int(number[1])].append(cut(line))
    return head, trials


def cut(line: str) -> list[str]:
    """`line` as [text, number, text, number, ..., text]; a configuration key's end is a
    number slot holding "" (the copy's suffix goes there)."""
    slots = [(m.start(1), m.end(1)) for pattern in (_TRIAL_ID, _DUPLICATE_OF)
             for m in pattern.finditer(line)]
    slots += [(m.end(), m.end()) for m in _CONFIG_KEY.finditer(line)]
    pieces, last = [], 0
    for start, end in sorted(slots):
        pieces += [line[last:start], line[start:end]]
        last = end
    return pieces + [line[last:]]


def render(pieces: list[str], copy: int, per_copy: int) -> str:
    """One copied line: numbers shifted by `copy * per_copy`, configuration keys suffixed."""
    if copy == 0 or len(pieces) == 1:
        return "".join(pieces)
    out = pieces[:]
    for slot in range(1, len(out), 2):
        out[slot] = str(int(out[slot]) + copy * per_copy) if out[slot] else f"-c{copy}"
    return "".join(out)


def journal_new_trials(journal: Path, offset: int, before: int) -> NewTrials:
    """The trials a run appended after byte `offset` of a one-study journal (number = id)."""
    starts: dict[int, datetime] = {}
    ends: dict[int, tuple[int, datetime]] = {}
    duplicates: set[int] = set()
    workers: dict[int, str] = {}
    created = before
    with open(journal, "rb") as stream:
        stream.seek(offset)
        for raw in stream:
            if not raw.endswith(b"\n"):
                break  # a torn last line (a run stopped at --timeout)
            line = raw.decode()
            op = int(_OP.search(line)[1])
            if op == _CREATE_TRIAL:
                log = json.loads(line)
                if log.get("datetime_start"):
                    starts[created] = datetime.fromisoformat(log["datetime_start"])
                created += 1
            elif op == _SET_STATE:
                log = json.loads(line)
                if log.get("datetime_start"):
                    starts[log["trial_id"]] = datetime.fromisoformat(log["datetime_start"])
                if log["state"] in (1, 2, 3) and log.get("datetime_complete"):
                    ends[log["trial_id"]] = (log["state"],
                                             datetime.fromisoformat(log["datetime_complete"]))
            elif '"duplicate_of"' in line:
                duplicates.add(int(_TRIAL_ID.search(line)[1]))
            elif (worker := _WORKER.search(line)) is not None:
                workers[int(_TRIAL_ID.search(line)[1])] = worker[1]
    finished = {number: end for number, end in ends.items() if number >= before}
    return summarise([(starts.get(number), end, workers.get(number))
                      for number, (_, end) in finished.items()],
                     sum(state == 3 for state, _ in finished.values()),
                     len(duplicates & set(finished)))


def summarise(trials: list[tuple[datetime | None, datetime, str | None]], failed: int,
              duplicates: int) -> NewTrials:
    """Totals over the finished new trials, each (start, end, worker)."""
    starts = [start for start, _, _ in trials if start is not None]
    if not starts:
        return NewTrials(len(trials), failed, duplicates, math.nan)
    wall = (max(end for _, end, _ in trials) - min(starts)).total_seconds()
    spans: dict[str, list[datetime]] = {}
    for start, end, worker in trials:
        if start is not None and worker is not None:
            first_last = spans.setdefault(worker, [start, end])
            first_last[0], first_last[1] = min(first_last[0], start), max(first_last[1], end)
    if not spans:
        return NewTrials(len(trials), failed, duplicates, wall)
    opened = max(first for first, _ in spans.values())  # the last worker's first trial
    closed = min(last for _, last in spans.values())  # the first worker's last one
    steady = [1 for start, end, _ in trials if start is not None and opened <= start
              and end <= closed]
    return NewTrials(len(trials), failed, duplicates, wall, len(steady),
                     (closed - opened).total_seconds())


def measure_journal(code: Path, commit: str, prefilled: Path, size: int, workers: int,
                    args: argparse.Namespace) -> Row:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        scratch = Path(folder)
        journal = scratch / "scale.journal"
        started = time.perf_counter()
        shutil.copyfile(prefilled, journal)
        copied = time.perf_counter() - started
        offset = journal.stat().st_size
        status, seconds = sweep(code, str(journal), size + args.measure, workers, scratch,
                                args.timeout)
        trials = journal_new_trials(journal, offset, size)
    return make_row(commit, "journal", size, workers, status, trials, seconds, copied)


def make_row(commit: str, storage: str, size: int, workers: int, status: str,
             trials: NewTrials, seconds: float, prefill: float) -> Row:
    per_trial = trials.wall_s / trials.new * 1000 if trials.new else math.nan
    steady = (trials.steady_s / trials.steady_trials * 1000 if trials.steady_trials >= 10
              else math.nan)  # fewer: the workers hardly overlapped
    return Row(commit, storage, size, workers, status, trials.new, trials.failed,
               trials.duplicates, trials.wall_s, per_trial, per_trial * workers,
               trials.steady_trials, steady, seconds, prefill)


# --- PostgreSQL ---

def server_url(url: str, database: str) -> sa.URL:
    return sa.make_url(url).set(database=database)


@contextmanager
def admin(url: str) -> Iterator[sa.Connection]:
    """An AUTOCOMMIT connection to the server's `postgres` database (CREATE/DROP DATABASE)."""
    engine = sa.create_engine(server_url(url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def create_database(url: str, name: str, template: str | None = None) -> None:
    with admin(url) as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        copy = f' TEMPLATE "{template}"' if template else ""
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{copy}'))


def drop_database(url: str, name: str) -> None:
    with admin(url) as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def template_database(url: str, journal: Path, size: int) -> Iterator[tuple[str, str]]:
    """A database holding the prefilled study, copied by each run; dropped at the end."""
    name = f"mnsearch_bench_scale_{size}_{os.getpid()}"
    create_database(url, name)
    try:
        started = time.perf_counter()
        insert_study(server_url(url, name).render_as_string(hide_password=False), journal)
        print(f"PostgreSQL prefill, {size:,} trials: {time.perf_counter() - started:.1f} s "
              f"(database {name} on {mask_password(url)})")
        yield url, name
    finally:
        drop_database(url, name)


def insert_study(database: str, journal: Path) -> None:
    """Create the study with Optuna's API and bulk-insert the journal's trials into it."""
    started = time.perf_counter()
    source = JournalStorage(JournalFileBackend(str(journal)))  # replays the whole journal
    seed = optuna.load_study(study_name=STUDY, storage=source)
    trials = seed.get_trials(deepcopy=False)
    print(f"  read {len(trials):,} trials from the journal: {time.perf_counter() - started:.1f} s")
    storage = RDBStorage(database)
    try:
        study = optuna.create_study(storage=storage, study_name=STUDY,
                                    directions=seed.directions)
        for key, value in seed.user_attrs.items():
            storage.set_study_user_attr(study._study_id, key, value)
        for key, value in source.get_study_system_attrs(seed._study_id).items():
            storage.set_study_system_attr(study._study_id, key, value)
        for first in range(0, len(trials), BATCH):
            with storage.engine.begin() as connection:  # one transaction per batch
                insert_trials(connection, study._study_id, trials[first:first + BATCH])
            print(f"  inserted {min(first + BATCH, len(trials)):,} / {len(trials):,} trials "
                      f"({time.perf_counter() - started:.1f} s)", flush=True)
    finally:
        storage.engine.dispose()


def insert_trials(connection: sa.Connection, study_id: int, trials: list[FrozenTrial]) -> None:
    """One batch, as `RDBStorage.create_new_trial(template_trial=...)` would write it."""
    table = models.TrialModel.__table__
    ids = connection.execute(
        sa.insert(table).returning(table.c.trial_id, sort_by_parameter_order=True),
        [{"number": trial.number, "study_id": study_id, "state": trial.state,
          "datetime_start": naive_utc(trial.datetime_start),
          "datetime_complete": naive_utc(trial.datetime_complete)} for trial in trials],
    ).scalars().all()
    params, values, user, system, intermediate = [], [], [], [], []
    for trial_id, trial in zip(ids, trials, strict=True):
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            params.append({"trial_id": trial_id, "param_name": name,
                           "param_value": distribution.to_internal_repr(value),
                           "distribution_json": optuna.distributions.distribution_to_json(
                               distribution)})
        for objective, value in enumerate(trial.values or []):
            stored, kind = models.TrialValueModel.value_to_stored_repr(value)
            values.append({"trial_id": trial_id, "objective": objective, "value": stored,
                           "value_type": kind})
        user += [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                 for key, value in trial.user_attrs.items()]
        system += [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                   for key, value in trial.system_attrs.items()]
        for step, value in trial.intermediate_values.items():
            stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(
                value)
            intermediate.append({"trial_id": trial_id, "step": step,
                                 "intermediate_value": stored, "intermediate_value_type": kind})
    for model, rows in ((models.TrialParamModel, params), (models.TrialValueModel, values),
                        (models.TrialUserAttributeModel, user),
                        (models.TrialSystemAttributeModel, system),
                        (models.TrialIntermediateValueModel, intermediate)):
        if rows:
            connection.execute(sa.insert(model.__table__), rows)


def naive_utc(moment: datetime | None) -> datetime | None:
    """A FrozenTrial's naive local time as the naive UTC the trials table holds."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


def measure_postgres(code: Path, commit: str, template: tuple[str, str], size: int,
                     workers: int, args: argparse.Namespace) -> Row:
    url, source = template
    name = f"mnsearch_bench_scale_run_{os.getpid()}"
    started = time.perf_counter()
    create_database(url, name, template=source)
    copied = time.perf_counter() - started
    database = server_url(url, name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
            status, seconds = sweep(code, database, size + args.measure, workers, Path(folder),
                                    args.timeout)
        trials = postgres_new_trials(database, size)
    finally:
        drop_database(url, name)
    return make_row(commit, "postgresql", size, workers, status, trials, seconds, copied)


def postgres_new_trials(database: str, before: int) -> NewTrials:
    trials, studies = models.TrialModel.__table__, models.StudyModel.__table__
    attributes = models.TrialUserAttributeModel.__table__
    engine = sa.create_engine(database)
    try:
        with engine.connect() as connection:
            new = (sa.select(trials.c.trial_id, trials.c.state, trials.c.datetime_start,
                             trials.c.datetime_complete)
                   .join(studies, studies.c.study_id == trials.c.study_id)
                   .where(studies.c.study_name == STUDY, trials.c.number >= before))
            rows = [row for row in connection.execute(new) if row.state in FINISHED
                    and row.datetime_complete is not None]
            ids = {row.trial_id for row in rows}
            duplicated = connection.execute(
                sa.select(attributes.c.trial_id).where(attributes.c.key == "duplicate_of",
                                                       attributes.c.trial_id.in_(ids))
            ).scalars().all() if ids else []
            workers = dict(connection.execute(
                sa.select(attributes.c.trial_id, attributes.c.value_json)
                .where(attributes.c.key == "worker", attributes.c.trial_id.in_(ids))
            ).all()) if ids else {}
    finally:
        engine.dispose()
    return summarise([(row.datetime_start, row.datetime_complete,
                       workers.get(row.trial_id)) for row in rows],
                     sum(row.state == TrialState.FAIL for row in rows), len(set(duplicated)))


# --- output ---

def print_row(row: Row) -> None:
    if row.status != "ok":
        print(f"{row.storage:>10} {row.before:>8,} trials, {row.workers} worker(s): "
              f"{row.status}")
    if row.new:
        print(f"{row.storage:>10} {row.before:>8,} trials, {row.workers} worker(s): "
              f"{row.new} new ({row.failed} failed, {row.duplicates} duplicates) in "
              f"{row.wall_s:.1f} s: {row.ms_per_trial:.1f} ms/trial, "
              f"{row.worker_ms_per_trial:.1f} worker-ms/trial, steady "
              f"{row.steady_ms_per_trial:.1f} ms/trial over {row.steady_trials}; "
              f"command {row.command_s:.1f} s, "
              f"storage ready in {row.prefill_s:.1f} s", flush=True)


def print_table(rows: list[Row]) -> None:
    print(f"\n{'storage':>10} {'before':>8} {'W':>2} {'new':>5} {'wall s':>7} "
          f"{'ms/trial':>9} {'worker-ms':>10} {'steady':>7} {'command s':>10}  status")
    for row in rows:
        print(f"{row.storage:>10} {row.before:>8,} {row.workers:>2} {row.new:>5} "
              f"{row.wall_s:>7.1f} {row.ms_per_trial:>9.1f} {row.worker_ms_per_trial:>10.1f} "
              f"{row.steady_ms_per_trial:>7.1f} "
              f"{row.command_s:>10.1f}  {row.status}")
    groups = sorted({(row.storage, row.workers) for row in rows})
    print(f"\ngoal: steady ms/trial at the largest size within {GOAL:g}x of the smallest")
    for storage, workers in groups:
        measured = sorted((row.before, row.steady_ms_per_trial) for row in rows
                          if (row.storage, row.workers) == (storage, workers)
                          and row.status == "ok" and not math.isnan(row.steady_ms_per_trial))
        if len(measured) < 2:
            print(f"{storage:>10}, {workers} worker(s): fewer than two sizes measured")
            continue
        (small, low), (large, high) = measured[0], measured[-1]
        ratio = high / low
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(f"{storage:>10}, {workers} worker(s): {large:,} / {small:,} trials = "
              f"{high:.1f} / {low:.1f} ms = {ratio:.2f}x ({verdict})")


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=[field.name for field in fields(Row)])
        writer.writeheader()
        writer.writerows({key: round(value, 4) if isinstance(value, float) else value
                          for key, value in asdict(row).items()} for row in rows)
    print(f"rows: {path}")


if __name__ == "__main__":
    main()
