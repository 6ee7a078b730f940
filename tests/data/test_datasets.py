"""Dataset loading (IDX, CIFAR pickles, image folders), validation errors, stratified splits."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from mnsearch.data import readers as dataset_readers
from mnsearch.data.datasets import (
    Dataset,
    DatasetError,
    split_validation,
    stratified_subset,
)
from mnsearch.data.load import load_dataset

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test may download anything: any attempt fails loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --- Fashion-MNIST --------------------------------------------------------------------

def _idx(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _fashion_files(train: int = 20, test: int = 10, size: int = 4) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (train, size, size)),
              "train-labels-idx1-ubyte.gz": np.arange(train) % 10,
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (test, size, size)),
              "t10k-labels-idx1-ubyte.gz": np.arange(test) % 10}
    return {name: gzip.compress(_idx(array)) for name, array in arrays.items()}


def _write_fashion(folder: Path, **replacements: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in {**_fashion_files(), **replacements}.items():
        (folder / name).write_bytes(content)
    return folder


def test_synthetic_fashion_mnist_loads_as_nhwc(tmp_path):
    dataset = load_dataset("fashion-mnist", _write_fashion(tmp_path))
    assert dataset.train_images.shape == (20, 4, 4, 1)
    assert dataset.test_images.shape == (10, 4, 4, 1)
    assert dataset.train_images.dtype == np.uint8 and dataset.train_labels.dtype == np.int32
    assert (dataset.num_classes, dataset.in_channels, dataset.image_size) == (10, 1, (4, 4))
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[-1] == "Ankle boot"
    np.testing.assert_array_equal(dataset.train_labels, np.arange(20) % 10)


def test_fashion_mnist_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNSEARCH_FASHION_MNIST_DIR", str(_write_fashion(tmp_path)))
    assert len(load_dataset("fashion-mnist").train_labels) == 20


def _truncated_images() -> bytes:
    return gzip.compress(_idx(np.zeros((20, 4, 4)))[:-5])


@pytest.mark.parametrize("name, content, message", [
    ("train-images-idx3-ubyte.gz", _truncated_images(), "is truncated"),
    ("t10k-images-idx3-ubyte.gz", gzip.compress(_idx(np.zeros((10, 4, 4)), 0x09)),
     "magic number 0x00000903"),
    ("train-labels-idx1-ubyte.gz", gzip.compress(_idx(np.zeros((20, 4)))), "magic number"),
    ("train-labels-idx1-ubyte.gz", gzip.compress(_idx(np.zeros(19))), "19 labels but"),
    ("t10k-labels-idx1-ubyte.gz", gzip.compress(_idx(np.full(10, 10))), "label 10 at index 0"),
    ("t10k-labels-idx1-ubyte.gz", b"not gzip at all", "cannot read"),
    ("t10k-labels-idx1-ubyte.gz", gzip.compress(_idx(np.zeros(10)))[:-12], "cannot read"),
])
def test_corrupt_idx_files_are_named(tmp_path, name, content, message):
    _write_fashion(tmp_path, **{name: content})
    with pytest.raises(DatasetError, match=message) as error:
        load_dataset("fashion-mnist", tmp_path)
    assert name in str(error.value)


def test_missing_fashion_mnist_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("MNSEARCH_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(dataset_readers, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetError) as error:
        load_dataset("fashion-mnist")
    for fix in ("sudo apt-get install dataset-fashion-mnist", "--data-dir DIR", "--download"):
        assert fix in str(error.value)
    with pytest.raises(DatasetError, match=r"\(missing train-labels-idx1-ubyte.gz, t10k-images"):
        (tmp_path / "partial").mkdir()
        (tmp_path / "partial" / FASHION_FILES[0]).write_bytes(b"")
        load_dataset("fashion-mnist", tmp_path / "partial")


def _fake_downloads(monkeypatch, files: dict[str, bytes], checksums: dict[str, str]) -> list:
    requested = []

    def fetch(url: str) -> bytes:
        requested.append(url)
        return files[url.rsplit("/", 1)[1]]

    monkeypatch.setattr(dataset_readers, "_fetch_url", fetch)
    monkeypatch.setattr(dataset_readers, "FASHION_MNIST_CHECKSUMS", checksums)
    monkeypatch.setattr(dataset_readers, "FASHION_MNIST_SYSTEM_DIR", Path("/nonexistent"))
    monkeypatch.delenv("MNSEARCH_FASHION_MNIST_DIR", raising=False)
    return requested


def test_download_verifies_checksums_and_goes_to_the_cache(tmp_path, monkeypatch):
    files = _fashion_files()
    checksums = {name: hashlib.md5(content).hexdigest() for name, content in files.items()}
    requested = _fake_downloads(monkeypatch, files, checksums)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dataset = load_dataset("fashion-mnist", download=True)
    assert len(dataset.train_labels) == 20 and len(requested) == 4
    assert requested[0].startswith("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    cache = tmp_path / "mnsearch" / "fashion-mnist"
    assert sorted(path.name for path in cache.iterdir()) == sorted(FASHION_FILES)
    load_dataset("fashion-mnist", download=True)  # already cached: nothing fetched again
    assert len(requested) == 4


def test_download_with_a_wrong_checksum_leaves_no_file(tmp_path, monkeypatch):
    files = _fashion_files()
    _fake_downloads(monkeypatch, files, dict(dataset_readers.FASHION_MNIST_CHECKSUMS))
    with pytest.raises(DatasetError, match="expected 8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        load_dataset("fashion-mnist", tmp_path / "target", download=True)
    assert list((tmp_path / "target").iterdir()) == []


def test_published_checksums():
    assert dataset_readers.FASHION_MNIST_CHECKSUMS == {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}


@pytest.mark.skipif(not all((REAL_FASHION_MNIST / name).is_file() for name in FASHION_FILES),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_real_fashion_mnist():
    dataset = load_dataset("fashion-mnist", REAL_FASHION_MNIST)
    assert dataset.train_images.shape == (60000, 28, 28, 1)
    assert dataset.test_images.shape == (10000, 28, 28, 1)
    assert dataset.train_labels.min() == 0 and dataset.train_labels.max() == 9
    assert np.bincount(dataset.test_labels).tolist() == [1000] * 10


# --- CIFAR-10 ---------------------------------------------------------------------------

def _cifar_folder(folder: Path, rows: int = 4, protocol: int = 2) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for index, name in enumerate([f"data_batch_{n}" for n in range(1, 6)] + ["test_batch"]):
        batch = {b"batch_label": name.encode(),
                 b"labels": [(index + row) % 10 for row in range(rows)],
                 b"data": rng.integers(0, 256, (rows, 3072), dtype=np.uint8),
                 b"filenames": [b"x.png"] * rows}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    meta = {b"label_names": [name.encode() for name in dataset_readers.CIFAR10_CLASSES],
            b"num_cases_per_batch": rows, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return folder


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_batches_load_as_nhwc(tmp_path, protocol):
    folder = _cifar_folder(tmp_path / "cifar-10-batches-py", protocol=protocol)
    dataset = load_dataset(f"cifar10:{tmp_path}")  # the parent folder works too
    assert dataset.train_images.shape == (20, 32, 32, 3)
    assert dataset.test_images.shape == (4, 32, 32, 3)
    assert dataset.class_names[1] == "automobile" and dataset.name == "cifar10"
    raw = pickle.loads((folder / "data_batch_1").read_bytes())
    row = raw[b"data"][2]  # 1024 red, then 1024 green, then 1024 blue, row-major
    np.testing.assert_array_equal(dataset.train_images[2, :, :, 1], row[1024:2048].reshape(32, 32))
    assert dataset.train_images[2, 0, 5, 2] == row[2048 + 5]
    assert dataset.train_labels[:4].tolist() == raw[b"labels"]


def _python2_batch(rows: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote the official files (str opcodes, numpy.core)."""
    raw = rows.astype(np.uint8).tobytes()
    return (b"\x80\x02}(U\x04data"
            b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
            b"(K\x01" + struct.pack("<BiBi", 0x4A, len(rows), 0x4A, 3072) + b"\x86"
            b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
            b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
            b"T" + struct.pack("<i", len(raw)) + raw + b"tb"
            b"U\x06labels](" + b"".join(b"K" + bytes([label]) for label in labels) + b"eu.")


