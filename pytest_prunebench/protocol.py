"""What travels between producers and device workers: no pickles, nothing a receiver executes.

A job is one Redis stream entry: a `meta` field (JSON, with the protocol version) and, inline, the pruned ONNX
as raw bytes. Large inputs that repeat across jobs (the test images and labels, the dense ONNX) travel once, as
blobs stored under their SHA-256 and referenced by it. Every binary field is described in the JSON by its size
and SHA-256 (and arrays by dtype and shape), so a truncated or substituted payload is refused, not measured.

A result is a Redis hash: `meta` (JSON) and the latency samples as raw float64 bytes.

Versions: a job of version 1 times a fixed number of rounds. Version 2 adds one field, `adaptive`
(`{"target": 0.01, "max_rounds": 5000, "budget_s": 120}`: --prunebench-rounds auto), with `rounds` then the rounds
per model before the first look at the interval. Producers send version 1 whenever rounds are fixed, so a worker of
an older version keeps serving them; it answers a version-2 job with an error naming both versions. Results are
unchanged (version 1): the samples say how many rounds ran.

Import-light: stdlib and numpy only (the device worker imports it on a host without torch).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .errors import ProtocolError

if TYPE_CHECKING:
    from .device import DeviceMeasurement

VERSION = 1  # results, and jobs with a fixed number of rounds
ADAPTIVE_VERSION = 2  # jobs with `adaptive` (intervals.AdaptiveRounds)
JOB_VERSIONS = (VERSION, ADAPTIVE_VERSION)
MAX_META_BYTES = 64 * 1024  # a job's JSON: names and numbers only
DEFAULT_MAX_PAYLOAD = 256 * 1024 * 1024  # per blob: ResNet-110's ONNX is ~7 MB, CIFAR-10's test set 123 MB
ARRAY_DTYPES = frozenset({"float64", "float32", "float16", "int64", "int32", "uint8"})
KEY_PREFIX = "prunebench"
JOB_FIELDS = frozenset({"v", "job", "case", "device", "precision", "rounds", "warmup", "model", "reference",
                        "images", "labels", "producer", "weights", "reference_weights"})
ADAPTIVE_FIELDS = frozenset({"target", "max_rounds", "budget_s"})
MAX_ROUNDS = 100_000



def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stream_key(device: str) -> str:
    """One stream (and one consumer group) per device: a worker reads only the devices it serves."""
    return f"{KEY_PREFIX}:jobs:{device}"


def blob_key(digest: str) -> str:
    return f"{KEY_PREFIX}:blob:{digest}"


def result_key(job: str) -> str:
    return f"{KEY_PREFIX}:result:{job}"


def done_key(job: str) -> str:
    """A list the worker pushes to once the result is stored: the producer waits on it with BLPOP."""
    return f"{KEY_PREFIX}:done:{job}"


def heartbeat_key(worker: str) -> str:
    return f"{KEY_PREFIX}:worker:{worker}"


# The names of the workers that beat (a set): producers read these heartbeats directly, not by scanning every key
# (a SCAN walks the whole keyspace: results, blobs, streams, whatever else the database holds).
WORKERS_KEY = f"{KEY_PREFIX}:workers"


GROUP = "workers"


@dataclass(frozen=True)
class BlobRef:
    """A binary payload: inline (a field of the stream entry) or stored once under its SHA-256."""

    sha256: str
    size: int
    inline: str | None = None  # the stream entry's field that holds it; None: the blob key
    dtype: str | None = None  # arrays only
    shape: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sha256": self.sha256, "bytes": self.size}
        if self.inline:
            out["inline"] = self.inline
        if self.dtype is not None:
            out["dtype"], out["shape"] = self.dtype, list(self.shape or ())
        return out


@dataclass(frozen=True)
class Job:
    job: str
    case: str
    device: str
    precision: str | None
    rounds: Any  # int, or an intervals.AdaptiveRounds policy (a version-2 job)
    warmup: int
    model: BlobRef  # the ONNX to measure
    reference: BlobRef | None  # the dense ONNX timed interleaved with it; None: the dense model itself
    images: BlobRef
    labels: BlobRef
    producer: str
    weights: BlobRef | None = None  # an OpenVINO IR's .bin: `model` is then its .xml (f16 and int8 deployments)
    reference_weights: BlobRef | None = None  # the same for the reference

    def meta(self) -> bytes:
        fixed = isinstance(self.rounds, int)
        body = {"v": VERSION if fixed else ADAPTIVE_VERSION, "job": self.job, "case": self.case,
                "device": self.device, "precision": self.precision,
                "rounds": self.rounds if fixed else self.rounds.min_rounds, "warmup": self.warmup,
                "model": self.model.to_json(), "reference": self.reference.to_json() if self.reference else None,
                "images": self.images.to_json(), "labels": self.labels.to_json(), "producer": self.producer}
        # Only IR jobs carry these: an ONNX job stays readable by workers that predate them, and such a worker
        # answers an IR job with an error naming the unknown field.
        for name in ("weights", "reference_weights"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name).to_json()
        if not fixed:
            body["adaptive"] = {"target": self.rounds.target, "max_rounds": self.rounds.max_rounds,
                                "budget_s": self.rounds.budget_s}
        return json.dumps(body, separators=(",", ":")).encode()


def array_ref(array: Any, inline: str | None = None) -> tuple[BlobRef, bytes]:
    """A C-contiguous little-endian copy of `array` as raw bytes, and its reference."""
    import numpy as np

    data = np.ascontiguousarray(array)
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    if data.dtype.name not in ARRAY_DTYPES:
        raise ProtocolError(f"arrays of {data.dtype.name} do not travel; use one of {', '.join(sorted(ARRAY_DTYPES))}")
    raw = data.tobytes()
    return BlobRef(sha256(raw), len(raw), inline, data.dtype.name, tuple(int(d) for d in data.shape)), raw


def bytes_ref(raw: bytes, inline: str | None = None) -> BlobRef:
    return BlobRef(sha256(raw), len(raw), inline)


def decode_array(ref: BlobRef, raw: bytes) -> Any:
    """The array `raw` holds, after checking its size and hash against `ref` (a truncated payload fails here)."""
    import numpy as np

    check_payload(ref, raw)
    assert ref.dtype is not None and ref.shape is not None  # parse_job checked both for arrays
    dtype = np.dtype(ref.dtype).newbyteorder("<")
    if int(np.prod(ref.shape, dtype=np.int64)) * dtype.itemsize != len(raw):
        raise ProtocolError(f"array of {ref.dtype} {list(ref.shape)} does not fill its {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(ref.shape)


def check_payload(ref: BlobRef, raw: bytes | None) -> bytes:
    if raw is None:
        raise ProtocolError(f"payload {ref.sha256[:12]} is missing (expired, or never stored)")
    if len(raw) != ref.size:
        raise ProtocolError(f"payload {ref.sha256[:12]} has {len(raw)} bytes, its job says {ref.size} (truncated?)")
    if sha256(raw) != ref.sha256:
        raise ProtocolError(f"payload {ref.sha256[:12]} does not match its SHA-256")
    return raw


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProtocolError(f"field {key!r} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _ref(body: dict[str, Any], key: str, limit: int, array: bool) -> BlobRef:
    raw = _field(body, key, dict)
    digest = _field(raw, "sha256", str)
    size = _field(raw, "bytes", int)
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ProtocolError(f"{key}: sha256 is not 64 hex digits")
    if not 0 <= size <= limit:
        raise ProtocolError(f"{key}: {size} bytes is over this worker's limit of {limit} bytes (--max-bytes)")
    inline = raw.get("inline")
    if inline is not None and (not isinstance(inline, str) or inline == "meta" or len(inline) > 32):
        raise ProtocolError(f"{key}: inline must name a field of the stream entry")
    if not array:
        return BlobRef(digest, size, inline)
    dtype = raw.get("dtype")
    shape = raw.get("shape")
    if dtype not in ARRAY_DTYPES:
        raise ProtocolError(f"{key}: dtype must be one of {', '.join(sorted(ARRAY_DTYPES))}")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 2**31 for d in shape)):
        raise ProtocolError(f"{key}: shape must be a list of 1 to 8 sizes")
    return BlobRef(digest, size, inline, dtype, tuple(shape))


def job_id_of(meta: bytes | None) -> str | None:
    """The job id of a message, if it has one worth answering (a message without one is only logged)."""
    job = _text_of(meta, "job")
    return job if job is not None and valid_job_id(job) else None


def case_of(meta: bytes | None) -> str | None:
    """The case a message names, read before the whole job is checked: what a worker's lines call the job from
    the moment it takes it (a job handed back at once is named like one it measured)."""
    case = _text_of(meta, "case")
    return case[:200] if case and case.isprintable() else None


def _text_of(meta: bytes | None, name: str) -> str | None:
    try:
        body = json.loads(meta or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def valid_job_id(job: str) -> bool:
    return 1 <= len(job) <= 64 and all(c.isalnum() or c in "-_" for c in job)


def parse_job(meta: bytes | None, limit: int = DEFAULT_MAX_PAYLOAD) -> Job:
    """A job from its JSON, or a ProtocolError saying what is wrong with it (one line)."""
    if meta is None:
        raise ProtocolError("the message has no meta field")
    if len(meta) > MAX_META_BYTES:
        raise ProtocolError(f"meta of {len(meta)} bytes is over {MAX_META_BYTES} bytes")
    try:
        body = json.loads(meta)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"meta is not JSON ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise ProtocolError("meta is not a JSON object")
    version = body.get("v")
    if version not in JOB_VERSIONS:
        raise ProtocolError(f"protocol version {version!r} is not this worker's {VERSION} or {ADAPTIVE_VERSION}; run "
                            f"the same pytest-prunebench version on producers and workers")
    unknown = set(body) - JOB_FIELDS - ({"adaptive"} if version == ADAPTIVE_VERSION else set())
    if unknown:
        raise ProtocolError(f"unknown field(s) {', '.join(sorted(unknown)[:5])}")
    job = _field(body, "job", str)
    if not valid_job_id(job):
        raise ProtocolError("job id must be 1-64 letters, digits, - or _")
    precision = body.get("precision")
    if precision is not None and precision not in ("f32", "bf16", "f16"):
        raise ProtocolError("precision must be f32, bf16, f16 or null")
    rounds, warmup = _field(body, "rounds", int), _field(body, "warmup", int)
    if not (1 <= rounds <= MAX_ROUNDS and 0 <= warmup <= MAX_ROUNDS):
        raise ProtocolError(f"rounds must be 1-{MAX_ROUNDS} and warmup 0-{MAX_ROUNDS}")
    device = _field(body, "device", str)
    if not 1 <= len(device) <= 64:
        raise ProtocolError("device name must be 1-64 characters")
    reference = _ref(body, "reference", limit, False) if body.get("reference") is not None else None
    if version == ADAPTIVE_VERSION:
        rounds = _adaptive(_field(body, "adaptive", dict), rounds)
    weights = _ref(body, "weights", limit, False) if body.get("weights") is not None else None
    reference_weights = (_ref(body, "reference_weights", limit, False) if body.get("reference_weights") is not None
                         else None)
    if reference_weights is not None and reference is None:
        raise ProtocolError("reference_weights without a reference")
    return Job(job, _field(body, "case", str)[:200], device, precision, rounds, warmup,
               _ref(body, "model", limit, False), reference, _ref(body, "images", limit, True),
               _ref(body, "labels", limit, True), _field(body, "producer", str)[:200], weights, reference_weights)


def _adaptive(raw: dict[str, Any], min_rounds: int) -> Any:
    """A version-2 job's `adaptive` field as an intervals.AdaptiveRounds, each value checked."""
    from .intervals import AdaptiveRounds

    unknown = set(raw) - ADAPTIVE_FIELDS
    if unknown:
        raise ProtocolError(f"adaptive: unknown field(s) {', '.join(sorted(unknown)[:5])}")
    target, budget = _field(raw, "target", (int, float)), _field(raw, "budget_s", (int, float))
    max_rounds = _field(raw, "max_rounds", int)
    if not (0 < target <= 0.5 and 0 < budget <= 24 * 3600 and min_rounds <= max_rounds <= MAX_ROUNDS):
        raise ProtocolError(f"adaptive: target must be in (0, 0.5], budget_s in (0, 86400] and max_rounds from rounds "
                            f"to {MAX_ROUNDS}")
    return AdaptiveRounds(float(target), min_rounds, max_rounds, float(budget))


