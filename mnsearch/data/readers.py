"""File-format readers behind `mnsearch.data.load.load_dataset`: IDX and CIFAR pickles.

Every reader validates what it reads and raises `DatasetError` naming the file, since a
corrupt or half-downloaded dataset otherwise shows up hours later as a strange accuracy.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mnsearch.atomic import write_atomically
from mnsearch.cache import cache_folder
from mnsearch.data.datasets import Dataset, DatasetError

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_CHECKSUMS = {  # file name -> published MD5
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_ENV = "MNSEARCH_FASHION_MNIST_DIR"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # dataset-fashion-mnist
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


# --- Fashion-MNIST (gzip IDX files) -------------------------------------------------------

def fashion_mnist_cache_dir() -> Path:
    """Where `--download` puts Fashion-MNIST: the `fashion-mnist` folder of mnsearch's cache."""
    return cache_folder("fashion-mnist")


def read_fashion_mnist(data_dir: str | Path | None, *, download: bool) -> Dataset:
    """Read the four Fashion-MNIST IDX files; see `_locate_fashion_mnist` for where from."""
    folder = _locate_fashion_mnist(data_dir, download)
    splits = []
    for prefix in ("train", "t10k"):
        images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
        labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
        images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
        if len(labels) != len(images):
            raise DatasetError(f"'{labels_path}' has {len(labels)} labels but '{images_path}' "
                               f"{len(images)} images: the files do not belong together; "
                               "re-download both")
        _check_labels(labels, len(FASHION_MNIST_CLASSES), labels_path)
        splits += [images[..., np.newaxis], labels.astype(np.int32)]
    return Dataset("fashion-mnist", *splits, FASHION_MNIST_CLASSES)


def _locate_fashion_mnist(data_dir: str | Path | None, download: bool) -> Path:
    """`data_dir`, else $MNSEARCH_FASHION_MNIST_DIR, else the Debian package, else the cache.

    An explicit folder (argument or environment) is the only one looked at, and the one a
    download goes to; otherwise a download goes to the cache.
    """
    explicit = data_dir if data_dir is not None else os.environ.get(FASHION_MNIST_ENV)
    if explicit:
        candidates = [Path(explicit).expanduser()]
    else:
        candidates = [FASHION_MNIST_SYSTEM_DIR, fashion_mnist_cache_dir()]
    for folder in candidates:
        if all((folder / name).is_file() for name in FASHION_MNIST_CHECKSUMS):
            return folder
    if download:
        download_fashion_mnist(candidates[-1])
        return candidates[-1]
    missing = [name for name in FASHION_MNIST_CHECKSUMS if not (candidates[0] / name).is_file()]
    raise DatasetError(
        f"Fashion-MNIST not found in {' or '.join(str(folder) for folder in candidates)} "
        f"(missing {', '.join(missing)}): install it with `sudo apt-get install "
        "dataset-fashion-mnist`, or pass --data-dir DIR (a folder with the four .gz files), "
        "or pass --download")


def download_fashion_mnist(folder: Path) -> None:
    """Fetch the missing Fashion-MNIST files into `folder`, checking the published MD5s.

    Each file is written to a temporary name and renamed only once its checksum matches, so
    an interrupted or corrupted download never leaves a plausible-looking file behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, checksum in FASHION_MNIST_CHECKSUMS.items():
        target = folder / name
        if target.is_file():
            continue
        content = _fetch_url(FASHION_MNIST_URL + name)
        actual = hashlib.md5(content, usedforsecurity=False).hexdigest()
        if actual != checksum:
            raise DatasetError(f"download of {FASHION_MNIST_URL + name} has MD5 {actual}, "
                               f"expected {checksum}: retry later, or install the Debian "
                               "package dataset-fashion-mnist")
        write_atomically(target, content)


def _fetch_url(url: str) -> bytes:
    """The network access of `download_fashion_mnist` (tests replace it)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(f"cannot download {url}: {error}: check the network, or install "
                           "the Debian package dataset-fashion-mnist") from error


def read_idx(path: Path, dimensions: int) -> np.ndarray:
    """Read a gzip IDX file of unsigned bytes with `dimensions` axes, checking its header."""
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"cannot read '{path}': {error}: a gzip-compressed IDX file is "
                           "expected; re-download it") from error
    expected_magic = 0x0800 + dimensions
    magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if magic != expected_magic:
        found = "a file shorter than 4 bytes" if magic is None else f"0x{magic:08x}"
        raise DatasetError(f"'{path}' is not an IDX file of {dimensions}-D unsigned bytes: "
                           f"magic number {found}, expected 0x{expected_magic:08x}")
    header_length = 4 + 4 * dimensions
    if len(data) < header_length:
        raise DatasetError(f"'{path}' is truncated inside its header: re-download it")
    shape = struct.unpack(f">{dimensions}I", data[4:header_length])
    if 0 in shape[1:]:
        raise DatasetError(f"'{path}' declares an empty item shape {shape[1:]}: re-download it")
    expected_length = header_length + math.prod(shape)
    if len(data) != expected_length:
        problem = "is truncated" if len(data) < expected_length else "has trailing bytes"
        raise DatasetError(f"'{path}' {problem}: its header declares shape {shape}, i.e. "
                           f"{expected_length} bytes, but it holds {len(data)}; re-download it")
    return np.frombuffer(data, np.uint8, offset=header_length).reshape(shape).copy()


