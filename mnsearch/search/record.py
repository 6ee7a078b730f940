"""One record of a trial: the attributes a sweep stores on an Optuna trial, named once, typed.

The worker writes a `TrialRecord`'s fields as Optuna user attributes (JSON values, so the
journal and PostgreSQL hold them alike); results, export, the model card and the dashboard read
them back with `TrialRecord.of(trial)`. A name that is not a field cannot be written, so a
typo fails where it is made instead of leaving a column silently empty downstream.

`OBJECTIVES` is the one table of what a study can optimise: the name a space file and a study
use, the record field that holds its value, and its direction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Objective:
    """An objective: its name in space files and studies, its record field, its direction."""

    name: str
    field: str
    direction: Literal["maximize", "minimize"]
    searchable: bool = True  # False: reported, never optimised (selecting on test is leakage)


OBJECTIVES: dict[str, Objective] = {objective.name: objective for objective in (
    Objective("accuracy", "val_accuracy", "maximize"),
    Objective("madds", "madds", "minimize"),
    Objective("params", "params", "minimize"),
    Objective("latency", "latency_ms", "minimize"),
    Objective("test_accuracy", "test_accuracy", "maximize", searchable=False),
    # validation accuracy of the int8 (ONNX Runtime QDQ) model: quantization-robust fronts
    Objective("int8_accuracy", "int8_accuracy", "maximize"),
)}
SEARCH_OBJECTIVES = tuple(name for name, objective in OBJECTIVES.items() if objective.searchable)
COST_OBJECTIVES = tuple(name for name, objective in OBJECTIVES.items()
                        if objective.direction == "minimize")
ACCURACY_OBJECTIVES = tuple(name for name, objective in OBJECTIVES.items()
                            if objective.direction == "maximize")


@dataclass(frozen=True)
class TrialRecord:
    """Everything a sweep records about one trial (None: not recorded, or not yet).

    Written before training: the architecture (spec, blocks, costs, α, resolution), the
    configuration key and recipe, the worker. While training: heartbeats and the accuracy at
    each rung. After: the curve, seconds, epochs, accuracies, or why it was rejected/failed,
    and which earlier trial it duplicates or retries (and how many epochs of that one's
    checkpoint it resumed from).
    """

    spec: dict[str, Any] | None = None
    blocks: str | None = None
    alpha: float | None = None
    resolution: int | None = None
    madds: int | None = None
    params: int | None = None
    params_keras: int | None = None
    latency_ms: float | None = None
    config_key: str | None = None
    recipe: dict[str, Any] | None = None
    worker: str | None = None
    heartbeat: float | None = None
    checkpoint: str | None = None
    curve: list[float] | None = None
    train_seconds: float | None = None
    phase_seconds: dict[str, float] | None = None  # see mnsearch.train.phases
    images_per_second: float | None = None  # steady-state training throughput
    epochs_done: int | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    int8_accuracy: float | None = None  # validation, int8 model (the int8_accuracy objective)
    rejected: str | None = None
    error: str | None = None
    duplicate_of: int | None = None
    retry_of: int | None = None
    resumed_epochs: int | None = None  # a retry's epochs taken over from its killed attempt
    proxy_trial: int | None = None  # a final trial's (`mnsearch finalize`) proxy trial
    rungs: dict[int, float] = field(default_factory=dict)  # stored as rung_<epoch>

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> TrialRecord:
        """Read a trial's user attributes (unknown names, from older versions, are ignored)."""
        values = {name: attributes[name] for name in FIELDS if name in attributes}
        rungs = {int(name.removeprefix(_RUNG)): value for name, value in attributes.items()
                 if name.startswith(_RUNG) and name.removeprefix(_RUNG).isdigit()}
        return cls(**values, rungs=rungs)

    @classmethod
    def of(cls, trial: HasAttributes) -> TrialRecord:
        """The record of an Optuna trial (frozen or live)."""
        return cls.from_attributes(trial.user_attrs)

    @staticmethod
    def field_of(trial: HasAttributes, name: str) -> Any:
        """One field of a trial's record without reading the others: scans of every trial in
        a study (claims, the rung rule) need one or two fields, and building whole records
        cost them 5 µs a trial (tens of ms a decision at 10,000 trials)."""
        if name not in FIELDS:
            raise AttributeError(f"'{name}' is not a TrialRecord field")
        return trial.user_attrs.get(name)

    def attributes(self) -> dict[str, Any]:
        """The user attributes this record is stored as (fields that are set)."""
        values = {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}
        values.update({rung_attribute(epoch): value for epoch, value in self.rungs.items()})
        return values

    def objective_value(self, name: str) -> Any:
        """The value of objective `name` (see `OBJECTIVES`) in this record."""
        return getattr(self, OBJECTIVES[name].field)


class HasAttributes(Protocol):
    @property
    def user_attrs(self) -> dict[str, Any]: ...


class WritableTrial(Protocol):
    def set_user_attr(self, key: str, value: Any) -> None: ...


_RUNG = "rung_"
FIELDS = tuple(f.name for f in dataclasses.fields(TrialRecord) if f.name != "rungs")


def rung_attribute(epoch: int) -> str:
    """The attribute holding a trial's validation accuracy after `epoch` epochs."""
    return f"{_RUNG}{epoch}"


def record(trial: WritableTrial, **values: Any) -> None:
    """Store record fields on a live trial; a name that is not a `TrialRecord` field is a bug.

    None values are skipped: a field not recorded reads back as None.
    """
    for name, value in values.items():
        if name not in FIELDS:
            raise AttributeError(f"'{name}' is not a TrialRecord field (fields: "
                                 f"{', '.join(FIELDS)})")
        if value is not None:
            trial.set_user_attr(name, value)


def record_rung(trial: WritableTrial, epoch: int, accuracy: float) -> None:
    """Store the validation accuracy reached after `epoch` epochs (the early-stopping rung)."""
    trial.set_user_attr(rung_attribute(epoch), accuracy)


@dataclass(frozen=True)
class StudyRecord:
    """What a sweep records on its study: the objectives, the space and the dataset.

    Written once, when the study is created; a study without them (not made by a sweep)
    reads as accuracy against Mult-Adds.
    """

    objectives: tuple[str, ...] = ("accuracy", "madds")
    space: str | None = None
    dataset: str | None = None
    proxy_study: str | None = None  # a final study's (`mnsearch finalize`) proxy study
    recipe: dict[str, Any] | None = None  # a final study's recipe, the same for every trial
    simulated: bool | None = None  # made by `mnsearch sweep --simulate`: synthetic accuracies

    @classmethod
    def of(cls, study: HasAttributes) -> StudyRecord:
        attributes = study.user_attrs
        return cls(tuple(attributes.get("objectives", cls.objectives)),
                   *(attributes.get(name) for name in _STUDY_OPTIONAL))

    def write(self, study: WritableTrial) -> None:
        """Store it on a study (`optuna.Study.set_user_attr` has the trial's signature)."""
        study.set_user_attr("objectives", list(self.objectives))
        for name in _STUDY_OPTIONAL:
            if getattr(self, name) is not None:
                study.set_user_attr(name, getattr(self, name))


# StudyRecord's optional fields, in order
_STUDY_OPTIONAL = ("space", "dataset", "proxy_study", "recipe", "simulated")
