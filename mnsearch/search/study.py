"""A sweep's study and recipe: the options, the training recipe of every trial, the
configuration key that makes "never train twice" possible, the sampler, and the grid enqueued.

Shared by the sweep (`search.runner`, `search.worker`) and `mnsearch finalize`
(`search.finalize`), which runs the same machinery on a listed space.
"""

from __future__ import annotations

import hashlib
import json
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from mnsearch.search.early_stopping import MIN_DOMINATING
from mnsearch.search.locks import study_lock
from mnsearch.search.options import check_sweep_options
from mnsearch.search.record import StudyRecord
from mnsearch.search.space import SearchSpace, SpaceError
from mnsearch.search.storage import open_storage
from mnsearch.spec.arch import ArchSpec, spec_to_dict
from mnsearch.train.config import TrainConfig, recipe_identity


@dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep (the space says what to search)."""

    study_name: str
    storage: str | None = None
    trials: int | None = None
    timeout: float | None = None
    sampler: str | None = None
    jobs: int = 1
    epochs: int | None = None
    subset: float | None = None
    seed: int = 0
    early_stopping: bool = True
    min_dominating: int = MIN_DOMINATING
    artifacts: str = "mnsearch-artifacts"
    simulate: bool = False  # synthetic accuracies, no training (`search.simulate`)

    def __post_init__(self) -> None:
        check_sweep_options(self)  # a bad value fails here, not in a worker hours later


def recipe(space: SearchSpace, options: SweepOptions) -> TrainConfig:
    """The training config of every trial: the space's recipe, with --epochs/--subset applied."""
    values = dict(space.recipe)
    if options.epochs is not None:
        values["epochs"] = options.epochs
    if options.subset is not None:
        values["subset"] = options.subset
    if "lr" in values:
        values["learning_rate"] = values.pop("lr")
    subset = values.get("subset")
    if subset is not None and subset > 1:  # 1.0 is the whole split, 2000.0 a count
        values["subset"] = int(subset)
    return TrainConfig(**values)


def config_key(spec: ArchSpec, config: TrainConfig, dataset: str) -> str:
    """Identity of an evaluation: the same spec, recipe and dataset give the same key.

    The recipe enters as `recipe_identity`, so a field added to `TrainConfig` later changes
    no key while it is at the value that trains as before (resumed studies keep their keys).
    """
    text = json.dumps([spec_to_dict(spec), recipe_identity(config), dataset], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """Optuna sampler by name; `grid` enqueues every point and samples nothing itself."""
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def sampler_seed(seed: int, trials: int, rank: int) -> int:
    """The seed of one worker's sampler: `--seed`, moved by the trials already in the study
    and the worker's rank and host.

    With `--seed` alone, every worker (`--jobs N`, other machines) and every resumed sweep
    draws the same sequence: a random sampler then re-proposes the configurations already
    evaluated, each answered from the record instead of exploring (measured: every trial of
    a resumed simulated sweep was a duplicate). A fresh one-worker sweep stays reproducible.
    """
    host = zlib.crc32(socket.gethostname().encode())
    return int(np.random.SeedSequence([seed, trials, rank, host]).generate_state(1)[0])


def open_study(space: SearchSpace, options: SweepOptions, rank: int = 0) -> optuna.Study:
    """Create the study, or load it when it exists (then the objectives must agree); its
    sampler is seeded for this worker (`sampler_seed`)."""
    sampler_name = options.sampler or space.sampler
    study = optuna.create_study(
        study_name=options.study_name, storage=open_storage(options.storage),
        directions=space.directions, load_if_exists=True)
    trials = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(sampler_name, sampler_seed(options.seed, trials, rank))
    if "objectives" not in study.user_attrs:  # a new study
        StudyRecord(tuple(space.objectives), space.name, space.dataset,
                    simulated=options.simulate or None).write(study)
    existing = StudyRecord.of(study)
    if list(existing.objectives) != list(space.objectives):
        raise SpaceError(f"study '{options.study_name}' optimises {list(existing.objectives)}, "
                         f"the space {list(space.objectives)}: use another --study name")
    if bool(existing.simulated) != options.simulate:
        kind = "simulated (--simulate)" if existing.simulated else "trained"
        raise SpaceError(f"study '{options.study_name}' is {kind}: "
                         f"{'add' if existing.simulated else 'drop'} --simulate to resume it, "
                         "or use another --study name")
    return study


def enqueue_grid(study: optuna.Study, space: SearchSpace,
                 madds_of: Callable[[dict[str, Any]], float] | None = None) -> int:
    """Enqueue every grid point not already finished, running or waiting; returns how many.

    Under the study's lock, so sweeps started together enqueue the grid once between them. A
    point that failed is enqueued again (a retry); one rejected or stopped early is not (the
    same recipe would reject or stop it again). With `madds_of`, the cheapest points go first:
    they finish soonest and give the early-stopping rule the cheaper, better trials it needs
    to stop expensive ones.
    """
    grid = sorted(space.grid(), key=madds_of) if madds_of else space.grid()
    added = 0
    with study_lock(study):
        # A waiting trial has no params yet: its enqueued values are in system_attrs.
        seen = {json.dumps(trial.params or trial.system_attrs.get("fixed_params", {}),
                           sort_keys=True) for trial in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING,
                                    TrialState.WAITING))}
        for params in grid:
            if json.dumps(params, sort_keys=True) not in seen:
                study.enqueue_trial(params)
                added += 1
    return added