# -- results -------------------------------------------------------------------------------------------------------

def encode_result(job: str, worker: str, openvino_version: str, measurement: Any = None,
                  error: str | None = None) -> dict[str, bytes]:
    """The fields of a result hash: a DeviceMeasurement, or one line saying why the job was not measured."""
    import numpy as np

    body: dict[str, Any] = {"v": VERSION, "job": job, "worker": worker, "worker_openvino": openvino_version}
    fields: dict[str, bytes] = {}
    if measurement is None:
        body["error"] = error or "unknown error"
    else:
        m = measurement
        counters = m.counters
        body["measurement"] = {
            "device": m.device, "precision": m.precision, "throughput_fps": m.throughput_fps, "top1": m.top1,
            "top5": m.top5, "measured_at": list(m.measured_at), "distinct_predictions": m.distinct_predictions,
            "seconds": dict(m.seconds),
            "counters": None if counters is None else {
                "counter_ms": counters.counter_ms, "share": counters.share, "rounds": counters.rounds,
                "nodes": [[n.name, list(n.originals), n.median_ms, n.exec_type] for n in counters.nodes]},
        }
        for name in ("latencies_s", "reference_latencies_s"):
            ref, raw = array_ref(np.asarray(getattr(m, name), dtype=np.float64).reshape(-1), inline=name)
            body["measurement"][name] = ref.to_json()
            fields[name] = raw
    fields["meta"] = json.dumps(body, separators=(",", ":")).encode()
    return fields


