"""Read offline W&B runs back: wandb 0.31 writes only a binary `run-<id>.wandb` file and has no Python reader.

The file is a LevelDB-style log (a 7-byte `:W&B` header, then 32 KiB blocks of CRC-checked chunks) whose
payloads are wandb's own protobuf `Record` messages, which this module parses with wandb's generated classes.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_HEADER = struct.Struct("<4sHB")  # ident, magic, version
CHUNK_HEADER = struct.Struct("<IHB")  # crc32 of (type byte, payload), payload length, chunk type
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class CorruptRunFile(ValueError):
    pass


def records(path: Path) -> Iterator[Any]:
    """Every `wandb_internal_pb2.Record` in the file, in write order; a bad checksum raises CorruptRunFile."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, version = FILE_HEADER.unpack_from(data, 0)
    if (ident, magic, version) != (b":W&B", 0xBEE1, 0):
        raise CorruptRunFile(f"{path}: not a W&B run file (header {ident!r} {magic:#x} {version})")
    offset, pending = FILE_HEADER.size, b""
    while offset + CHUNK_HEADER.size <= len(data):
        room = BLOCK - offset % BLOCK
        if room < CHUNK_HEADER.size:  # a block's tail too short for a chunk header is padding
            offset += room
            continue
        crc, length, kind = CHUNK_HEADER.unpack_from(data, offset)
        payload = data[offset + CHUNK_HEADER.size: offset + CHUNK_HEADER.size + length]
        offset += CHUNK_HEADER.size + length
        if kind == 0 and length == 0:  # zero padding at the end of a block
            offset += BLOCK - offset % BLOCK if offset % BLOCK else 0
            continue
        if zlib.crc32(payload, zlib.crc32(bytes([kind]))) != crc:
            raise CorruptRunFile(f"{path}: checksum mismatch at byte {offset - length}")
        if kind in (FULL, FIRST):
            pending = payload
        else:
            pending += payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


@dataclass
class OfflineRun:
    """What one offline run holds, as plain values."""

    path: Path
    run_id: str = ""
    name: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    tags: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None


def _items(update: Any) -> dict[str, Any]:
    """`key` or nested `nested_key`, with a JSON value."""
    return {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in update}


def read_run(path: Path) -> OfflineRun:
    run = OfflineRun(path)
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.name, run.project, run.entity = r.run_id, r.display_name, r.project, r.entity
            run.group, run.job_type, run.tags = r.run_group, r.job_type, tuple(r.tags)
            run.config.update(_config_values(r.config.update))
        elif kind == "config":
            run.config.update(_config_values(record.config.update))
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
        elif kind == "artifact":
            run.artifacts.append({"name": record.artifact.name, "type": record.artifact.type,
                                  "files": [entry.path for entry in record.artifact.manifest.contents]})
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def _config_values(update: Any) -> dict[str, Any]:
    """Config items are stored as {"value": ..., "desc": ...}; W&B's own keys start with `_`."""
    values = {}
    for key, value in _items(update).items():
        if key.startswith("_"):
            continue
        values[key] = value["value"] if isinstance(value, dict) and "value" in value else value
    return values


def offline_runs(directory: Path) -> list[OfflineRun]:
    """Every run under `directory`/wandb/, oldest first."""
    return [read_run(path) for path in sorted(directory.glob("wandb/offline-run-*/run-*.wandb"))]