def test_python2_pickles_like_the_official_files_load(tmp_path):
    folder = _cifar_folder(tmp_path / "batches")
    rows = np.random.default_rng(2).integers(0, 256, (3, 3072))
    (folder / "test_batch").write_bytes(_python2_batch(rows, [7, 8, 9]))
    dataset = load_dataset(f"cifar10:{folder}")
    assert dataset.test_labels.tolist() == [7, 8, 9]
    np.testing.assert_array_equal(dataset.test_images,
                                  rows.reshape(3, 3, 32, 32).transpose(0, 2, 3, 1))


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    folder = _cifar_folder(tmp_path / "batches")
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": []}))
    with pytest.raises(DatasetError, match=r"data_batch_3' refers to the global '\w+\.system'"):
        load_dataset(f"cifar10:{folder}")
    assert not marker.exists()
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": eval}))
    with pytest.raises(DatasetError, match="'builtins.eval', which is refused"):
        load_dataset(f"cifar10:{folder}")


@pytest.mark.parametrize("name, content, message", [
    ("test_batch", None, "lacks test_batch"),
    ("data_batch_2", b"\x80\x02garbage", "cannot read"),
    ("data_batch_2", pickle.dumps([1, 2]), "not a CIFAR-10 batch"),
    ("data_batch_2", pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
     "must be 2 integers"),
    ("data_batch_2", pickle.dumps({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}),
     "N×3072"),
    ("test_batch", pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}),
     "label 10 at index 0"),
])
def test_bad_cifar_files_are_named(tmp_path, name, content, message):
    folder = _cifar_folder(tmp_path / "batches")
    if content is None:
        (folder / name).unlink()
    else:
        (folder / name).write_bytes(content)
    with pytest.raises(DatasetError, match=message) as error:
        load_dataset(f"cifar10:{folder}")
    assert name in str(error.value)


