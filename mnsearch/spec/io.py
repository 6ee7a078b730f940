"""Spec files (YAML or JSON) and the ARCH argument: a preset name or a spec file path."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from mnsearch.atomic import write_atomically
from mnsearch.errors import MnsearchError
from mnsearch.spec.arch import ArchSpec, SpecChanges, spec_from_dict, spec_to_dict
from mnsearch.spec.blocks import SpecError
from mnsearch.spec.families import PRESETS, SpecOptions, preset
from mnsearch.spec.values import shown


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e7` and `2e-3` as numbers (YAML 1.2) rather than text.

    YAML 1.1, which PyYAML follows, wants `1.0e+7`; users write `max_madds: 1e7` or
    `lr: 2e-3` and would be told that a number is text.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?([0-9][0-9_]*)(\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))

MAX_FILE_BYTES = 4 << 20  # a spec or space file is a few KiB; anything this big is another file


def read_data_file(path: Path, what: str, error: type[MnsearchError] = SpecError) -> object:
    """The parsed content of a YAML file (JSON for a .json path), or one `error` naming the file.

    Whatever the path holds (a checkpoint passed by mistake, a folder, text nested deeper than
    the parser's recursion, an integer of 5,000 digits), the caller gets data or one line.
    """
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as problem:
        raise error(f"{path}: cannot read {what} ({problem.strerror or problem})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise error(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB: not a {what}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file: a {what} is UTF-8 YAML or JSON") from None
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        return json.loads(text) if kind == "JSON" else yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise error(f"{path}: nested too deeply to be a {what}") from None
    except (yaml.YAMLError, ValueError, TypeError) as problem:  # JSONDecodeError is a ValueError
        first_line = (str(problem).splitlines() or [type(problem).__name__])[0]
        raise error(f"{path}: not valid {kind}: {first_line}") from None


def load_spec(path: str | Path) -> ArchSpec:
    """Read a spec file; errors name the file and the offending field."""
    path = Path(path)
    data = read_data_file(path, "spec file")
    if isinstance(data, dict) and "spec" in data and "name" not in data:
        data = data["spec"]  # an export folder's spec.yaml may wrap the spec with metadata
    return spec_from_dict(data, source=str(path))


def save_spec(spec: ArchSpec, path: str | Path,
              metadata: Mapping[str, object] | None = None) -> None:
    """Write `spec` as YAML (or JSON for a .json path) atomically: no half-written file."""
    path = Path(path)
    data = spec_to_dict(spec)
    if metadata:
        data = {"spec": data, **metadata}
    text = json.dumps(data, indent=2) if path.suffix == ".json" else \
        yaml.safe_dump(data, sort_keys=False, width=100)
    write_atomically(path, text.encode())


def resolve_arch(arch: str, alpha: float | None = None, resolution: int | None = None, *,
                 num_classes: int | None = None, in_channels: int | None = None,
                 stride_schedule: str | None = None) -> ArchSpec:
    """A preset at (alpha, resolution), or a spec file with resolution/classes/channels changed.

    None keeps the preset's or the file's value. A spec file holds real (already scaled)
    widths, so `alpha` cannot be applied to it.
    """
    options: SpecOptions = {}
    if num_classes is not None:
        options["num_classes"] = num_classes
    if in_channels is not None:
        options["in_channels"] = in_channels
    if stride_schedule is not None:
        options["stride_schedule"] = stride_schedule
    if arch in PRESETS:
        return preset(arch, 1.0 if alpha is None else alpha,
                      224 if resolution is None else resolution, **options)
    if not _exists(arch):
        if Path(arch).suffix in (".yaml", ".yml", ".json"):
            raise SpecError(f"spec file {shown(arch)} does not exist")
        raise SpecError(f"unknown architecture {shown(arch)}: give a preset "
                        f"({', '.join(PRESETS)}) or a spec file (.yaml, .yml, .json)")
    if alpha is not None:
        raise SpecError(f"--alpha applies to presets only: '{arch}' already holds scaled widths")
    changes: SpecChanges = {**options}  # one replace: the spec is validated as a whole
    if resolution is not None:
        changes["resolution"] = resolution
    return load_spec(arch).replace(**changes)


def _exists(path: str) -> bool:
    """Whether `path` exists; a name the system cannot even look up (NUL, too long) does not."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False
