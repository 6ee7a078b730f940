"""`mnsearch evaluate`: a trained model's accuracy on a dataset split, fed as it was trained.

The model is an export folder (spec.yaml + weights.npz), a `mnsearch train --out` folder
(spec.yaml + checkpoint.npz), or a spec file with `--weights`. Its recorded input contract
(`mnsearch.data.contract`) says how the dataset's raw pixels become its input: the same
normalisation and resize functions as training, in the same fixed-size chunks, so the test
accuracy a run reported is recomputed exactly. The validation split is drawn again from the
recorded recipe (fraction and seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnsearch.data.contract import InputContract
from mnsearch.errors import MnsearchError
from mnsearch.results.paired import PairedComparison, paired_comparison
from mnsearch.spec.arch import ArchSpec

SPLITS = ("test", "val")


class EvaluateError(MnsearchError):
    """A model or dataset that cannot be evaluated as asked; nothing runs."""


@dataclass(frozen=True)
class EvaluationResult:
    """What `mnsearch evaluate --json` prints."""

    accuracy: float
    loss: float
    images: int
    images_per_second: float
    split: str
    dataset: str
    model: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PerImage:
    """A model's result on a split, with the split's images and which of them it got right,
    in order: what a paired comparison of two models on the same images needs."""

    result: EvaluationResult
    images: np.ndarray
    correct: np.ndarray


def resolve_model(source: str | Path, weights: str | Path | None = None
                  ) -> tuple[ArchSpec, Path, dict[str, Any]]:
    """(spec, weights file, its metadata) of a folder or a spec file (+ weights)."""
    from mnsearch.spec.io import load_spec
    from mnsearch.train.checkpoint import load_metadata
    from mnsearch.train.weights import WEIGHT_FILES, weights_file

    source = Path(source)
    if source.is_dir():
        spec_path = source / "spec.yaml"
        if not spec_path.is_file():
            raise EvaluateError(f"{source}: no spec.yaml (expected an export folder or a "
                                "`mnsearch train --out` folder)")
        if weights is None and not any((source / name).is_file() for name in WEIGHT_FILES):
            raise EvaluateError(f"{source}: no {' or '.join(WEIGHT_FILES)}: export with "
                                "--formats including weights, or pass --weights FILE")
        weights = weights or source
    elif weights is None:
        raise EvaluateError(f"{source}: a spec file needs --weights (a checkpoint.npz or "
                            "weights.npz, or their folder)")
    else:
        spec_path = source
    file = weights_file(weights)
    return load_spec(spec_path), file, load_metadata(file)


def evaluate_model(source: str | Path, dataset_name: str, split: str = "test",
                   weights: str | Path | None = None) -> EvaluationResult:
    """Accuracy, loss and throughput of a trained model on `split` of `dataset_name`."""
    from mnsearch.data.load import load_dataset

    _check_split(split)
    return evaluate_images(source, load_dataset(dataset_name), split, weights).result


def compare_models(source: str | Path, against: str | Path, dataset_name: str,
                   split: str = "test", weights: str | Path | None = None,
                   against_weights: str | Path | None = None
                   ) -> tuple[EvaluationResult, EvaluationResult, PairedComparison]:
    """Both models on the same images of `split`, and the paired comparison of the first
    against the second (`mnsearch.results.paired`): whether the split can tell them apart."""
    from mnsearch.data.load import load_dataset

    _check_split(split)
    dataset = load_dataset(dataset_name)
    first = evaluate_images(source, dataset, split, weights)
    second = evaluate_images(against, dataset, split, against_weights)
    if not np.array_equal(first.images, second.images):
        raise EvaluateError(f"{source} and {against} were trained with different validation "
                            "splits (their recipes' validation_fraction, seed or split_seed "
                            "differ), so they cannot be paired on it: compare them with "
                            "--split test")
    return first.result, second.result, paired_comparison(first.correct, second.correct)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise EvaluateError(f"--split {split!r}: choose {' or '.join(SPLITS)}")


def evaluate_images(source: str | Path, dataset: Any, split: str = "test",
                    weights: str | Path | None = None) -> PerImage:
    """`evaluate_model` on a loaded dataset, keeping the per-image correctness."""
    from mnsearch.nn.model import build
    from mnsearch.train.data import normalized_and_resized
    from mnsearch.train.evaluation import evaluate
    from mnsearch.train.weights import load_weights

    _check_split(split)
    spec, file, metadata = resolve_model(source, weights)
    contract = InputContract.from_dict(metadata.get("input"), str(file))
    _check_matches(spec, contract, dataset)
    images, labels = _split(dataset, split, metadata, file)
    model = build(spec, 0)
    load_weights(model, file)
    inputs = normalized_and_resized(images, np.asarray(contract.mean, np.float32),
                                    np.asarray(contract.std, np.float32), contract.resolution)
    labels = np.asarray(labels, np.int32)
    result = evaluate(model, inputs, labels)
    return PerImage(EvaluationResult(result.accuracy, result.loss, result.images,
                                     result.images_per_second, split, dataset.name, str(source)),
                    images, result.correct)


def _check_matches(spec: ArchSpec, contract: InputContract, dataset: Any) -> None:
    """The dataset's channels, classes and image size are the ones the model trained on."""
    if dataset.in_channels != spec.in_channels:
        raise EvaluateError(f"dataset '{dataset.name}' has {dataset.in_channels} channel(s), "
                            f"the model takes {spec.in_channels}")
    if dataset.num_classes != spec.num_classes:
        raise EvaluateError(f"dataset '{dataset.name}' has {dataset.num_classes} classes, the "
                            f"model predicts {spec.num_classes}")
    size = tuple(dataset.image_size)
    if contract.source_size is not None and size != tuple(contract.source_size):
        trained = "×".join(map(str, contract.source_size))
        raise EvaluateError(f"dataset '{dataset.name}' has {size[0]}×{size[1]} images, the "
                            f"model was trained from {trained} images (resized to "
                            f"{contract.resolution} px): evaluate it on images of that size")


def _split(dataset: Any, split: str, metadata: dict[str, Any],
           file: Path) -> tuple[np.ndarray, np.ndarray]:
    if split == "test":
        return dataset.test_images, dataset.test_labels
    from mnsearch.train.config import TrainConfig
    from mnsearch.train.data import training_split

    recipe = metadata.get("config") or metadata.get("recipe")
    if recipe is None:
        raise EvaluateError(f"{file}: no training recipe recorded, so the validation split "
                            "cannot be drawn again: use --split test")
    _, validation = training_split(dataset, TrainConfig(**recipe))
    return validation.images, validation.labels
