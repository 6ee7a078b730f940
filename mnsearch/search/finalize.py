"""`mnsearch finalize`: train a sweep's chosen configurations at full fidelity.

A sweep ranks architectures at low fidelity (a subset, an epoch); the final models are trained
for real. Finalize makes a linked study, `NAME-final` by default, and runs the sweep's own
machinery on it (`search.runner`): workers with heartbeats, any storage, resumable, and never
training one configuration twice, since the chosen trials become a *listed* space whose points
are their recorded specs (`SearchSpace.listed`). Each final trial records the proxy trial it
came from (`TrialRecord.proxy_trial`); the final study records its proxy study and its recipe
(`StudyRecord`), so `mnsearch.results.fidelity` can pair them and a rerun with another recipe
is refused rather than mixed in.

The final recipe is the proxy's with every training image (`subset` none) and
`DEFAULT_EPOCHS` epochs, then `--epochs`, `--subset` and `--set key=value` on top. Its cosine
schedule spans the whole run, so a final run is a complete schedule, not a longer proxy.
Early stopping is off unless asked for: the point is to know every chosen model's accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnsearch.data.load import load_dataset
from mnsearch.errors import MnsearchError
from mnsearch.search.options import check_study_name, check_subset_fits
from mnsearch.search.record import OBJECTIVES, StudyRecord, TrialRecord
from mnsearch.search.space import LISTED_DIMENSION, SearchSpace
from mnsearch.search.storage import load_study, open_existing_storage, open_storage
from mnsearch.search.study import SweepOptions
from mnsearch.train.config import TrainConfig, config_from_settings, with_added_fields

FINAL_SUFFIX = "-final"
# Five epochs on every training image: the budget of the fidelity experiment (the V1 grid's 16
# models take about 80 minutes on 2 CPU cores). Pass more with --epochs on faster machines.
DEFAULT_EPOCHS = 5


class FinalizeError(MnsearchError):
    """A finalize request that cannot be run: nothing is created or trained."""


@dataclass(frozen=True)
class Selection:
    """Which proxy trials to finalize: the Pareto front, listed numbers, or the K best."""

    pareto: bool = False
    trials: tuple[int, ...] = ()
    top: int | None = None

    def __post_init__(self) -> None:
        given = sum((self.pareto, bool(self.trials), self.top is not None))
        if given != 1:
            raise FinalizeError("choose the trials with exactly one of --pareto, --trials "
                                "N,M,... or --top K")
        if self.top is not None and self.top < 1:
            raise FinalizeError(f"--top must be a whole number >= 1, got {self.top}")

    def describe(self) -> str:
        if self.pareto:
            return "the Pareto front"
        if self.trials:
            return "trials " + ",".join(map(str, self.trials))
        return f"the top {self.top} by validation accuracy"


@dataclass(frozen=True)
class FinalizeOptions:
    """A finalize request (`mnsearch finalize`'s flags)."""

    study_name: str
    selection: Selection
    storage: str | None = None
    final_study: str | None = None
    epochs: int = DEFAULT_EPOCHS
    subset: float | None = None  # None: every training image
    settings: tuple[str, ...] = ()  # --set key=value, on top of the proxy recipe
    jobs: int = 1
    early_stopping: bool = False
    artifacts: str = "mnsearch-artifacts"

    @property
    def final_name(self) -> str:
        return self.final_study or final_study_name(self.study_name)


def final_study_name(proxy: str) -> str:
    """The default name of a proxy study's final study."""
    return f"{proxy}{FINAL_SUFFIX}"


def select_trials(study: optuna.Study, selection: Selection) -> list[FrozenTrial]:
    """The proxy trials `selection` names, checked: each has a spec and an accuracy to compare
    (complete, or stopped early by the rung rule); never empty."""
    trials = study.get_trials(deepcopy=False)
    if selection.trials:
        chosen = [_finalizable(study, trials, number) for number in selection.trials]
    else:
        complete = [trial for trial in trials if trial.state == TrialState.COMPLETE
                    and TrialRecord.of(trial).duplicate_of is None]
        if selection.pareto:
            front = {trial.number for trial in study.best_trials}
            chosen = [trial for trial in complete if trial.number in front]
        else:
            chosen = sorted(complete, key=lambda trial: (-_accuracy(trial), trial.number))
            chosen = chosen[:selection.top]
    if not chosen:
        raise FinalizeError(f"study '{study.study_name}': {selection.describe()} selects no "
                            "trial (it has no complete trial yet): nothing to finalize")
    unique = {trial.number: trial for trial in chosen}
    return sorted(unique.values(), key=lambda trial: trial.number)


def _accuracy(trial: FrozenTrial) -> float:
    value = TrialRecord.of(trial).val_accuracy
    return float("-inf") if value is None else value


def _finalizable(study: optuna.Study, trials: Sequence[FrozenTrial], number: int) -> FrozenTrial:
    if not 0 <= number < len(trials):
        raise FinalizeError(f"study '{study.study_name}' has no trial {number} "
                            f"(trials 0-{len(trials) - 1})")
    trial = trials[number]
    answer = TrialRecord.of(trial)
    if trial.state == TrialState.COMPLETE or (trial.state == TrialState.PRUNED
                                              and answer.rejected is None):
        if answer.spec is None:
            raise FinalizeError(f"trial {number} recorded no spec: not an mnsearch trial")
        return trial
    reason = answer.rejected or answer.error or ""
    raise FinalizeError(f"trial {number} of study '{study.study_name}' is "
                        f"{'REJECTED' if answer.rejected else trial.state.name}"
                        f"{f' ({reason})' if reason else ''}: only complete trials, or trials "
                        "stopped early, can be finalized")


def final_recipe(proxy_trial: FrozenTrial, options: FinalizeOptions) -> TrainConfig:
    """The proxy's recipe with every training image and `options.epochs`, then `--subset` and
    `--set` on top (validated, the field named in any error)."""
    values: dict[str, Any] = dict(TrialRecord.of(proxy_trial).recipe or {})
    values.update(epochs=options.epochs, subset=options.subset)
    return config_from_settings(values, options.settings)


def prepare_finalize(options: FinalizeOptions) -> tuple[SearchSpace, SweepOptions]:
    """Check the request and create (or reopen) the final study; returns the listed space and
    the sweep options that `search.runner.run_sweep` trains it with.

    Every refusal comes before the final study is created: an unknown study, an empty
    selection, a failed or rejected trial, a final study that belongs to another proxy or was
    trained with another recipe.
    """
    check_study_name(options.final_name, "--final-study")
    proxy = load_study(open_existing_storage(options.storage), options.study_name)
    proxy_record = StudyRecord.of(proxy)
    if proxy_record.proxy_study is not None:
        raise FinalizeError(f"study '{options.study_name}' is the final study of "
                            f"'{proxy_record.proxy_study}': finalize that study instead")
    if proxy_record.simulated:
        raise FinalizeError(f"study '{options.study_name}' is SIMULATED (mnsearch sweep "
                            "--simulate): there is nothing real to finalize")
    if options.final_name == options.study_name:
        raise FinalizeError("--final-study must differ from --study")
    chosen = select_trials(proxy, options.selection)
    config = final_recipe(chosen[0], options)
    record = StudyRecord(proxy_record.objectives, proxy_record.space, proxy_record.dataset,
                         proxy_study=options.study_name, recipe=asdict(config))
    if record.dataset is None:
        raise FinalizeError(f"study '{options.study_name}' records no dataset: not made by "
                            "`mnsearch sweep`")
    check_subset_fits(config, load_dataset(record.dataset),
                      "--subset" if options.subset is not None else "the final recipe")
    _check_final_study(options, record)
    space = SearchSpace(
        name=f"final of {options.study_name}", source=f"study '{options.study_name}'",
        base="v1", dataset=record.dataset, recipe=asdict(config),
        choices={LISTED_DIMENSION: [trial.number for trial in chosen]},
        objectives=proxy_record.objectives, sampler="grid",
        listed={trial.number: TrialRecord.of(trial).spec or {} for trial in chosen})
    sweep = SweepOptions(study_name=options.final_name, storage=options.storage,
                         sampler="grid", jobs=options.jobs,
                         early_stopping=options.early_stopping, artifacts=options.artifacts)
    return space, sweep


def _check_final_study(options: FinalizeOptions, record: StudyRecord) -> None:
    """Refuse a final study of another proxy, of no proxy, or with another recipe; create it
    with its record when it does not exist."""
    storage = open_storage(options.storage)
    names = {study.study_name for study in storage.get_all_studies()}
    if options.final_name in names:
        existing = StudyRecord.of(optuna.load_study(study_name=options.final_name,
                                                    storage=storage))
        if existing.proxy_study != options.study_name:
            owner = (f"the final study of '{existing.proxy_study}'" if existing.proxy_study
                     else "a sweep's study")
            raise FinalizeError(f"study '{options.final_name}' exists and is {owner}: choose "
                                "another --final-study")
        trained = with_added_fields(existing.recipe or {})  # recorded before a field existed
        changed = sorted(name for name, value in (record.recipe or {}).items()
                         if trained.get(name) != value)
        if changed:
            shown = ", ".join(f"{name}={trained.get(name)!r}" for name in changed)
            raise FinalizeError(f"final study '{options.final_name}' was trained with {shown}: "
                                "finalize with that recipe, or choose another --final-study")
        return
    directions = [OBJECTIVES[name].direction for name in record.objectives]
    study = optuna.create_study(study_name=options.final_name, storage=storage,
                                directions=directions, load_if_exists=True)
    record.write(study)
