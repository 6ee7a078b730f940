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
    check_choice,
    format_block,
    parse_block,
)
from mnsearch.spec.plan import layer_plan


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
        check_choice("stride_schedule", self.stride_schedule, tuple(STRIDE_SCHEDULES))
        check_choice("padding", self.padding, PADDINGS)
        check_choice("se_gate", self.se_gate, SE_GATES)
        if self.stem.block_type != "cn":
            raise SpecError(f"the stem must be a 'cn' block, got '{self.stem.block_type}'")
        if not self.stages or not all(self.stages):
            raise SpecError("a spec needs at least one stage, and every stage at least one block")
        for name in ("resolution", "in_channels", "num_classes", "channel_divisor"):
            if getattr(self, name) < 1:
                raise SpecError(f"{name} must be a positive integer, got {getattr(self, name)}")
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
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise SpecError(f"{source}: unknown field '{unknown[0]}' (allowed: {', '.join(allowed)})")
    required = ("name", "family", "resolution", "stem", "stages")
    missing = [name for name in required if name not in data]
    if missing:
        raise SpecError(f"{source}: missing field '{missing[0]}' (required: {', '.join(required)})")
    try:
        fields = {name: data[name] for name in _SCALAR_FIELDS if name in data}
        stages = data["stages"]
        if not isinstance(stages, list) or not all(isinstance(s, list) for s in stages):
            raise SpecError("field 'stages' must be a list of lists of block strings")
        head = data.get("head", {})
        if not isinstance(head, Mapping) or set(head) - {"channels", "activation", "dropout"}:
            raise SpecError("field 'head' must be a mapping with channels, activation, dropout")
        return ArchSpec(stem=parse_block(data["stem"]),
                        stages=tuple(tuple(parse_block(b) for b in stage) for stage in stages),
                        head=HeadSpec(**head), **fields)
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None
    except TypeError as error:
        raise SpecError(f"{source}: {error}") from None
