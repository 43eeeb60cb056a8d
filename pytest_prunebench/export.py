"""ONNX export: one self-contained file per model, checked by onnx.checker."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .errors import PrunebenchError
from .lock import cpu_work
from .models import INPUT_SHAPE, evaluating

OPSET = 17


def export_onnx(model: nn.Module, path: Path, input_shape: tuple[int, ...] = INPUT_SHAPE) -> int:
    """Export in eval mode at batch 1 (what latency is measured on) and return the file size in bytes.

    The TorchScript exporter (dynamo=False) writes one file in ~0.15 s; the dynamo exporter takes seconds,
    writes a side `.onnx.data` file and prints to stdout.
    """
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")  # per process: xdist workers may export the same model
    with cpu_work(), evaluating(model), warnings.catch_warnings():
        # The legacy exporter is the deliberate choice (see the docstring); its deprecation notice is noise.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(model, (torch.zeros(1, *input_shape),), str(partial), dynamo=False,
                          opset_version=OPSET, input_names=["input"], output_names=["logits"])
    try:
        with cpu_work():
            onnx.checker.check_model(str(partial), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise PrunebenchError(f"{path}: the exported ONNX model fails onnx.checker: {exc}") from None
    os.replace(partial, path)
    return path.stat().st_size
