"""Dense top1 on a dataset per epoch under the baselines' recipe (SGD, one epoch of linear warm-up, per-step cosine),
for choosing a model's epochs / learning rate / batch size. Prints one JSON line per run, with every epoch's test top1
and wall seconds.

    .venv/bin/python benchmarks/dense_recipe.py --model mobilenetv2 --epochs 5 --lr 0.1 --batch 128 [--data digits]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from pytest_prunebench.data import load_dataset, parse_data_spec  # noqa: E402
from pytest_prunebench.lock import host_gate_for, use_host_gate  # noqa: E402
from pytest_prunebench.models import build_model  # noqa: E402
from pytest_prunebench.training import TrainConfig, train_dense  # noqa: E402

EPOCH_LINE = re.compile(r"dense epoch (\d+)/\d+: loss ([\d.]+), top1 ([\d.]+)%, ([\d.]+) s")


def recalibrated_top1(model: torch.nn.Module, data) -> float:
    """Test top1 of a copy whose BN running statistics are recomputed over the training set with the final weights
    (a cumulative average, no gradient): tells a model that learned from one whose running statistics lag its
    weights (eval-mode top1 at chance while the training loss falls)."""
    import copy

    from pytest_prunebench.training import evaluate

    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative moving average over the passes below
    twin.train()
    with torch.no_grad():
        for start in range(0, len(data.train_x), 128):
            twin(data.train_x[start:start + 128])
    return evaluate(twin, data.test_x, data.test_y).top1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mobilenetv2")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset(parse_data_spec(args.data))
    torch.manual_seed(args.seed)
    model = build_model(args.model, data.num_classes)
    epochs: list[dict[str, float]] = []

    def progress(message: str) -> None:
        match = EPOCH_LINE.search(message)
        if match:
            recalibrated = recalibrated_top1(model, data)
            epochs.append({"epoch": int(match[1]), "loss": float(match[2]), "top1": float(match[3]),
                           "seconds": float(match[4]), "top1_bn_recalibrated": recalibrated})
            print(f"{message}; with BN statistics recalibrated: {recalibrated:.2f}%", file=sys.stderr, flush=True)

    started = time.perf_counter()
    # Gated as a pytest run's training is: a latency measurement on this host pauses it at its next step.
    with use_host_gate(host_gate_for("CPU", 900)):
        result = train_dense(model, data, TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch,
                                                      seed=args.seed), progress=progress)
    print(json.dumps({**vars(args), "threads": torch.get_num_threads(), "top1": result.result.top1,
                      "seconds": round(time.perf_counter() - started, 1), "per_epoch": epochs}))


if __name__ == "__main__":
    main()