# --- image folders ----------------------------------------------------------------------

def _png(path: Path, size=(6, 5), mode="L", value=0) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, 7)
    Image.new(mode, size, color).save(path)


def _image_folder(root: Path, per_class=(5, 5, 10), mode="L") -> Path:
    for label, count in enumerate(per_class):
        for index in range(count):
            _png(root / f"class_{label}" / f"{index:02d}.png", mode=mode, value=40 * label)
    return root


def test_image_folder_holds_out_a_stratified_fifth(tmp_path):
    dataset = load_dataset(f"folder:{_image_folder(tmp_path / 'shapes')}")
    assert dataset.name == "shapes" and dataset.class_names == ("class_0", "class_1", "class_2")
    assert dataset.train_images.shape == (16, 5, 6, 1) and dataset.test_images.shape == (4, 5, 6, 1)
    assert np.bincount(dataset.test_labels).tolist() == [1, 1, 2]
    assert (dataset.train_images[:, 0, 0, 0] == 40 * dataset.train_labels).all()
    again = load_dataset(f"folder:{tmp_path / 'shapes'}")
    np.testing.assert_array_equal(again.test_images, dataset.test_images)


def test_image_folder_with_train_and_test_colour_and_mixed_sizes(tmp_path):
    _image_folder(tmp_path / "train", (2, 3), mode="RGB")
    _png(tmp_path / "train" / "class_0" / "big.png", size=(12, 10), mode="RGB")
    _png(tmp_path / "test" / "class_1" / "a.jpg", mode="L", value=80)
    dataset = load_dataset(f"folder:{tmp_path}")
    assert dataset.train_images.shape == (6, 5, 6, 3) and dataset.test_images.shape == (1, 5, 6, 3)
    assert dataset.test_labels.tolist() == [1]
    assert dataset.test_images[0, 2, 2].tolist() == [80, 80, 80]  # grayscale JPEG into RGB


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="has no class folders"):
        (tmp_path / "flat").mkdir()
        _png(tmp_path / "flat" / "a.png")
        load_dataset(f"folder:{tmp_path / 'flat'}")
    root = _image_folder(tmp_path / "data")
    (root / "class_9").mkdir()
    (root / "class_9" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match="class folder '.*class_9' has no images"):
        load_dataset(f"folder:{root}")
    (root / "class_9" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetError, match="cannot read image '.*broken.png'"):
        load_dataset(f"folder:{root}")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'absent'}")
    (tmp_path / "half" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="only one of train/ and test/"):
        load_dataset(f"folder:{tmp_path / 'half'}")


