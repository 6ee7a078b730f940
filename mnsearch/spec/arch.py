"""Architecture specs: a MobileNet is data (stem, stages of blocks, head), with no JAX import.

Everything that must be fast or must not pull in JAX — the cost model, Optuna search spaces, pandas
tables, plots — works on these frozen dataclasses. The NNX layer (`mnsearch.nn.model`) builds any of
them. A whole spec round-trips through a plain dict (YAML/JSON) with `spec_to_dict` /
`spec_from_dict`, its blocks written as block strings (`mnsearch.spec.blocks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from mnsearch.spec.blocks import (
    PADDINGS,
    SE_GATES,
    STRIDE_SCHEDULES,
    BlockSpec,
    HeadSpec,
    SpecError,
    format_block,
    parse_block,
)
from mnsearch.spec.plan import layer_plan
from mnsearch.spec.values import (
    MAX_BLOCKS,
    MAX_RESOLUTION,
    MAX_WIDTH,
    check_choice,
    checked_int,
    checked_number,
    checked_text,
    shown,
    store,
)

# The integer fields and their upper limits (see `mnsearch.spec.values`), and the float fields.
_INT_FIELDS = {"resolution": MAX_RESOLUTION, "base_resolution": MAX_RESOLUTION,
               "in_channels": MAX_WIDTH, "num_classes": MAX_WIDTH, "channel_divisor": 1024}
_NUMBER_FIELDS = ("alpha", "bn_momentum", "bn_epsilon", "input_scale", "input_offset")


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: input, stem, stages of blocks, head, and the numerics that matter.

    `stages` keep the family's published strides; `stride_schedule` names which early stride-2
    layers run at stride 1 (see `STRIDE_SCHEDULES` and `layer_plan`). `alpha` is recorded for
    tables and plots: the widths in the blocks are already scaled by it.
    """

    name: str
    family: str
    resolution: int
    stem: BlockSpec
    stages: tuple[tuple[BlockSpec, ...], ...]
    head: HeadSpec = field(default_factory=HeadSpec)
    in_channels: int = 3
    num_classes: int = 1000
    alpha: float = 1.0
    base_resolution: int = 224
    stride_schedule: str = "paper"
    padding: str = "same"
    channel_divisor: int = 8
    se_gate: str = "hard_sigmoid"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    input_scale: float = 1.0
    input_offset: float = 0.0

    def __post_init__(self) -> None:
        _check_scalars(self)
        check_choice("stride_schedule", self.stride_schedule, tuple(STRIDE_SCHEDULES))
        check_choice("padding", self.padding, PADDINGS)
        check_choice("se_gate", self.se_gate, SE_GATES)
        _check_parts(self)
        if self.stem.block_type != "cn":
            raise SpecError(f"the stem must be a 'cn' block, got '{self.stem.block_type}'")
        if self.alpha <= 0:
            raise SpecError(f"alpha (width multiplier) must be > 0, got {self.alpha}")
        if not 0.0 < self.bn_momentum < 1.0 or self.bn_epsilon <= 0:
            raise SpecError("bn_momentum must be in (0, 1) (Flax/Keras convention), bn_epsilon > 0")
        layer_plan(self)  # a spec whose resolution does not fit its strides cannot exist

    @property
    def rho(self) -> float:
        """Resolution multiplier ρ = resolution / base_resolution (V1 paper, section 3.3)."""
        return self.resolution / self.base_resolution

    @property
    def blocks(self) -> tuple[BlockSpec, ...]:
        """All blocks of all stages, in order (the stem excluded)."""
        return tuple(block for stage in self.stages for block in stage)

    def replace(self, **changes: Unpack[SpecChanges]) -> ArchSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_scalars(spec: ArchSpec) -> None:
    """Type-check the scalar fields (a float resolution or a NaN alpha never gets further)."""
    for name in ("name", "family"):
        checked_text(name, getattr(spec, name))
    for name, high in _INT_FIELDS.items():
        store(spec, name, checked_int(name, getattr(spec, name), 1, high))
    for name in _NUMBER_FIELDS:
        store(spec, name, checked_number(name, getattr(spec, name)))