@dataclass(frozen=True)
class Result:
    job: str
    worker: str
    worker_openvino: str
    measurement: DeviceMeasurement | None  # None with an error
    error: str | None


def decode_result(fields: dict[bytes, bytes]) -> Result:
    from .device import DeviceCounters, DeviceMeasurement, NodeTime

    try:
        body = json.loads(fields.get(b"meta") or b"")
        if not isinstance(body, dict) or body.get("v") != VERSION:
            raise ProtocolError(f"result of protocol version {body.get('v') if isinstance(body, dict) else None!r}, "
                                f"not {VERSION}")
        job, worker, openvino = str(body["job"]), str(body["worker"]), str(body["worker_openvino"])
        if "error" in body:
            return Result(job, worker, openvino, None, str(body["error"]))
        m = body["measurement"]

        def samples(name: str) -> tuple[float, ...]:
            ref = _ref(m, name, DEFAULT_MAX_PAYLOAD, True)
            return tuple(float(x) for x in decode_array(ref, fields.get(name.encode()) or b""))

        c = m["counters"]
        counters = None if c is None else DeviceCounters(
            float(c["counter_ms"]), float(c["share"]),
            tuple(NodeTime(str(n[0]), tuple(str(o) for o in n[1]), float(n[2]), str(n[3])) for n in c["nodes"]),
            int(c["rounds"]))
        measurement = DeviceMeasurement(
            str(m["device"]), str(m["precision"]), samples("latencies_s"), float(m["throughput_fps"]),
            float(m["top1"]), float(m["top5"]), (float(m["measured_at"][0]), float(m["measured_at"][1])),
            samples("reference_latencies_s"), counters, int(m["distinct_predictions"]),
            {str(k): float(v) for k, v in m["seconds"].items()})
    except ProtocolError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ProtocolError(f"malformed result ({type(exc).__name__}: {exc})") from None
    return Result(job, worker, openvino, replace(measurement, worker=worker, worker_openvino=openvino), None)


