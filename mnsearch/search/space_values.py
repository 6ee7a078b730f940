"""Typed checks of a search space's values: choice lists, ranges, stages, recipe, constraints.

A space file is YAML, where `.nan`, `.inf`, `true`, `'abc'` and `32.5` are each one typo from
a valid value, and Python's comparisons let most of them through (`nan > 0` is False, so a
`max_madds: .nan` constraint silently never binds; `True` is an int). Every value is therefore
checked for its type before its range, and every error names the file, the key and what is
allowed. Ranges are counted before they are expanded, so a tiny step cannot exhaust memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from mnsearch.errors import MnsearchError
from mnsearch.search.record import SEARCH_OBJECTIVES
from mnsearch.spec.blocks import ACTIVATIONS, STRIDE_SCHEDULES
from mnsearch.spec.values import MAX_EXPANSION, MAX_KERNEL, MAX_RESOLUTION, shown
from mnsearch.train.config import TrainConfig, recipe_fields

BLOCK_FAMILIES = {"v1": "v1", "v2": "v2", "v3": "v3-small", "v3-large": "v3-large",
                  "v3-small": "v3-small"}
STAGE_KEYS = ("kernel", "expansion", "se", "activation", "repeats", "width")
MAX_CHOICES = 10_000  # values of one dimension: more cannot be gridded, nor usefully sampled
MAX_REPEATS = 32  # blocks of one stage (MobileNets use at most 6)
MAX_STAGE_WIDTH = 16  # a stage's width multiplier on top of α
MAX_SEED = 2**32 - 1  # numpy and JAX seeds are unsigned 32-bit words
_STAGE_NUMBER = re.compile(r"[0-9]{1,3}")


class SpaceError(MnsearchError):
    """A search-space file is invalid."""


def is_number(value: object) -> TypeGuard[float]:
    """A finite real number that is not a bool (YAML's `true` is an int to Python)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int of hundreds of digits
        return False


def is_integer(value: object) -> TypeGuard[int]:
    """An int that is not a bool: `kernel: [true]` is a typo, not a 1x1 kernel."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    """What one dimension accepts: a test, and the words that say it in an error."""

    test: Callable[[Any], bool]
    allowed: str
    choice: bool = False  # a word from a list: "unknown value 'x' (allowed: a, b)"

    def check(self, item: object, key: str, source: str) -> None:
        if self.test(item):
            return
        if self.choice:
            raise SpaceError(f"{source}: key '{key}': unknown value {shown(item)} "
                             f"(allowed: {self.allowed})")
        raise SpaceError(f"{source}: key '{key}': {shown(item)} must be {self.allowed}")


def _word_rule(words: tuple[str, ...]) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in words, ", ".join(words), choice=True)


RULES = {
    "alpha": Rule(lambda v: is_number(v) and v > 0, "a number > 0 and finite"),
    "rho": Rule(lambda v: is_number(v) and v > 0, "a number > 0 and finite"),
    "resolution": Rule(lambda v: is_integer(v) and 1 <= v <= MAX_RESOLUTION,
                       f"an integer from 1 to {MAX_RESOLUTION} (pixels)"),
    "stride_schedule": _word_rule(tuple(STRIDE_SCHEDULES)),
    "block": _word_rule(tuple(BLOCK_FAMILIES)),
    "kernel": Rule(lambda v: is_integer(v) and v % 2 == 1 and 1 <= v <= MAX_KERNEL,
                   f"an odd integer from 1 to {MAX_KERNEL}"),
    "expansion": Rule(lambda v: is_number(v) and 0 < v <= MAX_EXPANSION,
                      f"a number > 0 and <= {MAX_EXPANSION:g}"),
    "se": Rule(lambda v: is_number(v) and 0 <= v <= 1, "a ratio in [0, 1]"),
    "activation": _word_rule(ACTIVATIONS),
    "repeats": Rule(lambda v: is_integer(v) and 1 <= v <= MAX_REPEATS,
                    f"an integer from 1 to {MAX_REPEATS}"),
    "width": Rule(lambda v: is_number(v) and 0 < v <= MAX_STAGE_WIDTH,
                  f"a number > 0 and <= {MAX_STAGE_WIDTH} (a multiplier of the stage's width)"),
}


def checked_values(rule: str, value: Any, key: str, source: str) -> list[Any]:
    """The choice list of one dimension (a list, one value, or a range), every item checked."""
    values = choice_list(value, key, source)
    for item in values:
        RULES[rule].check(item, key, source)
    return values


def choice_list(value: Any, key: str, source: str) -> list[Any]:
    """A list as given, one value as a list of one, or a {low, high, step} range expanded."""
    if isinstance(value, dict) and set(value) <= {"low", "high", "step"}:
        return _expanded_range(value, key, source)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SpaceError(f"{source}: key '{key}': the choice list is empty (give at least one "
                         "value)")
    if len(values) > MAX_CHOICES:
        raise SpaceError(f"{source}: key '{key}': {len(values):,} choices, more than "
                         f"{MAX_CHOICES:,}: give fewer")
    return values


def _expanded_range(value: dict[Any, Any], key: str, source: str) -> list[Any]:
    """Count a range's values first, refuse more than MAX_CHOICES, and only then list them."""
    low, high, step = value.get("low"), value.get("high"), value.get("step")
    if not (is_number(low) and is_number(high) and is_number(step)) or step <= 0 or high < low:
        raise SpaceError(f"{source}: key '{key}': a range needs finite numbers low <= high and "
                         f"step > 0, got {shown(value)}")
    span = (high - low) / step  # may overflow to inf: then it is too many values anyway
    if not span < MAX_CHOICES:
        raise SpaceError(f"{source}: key '{key}': the range from {low:g} to {high:g} in steps "
                         f"of {step:g} has more than {MAX_CHOICES:,} values: use a larger step")
    count = math.floor(span + 1e-9) + 1  # the tolerance keeps `high` when the step divides it
    return [round(low + index * step, 10) for index in range(count)]


def stage_number(key: object) -> int | None:
    """The stage index of a per-stage key ("2" or 2), or None for a key such as "kernel"."""
    if is_integer(key) or (isinstance(key, str) and _STAGE_NUMBER.fullmatch(key)):
        return int(str(key))
    return None


def checked_objectives(value: Any, source: str) -> tuple[str, ...]:
    """A list of distinct objective names (default accuracy and Mult-Adds)."""
    if value is None or value == []:
        return ("accuracy", "madds")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str) or item not in SEARCH_OBJECTIVES:
            raise SpaceError(f"{source}: key 'objectives': unknown objective {shown(item)} "
                             f"(allowed: {', '.join(SEARCH_OBJECTIVES)})")
    if len(set(items)) != len(items):
        raise SpaceError(f"{source}: key 'objectives': an objective is named twice")
    return tuple(items)


