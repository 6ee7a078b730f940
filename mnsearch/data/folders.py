"""Image folders (PATH/CLASS/*.png|jpg, or PATH/train/… and PATH/test/…) as a `Dataset`.

Like the other readers, this validates what it reads and raises `DatasetError` naming the
file or folder; class counts are checked before any image is decoded, since decoding a large
folder only to refuse it would waste minutes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mnsearch.data.datasets import Dataset, DatasetError, stratified_holdout

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FOLDER_TEST_FRACTION = 0.2
_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def read_image_folder(path: Path) -> Dataset:
    """Read PATH/CLASS/*.png|jpg, or PATH/train/CLASS/… and PATH/test/CLASS/… when both exist.

    Without train/ and test/, a seeded stratified 20% of every class is held out as test.
    """
    if not path.is_dir():
        raise DatasetError(f"image folder '{path}' does not exist: give a folder with one "
                           "subfolder of images per class")
    name = path.resolve().name
    train_folder, test_folder = path / "train", path / "test"
    if train_folder.is_dir() != test_folder.is_dir():
        raise DatasetError(f"'{path}' has only one of train/ and test/: add the other, or put "
                           "the class folders directly in it (20% is then held out as test)")
    if not train_folder.is_dir():
        class_names = _class_folders(path, classes_needed=2)
        files, labels = _list_images(path, class_names, class_names)
        train, test = stratified_holdout(_load_images(files), labels, FOLDER_TEST_FRACTION, 0)
        return Dataset(name, train.images, train.labels, test.images, test.labels, class_names)
    class_names = _class_folders(train_folder, classes_needed=2)
    test_classes = _class_folders(test_folder)
    unknown = sorted(set(test_classes) - set(class_names))
    if unknown:
        raise DatasetError(f"'{test_folder}' has classes missing from '{train_folder}': "
                           f"{', '.join(unknown)}; every test class needs training images")
    train_files, train_labels = _list_images(train_folder, class_names, class_names)
    test_files, test_labels = _list_images(test_folder, test_classes, class_names)
    images = _load_images(train_files + test_files)
    return Dataset(name, images[:len(train_files)], train_labels, images[len(train_files):],
                   test_labels, class_names)


def _class_folders(folder: Path, classes_needed: int = 1) -> tuple[str, ...]:
    """The class subfolders of `folder`, refused before any image is decoded if too few.

    A training set needs two classes (`Dataset` says why); a test folder may hold one.
    """
    names = tuple(sorted(entry.name for entry in folder.iterdir()
                         if entry.is_dir() and not entry.name.startswith(".")))
    if not names:
        raise DatasetError(f"'{folder}' has no class folders: put each class's images in its "
                           f"own subfolder ({folder}/CLASS/IMAGE.png)")
    if len(names) < classes_needed:
        raise DatasetError(f"'{folder}' has {len(names)} class folder ({names[0]}): "
                           f"classification needs at least {classes_needed} classes, one "
                           "subfolder each")
    return names


def _list_images(folder: Path, classes: tuple[str, ...],
                 class_names: tuple[str, ...]) -> tuple[list[Path], np.ndarray]:
    """Image files of each class folder in sorted order, with labels indexing `class_names`."""
    files: list[Path] = []
    labels: list[int] = []
    for class_name in classes:
        class_files = sorted(entry for entry in (folder / class_name).iterdir()
                             if entry.is_file() and not entry.name.startswith(".")
                             and entry.suffix.lower() in IMAGE_SUFFIXES)
        if not class_files:
            raise DatasetError(f"class folder '{folder / class_name}' has no images: allowed are "
                               f"{', '.join(IMAGE_SUFFIXES)} files; add some or remove the folder")
        files += class_files
        labels += [class_names.index(class_name)] * len(class_files)
    return files, np.asarray(labels, np.int32)


def _load_images(files: list[Path]) -> np.ndarray:
    """Decode to uint8 N×H×W×C: grayscale if every image is, else RGB; one common size.

    Images of other sizes are resized (bilinear) to the most common size, since a batch
    needs one shape.
    """
    try:
        from PIL import Image
    except ImportError as error:
        raise DatasetError("reading image folders needs Pillow: pip install pillow") from error
    headers = [_open_image(Image, file, lambda image: (image.mode, image.size)) for file in files]
    mode = "L" if all(image_mode in _GRAYSCALE_MODES for image_mode, _ in headers) else "RGB"
    width, height = Counter(size for _, size in headers).most_common(1)[0][0]
    images = np.empty((len(files), height, width, 1 if mode == "L" else 3), np.uint8)

    def decode(image: Any) -> np.ndarray:
        image = image.convert(mode)
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image).reshape(images.shape[1:])

    for index, file in enumerate(files):
        images[index] = _open_image(Image, file, decode)
    return images


def _open_image(image_module: Any, file: Path, use: Any) -> Any:
    """Open `file` with Pillow and apply `use` to it, naming the file if it cannot be read."""
    try:
        with image_module.open(file) as image:
            return use(image)
    except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as error:
        raise DatasetError(f"cannot read image '{file}': {error}: PNG or JPEG files are "
                           "expected; fix or delete it") from error
