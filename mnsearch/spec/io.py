"""Spec files (YAML or JSON) and the ARCH argument: a preset name or a spec file path."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml

from mnsearch.atomic import write_atomically
from mnsearch.spec.arch import ArchSpec, SpecChanges, spec_from_dict, spec_to_dict
from mnsearch.spec.blocks import SpecError
from mnsearch.spec.families import PRESETS, SpecOptions, preset


def load_spec(path: str | Path) -> ArchSpec:
    """Read a spec file; errors name the file and the offending field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise SpecError(f"{path}: cannot read spec file ({error.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first_line = str(error).splitlines()[0]
        raise SpecError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {first_line}") \
            from None
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
    if not Path(arch).exists():
        if Path(arch).suffix in (".yaml", ".yml", ".json"):
            raise SpecError(f"spec file '{arch}' does not exist")
        raise SpecError(f"unknown architecture '{arch}': give a preset "
                        f"({', '.join(PRESETS)}) or a spec file (.yaml, .yml, .json)")
    if alpha is not None:
        raise SpecError(f"--alpha applies to presets only: '{arch}' already holds scaled widths")
    changes: SpecChanges = {**options}  # one replace: the spec is validated as a whole
    if resolution is not None:
        changes["resolution"] = resolution
    return load_spec(arch).replace(**changes)
