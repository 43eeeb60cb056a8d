"""The producer side of device workers, and the Redis connection both sides share.

Jobs go to one Redis stream per device with one consumer group (`workers`): XREADGROUP hands an entry to one
worker and keeps it pending until that worker XACKs it, which it does only after the result is stored; an entry
left pending longer than the workers' claim bound (its worker was killed) is taken over with XAUTOCLAIM. Results
are keyed by job id and written once (a later write of the same job is discarded), so a job measured twice is
recorded once. Workers announce themselves with heartbeat keys that expire: a producer sees which devices are
served.

Imports redis (and nothing heavy) only inside functions: the plugin imports this module's users lazily.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from . import protocol
from .errors import BrokerError

if TYPE_CHECKING:
    import numpy as np

    from .device import DeviceMeasurement
    from .settings import Settings

BLOB_TTL_S = 24 * 3600  # a blob unused for a day expires; every job that references it renews it
RESULT_TTL_S = 24 * 3600



def redact(url: str) -> str:
    """The URL without its password (in the user part, or a `password`/`ssl_password` query option), for every
    message and log line."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable broker URL>"
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{port}" if port else "")
    query = "&".join(f"{name}=***" if "password" in name.lower() else f"{name}={value}"
                     for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# The query options of a URL that name files (redis-py's SSLConnection arguments): checked before connecting, so
# a mistyped path is one line naming the option, not a socket error.
TLS_FILE_OPTIONS = ("ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile")


def _tls_reason(exc: BaseException) -> str | None:
    """Why a TLS handshake failed on the certificate, if it did (redis-py keeps the ssl error as the context)."""
    import ssl

    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or str(current)
        current = current.__cause__ or current.__context__
    return None


def connect(url: str) -> Any:
    """A checked Redis client for `url`, or one BrokerError line that names the broker without its password."""
    try:
        import redis
    except ImportError:
        raise BrokerError("the redis package is not installed: pip install redis") from None
    shown = redact(url)
    try:
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
    except ValueError as exc:
        raise BrokerError(f"broker {shown}: {exc}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise BrokerError(f"broker {shown}: use redis://[:password@]host:port/db (rediss:// for TLS)")
    for option in TLS_FILE_OPTIONS:
        if option in options and not Path(options[option]).exists():
            raise BrokerError(f"broker {shown}: {option} {options[option]} does not exist on this host")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        client.ping()
    except redis.AuthenticationError:
        if parts.password is None and "password" not in options:
            raise BrokerError(f"the broker {shown} needs a password: redis://:PASSWORD@host:port/db") from None
        raise BrokerError(f"the broker {shown} refused the password (wrong password or user)") from None
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "AUTH" in str(exc):
            raise BrokerError(f"the broker {shown} needs a password: redis://:PASSWORD@host:port/db") from None
        raise BrokerError(f"the broker {shown} answered: {str(exc).splitlines()[0]}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        untrusted = _tls_reason(exc)
        if untrusted is not None:
            raise BrokerError(
                f"the broker {shown} presented a TLS certificate this host does not trust ({untrusted}); name the "
                f"CA that signed it: rediss://host:port/db?ssl_ca_certs=/path/to/ca.pem") from None
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "is redis-server running there?"
        if parts.scheme == "redis" and "reset by peer" in reason:
            hint += " If it serves TLS, use rediss://"
        raise BrokerError(f"cannot reach the broker {shown} ({reason}); {hint}") from None
    except TypeError as exc:  # redis-py passes unknown query options on as keyword arguments
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        option = unknown.group(1) if unknown else str(exc)
        raise BrokerError(f"broker {shown}: unknown URL option {option} (rediss:// takes ssl_ca_certs, "
                          f"ssl_certfile, ssl_keyfile, ssl_cert_reqs, ssl_check_hostname)") from None
    except ValueError as exc:
        raise BrokerError(f"broker {shown}: {exc}") from None
    return client


def ensure_group(client: Any, device: str) -> None:
    import redis

    try:
        client.xgroup_create(protocol.stream_key(device), protocol.GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# Stores a result unless one is stored for the job already, and signals the producer; atomic, so a job measured
# twice (a worker paused past the claim bound and a second worker) is recorded once.
STORE_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], '1')
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""


def store_result(client: Any, job: str, fields: dict[str, bytes]) -> bool:
    """Store the result of `job` once; False: one was stored already (this one is discarded)."""
    args: list[Any] = [RESULT_TTL_S]
    for key, value in fields.items():
        args += [key, value]
    return bool(client.eval(STORE_ONCE, 2, protocol.result_key(job), protocol.done_key(job), *args))


# The heartbeats of the registered workers, in one round trip; a name whose heartbeat expired (its worker stopped
# beating three beats ago) leaves the set, atomically, so a worker that beats again in between is not dropped.
LIVE_HEARTBEATS = """
local beats = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local beat = redis.call('GET', ARGV[1] .. name)
  if beat then table.insert(beats, beat) else redis.call('SREM', KEYS[1], name) end
end
return beats
"""


def workers(client: Any) -> list[dict[str, Any]]:
    """The heartbeats of live workers (each expires a few beats after its worker stopped)."""
    found = []
    for raw in client.eval(LIVE_HEARTBEATS, 1, protocol.WORKERS_KEY, protocol.heartbeat_key("")):
        try:
            beat = json.loads(raw) if raw else None
        except ValueError:
            beat = None
        if isinstance(beat, dict):
            found.append(beat)
    return found


def serving(client: Any, device: str) -> list[dict[str, Any]]:
    return [beat for beat in workers(client) if device in beat.get("devices", ())]


class Broker:
    """Submit measurement jobs and wait for their results."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = redact(url)
        self.client = connect(url)
        self._groups: set[str] = set()
        self._entries: dict[str, Any] = {}  # job id -> its stream entry id, until answered or withdrawn

    def put_blob(self, raw: bytes) -> protocol.BlobRef:
        """Store `raw` under its SHA-256 once (renewing its expiry) and return its reference."""
        ref = protocol.bytes_ref(raw)
        self._put(ref, raw)
        return ref

    def put_array(self, array: Any) -> protocol.BlobRef:
        ref, raw = protocol.array_ref(array)
        self._put(ref, raw)
        return ref

    def _put(self, ref: protocol.BlobRef, raw: bytes) -> None:
        if not self.renew(ref):  # not there yet (or expired): send it
            self.client.set(protocol.blob_key(ref.sha256), raw, ex=BLOB_TTL_S)

    def renew(self, ref: protocol.BlobRef) -> bool:
        """Another day for a stored blob; False when it is not stored (any more)."""
        return bool(self.client.expire(protocol.blob_key(ref.sha256), BLOB_TTL_S))

    def submit(self, case: str, device: str, precision: str | None, rounds: Any, warmup: int, onnx: bytes,
               reference: protocol.BlobRef | None, images: protocol.BlobRef, labels: protocol.BlobRef,
               producer: str, weights: bytes | None = None, reference_weights: protocol.BlobRef | None = None) -> str:
        """Queue one measurement of `onnx` (sent inline) on `device`; returns the job id. With `weights`, `onnx` is
        an OpenVINO IR's .xml and `weights` its .bin (sent inline too); `reference_weights`: the reference's .bin."""
        if device not in self._groups:
            ensure_group(self.client, device)
            self._groups.add(device)
        fields = {"onnx": onnx} if weights is None else {"onnx": onnx, "weights": weights}
        job = protocol.Job(uuid.uuid4().hex, case, device, precision, rounds, warmup,
                           protocol.bytes_ref(onnx, inline="onnx"), reference, images, labels, producer,
                           None if weights is None else protocol.bytes_ref(weights, inline="weights"),
                           reference_weights)
        self._entries[job.job] = self.client.xadd(protocol.stream_key(device), {"meta": job.meta(), **fields})
        return job.job

    def wait(self, job: str, device: str, timeout: float) -> protocol.Result:
        """The job's result. Fails when `device` has gone `timeout` seconds without progress: no worker served it,
        or every worker serving it has held one job that long, or the worker holding this job has held it that long
        (a worker stuck inside OpenVINO keeps its heartbeat: only the time it holds a job shows it)."""
        import redis

        last_progress = time.monotonic()  # the last moment a worker serving the device was idle or took a job
        try:
            while True:
                if self.client.blpop([protocol.done_key(job)], timeout=1):
                    self._entries.pop(job, None)
                    # Kept until it expires: a late duplicate of this job then finds it and is discarded.
                    return protocol.decode_result(self.client.hgetall(protocol.result_key(job)))
                now = time.monotonic()
                beats = serving(self.client, device)
                for beat in beats:
                    last_progress = max(last_progress, now - _busy_for(beat, device))
                holder = self._holder(job, device)
                held = next((beat for beat in beats if beat.get("worker") == holder), None)
                if held is not None and _busy_for(held, device) > timeout:
                    self._withdraw(job, device)
                    raise BrokerError(
                        f"worker {holder} has held this job on device {device} of the broker {self.shown} for "
                        f"{_busy_for(held, device):.0f} s without an answer (--prunebench-lock-timeout "
                        f"{timeout:g} s) while its heartbeat goes on ({_state(held, device)}): stuck inside "
                        f"OpenVINO? Restart it: prunebench worker --broker {self.shown} --device {device}")
                if now - last_progress > timeout:
                    self._withdraw(job, device)
                    if beats:
                        busy = ", ".join(f"{beat.get('worker')} ({_state(beat, device)}, "
                                         f"{_busy_for(beat, device):.0f} s)" for beat in beats)
                        raise BrokerError(
                            f"every worker serving device {device} on the broker {self.shown} has held one job for "
                            f"over {timeout:g} s (--prunebench-lock-timeout) while its heartbeat goes on: {busy}; "
                            f"stuck inside OpenVINO? Restart it: prunebench worker --broker {self.shown} "
                            f"--device {device}")
                    raise BrokerError(
                        f"no worker served device {device} on the broker {self.shown} for {timeout:g} s "
                        f"(--prunebench-lock-timeout); start one on the host that has the device: "
                        f"prunebench worker --broker {self.shown} --device {device}")
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerError(f"lost the broker {self.shown} while waiting for job {job} "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None

    def _holder(self, job: str, device: str) -> str | None:
        """The worker (consumer) that has taken `job` and not acknowledged it yet; None: not taken."""
        entry = self._entries.get(job)
        if entry is None:
            return None
        pending = self.client.xpending_range(protocol.stream_key(device), protocol.GROUP, min=entry, max=entry,
                                             count=1)
        if not pending:
            return None
        consumer = pending[0]["consumer"]
        return consumer.decode() if isinstance(consumer, bytes) else str(consumer)

    def _withdraw(self, job: str, device: str) -> None:
        """Remove a job nobody answered, so a worker that takes it later (or comes unstuck) does not measure it
        for nobody: acknowledged (a worker that holds it stores a result nobody reads) and deleted."""
        key = protocol.stream_key(device)
        entry = self._entries.pop(job, None)
        if entry is not None:
            self.client.xack(key, protocol.GROUP, entry)
            self.client.xdel(key, entry)


def _busy_for(beat: dict[str, Any], device: str) -> float:
    """Seconds the heartbeat's worker has held its current job on `device` (0: idle, or a worker without it)."""
    busy = beat.get("busy_s")
    value = busy.get(device, 0.0) if isinstance(busy, dict) else 0.0
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _state(beat: dict[str, Any], device: str) -> str:
    state = beat.get("state")
    return str(state.get(device, "?"))[:120] if isinstance(state, dict) else "?"


class RemoteMeasurer:
    """What a CaseRunner measures through with --prunebench-broker: one job per measurement, the test set and
    the dense model sent once (by content hash), the answer a device.DeviceMeasurement as a local one."""

    def __init__(self, url: str) -> None:
        import os
        import socket

        self.broker = Broker(url)
        self.producer = f"{socket.gethostname()}:{os.getpid()}"
        # Blobs already sent, by where they live in this process: a dataset's tensors and the dense ONNX files
        # live as long as the runner, so hashing 100 MB of test images happens once, not per case.
        self._sent: dict[tuple[Any, ...], protocol.BlobRef] = {}

    def _blob(self, key: tuple[Any, ...], send: Any) -> protocol.BlobRef:
        ref = self._sent.get(key)
        if ref is None or not self.broker.renew(ref):  # renewing fails when it expired: send it again
            ref = self._sent[key] = send()
        return ref

    def _array(self, array: Any) -> protocol.BlobRef:
        key = ("array", array.__array_interface__["data"][0], array.shape, array.dtype.str)
        return self._blob(key, lambda: self.broker.put_array(array))

    def measure(self, onnx_path: Path, reference: Path | None, images: np.ndarray, labels: np.ndarray,
                settings: Settings, precision: str | None) -> DeviceMeasurement:
        """`reference`: the dense model's ONNX (or IR .xml) path (CaseRunner keeps it where a local run keeps its
        compile). An IR travels as its .xml with its .bin: the producer converted it, the worker only compiles it.
        `precision`: the inference precision hint."""
        import redis

        try:
            return self._measure(onnx_path, reference, images, labels, settings, precision)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BrokerError(f"lost the broker {self.broker.shown} ({reason})") from None

    def _measure(self, onnx_path: Path, reference: Path | None, images: np.ndarray, labels: np.ndarray,
                 settings: Settings, precision: str | None) -> DeviceMeasurement:
        from pathlib import Path

        ref = reference_weights = None
        if reference is not None:
            ref = self._blob(("file", str(reference)), lambda: self.broker.put_blob(Path(reference).read_bytes()))
            if _is_ir(reference):
                weights = Path(reference).with_suffix(".bin")
                reference_weights = self._blob(("file", str(weights)),
                                               lambda: self.broker.put_blob(weights.read_bytes()))
        model = Path(onnx_path)
        job = self.broker.submit(model.stem, settings.device, precision, settings.latency_rounds,
                                 settings.warmup, model.read_bytes(), ref, self._array(images),
                                 self._array(labels), self.producer,
                                 model.with_suffix(".bin").read_bytes() if _is_ir(model) else None, reference_weights)
        result = self.broker.wait(job, settings.device, settings.lock_timeout)
        if result.measurement is None:  # decode_result: a result carries a measurement or an error
            raise BrokerError(f"worker {result.worker} could not measure {Path(onnx_path).name} on "
                              f"{settings.device}: {result.error}")
        return result.measurement


def _is_ir(path: Any) -> bool:
    """An OpenVINO IR (.xml with its .bin beside it) rather than an ONNX file."""
    from pathlib import Path

    return Path(path).suffix == ".xml"
