"""Declarative search spaces (YAML in search_spaces/): validated on load, sampled with Optuna.

A space names a base preset, the dimensions to vary (α, resolution or ρ, stride schedule, block
family for the whole network, per-stage kernel/expansion/SE/activation/depth), the training
recipe (the fidelity), the objectives and the constraints. Every error names the file, the key
and what is allowed. No JAX here: sampling a spec and costing it takes microseconds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mnsearch.cost import cost
from mnsearch.errors import MnsearchError
from mnsearch.search.record import OBJECTIVES, SEARCH_OBJECTIVES
from mnsearch.spec.arch import ArchSpec
from mnsearch.spec.blocks import ACTIVATIONS, STRIDE_SCHEDULES, SpecError
from mnsearch.spec.families import PRESETS, preset

BLOCK_FAMILIES = {"v1": "v1", "v2": "v2", "v3": "v3-small", "v3-large": "v3-large",
                  "v3-small": "v3-small"}
STAGE_KEYS = ("kernel", "expansion", "se", "activation", "repeats")
SAMPLERS = ("grid", "nsga2", "tpe", "random", "gp")
_TOP_KEYS = ("name", "description", "base", "dataset", "recipe", "dimensions", "objectives",
             "constraints", "sampler")
_DIMENSION_KEYS = ("alpha", "resolution", "rho", "stride_schedule", "block", "stages")
_RECIPE_KEYS = ("epochs", "subset", "batch_size", "optimizer", "lr", "weight_decay",
                "warmup_epochs", "label_smoothing", "augment", "seed")
_CONSTRAINT_KEYS = ("max_madds", "max_params", "max_latency_ms")


class SpaceError(MnsearchError):
    """A search-space file is invalid."""


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space; `choices` maps each dimension to its list of values."""

    name: str
    source: str
    base: str
    dataset: str
    recipe: dict[str, Any]
    choices: dict[str, list[Any]]
    objectives: tuple[str, ...]
    constraints: dict[str, float] = field(default_factory=dict)
    sampler: str = "nsga2"
    description: str = ""

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:
        return [OBJECTIVES[name].direction for name in self.objectives]

    @property
    def size(self) -> int:
        """Number of configurations (the product of the choice counts)."""
        return math.prod(len(values) for values in self.choices.values())

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the choices (for grid sampling and size reports)."""
        names = sorted(self.choices)
        return [dict(zip(names, values, strict=True))
                for values in itertools.product(*(self.choices[name] for name in names))]


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file; one actionable error per problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SpaceError(f"{path}: cannot read search space ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise SpaceError(f"{path}: not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_space(data, str(path))


def parse_space(data: Any, source: str = "space") -> SearchSpace:
    """Validate the dict form of a space (see `load_space`)."""
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: a search space must be a mapping of keys")
    _check_keys(data, _TOP_KEYS, source, "")
    base = data.get("base", "v1")
    if base not in PRESETS:
        raise SpaceError(f"{source}: key 'base': unknown preset '{base}' "
                         f"(allowed: {', '.join(PRESETS)})")
    recipe = data.get("recipe") or {}
    _check_keys(recipe, _RECIPE_KEYS, source, "recipe.")
    choices = _parse_dimensions(data.get("dimensions") or {}, source)
    objectives = tuple(data.get("objectives") or ("accuracy", "madds"))
    for objective in objectives:
        if objective not in SEARCH_OBJECTIVES:
            raise SpaceError(f"{source}: key 'objectives': unknown objective '{objective}' "
                             f"(allowed: {', '.join(SEARCH_OBJECTIVES)})")
    constraints = data.get("constraints") or {}
    _check_keys(constraints, _CONSTRAINT_KEYS, source, "constraints.")
    sampler = str(data.get("sampler", "nsga2"))
    if sampler not in SAMPLERS:
        raise SpaceError(f"{source}: key 'sampler': unknown sampler '{sampler}' "
                         f"(allowed: {', '.join(SAMPLERS)})")
    return SearchSpace(str(data.get("name", Path(source).stem)), source, base,
                       str(data.get("dataset", "fashion-mnist")), dict(recipe), choices,
                       objectives, {k: float(v) for k, v in constraints.items()},
                       sampler, str(data.get("description", "")))


def _parse_dimensions(dimensions: Any, source: str) -> dict[str, list[Any]]:
    _check_keys(dimensions, _DIMENSION_KEYS, source, "dimensions.")
    if "resolution" in dimensions and "rho" in dimensions:
        raise SpaceError(f"{source}: give 'dimensions.resolution' or 'dimensions.rho', not both")
    choices: dict[str, list[Any]] = {}
    for key, value in dimensions.items():
        if key == "stages":
            choices.update(_parse_stages(value, source))
            continue
        values = _as_choice_list(value, f"dimensions.{key}", source)
        allowed = {"stride_schedule": tuple(STRIDE_SCHEDULES), "block": tuple(BLOCK_FAMILIES)}
        for item in values:
            if key in allowed and item not in allowed[key]:
                raise SpaceError(f"{source}: key 'dimensions.{key}': unknown value '{item}' "
                                 f"(allowed: {', '.join(allowed[key])})")
            if key in ("alpha", "rho") and (not isinstance(item, int | float) or item <= 0):
                raise SpaceError(f"{source}: key 'dimensions.{key}': {item!r} must be a "
                                 "number > 0")
            if key == "resolution" and (not isinstance(item, int) or item < 1):
                raise SpaceError(f"{source}: key 'dimensions.resolution': {item!r} must be a "
                                 "positive integer (pixels)")
        choices[key] = values
    return choices


def _parse_stages(stages: Any, source: str) -> dict[str, list[Any]]:
    """Per-stage choices: {"kernel": [3, 5], ...} for all stages, or {"2": {...}} per stage."""
    if not isinstance(stages, dict):
        raise SpaceError(f"{source}: key 'dimensions.stages' must be a mapping")
    choices: dict[str, list[Any]] = {}
    for key, value in stages.items():
        if key in STAGE_KEYS:
            choices[f"stage_all_{key}"] = _stage_values(key, value, f"stages.{key}", source)
        elif isinstance(value, dict) and str(key).isdigit():
            for inner, values in value.items():
                if inner not in STAGE_KEYS:
                    raise SpaceError(f"{source}: key 'dimensions.stages.{key}.{inner}': unknown "
                                     f"(allowed: {', '.join(STAGE_KEYS)})")
                choices[f"stage{key}_{inner}"] = _stage_values(
                    inner, values, f"stages.{key}.{inner}", source)
        else:
            raise SpaceError(f"{source}: key 'dimensions.stages.{key}': expected one of "
                             f"{', '.join(STAGE_KEYS)} or a stage number with those keys")
    return choices


def _stage_values(key: str, value: Any, where: str, source: str) -> list[Any]:
    values = _as_choice_list(value, f"dimensions.{where}", source)
    checks = {"kernel": lambda v: isinstance(v, int) and v % 2 == 1 and v > 0,
              "expansion": lambda v: isinstance(v, int | float) and v > 0,
              "se": lambda v: isinstance(v, int | float) and 0 <= v <= 1,
              "activation": lambda v: v in ACTIVATIONS,
              "repeats": lambda v: isinstance(v, int) and v >= 1}
    allowed = {"kernel": "odd positive integers", "expansion": "numbers > 0",
               "se": "ratios in [0, 1]", "activation": ", ".join(ACTIVATIONS),
               "repeats": "integers >= 1"}
    for item in values:
        if not checks[key](item):
            raise SpaceError(f"{source}: key 'dimensions.{where}': {item!r} is not allowed "
                             f"(allowed: {allowed[key]})")
    return values


def _as_choice_list(value: Any, key: str, source: str) -> list[Any]:
    if isinstance(value, dict) and set(value) <= {"low", "high", "step"}:
        low, high, step = value.get("low"), value.get("high"), value.get("step")
        if low is None or high is None or step is None or step <= 0 or high < low:
            raise SpaceError(f"{source}: key '{key}': a range needs low <= high and step > 0")
        count = int(round((high - low) / step)) + 1
        value = [round(low + index * step, 10) for index in range(count)]
    if not isinstance(value, list):
        value = [value]
    if not value:
        raise SpaceError(f"{source}: key '{key}': the choice list is empty (give at least one "
                         "value)")
    return value


def _check_keys(mapping: Any, allowed: tuple[str, ...], source: str, prefix: str) -> None:
    if not isinstance(mapping, dict):
        raise SpaceError(f"{source}: key '{prefix.rstrip('.')}' must be a mapping")
    for key in mapping:
        if key not in allowed:
            raise SpaceError(f"{source}: unknown key '{prefix}{key}' "
                             f"(allowed: {', '.join(prefix + name for name in allowed)})")


def check_satisfiable(space: SearchSpace, in_channels: int, num_classes: int,
                      dataset_resolution: int) -> None:
    """Refuse a space whose constraints no configuration can meet (checked on the grid)."""
    if not space.constraints:
        return
    if space.size > 20000:
        return  # too large to enumerate; infeasible trials are rejected one by one instead
    for params in space.grid():
        try:
            spec = build_spec(space, params, in_channels=in_channels,
                              num_classes=num_classes, dataset_resolution=dataset_resolution)
        except SpecError:
            continue
        if not violated_constraints(space, spec):
            return
    limits = ", ".join(f"{key} = {value:g}" for key, value in space.constraints.items())
    raise SpaceError(f"{space.source}: key 'constraints': no configuration meets {limits}; "
                     "raise the limits or add smaller choices")


def violated_constraints(space: SearchSpace, spec: ArchSpec,
                         latency_ms: float | None = None) -> list[str]:
    """Names of the constraints `spec` breaks (empty when it is feasible).

    `max_latency_ms` is checked only when a measured `latency_ms` is given: latency is a
    measurement of the machine running the trial, not a property of the spec.
    """
    totals = cost(spec)
    broken = []
    if "max_madds" in space.constraints and totals.madds > space.constraints["max_madds"]:
        broken.append(f"madds {totals.madds:,} > {space.constraints['max_madds']:,.0f}")
    if "max_params" in space.constraints and totals.params > space.constraints["max_params"]:
        broken.append(f"params {totals.params:,} > {space.constraints['max_params']:,.0f}")
    limit = space.constraints.get("max_latency_ms")
    if limit is not None and latency_ms is not None and latency_ms > limit:
        broken.append(f"latency {latency_ms:.3f} ms > {limit:g} ms")
    return broken


def build_spec(space: SearchSpace, params: dict[str, Any], *, in_channels: int,
               num_classes: int, dataset_resolution: int) -> ArchSpec:
    """The spec of one point of the space; `dataset_resolution` (the image size) is ρ = 1."""
    family = BLOCK_FAMILIES[params["block"]] if "block" in params else space.base
    if "resolution" in params:
        resolution = int(params["resolution"])
    else:
        resolution = max(1, int(round(dataset_resolution * float(params.get("rho", 1.0)))))
    options: dict[str, Any] = {"num_classes": num_classes, "in_channels": in_channels}
    if "stride_schedule" in params:
        options["stride_schedule"] = params["stride_schedule"]
    spec = preset(family, float(params.get("alpha", 1.0)), resolution, **options)
    return _apply_stage_choices(spec, params)


def _apply_stage_choices(spec: ArchSpec, params: dict[str, Any]) -> ArchSpec:
    stages = []
    for index, stage in enumerate(spec.stages):
        def pick(key: str, index: int = index) -> Any:
            return params.get(f"stage{index}_{key}", params.get(f"stage_all_{key}"))

        blocks = list(stage)
        if blocks[0].block_type == "cn":  # the final 1x1 conv is not a searchable stage
            stages.append(tuple(blocks))
            continue
        changes: dict[str, Any] = {}
        if pick("kernel") is not None:
            changes["kernel_size"] = int(pick("kernel"))
        if pick("se") is not None:
            changes["se_ratio"] = float(pick("se"))
        if pick("activation") is not None:
            changes["activation"] = pick("activation")
        blocks = [dataclasses.replace(block, **changes) for block in blocks]
        if pick("expansion") is not None:
            blocks = [dataclasses.replace(block, expansion=float(pick("expansion")))
                      if block.block_type == "ir" and block.expansion != 1.0 else block
                      for block in blocks]
        if pick("repeats") is not None:  # keep the first (strided) block, repeat the last
            repeats = int(pick("repeats"))
            tail = dataclasses.replace(blocks[-1], stride=1)
            blocks = (blocks + [tail] * repeats)[:repeats]
        stages.append(tuple(blocks))
    return spec.replace(stages=tuple(stages))
