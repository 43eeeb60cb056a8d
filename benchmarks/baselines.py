"""Dense baselines with the default recipe: top1 (torch and device), epochs and wall time per built-in model.

Each model trains through the library's own path (baseline.load_or_train_baseline with no cache, then the device
measurement CaseRunner.dense makes), one after another in this process, with torch's default thread count.
Prints a line per model and writes benchmarks/baselines.json.

    .venv/bin/python benchmarks/baselines.py [--data digits] [--models resnet20 resnet56 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_prunebench.case import CaseRunner  # noqa: E402
from pytest_prunebench.data import parse_data_spec  # noqa: E402
from pytest_prunebench.settings import BUILTIN_MODELS, Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--models", nargs="+", default=list(BUILTIN_MODELS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "baselines.json")
    args = parser.parse_args()
    import torch

    spec = parse_data_spec(args.data)
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"prunebench-baselines-{os.getpid()}"
    settings = Settings(data=spec, no_cache=True, artifacts=scratch, min_dense_top1=0.0)
    runner = CaseRunner(settings, progress=lambda message: print(f"  {message}", flush=True))
    figures = {}
    for model in args.models:
        started = time.perf_counter()
        dense = runner.dense(model, spec)
        seconds = time.perf_counter() - started
        figures[model] = {"top1_device": dense.top1, "top1_torch": dense.top1_torch, "epochs": dense.training.epochs,
                          "kept_epoch": dense.training.kept_epoch, "stopped": dense.training.stopped,
                          "recipe": dense.training.recipe, "seconds": round(seconds, 1)}
        print(f"{model}: top1 {dense.top1_torch:.2f}% torch / {dense.top1:.2f}% device, {dense.training.epochs} "
              f"epochs ({dense.training.stopped}), {seconds:.0f} s", flush=True)
    document = {"data": spec.label, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                "date": time.strftime("%Y-%m-%d"), "models": figures}
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