# -- ONNX files a worker accepts -------------------------------------------------------------------------------------
#
# An ONNX TensorProto may keep its data outside the file (`external_data` entries with a `location` path, or
# `data_location: EXTERNAL`): OpenVINO would then read that path on the device host. The worker must not import
# the onnx package (device hosts do not have it), so it walks the protobuf wire format itself, following every
# field through which ONNX nests a tensor: initializers, sparse initializers, node attributes (tensor, tensors,
# sparse tensors, subgraphs: If/Loop/Scan bodies) and model-local functions. Any tensor with external data, or a
# file that does not parse as that structure, is refused.

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
# message kind -> {field number: nested message kind}
_ONNX_NESTING: dict[str, dict[int, str]] = {
    "model": {7: "graph", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "function": {7: "node"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 13, 14, 1
_MAX_NESTING = 64


def _varint(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ProtocolError("the ONNX file is not a valid protobuf (truncated varint)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _scan(data: memoryview, start: int, end: int, kind: str, depth: int) -> None:
    if depth > _MAX_NESTING:
        raise ProtocolError(f"the ONNX file nests deeper than {_MAX_NESTING} levels")
    nested = _ONNX_NESTING[kind]
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos, end)
            if kind == "tensor" and number == _TENSOR_DATA_LOCATION and value == _EXTERNAL:
                raise ProtocolError("the ONNX file keeps tensor data outside itself (data_location EXTERNAL); "
                                    "a worker reads only self-contained ONNX files")
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        elif wire == _LENGTH:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise ProtocolError("the ONNX file is not a valid protobuf (a field runs past its end)")
            if kind == "tensor" and number == _TENSOR_EXTERNAL_DATA:
                raise ProtocolError("the ONNX file references external data (a tensor's external_data location); "
                                    "a worker reads only self-contained ONNX files")
            if number in nested:
                _scan(data, pos, pos + length, nested[number], depth + 1)
            pos += length
        else:
            raise ProtocolError(f"the ONNX file is not a valid protobuf (wire type {wire})")
        if pos > end:
            raise ProtocolError("the ONNX file is not a valid protobuf (truncated)")


def check_ir(xml: bytes) -> None:
    """Refuse an IR .xml that is not an OpenVINO IR: its weights come only from the .bin sent with it, which the
    worker writes beside it (an IR names no other file)."""
    import xml.etree.ElementTree as ElementTree

    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:  # no entities: an IR has none, and they can expand without bound
        raise ProtocolError("the IR .xml declares a DOCTYPE or entities; an OpenVINO IR has neither")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise ProtocolError(f"the IR .xml is not XML ({exc})") from None
    if root.tag != "net" or root.find("layers") is None:
        raise ProtocolError("the IR .xml is not an OpenVINO IR (no <net> with <layers>)")


def check_onnx(raw: bytes) -> None:
    """Refuse an ONNX file whose tensors reference data outside it, or that is not an ONNX protobuf at all."""
    if not raw:
        raise ProtocolError("the ONNX file is empty")
    _scan(memoryview(raw), 0, len(raw), "model", 0)
