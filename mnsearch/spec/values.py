"""Typed checks of a spec's numbers and words: the field named, bools, NaN and infinity refused.

Specs arrive from YAML, JSON, database rows and the command line, where `32.5`, `true`, `.nan`
and `'abc'` are each one typo away, and Python's comparisons let most of them through silently
(`nan <= 0` is False, `True >= 1` is True, `32.5 >= 1` builds a network with wrong Mult-Adds).
So every field is checked for its type before its range, and the error says which field.

The upper limits are far beyond any MobileNet (the widest published layer has 1,280 channels,
the largest input 224 px); they exist so that a typo such as α = 1e300 ends in one line instead
of integer widths too large for a float, a kernel of a billion pixels, or a plan that never ends.
"""

from __future__ import annotations

import math
import numbers
import reprlib

from mnsearch.errors import MnsearchError

MAX_WIDTH = 1 << 20  # channels of any layer, input channels, classes: keeps costs in float range
MAX_RESOLUTION = 8192  # input pixels; `minimum_resolution` searches up to here
MAX_KERNEL = 63
MAX_EXPANSION = 64.0
MAX_BLOCKS = 1024  # blocks of a spec (MobileNet V2 has 17): plans and searches stay fast


class SpecError(MnsearchError):
    """A spec, block string or spec file is invalid; the message names the field and the fix."""


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 60
_SHOWN.maxlevel = 3


def shown(value: object) -> str:
    """`repr(value)` cut to a few dozen characters and levels: error messages stay one line.

    A value from a file may be a megabyte-long string or a list nested hundreds deep, whose
    full repr would flood the terminal or exhaust the recursion limit.
    """
    return _SHOWN.repr(value)


def checked_int(field: str, value: object, low: int = 1, high: int = MAX_WIDTH) -> int:
    """`value` as an int in [low, high]; bools and floats (even 32.0) are refused, naming `field`.

    A float resolution would silently give wrong sizes, and YAML reads `yes` as True.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(f"field '{field}': expected an integer, got {shown(value)}")
    number = int(value)
    if not low <= number <= high:
        raise SpecError(f"field '{field}': expected an integer from {low} to {high}, "
                        f"got {number}")
    return number


def checked_number(field: str, value: object) -> float:
    """`value` as a finite float: ints are numbers too, bools, text, NaN and infinity are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(f"field '{field}': expected a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(f"field '{field}': expected a finite number, got {shown(value)}")
    return number


def checked_text(field: str, value: object) -> str:
    """`value` if it is a string (names and choices are never numbers or lists)."""
    if not isinstance(value, str):
        raise SpecError(f"field '{field}': expected a string, got {shown(value)}")
    return value


def check_choice(what: str, value: object, allowed: tuple[str, ...]) -> None:
    """Refuse anything but one of `allowed` (compared as strings only: no list or array tricks)."""
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(f"unknown {what} {shown(value)} (allowed: {', '.join(allowed)})")


def store(spec: object, name: str, value: object) -> None:
    """Set a field of a frozen dataclass to its checked, normalised value (numpy int -> int).

    Normalising in `__post_init__` keeps equality and hashing exact: a spec read back from a
    file with `alpha: 1` equals the one built with `alpha=1.0`, and holds the same types.
    """
    object.__setattr__(spec, name, value)
