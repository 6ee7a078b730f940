"""`mnsearch.load`: an export folder's model, callable on raw pixels or normalised images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnsearch.data.contract import InputContract
from mnsearch.export.export import ExportError, trained_model
from mnsearch.spec.arch import ArchSpec


class ExportedModel:
    """An exported model in eval mode with its input contract.

    Call it on uint8 NHWC pixels (at the dataset's size or the model's: resized and
    normalised exactly as in training) or on float32 images already normalised; it returns
    logits. `model` is the NNX module itself, `contract` the `InputContract`.
    """

    def __init__(self, model: Any, contract: InputContract | None) -> None:
        self.model, self.contract = model, contract

    @property
    def spec(self) -> ArchSpec:
        return self.model.spec

    def __call__(self, images: Any) -> Any:
        import numpy as np

        if np.issubdtype(np.asarray(images).dtype, np.integer):
            from mnsearch.train.preprocess import pixels_to_images

            if self.contract is None:
                raise ExportError("this export records no input contract: normalise the "
                                  "images yourself (float32) or export the trial again")
            images = pixels_to_images(images, self.contract)
        return self.model(images)


def load(folder: str | Path) -> ExportedModel:
    """The model of an export folder (spec.yaml + weights.npz), in eval mode (see
    `ExportedModel`: raw uint8 pixels or normalised float32 images in, logits out)."""
    from mnsearch.nn.model import eval_view
    from mnsearch.spec.io import load_spec
    from mnsearch.train.checkpoint import load_metadata

    folder = Path(folder)
    for name in ("spec.yaml", "weights.npz"):
        if not (folder / name).is_file():
            raise ExportError(f"{folder}: no {name}: not an export folder with weights "
                              "(export with --formats including spec,weights)")
    recorded = load_metadata(folder / "weights.npz").get("input")
    contract = InputContract.from_dict(recorded, str(folder)) if recorded else None
    model = eval_view(trained_model(load_spec(folder / "spec.yaml"), folder / "weights.npz"))
    return ExportedModel(model, contract)
