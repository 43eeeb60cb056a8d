"""Datasets as normalised tensors: scikit-learn's digits (embedded), CIFAR-10 python batches, synthetic."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError

if TYPE_CHECKING:  # numpy loads only when data does: the plugin imports this module in every pytest run
    import numpy as np

NUM_CLASSES = {"digits": 10, "cifar10": 10, "synthetic": 10}
DATA_KINDS = tuple(NUM_CLASSES)
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
SPLIT_SEED = 0  # the digits split is part of the dataset's identity: never tie it to a run's seed


@dataclass(frozen=True)
class DataSpec:
    kind: str
    root: str | None = None

    @property
    def label(self) -> str:
        return self.kind if self.root is None else f"{self.kind}:{self.root}"


def parse_data_spec(text: str) -> DataSpec:
    """`digits`, `synthetic` or `cifar10:DIR`; raises ValueError with the accepted forms."""
    kind, sep, root = text.strip().partition(":")
    kind = kind.lower()
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown dataset {text!r}: use digits, synthetic or cifar10:DIR")
    if kind == "cifar10":
        if not sep or not root:
            raise ValueError("cifar10 needs the directory of its python batches: cifar10:DIR")
        return DataSpec(kind, str(Path(root).expanduser().resolve()))
    if sep:
        raise ValueError(f"dataset {kind} takes no directory, got {text!r}")
    return DataSpec(kind)


@dataclass(frozen=True)
class Dataset:
    """Float32 NCHW images (3x32x32), already normalised, with int64 labels."""

    name: str
    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any
    num_classes: int


def load_dataset(spec: DataSpec) -> Dataset:
    loaders = {"digits": _digits, "cifar10": _cifar10, "synthetic": _synthetic}
    train_x, train_y, test_x, test_y, mean, std = loaders[spec.kind](spec)
    return _as_dataset(spec, train_x, train_y, test_x, test_y, mean, std)


def _as_dataset(spec: DataSpec, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                mean: tuple[float, ...], std: tuple[float, ...]) -> Dataset:
    import numpy as np
    import torch

    shift = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    scale = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - shift) / scale).astype(np.float32))

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(y, dtype=np.int64))

    return Dataset(spec.label, images(train_x), labels(train_y), images(test_x), labels(test_y),
                   NUM_CLASSES[spec.kind])


def _digits(_spec: DataSpec) -> tuple:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    large = F.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    x = large.clamp(0, 1).numpy()
    train_x, test_x, train_y, test_y = train_test_split(
        x, digits.target, test_size=0.2, random_state=SPLIT_SEED, stratify=digits.target
    )
    mean = tuple(float(v) for v in train_x.mean(axis=(0, 2, 3)))
    std = tuple(float(v) for v in train_x.std(axis=(0, 2, 3)))
    return train_x, train_y, test_x, test_y, mean, std


def _synthetic(_spec: DataSpec, classes: int = 10, train: int = 512, test: int = 256) -> tuple:
    """Class templates (smooth random patterns) plus noise: learnable in an epoch or two, no files needed."""
    import numpy as np

    rng = np.random.default_rng(SPLIT_SEED)
    coarse = rng.normal(size=(classes, 3, 4, 4)).astype(np.float32)
    templates = coarse.repeat(8, axis=2).repeat(8, axis=3)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % classes
        x = templates[y] + rng.normal(scale=0.8, size=(n, 3, 32, 32)).astype(np.float32)
        return x, y

    train_x, train_y = draw(train)
    test_x, test_y = draw(test)
    return train_x, train_y, test_x, test_y, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def _cifar10(spec: DataSpec) -> tuple:
    import numpy as np

    root = _cifar_root(Path(spec.root or ""))
    parts = [_read_cifar_batch(root / name) for name in CIFAR_TRAIN_FILES]
    train_x = np.concatenate([x for x, _ in parts])
    train_y = np.concatenate([y for _, y in parts])
    test_x, test_y = _read_cifar_batch(root / CIFAR_TEST_FILE)
    return train_x, train_y, test_x, test_y, CIFAR_MEAN, CIFAR_STD


def _cifar_root(root: Path) -> Path:
    if not root.is_dir():
        raise DataError(f"cifar10 data directory {str(root)!r} does not exist: extract cifar-10-python.tar.gz "
                        f"there (it holds data_batch_1..5 and test_batch)")
    nested = root / "cifar-10-batches-py"
    if not (root / CIFAR_TEST_FILE).exists() and nested.is_dir():
        root = nested
    missing = [n for n in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE) if not (root / n).is_file()]
    if missing:
        raise DataError(f"cifar10 data directory {str(root)!r} lacks {', '.join(missing)}: it needs the "
                        f"python-pickle batches data_batch_1..5 and test_batch")
    return root


class _ArrayUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles: allow the numpy array machinery and nothing else, so no code runs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5 (Python >= 3.14's default)
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # protocol 2 written by Python 3: bytes as latin-1 text
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    try:
        with path.open("rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc}); re-extract "
                        f"cifar-10-python.tar.gz") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path}: expected data of shape (N, 3072) with N labels, got {data.shape} and "
                        f"{len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels
