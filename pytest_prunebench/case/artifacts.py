"""Where a case's files go: the artifacts folder (ONNX files, IRs, per-case JSON), each written whole before a
record points at it."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import PrunebenchError


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "case"


def check_writable(folder: Path) -> None:
    """Before any training: the ONNX files and per-case JSON must have somewhere to go."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrunebenchError(f"--prunebench-artifacts {folder}: not a directory this run can write "
                              f"({exc.strerror or exc}); pass --prunebench-artifacts=DIR with a writable "
                              f"directory") from None


def place(content: bytes, target: Path) -> int:
    """Write a cached file where the record points (a later `prunebench cache prune` must not break records);
    returns its size in bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(content)
    os.replace(partial, target)
    return len(content)


@dataclass(frozen=True)
class CaseFiles:
    """A pruned case's files in the artifacts folder."""

    onnx_path: Path
    onnx_bytes: int
    structures_path: Path  # JSON beside the ONNX file: per pruned conv, its scores and removed structures


def place_case(folder: Path, name: str, onnx: bytes, structures: dict[str, dict[str, object]]) -> CaseFiles:
    onnx_path = folder / slug(name) / f"{slug(name)}.onnx"
    onnx_bytes = place(onnx, onnx_path)
    structures_path = onnx_path.with_suffix(".structures.json")
    structures_path.write_text(json.dumps(structures), encoding="utf-8")
    return CaseFiles(onnx_path, onnx_bytes, structures_path)
