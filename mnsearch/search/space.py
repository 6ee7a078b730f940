"""Declarative search spaces (YAML in search_spaces/): validated on load, sampled with Optuna.

A space names a base preset, the dimensions to vary (α, resolution or ρ, stride schedule, block
family for the whole network, per-stage kernel/expansion/SE/activation/depth/width), the training
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

from mnsearch.cost import cost
from mnsearch.search.record import OBJECTIVES
from mnsearch.search.space_values import (
    BLOCK_FAMILIES,
    STAGE_KEYS,
    SpaceError,
    check_recipe,
    checked_constraints,
    checked_objectives,
    checked_values,
    is_number,
    stage_number,
)
from mnsearch.spec.arch import ArchSpec, spec_from_dict
from mnsearch.spec.blocks import SpecError, make_divisible
from mnsearch.spec.families import PRESETS, preset
from mnsearch.spec.io import read_data_file
from mnsearch.spec.values import shown
from mnsearch.train.config import recipe_fields

__all__ = ["BLOCK_FAMILIES", "LISTED_DIMENSION", "STAGE_KEYS", "SAMPLERS", "SearchSpace",
           "SpaceError", "build_spec", "check_satisfiable", "load_space", "parse_space",
           "violated_constraints"]

SAMPLERS = ("grid", "nsga2", "tpe", "random", "gp")
_TOP_KEYS = ("name", "description", "base", "dataset", "recipe", "dimensions", "objectives",
             "constraints", "sampler")
_DIMENSION_KEYS = ("alpha", "resolution", "rho", "stride_schedule", "block", "stages")
# Every TrainConfig field (`lr` is the short name of learning_rate), so the main job's recipe
# and `mnsearch train --set` speak the same language.
_RECIPE_KEYS = ("lr", *(name for name in recipe_fields() if name != "learning_rate"))
_CONSTRAINT_KEYS = ("max_madds", "max_params", "max_latency_ms")
LISTED_DIMENSION = "proxy_trial"  # the one dimension of a listed space (`mnsearch finalize`)


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
    # A listed space: the architectures themselves (spec dicts) by proxy trial number, which
    # is then the one dimension; `mnsearch finalize` trains a sweep's chosen trials this way.
    listed: dict[int, dict[str, Any]] | None = None

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
    return parse_space(read_data_file(path, "search space", SpaceError), str(path))


def parse_space(data: Any, source: str = "space") -> SearchSpace:
    """Validate the dict form of a space (see `load_space`)."""
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: a search space must be a mapping of keys")
    _check_keys(data, _TOP_KEYS, source, "")
    base = data.get("base", "v1")
    if not isinstance(base, str) or base not in PRESETS:
        raise SpaceError(f"{source}: key 'base': unknown preset {shown(base)} "
                         f"(allowed: {', '.join(PRESETS)})")
    recipe = data.get("recipe") or {}
    _check_keys(recipe, _RECIPE_KEYS, source, "recipe.")
    check_recipe(recipe, source)
    choices = _parse_dimensions(data.get("dimensions") or {}, source)
    _check_stage_numbers(choices, base, source)
    objectives = checked_objectives(data.get("objectives"), source)
    constraints = data.get("constraints") or {}
    _check_keys(constraints, _CONSTRAINT_KEYS, source, "constraints.")
    sampler = data.get("sampler", "nsga2")
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise SpaceError(f"{source}: key 'sampler': unknown sampler {shown(sampler)} "
                         f"(allowed: {', '.join(SAMPLERS)})")
    return SearchSpace(_text(data, "name", Path(source).stem, source), source, base,
                       _text(data, "dataset", "fashion-mnist", source), dict(recipe), choices,
                       objectives, checked_constraints(constraints, source), sampler,
                       _text(data, "description", "", source))


def _text(data: dict[Any, Any], key: str, default: str, source: str) -> str:
    """A text field; YAML may read a name such as 2024 as a number, which is kept as text."""
    value = data.get(key, default)
    if not isinstance(value, str) and not is_number(value):
        raise SpaceError(f"{source}: key '{key}': expected text, got {shown(value)}")
    return str(value)


def _parse_dimensions(dimensions: Any, source: str) -> dict[str, list[Any]]:
    _check_keys(dimensions, _DIMENSION_KEYS, source, "dimensions.")
    if "resolution" in dimensions and "rho" in dimensions:
        raise SpaceError(f"{source}: give 'dimensions.resolution' or 'dimensions.rho', not both")
    choices: dict[str, list[Any]] = {}
    for key, value in dimensions.items():
        if key == "stages":
            choices.update(_parse_stages(value, source))
        else:
            choices[key] = checked_values(key, value, f"dimensions.{key}", source)
    return choices


def _parse_stages(stages: Any, source: str) -> dict[str, list[Any]]:
    """Per-stage choices: {"kernel": [3, 5], ...} for all stages, or {"2": {...}} per stage."""
    if not isinstance(stages, dict):
        raise SpaceError(f"{source}: key 'dimensions.stages' must be a mapping")
    choices: dict[str, list[Any]] = {}
    for key, value in stages.items():
        number = stage_number(key)
        where = f"dimensions.stages.{key}"
        if isinstance(key, str) and key in STAGE_KEYS:
            choices[f"stage_all_{key}"] = checked_values(key, value, where, source)
        elif number is not None and isinstance(value, dict):
            if any(name.startswith(f"stage{number}_") for name in choices):
                raise SpaceError(f"{source}: key '{where}': stage {number} is given twice")
            for inner, values in value.items():
                if not isinstance(inner, str) or inner not in STAGE_KEYS:
                    raise SpaceError(f"{source}: key '{where}.{shown(inner)}': unknown "
                                     f"(allowed: {', '.join(STAGE_KEYS)})")
                choices[f"stage{number}_{inner}"] = checked_values(
                    inner, values, f"{where}.{inner}", source)
        else:
            raise SpaceError(f"{source}: key {shown(where)}: expected one of "
                             f"{', '.join(STAGE_KEYS)} or a stage number with those keys")
    return choices


def _check_stage_numbers(choices: dict[str, list[Any]], base: str, source: str) -> None:
    """Refuse a per-stage choice for a stage no family of the space has: it would silently
    change nothing (V1 and V3-Small have 5 searchable stages, V3-Large 6, V2 7)."""
    families = [BLOCK_FAMILIES[block] for block in choices.get("block", [])] or [base]
    counts = [sum(stage[0].block_type != "cn" for stage in preset(family).stages)
              for family in families]
    for name in choices:
        number = name.removeprefix("stage").split("_")[0]
        if name.startswith("stage") and number.isdigit() and int(number) >= max(counts):
            raise SpaceError(f"{source}: key 'dimensions.stages.{number}': no such stage "
                             f"(stages 0-{max(counts) - 1} of {', '.join(families)} "
                             "can be searched)")


def _check_keys(mapping: Any, allowed: tuple[str, ...], source: str, prefix: str) -> None:
    if not isinstance(mapping, dict):
        raise SpaceError(f"{source}: key '{prefix.rstrip('.')}' must be a mapping")
    for key in mapping:
        if not isinstance(key, str) or key not in allowed:
            raise SpaceError(f"{source}: unknown key {shown(prefix + str(key))} "
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
    """The spec of one point of the space; `dataset_resolution` (the image size) is ρ = 1.

    A listed space's point is its recorded spec, as trained by the proxy trial it names.
    """
    if space.listed is not None:
        return spec_from_dict(space.listed[int(params[LISTED_DIMENSION])],
                              source=f"{space.source}, trial {params[LISTED_DIMENSION]}")
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
        if pick("width") is not None:  # on top of α, rounded as α's widths are
            blocks = [dataclasses.replace(block, out_channels=make_divisible(
                block.out_channels * float(pick("width")), spec.channel_divisor))
                for block in blocks]
        if pick("repeats") is not None:  # keep the first (strided) block, repeat the last
            repeats = int(pick("repeats"))
            tail = dataclasses.replace(blocks[-1], stride=1)
            blocks = (blocks + [tail] * repeats)[:repeats]
        stages.append(tuple(blocks))
    return spec.replace(stages=tuple(stages))
