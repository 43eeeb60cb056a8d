"""Datasets as normalised tensors: scikit-learn's digits (embedded), CIFAR-10 python batches, synthetic."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DataError, shown

if TYPE_CHECKING:  # numpy and torch load only when data does: the plugin imports this module in every pytest run
    import numpy as np
    import torch

NUM_CLASSES = {"digits": 10, "cifar10": 10, "synthetic": 10}
DATA_KINDS = tuple(NUM_CLASSES)
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
NORMALISE_CHUNK = 2048  # images normalised at a time (25 MB of float32)
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
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
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
        # Chunk by chunk into one float32 array: whole-array arithmetic on CIFAR-10's 50,000 training images
        # makes three 614 MB temporaries (a 2.2 GB peak measured here); this way the peak is the result.
        out = np.empty(x.shape, dtype=np.float32)
        for start in range(0, len(x), NORMALISE_CHUNK):
            chunk = out[start:start + NORMALISE_CHUNK]
            chunk[...] = x[start:start + NORMALISE_CHUNK]
            chunk -= shift
            chunk /= scale
        return torch.from_numpy(out)

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
    # The pixels stay uint8 (a quarter of float32's memory) until normalised: the statistics move to 0..255.
    return (train_x, train_y, test_x, test_y, tuple(255.0 * m for m in CIFAR_MEAN),
            tuple(255.0 * s for s in CIFAR_STD))


def _cifar_root(root: Path) -> Path:
    if root.exists() and not root.is_dir():
        raise DataError(f"cifar10 data directory {str(root)!r} is a file, not a directory: extract "
                        f"cifar-10-python.tar.gz and name the folder that holds data_batch_1..5 and test_batch")
    if not root.is_dir():
        raise DataError(f"cifar10 data directory {str(root)!r} does not exist: extract cifar-10-python.tar.gz "
                        f"there (it holds data_batch_1..5 and test_batch)")
    nested = root / "cifar-10-batches-py"
    if not (root / CIFAR_TEST_FILE).exists() and nested.is_dir():
        root = nested
    missing = [n for n in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE) if not (root / n).is_file()]
    if missing:
        archives = sorted(p.name for p in root.glob("*.tar.gz"))
        hint = f" (extract {archives[0]} first: tar xzf {archives[0]})" if archives else ""
        raise DataError(f"cifar10 data directory {str(root)!r} lacks {', '.join(missing)}: it needs the "
                        f"python-pickle batches data_batch_1..5 and test_batch{hint}")
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
            if handle.read(2) == b"\x1f\x8b":
                raise DataError(f"{path}: a gzip-compressed file, not a CIFAR-10 python batch: extract "
                                f"cifar-10-python.tar.gz (tar xzf) and use the batches it holds")
            handle.seek(0)
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, OSError,
            IndexError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({_one_line(exc)}); re-extract "
                        f"cifar-10-python.tar.gz") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: holds a {type(batch).__name__}, not a CIFAR-10 batch (a dict with b'data' and "
                        f"b'labels'); re-extract cifar-10-python.tar.gz")
    missing = [key for key in (b"data", b"labels") if key not in batch]
    if missing:
        keys = ", ".join(shown(key) for key in list(batch)[:6]) or "none"
        raise DataError(f"{path}: no {' or '.join(map(repr, missing))} entry (keys: {keys}); a CIFAR-10 python batch "
                        f"has b'data' (N x 3072 pixels) and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    # Checked before any conversion: numpy would expand a nested-list bomb or wrap floats and negatives to bytes.
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        got = f"shape {data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise DataError(f"{path}: expected data of shape (N, 3072), got {got}")
    if not np.issubdtype(data.dtype, np.integer):
        raise DataError(f"{path}: data must be whole-number pixels 0..255 (uint8), got {data.dtype}")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise DataError(f"{path}: pixels must be 0..255, found {data.min()}..{data.max()}")
    flat = isinstance(labels, list | tuple) or (isinstance(labels, np.ndarray) and labels.ndim == 1)
    if not flat or not all(isinstance(label, int | np.integer) and not isinstance(label, bool) for label in labels):
        raise DataError(f"{path}: labels must be a flat list of whole numbers 0..9, got {shown(labels)}")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    if not len(data):
        raise DataError(f"{path}: holds no images; re-extract cifar-10-python.tar.gz")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8, copy=False), labels


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
