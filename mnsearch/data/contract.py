"""The input contract of a trained model: what pixels it expects and how they are prepared.

Training normalises with statistics of the run's own training split and resizes to the spec's
resolution (`mnsearch.train.data`); a model is only as usable as that recipe is written down.
The contract travels with every checkpoint (its metadata), export (spec.yaml, weights.json,
the card) and the uint8 ONNX model, which applies it inside the graph:

    pixels: uint8, NHWC, `channels` channels, values 0..255
    resize: from the dataset's image size to `resolution` × `resolution`, bilinear with
            antialiasing (`jax.image.resize(method="linear", antialias=True)`), in float
    normalise: (pixels / 255 - mean) / std, per channel

No JAX here: the contract is plain numbers, read by the exporters and the loaders alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mnsearch.errors import MnsearchError

RESIZE_RULE = "bilinear, antialiased (jax.image.resize method='linear', antialias=True), in float"


class ContractError(MnsearchError):
    """An input contract that is missing or malformed (an export or checkpoint without one)."""


@dataclass(frozen=True)
class InputContract:
    """What a model's input is: size, channels, the pixel range and the normalisation."""

    resolution: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source_size: tuple[int, int] | None = None  # the dataset's (height, width), before resizing
    layout: str = "NHWC"
    dtype: str = "uint8"
    value_range: tuple[int, int] = (0, 255)
    scale: float = 1 / 255
    resize: str = RESIZE_RULE

    def __post_init__(self) -> None:
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ContractError(f"input contract: mean and std need {self.channels} values "
                                f"(one per channel), got {len(self.mean)} and {len(self.std)}")
        if any(value <= 0 for value in self.std):
            raise ContractError("input contract: every std must be > 0")

    @classmethod
    def of_statistics(cls, resolution: int, mean: Sequence[float], std: Sequence[float],
                      source_size: Sequence[int] | None = None) -> InputContract:
        """A contract from a run's channel statistics (numpy arrays or lists)."""
        return cls(int(resolution), len(mean), tuple(float(v) for v in mean),
                   tuple(float(v) for v in std),
                   tuple(int(v) for v in source_size) if source_size is not None else None)

    def as_dict(self) -> dict[str, Any]:
        """JSON/YAML-ready form (lists, not tuples)."""
        return {"resolution": self.resolution, "channels": self.channels,
                "layout": self.layout, "dtype": self.dtype,
                "value_range": list(self.value_range), "scale": self.scale,
                "mean": list(self.mean), "std": list(self.std),
                "source_size": list(self.source_size) if self.source_size else None,
                "resize": self.resize}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str = "input") -> InputContract:
        """Read `as_dict`'s form back; one `ContractError` line naming `source` if it is not."""
        if not isinstance(data, Mapping):
            raise ContractError(f"{source}: no input contract recorded (exported before "
                                "mnsearch recorded one: export it again)")
        try:
            return cls.of_statistics(data["resolution"], data["mean"], data["std"],
                                     data.get("source_size"))
        except (KeyError, TypeError, ValueError) as error:
            raise ContractError(f"{source}: malformed input contract ({error})") from None

    def describe(self) -> str:
        """One paragraph for the model card."""
        source = (f"{self.source_size[0]}×{self.source_size[1]}" if self.source_size
                  else "the dataset's size")
        mean = ", ".join(f"{value:.6f}" for value in self.mean)
        std = ", ".join(f"{value:.6f}" for value in self.std)
        return (f"{self.dtype} {self.layout} pixels, {self.channels} channel(s), values "
                f"{self.value_range[0]}..{self.value_range[1]}, at {self.resolution}×"
                f"{self.resolution} (resized from {source}: {self.resize}); normalised as "
                f"(pixels / 255 − mean) / std with mean [{mean}] and std [{std}] "
                "(the training split's statistics).")
