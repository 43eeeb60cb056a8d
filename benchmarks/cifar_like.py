"""A CIFAR-10-sized data directory for the benchmarks: the python-pickle batches `--prunebench-data cifar10:DIR`
reads (data_batch_1..5, test_batch; uint8 pixels, 3x32x32), with learnable content (a smooth colour pattern per
class plus noise), since the real CIFAR-10 cannot be downloaded here.

    .venv/bin/python benchmarks/cifar_like.py DIR [--train 50000] [--test 10000]
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np

CLASSES = 10
TRAIN_FILES = 5
GENERATOR_VERSION = 2  # bump when the content changes: a directory written by another version is rewritten


def write_cifar_like(root: Path, train: int = 50_000, test: int = 10_000, seed: int = 0) -> Path:
    """Write the batches unless `root` already holds this generator's output for these sizes; returns `root`."""
    stamp = root / "generated.json"
    identity = {"generator": GENERATOR_VERSION, "train": train, "test": test, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == identity:
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(CLASSES, 3, 4, 4)).repeat(8, axis=2).repeat(8, axis=3)

    def write_batch(count: int, name: str) -> None:
        labels = rng.integers(0, CLASSES, count)
        pixels = 128 + 40 * templates[labels] + rng.normal(scale=20, size=(count, 3, 32, 32))
        data = np.clip(pixels, 0, 255).astype(np.uint8).reshape(count, 3 * 32 * 32)
        with (root / name).open("wb") as handle:
            pickle.dump({b"data": data, b"labels": labels.tolist()}, handle, protocol=4)

    for index in range(1, TRAIN_FILES + 1):
        write_batch(train // TRAIN_FILES, f"data_batch_{index}")
    write_batch(test, "test_batch")
    stamp.write_text(json.dumps(identity))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--train", type=int, default=50_000, help="training images (split over 5 batches)")
    parser.add_argument("--test", type=int, default=10_000, help="test images")
    args = parser.parse_args()
    print(write_cifar_like(args.root, args.train, args.test))


if __name__ == "__main__":
    main()