def _check_parts(spec: ArchSpec) -> None:
    """Stem, stages and head of the right classes; stages stored as tuples of tuples.

    Callers may hand in lists (`spec.replace(stages=[...])`); tuples keep the spec hashable.
    """
    if not isinstance(spec.stem, BlockSpec) or not isinstance(spec.head, HeadSpec):
        raise SpecError(f"the stem must be a BlockSpec and the head a HeadSpec, got "
                        f"{shown(spec.stem)} and {shown(spec.head)}")
    stages = tuple(tuple(stage) for stage in spec.stages)
    if not stages or not all(stages):
        raise SpecError("a spec needs at least one stage, and every stage at least one block")
    if not all(isinstance(block, BlockSpec) for stage in stages for block in stage):
        raise SpecError("every block of every stage must be a BlockSpec")
    if sum(len(stage) for stage in stages) > MAX_BLOCKS:
        raise SpecError(f"a spec has at most {MAX_BLOCKS} blocks, got "
                        f"{sum(len(stage) for stage in stages)}")
    store(spec, "stages", stages)


class SpecChanges(TypedDict, total=False):
    """Keyword arguments of `ArchSpec.replace`: any ArchSpec field (a test keeps them in step)."""

    name: str
    family: str
    resolution: int
    stem: BlockSpec
    stages: tuple[tuple[BlockSpec, ...], ...]
    head: HeadSpec
    in_channels: int
    num_classes: int
    alpha: float
    base_resolution: int
    stride_schedule: str
    padding: str
    channel_divisor: int
    se_gate: str
    bn_momentum: float
    bn_epsilon: float
    input_scale: float
    input_offset: float


_SCALAR_FIELDS = tuple(f.name for f in dataclasses.fields(ArchSpec)
                       if f.name not in ("stem", "stages", "head"))


def spec_to_dict(spec: ArchSpec) -> dict[str, object]:
    """Plain dict (YAML/JSON-ready) with blocks as block strings; `spec_from_dict` inverts it."""
    data: dict[str, object] = {name: getattr(spec, name) for name in _SCALAR_FIELDS}
    data["stem"] = format_block(spec.stem)
    data["stages"] = [[format_block(block) for block in stage] for stage in spec.stages]
    data["head"] = dataclasses.asdict(spec.head)
    return data


def spec_from_dict(data: object, source: str = "spec") -> ArchSpec:
    """Build a spec from its dict form; errors name `source`, the field and the allowed set.

    `data` is whatever a YAML/JSON file or a database row held, so it is checked here (and by
    the dataclasses) rather than trusted by its type.
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: a spec must be a mapping of fields, got {type(data).__name__}")
    allowed = (*_SCALAR_FIELDS, "stem", "stages", "head")
    unknown = sorted((key for key in data if key not in allowed), key=str)
    if unknown:
        raise SpecError(f"{source}: unknown field {shown(unknown[0])} "
                        f"(allowed: {', '.join(allowed)})")
    required = ("name", "family", "resolution", "stem", "stages")
    missing = [name for name in required if name not in data]
    if missing:
        raise SpecError(f"{source}: missing field '{missing[0]}' (required: {', '.join(required)})")
    fields = {name: data[name] for name in _SCALAR_FIELDS if name in data}
    try:
        return ArchSpec(stem=_parsed_block("stem", data["stem"]),
                        stages=_parsed_stages(data["stages"]),
                        head=_parsed_head(data.get("head", {})), **fields)
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None


def _parsed_block(field: str, text: object) -> BlockSpec:
    if not isinstance(text, str):
        raise SpecError(f"field '{field}': expected a block string, got {shown(text)}")
    return parse_block(text)


def _parsed_stages(stages: object) -> tuple[tuple[BlockSpec, ...], ...]:
    if not isinstance(stages, list) or not all(isinstance(stage, list) for stage in stages):
        raise SpecError("field 'stages' must be a list of lists of block strings")
    if sum(len(stage) for stage in stages) > MAX_BLOCKS:  # before parsing them all
        raise SpecError(f"field 'stages': a spec has at most {MAX_BLOCKS} blocks")
    return tuple(tuple(_parsed_block("stages", text) for text in stage) for stage in stages)


def _parsed_head(head: object) -> HeadSpec:
    if not isinstance(head, Mapping) or set(head) - {"channels", "activation", "dropout"}:
        raise SpecError("field 'head' must be a mapping with channels, activation, dropout")
    return HeadSpec(**head)