def _check_labels(labels: np.ndarray, num_classes: int, path: Path) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
        raise DatasetError(f"'{path}': label {int(labels[bad])} at index {bad} is out of range: "
                           f"allowed are 0..{num_classes - 1}; the file is corrupt")


# --- CIFAR-10 (python pickles, read without executing code) -------------------------------

def _latin1_bytes(text: str, encoding: str, errors: str = "strict") -> bytes:
    """What Python 3 pickles bytes as at protocols 0-2 (`_codecs.encode(text, 'latin1')`).

    Only latin-1 is accepted: `_codecs.encode` itself would reach any registered codec.
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is allowed for latin-1 text only, "
                                     f"not {encoding!r}")
    return text.encode("latin-1", errors)


def _numpy_reconstruction_globals() -> dict[tuple[str, str], Any]:
    """The only globals a pickled numpy array (or bytes, at protocol 2) needs.

    Both numpy 1 (`numpy.core`) and numpy 2 (`numpy._core`) module names are accepted.
    """
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,
                                           ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_bytes}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays; refuses every other global.

    `pickle.load` on a downloaded file runs whatever code the file names; refusing globals
    in `find_class` stops that before anything is called.
    """

    def __init__(self, stream: Any, path: Path) -> None:
        super().__init__(stream, encoding="bytes")
        self.path = path
        self.allowed = _numpy_reconstruction_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise DatasetError(f"'{self.path}' refers to the global '{module}.{name}', which is "
                               "refused: CIFAR batches may only hold dicts, lists, bytes, numbers "
                               "and numpy arrays; use the official cifar-10-python.tar.gz")
        return self.allowed[(module, name)]


def restricted_unpickle(path: Path) -> Any:
    """Load a pickle that may contain only plain data and numpy arrays."""
    try:
        with path.open("rb") as stream:
            return _RestrictedUnpickler(stream, path).load()
    except DatasetError:
        raise
    except Exception as error:  # malformed pickles raise many kinds of errors
        raise DatasetError(f"cannot read '{path}': {type(error).__name__}: {error}: a CIFAR-10 "
                           "python batch is expected; re-extract cifar-10-python.tar.gz") from error


def read_cifar10(path: Path) -> Dataset:
    """Read the cifar-10-batches-py folder (data_batch_1..5, test_batch, batches.meta)."""
    folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    files = [f"data_batch_{number}" for number in range(1, 6)] + ["test_batch"]
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"CIFAR-10 folder '{folder}' lacks {', '.join(missing)}: give the "
                           "cifar-10-batches-py folder extracted from cifar-10-python.tar.gz")
    class_names = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        meta = restricted_unpickle(folder / "batches.meta")
        names = meta.get(b"label_names") if isinstance(meta, dict) else None
        if not isinstance(names, list) or not all(isinstance(item, bytes) for item in names):
            raise DatasetError(f"'{folder / 'batches.meta'}' has no b'label_names' list of "
                               "bytes: re-extract cifar-10-python.tar.gz")
        class_names = tuple(name.decode() for name in names)
    batches = [_read_cifar_batch(folder / name, len(class_names)) for name in files]
    return Dataset("cifar10", np.concatenate([images for images, _ in batches[:-1]]),
                   np.concatenate([labels for _, labels in batches[:-1]]),
                   *batches[-1], class_names)


def _read_cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch: rows of 3072 bytes in CHW order (32×32, red then green then blue)."""
    content = restricted_unpickle(path)
    if not isinstance(content, dict) or b"data" not in content or b"labels" not in content:
        raise DatasetError(f"'{path}' is not a CIFAR-10 batch: expected a dict with b'data' "
                           "and b'labels' (CIFAR-100 is not supported)")
    data, labels = content[b"data"], np.asarray(content[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"'{path}': b'data' must be a uint8 array of N×3072, got "
                           f"{getattr(data, 'dtype', type(data).__name__)} "
                           f"{getattr(data, 'shape', '')}; re-extract cifar-10-python.tar.gz")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"'{path}': b'labels' must be {len(data)} integers, one per image; "
                           "re-extract cifar-10-python.tar.gz")
    _check_labels(labels, num_classes, path)
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels.astype(np.int32)