def checked_constraints(constraints: dict[Any, Any], source: str) -> dict[str, float]:
    """Every limit a finite number > 0: a NaN limit would never bind, a negative one always."""
    checked = {}
    for key, value in constraints.items():
        if not is_number(value) or value <= 0:
            raise SpaceError(f"{source}: key 'constraints.{key}': {shown(value)} must be a "
                             "number > 0 and finite")
        checked[str(key)] = float(value)
    return checked


def check_recipe(recipe: dict[Any, Any], source: str) -> None:
    """Type-check the recipe against TrainConfig's fields, then let TrainConfig check ranges.

    The sweep builds its TrainConfig from these values in the parent and in every worker; a
    string where a number belongs would otherwise fail there, far from the file that holds it.
    """
    values = {("learning_rate" if key == "lr" else key): value for key, value in recipe.items()}
    kinds = recipe_fields()
    for name, value in values.items():
        if not _matches(kinds[name], value):
            key = "lr" if name == "learning_rate" else name
            raise SpaceError(f"{source}: key 'recipe.{key}': expected {_kind_words(kinds[name])}"
                             f", got {shown(value)}")
    for name in ("weight_decay", "warmup_epochs"):
        if values.get(name, 0) < 0:
            raise SpaceError(f"{source}: key 'recipe.{name}': must be >= 0, got {values[name]}")
    if values.get("subset") is not None and values["subset"] <= 0:
        raise SpaceError(f"{source}: key 'recipe.subset': must be a count or a fraction > 0, "
                         f"got {values['subset']}")
    if not 0 <= values.get("seed", 0) <= MAX_SEED:
        raise SpaceError(f"{source}: key 'recipe.seed': must be from 0 to {MAX_SEED}")
    try:
        TrainConfig(**values)
    except MnsearchError as error:
        raise SpaceError(f"{source}: key 'recipe': {error}") from None


def _matches(kind: str, value: object) -> bool:
    """Whether `value` fits a TrainConfig field type written as text ('float | None', ...)."""
    if value is None:
        return "None" in kind
    if kind.startswith("bool"):
        return isinstance(value, bool)
    if kind.startswith("int"):
        return is_integer(value)
    if kind.startswith("float"):
        return is_number(value)
    return isinstance(value, str)


def _kind_words(kind: str) -> str:
    words = {"bool": "true or false", "int": "an integer", "float": "a finite number",
             "str": "a string"}
    first = kind.split(" |")[0]
    return words.get(first, first) + (" or null" if "None" in kind else "")
