"""Dataset specs and loaders: digits, CIFAR-10 python batches in their real format, synthetic."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_prunebench.data import (
    CIFAR_MEAN,
    CIFAR_STD,
    CIFAR_TEST_FILE,
    CIFAR_TRAIN_FILES,
    Dataset,
    DataSpec,
    load_dataset,
    parse_data_spec,
)
from pytest_prunebench.errors import DataError

IMAGES_PER_BATCH = 20

# --- parse_data_spec --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [("digits", "digits"), (" Digits ", "digits"), ("synthetic", "synthetic")])
def test_parse_builtin_specs(text: str, kind: str) -> None:
    spec = parse_data_spec(text)
    assert spec == DataSpec(kind)
    assert spec.root is None
    assert spec.label == kind


def test_parse_cifar10_resolves_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_data_spec("cifar10:data/cifar")
    assert spec.kind == "cifar10"
    assert spec.root is not None and Path(spec.root).is_absolute()
    assert spec.root == str((tmp_path / "data" / "cifar").resolve())
    assert spec.label == f"cifar10:{spec.root}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("imagenet", "unknown dataset 'imagenet'"),
        ("", "unknown dataset"),
        ("cifar10", "cifar10 needs the directory"),
        ("cifar10:", "cifar10 needs the directory"),
        ("digits:xyz", "dataset digits takes no directory, got 'digits:xyz'"),
        ("synthetic:/tmp", "dataset synthetic takes no directory"),
    ],
)
def test_parse_bad_specs(text: str, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_data_spec(text)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


# --- digits -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset(DataSpec("digits"))


def test_digits_shapes_and_classes(digits: Dataset) -> None:
    assert digits.name == "digits"
    assert digits.num_classes == 10
    assert tuple(digits.train_x.shape) == (1437, 3, 32, 32)
    assert tuple(digits.test_x.shape) == (360, 3, 32, 32)
    assert digits.train_x.dtype == torch.float32 and digits.test_x.dtype == torch.float32
    assert digits.train_y.dtype == torch.int64 and digits.test_y.dtype == torch.int64
    assert tuple(digits.train_y.shape) == (1437,) and tuple(digits.test_y.shape) == (360,)
    assert sorted(digits.train_y.unique().tolist()) == list(range(10))
    assert sorted(digits.test_y.unique().tolist()) == list(range(10))


def test_digits_are_normalised_on_the_train_split(digits: Dataset) -> None:
    mean = digits.train_x.mean(dim=(0, 2, 3))
    std = digits.train_x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-4), mean
    assert torch.allclose(std, torch.ones(3), atol=1e-3), std
    assert torch.isfinite(digits.test_x).all()
    assert abs(float(digits.test_x.mean())) < 0.1  # same statistics, so the test split is close to zero mean


def test_digits_split_is_deterministic(digits: Dataset) -> None:
    again = load_dataset(DataSpec("digits"))
    assert torch.equal(again.train_x, digits.train_x)
    assert torch.equal(again.train_y, digits.train_y)
    assert torch.equal(again.test_x, digits.test_x)
    assert torch.equal(again.test_y, digits.test_y)


# --- cifar10: files in the real python-pickle format ------------------------------------------------------------


def batch_labels(index: int) -> list[int]:
    return [(i + index) % 10 for i in range(IMAGES_PER_BATCH)]


def batch_pixels(index: int) -> np.ndarray:
    pixels = np.random.default_rng(index).integers(0, 256, size=(IMAGES_PER_BATCH, 3072), dtype=np.uint8)
    pixels[0] = 0
    pixels[1] = 255
    return pixels


def batch_dict(index: int, name: str) -> dict[bytes, object]:
    return {
        b"batch_label": f"{name} of 5".encode(),
        b"labels": batch_labels(index),
        b"data": batch_pixels(index),
        b"filenames": [f"img_{index}_{i}.png".encode() for i in range(IMAGES_PER_BATCH)],
    }


def write_cifar(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate((*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE), start=1):
        with (root / name).open("wb") as handle:
            pickle.dump(batch_dict(index, name), handle)
    return root


def load_cifar(root: Path) -> Dataset:
    return load_dataset(parse_data_spec(f"cifar10:{root}"))


def cifar_error(root: Path) -> str:
    with pytest.raises(DataError) as info:
        load_cifar(root)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def expected_images(pixels: np.ndarray) -> np.ndarray:
    mean = np.asarray(CIFAR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(CIFAR_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return (pixels.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0 - mean) / std


def test_cifar_loads_shapes_labels_and_pixels(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "cifar")
    data = load_cifar(root)
    assert data.num_classes == 10
    assert data.name == f"cifar10:{root.resolve()}"
    assert tuple(data.train_x.shape) == (5 * IMAGES_PER_BATCH, 3, 32, 32)
    assert tuple(data.test_x.shape) == (IMAGES_PER_BATCH, 3, 32, 32)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    # data_batch_1..5 in order, then test_batch (index 6)
    assert data.train_y.tolist() == [label for i in range(1, 6) for label in batch_labels(i)]
    assert data.test_y.tolist() == batch_labels(6)
    train_pixels = np.concatenate([batch_pixels(i) for i in range(1, 6)])
    np.testing.assert_allclose(data.train_x.numpy(), expected_images(train_pixels), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data.test_x.numpy(), expected_images(batch_pixels(6)), rtol=1e-5, atol=1e-5)
    # an all-black and an all-white image map to -mean/std and (1-mean)/std per channel
    for channel in range(3):
        black = -CIFAR_MEAN[channel] / CIFAR_STD[channel]
        white = (1 - CIFAR_MEAN[channel]) / CIFAR_STD[channel]
        assert torch.allclose(data.train_x[0, channel], torch.full((32, 32), black), atol=1e-5)
        assert torch.allclose(data.train_x[1, channel], torch.full((32, 32), white), atol=1e-5)
    # row-major CHW: the first 1024 bytes are the red plane
    assert float(data.train_x[2, 0, 0, 1]) == pytest.approx(
        (batch_pixels(1)[2, 1] / 255.0 - CIFAR_MEAN[0]) / CIFAR_STD[0], abs=1e-5)
    assert float(data.train_x[2, 1, 0, 0]) == pytest.approx(
        (batch_pixels(1)[2, 1024] / 255.0 - CIFAR_MEAN[1]) / CIFAR_STD[1], abs=1e-5)


def test_cifar_finds_the_nested_batches_folder(tmp_path: Path) -> None:
    write_cifar(tmp_path / "download" / "cifar-10-batches-py")
    data = load_cifar(tmp_path / "download")
    assert tuple(data.train_x.shape) == (5 * IMAGES_PER_BATCH, 3, 32, 32)
    assert data.test_y.tolist() == batch_labels(6)


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes bytes as Python 2 `str` opcodes (SHORT_BINSTRING / BINSTRING), as the cPickle'd CIFAR download has."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def test_cifar_reads_python2_pickles_as_downloaded(tmp_path: Path) -> None:
    # The official batches are protocol-2 cPickle files from Python 2 with numpy 1.x: numpy.core.multiarray names.
    root = tmp_path / "py2"
    root.mkdir()
    for index, name in enumerate((*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE), start=1):
        with (root / name).open("wb") as handle:
            _Py2Pickler(handle, protocol=2).dump(batch_dict(index, name))
        raw = (root / name).read_bytes()
        assert b"_codecs" not in raw
        (root / name).write_bytes(raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert b"numpy.core.multiarray\n_reconstruct" in (root / CIFAR_TEST_FILE).read_bytes()
    data = load_cifar(root)
    assert data.test_y.tolist() == batch_labels(6)
    np.testing.assert_allclose(data.test_x.numpy(), expected_images(batch_pixels(6)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_reads_every_pickle_protocol_python3_writes(tmp_path: Path, protocol: int) -> None:
    root = tmp_path / f"protocol{protocol}"
    root.mkdir()
    for index, name in enumerate((*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE), start=1):
        with (root / name).open("wb") as handle:
            pickle.dump(batch_dict(index, name), handle, protocol=protocol)
    data = load_cifar(root)
    assert data.test_y.tolist() == batch_labels(6)
    np.testing.assert_allclose(data.test_x.numpy(), expected_images(batch_pixels(6)), rtol=1e-5, atol=1e-5)


def test_cifar_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = cifar_error(missing)
    assert str(missing) in message and "does not exist" in message


def test_cifar_missing_batch_file(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "cifar")
    (root / "data_batch_3").unlink()
    message = cifar_error(root)
    assert str(root) in message
    assert "lacks data_batch_3:" in message  # only the missing one is listed


def test_cifar_truncated_file(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "cifar")
    batch = root / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:5000])
    message = cifar_error(root)
    assert str(batch) in message and "not a CIFAR-10 python batch" in message


def test_cifar_pickle_without_data(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "cifar")
    with (root / CIFAR_TEST_FILE).open("wb") as handle:
        pickle.dump({b"labels": [1, 2, 3]}, handle)
    message = cifar_error(root)
    assert str(root / CIFAR_TEST_FILE) in message and "no b'data' entry (keys: b'labels')" in message


def test_cifar_data_of_the_wrong_shape(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "cifar")
    with (root / "data_batch_4").open("wb") as handle:
        pickle.dump({b"labels": [1, 2], b"data": np.zeros((2, 1024), dtype=np.uint8)}, handle)
    message = cifar_error(root)
    assert str(root / "data_batch_4") in message and "(N, 3072)" in message and "(2, 1024)" in message


def test_cifar_labels_out_of_range(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "cifar")
    with (root / "data_batch_5").open("wb") as handle:
        pickle.dump({b"labels": [1, 10], b"data": np.zeros((2, 3072), dtype=np.uint8)}, handle)
    message = cifar_error(root)
    assert str(root / "data_batch_5") in message and "labels must be 0..9" in message


def test_cifar_refuses_a_pickle_that_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch {marker}",)

    root = write_cifar(tmp_path / "cifar")
    with (root / "data_batch_1").open("wb") as handle:
        pickle.dump({b"labels": [0], b"data": Exploit()}, handle)
    message = cifar_error(root)
    assert str(root / "data_batch_1") in message
    assert "refusing to load" in message and "system" in message
    assert not marker.exists()


# --- synthetic --------------------------------------------------------------------------------------------------


def test_synthetic_shapes_and_determinism() -> None:
    first = load_dataset(parse_data_spec("synthetic"))
    second = load_dataset(parse_data_spec("synthetic"))
    assert first.name == "synthetic" and first.num_classes == 10
    assert tuple(first.train_x.shape) == (512, 3, 32, 32)
    assert tuple(first.test_x.shape) == (256, 3, 32, 32)
    assert first.train_x.dtype == torch.float32 and first.train_y.dtype == torch.int64
    assert first.train_y.tolist() == [i % 10 for i in range(512)]
    assert sorted(first.test_y.unique().tolist()) == list(range(10))
    for a, b in ((first.train_x, second.train_x), (first.test_x, second.test_x), (first.test_y, second.test_y)):
        assert torch.equal(a, b)
    assert not torch.equal(first.train_x[:256], first.test_x)  # fresh noise for the test split