@pytest.mark.parametrize("source", ["mnist", "cifar10", "cifar100:/x", "folder:", "Fashion-MNIST"])
def test_unknown_source_lists_the_allowed_forms(source):
    with pytest.raises(DatasetError, match="allowed are 'fashion-mnist', 'cifar10:PATH'"):
        load_dataset(source)


# --- splits -----------------------------------------------------------------------------

def _numbered(labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Images whose two pixels encode their index, so splits can be traced back."""
    indices = np.arange(len(labels))
    images = np.stack([indices // 256, indices % 256], axis=1).astype(np.uint8)
    return images.reshape(-1, 2, 1, 1), np.asarray(labels, np.int32)


def _ids(images: np.ndarray) -> np.ndarray:
    return images[:, 0, 0, 0].astype(int) * 256 + images[:, 1, 0, 0]


def _toy(per_class=(100, 200, 300)) -> Dataset:
    images, labels = _numbered([label for label, count in enumerate(per_class)
                                for _ in range(count)])
    return Dataset("toy", images, labels, images[:3], labels[:3], ("a", "b", "c"))


def test_validation_split_is_disjoint_stratified_and_seeded():
    dataset = _toy()
    train, validation = split_validation(dataset, 0.1, seed=3)
    assert len(train) == 540 and len(validation) == 60
    assert np.bincount(validation.labels).tolist() == [10, 20, 30]
    train_ids, validation_ids = _ids(train.images), _ids(validation.images)
    assert not set(train_ids) & set(validation_ids)
    assert sorted([*train_ids, *validation_ids]) == list(range(600))
    np.testing.assert_array_equal(dataset.train_labels[validation_ids], validation.labels)
    same = split_validation(dataset, 0.1, seed=3)[1]
    other = split_validation(dataset, 0.1, seed=4)[1]
    np.testing.assert_array_equal(same.images, validation.images)
    assert not np.array_equal(other.images, validation.images)
    for fraction in (0.0, 1.0, -0.2):
        with pytest.raises(DatasetError, match="strictly between 0 and 1"):
            split_validation(dataset, fraction)


def test_split_seed_fixes_the_validation_split_across_training_seeds():
    """Runs of one model under several seeds share one validation split with `split_seed`."""
    from mnsearch.train.config import TrainConfig
    from mnsearch.train.data import training_split

    dataset = _toy()

    def validation_ids(**recipe):
        return _ids(training_split(dataset, TrainConfig(subset=0.5, **recipe))[1].images)

    def train_ids(**recipe):
        return _ids(training_split(dataset, TrainConfig(subset=0.5, **recipe))[0][0])

    np.testing.assert_array_equal(validation_ids(seed=1, split_seed=0), validation_ids(seed=0))
    np.testing.assert_array_equal(train_ids(seed=1, split_seed=0), train_ids(seed=0))
    assert not np.array_equal(validation_ids(seed=1), validation_ids(seed=0))
    assert TrainConfig(seed=5).data_seed == 5 and TrainConfig(seed=5, split_seed=0).data_seed == 0


def test_stratified_subset_counts_and_determinism():
    dataset = _toy()
    images, labels = stratified_subset(dataset.train_images, dataset.train_labels, 60, seed=0)
    assert np.bincount(labels).tolist() == [10, 20, 30]
    np.testing.assert_array_equal(dataset.train_labels[_ids(images)], labels)
    again = stratified_subset(dataset.train_images, dataset.train_labels, 60, seed=0)
    np.testing.assert_array_equal(again[0], images)
    _, labels = stratified_subset(dataset.train_images, dataset.train_labels, 0.5, seed=1)
    assert np.bincount(labels).tolist() == [50, 100, 150]
    _, labels = stratified_subset(dataset.train_images, dataset.train_labels, 3, seed=1)
    assert np.bincount(labels).tolist() == [1, 1, 1]  # every class kept, even in tiny subsets
    full = stratified_subset(dataset.train_images, dataset.train_labels, 1.0, seed=1)
    assert len(full[1]) == 600


@pytest.mark.parametrize("size", [0, 2, 601, 1.5, -0.1, 0.001, True, "10"])
def test_invalid_subset_sizes_give_the_allowed_range(size):
    dataset = _toy()
    with pytest.raises(DatasetError, match=r"allowed: a count from 3 .* to 600, or a fraction"):
        stratified_subset(dataset.train_images, dataset.train_labels, size, seed=0)


def test_dataset_checks_its_arrays():
    images = np.zeros((4, 2, 2, 1), np.uint8)
    labels = np.array([0, 1, 0, 1], np.int32)
    with pytest.raises(DatasetError, match="labels must lie in 0..1"):
        Dataset("bad", images, labels + 1, images, labels, ("a", "b"))
    with pytest.raises(DatasetError, match="uint8"):
        Dataset("bad", images.astype(np.float32), labels, images, labels, ("a", "b"))
    with pytest.raises(DatasetError, match="test images are"):
        Dataset("bad", images, labels, np.zeros((4, 3, 3, 1), np.uint8), labels, ("a", "b"))


# --- degenerate datasets: one class, empty splits -----------------------------------------

def test_one_class_image_folder_is_refused_before_decoding(tmp_path, monkeypatch):
    """It used to train and report 100% test accuracy: every prediction is the one class."""
    root = _image_folder(tmp_path / "one", per_class=(8,))
    from mnsearch.data import folders
    monkeypatch.setattr(folders, "_load_images",
                        lambda files: pytest.fail("images were decoded"))
    with pytest.raises(DatasetError, match=r"1 class folder \(class_0\): classification needs "
                                           r"at least 2 classes"):
        load_dataset(f"folder:{root}")
    _image_folder(tmp_path / "split" / "train", per_class=(4,))
    _image_folder(tmp_path / "split" / "test", per_class=(2,))
    with pytest.raises(DatasetError, match="at least 2 classes"):
        load_dataset(f"folder:{tmp_path / 'split'}")


def test_a_holdout_that_leaves_training_one_class_is_refused(tmp_path):
    """Two classes of one image each: the 20% test holdout takes one, training keeps one."""
    root = _image_folder(tmp_path / "tiny", per_class=(1, 1))
    with pytest.raises(DatasetError, match="training images hold only class 'class_"):
        load_dataset(f"folder:{root}")


def test_datasets_need_two_classes_and_nonempty_splits():
    images = np.zeros((4, 2, 2, 1), np.uint8)
    labels = np.array([0, 1, 0, 1], np.int32)
    with pytest.raises(DatasetError, match="has 1 class\\(es\\): classification needs at least 2"):
        Dataset("one", images, labels * 0, images, labels * 0, ("a",))
    with pytest.raises(DatasetError, match="has no test images"):
        Dataset("empty", images, labels, images[:0], labels[:0], ("a", "b"))
    with pytest.raises(DatasetError, match="has no training images"):
        Dataset("empty", images[:0], labels[:0], images, labels, ("a", "b"))
    with pytest.raises(DatasetError, match="training images hold only class 'b'"):
        Dataset("skewed", images, labels * 0 + 1, images, labels, ("a", "b"))
    assert Dataset("ok", images, labels, images[:1], labels[:1], ("a", "b")).num_classes == 2
