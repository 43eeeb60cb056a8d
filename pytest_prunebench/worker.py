"""The device worker: measures jobs from a Redis broker on the OpenVINO devices of the host it runs on.

Runs where the device is (the NCS2's host has OpenVINO 2022.3 on Python 3.10): it imports numpy, redis,
OpenVINO, filelock and the standard library only — never torch, Torch-Pruning, onnx, wandb or pytest — so
`pip install --no-deps pytest-prunebench` beside those four is a whole install. It measures through device.py,
the code a local run measures with.

One thread per served device takes jobs one at a time (so no two jobs share a device), and a job is
acknowledged only after its result is stored. While it measures, the worker renews its claim on the job; a
worker killed mid-job stops renewing, and after `--claim-idle` seconds another worker (or this one, restarted)
takes the job over. Anything wrong with a job — malformed, unknown protocol version, oversized, truncated, an
ONNX file with external data, a model OpenVINO refuses — becomes an error result, and the worker goes on.

Usage: prunebench worker --broker redis://[:password@]host:port/db [--device CPU ...]
   or: python -m pytest_prunebench.worker ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import protocol
from .errors import PrunebenchError

MAX_DELIVERIES = 5  # a job whose worker died this often (a model that crashes OpenVINO) gets an error result
HEARTBEAT_S = 5.0
RESULT_LINE = "{case} {device} median {median:.4f} ms {seconds:.2f} s"

# Renews the claim only while this consumer still owns the entry: a worker paused past the claim bound must not
# take a job back from the worker that took it over.
RENEW_IF_OWNER = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 1 and p[1][2] == ARGV[2] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
  return 1
end
return 0
"""


@dataclass
class _Current:
    """The job a device thread is measuring, for heartbeats and for handing it back on a second Ctrl-C."""

    stream_id: bytes
    fields: dict[bytes, bytes]
    case: str
    storing: bool = False
    started: float = field(default_factory=time.monotonic)  # when it was taken: producers bound a job's time


class _BlobCache:
    """The most recently used blobs (test sets, dense models), bounded in bytes: each travels once per worker."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: str, value: Any, size: int) -> None:
        with self._lock:
            self._items[key], self._sizes[key] = value, size
            self._items.move_to_end(key)
            while sum(self._sizes.values()) > self.limit and len(self._items) > 1:
                old, _ = self._items.popitem(last=False)
                del self._sizes[old]


class JobMeasurer:
    """One job on the device: its payloads read (checked against size and SHA-256, test sets and dense models kept
    in a bounded cache), its model written into the worker's own directory, the dense reference compiled once, then
    OpenVINO's measurement under this host's device lock and host gate. The queue around it is the Worker's."""

    def __init__(self, client: Any, workdir: Path, max_bytes: int, cache_bytes: int, lock_timeout: float) -> None:
        self.client = client
        self.workdir = workdir
        self.max_bytes = max_bytes
        self.lock_timeout = lock_timeout
        self.blobs = _BlobCache(cache_bytes)
        self.references: OrderedDict[tuple[str, str, str | None], Any] = OrderedDict()  # compiled dense models

    def _payload(self, ref: protocol.BlobRef, fields: dict[bytes, bytes]) -> bytes:
        if ref.inline is not None:
            return protocol.check_payload(ref, fields.get(ref.inline.encode()))
        cached = self.blobs.get(ref.sha256)
        if cached is not None:
            return cached
        size = self.client.strlen(protocol.blob_key(ref.sha256))
        if size > self.max_bytes:
            raise protocol.ProtocolError(f"payload {ref.sha256[:12]} of {size} bytes is over this worker's limit "
                                         f"of {self.max_bytes} bytes (--max-bytes)")
        raw = protocol.check_payload(ref, self.client.get(protocol.blob_key(ref.sha256)))
        self.blobs.put(ref.sha256, raw, len(raw))
        return raw

    def measure(self, job: protocol.Job, fields: dict[bytes, bytes]) -> Any:
        from . import device as ov
        from .lock import exclusive_measurement, host_gate_for

        images = protocol.decode_array(job.images, self._payload(job.images, fields))
        labels = protocol.decode_array(job.labels, self._payload(job.labels, fields))
        if images.ndim != 4 or labels.shape != (images.shape[0],) or images.dtype.name != "float32":
            raise protocol.ProtocolError("images must be float32 N x C x H x W and labels N")
        path = self._write_model(job.job, job.model, job.weights, fields)  # in the worker's own empty directory
        try:
            reference = self._reference(job, fields)
            # The device lock and, on a device that shares this host's CPU, the host gate: as a local measurement.
            with exclusive_measurement(job.device, None, self.lock_timeout,
                                       host_gate_for(job.device, self.lock_timeout)):
                compiled = ov.compile_for_latency(path, job.device, job.precision) if reference is None else None
                return ov.measure(path, job.device, images, labels, job.precision, job.rounds, job.warmup,
                                  reference, compiled)
        finally:
            _remove_model(path)

    def _write_model(self, name: str, model: protocol.BlobRef, weights: protocol.BlobRef | None,
                     fields: dict[bytes, bytes]) -> Path:
        """The job's model as a file OpenVINO reads: its ONNX file, or its IR (.xml with the .bin beside it), each
        checked first. Whatever precision the producer built (f32 ONNX, f16 or INT8 IR), the worker only compiles."""
        raw = self._payload(model, fields)
        if weights is None:
            protocol.check_onnx(raw)
            path = self.workdir / f"{name}.onnx"
            path.write_bytes(raw)
            return path
        protocol.check_ir(raw)
        path = self.workdir / f"{name}.xml"
        path.with_suffix(".bin").write_bytes(self._payload(weights, fields))
        path.write_bytes(raw)
        return path

    def _reference(self, job: protocol.Job, fields: dict[bytes, bytes]) -> Any:
        """The dense model compiled once per worker (as a local run compiles it once per process)."""
        from . import device as ov

        if job.reference is None:
            return None
        weights = job.reference_weights.sha256 if job.reference_weights else ""  # an IR's .xml is not its weights
        key = (job.reference.sha256 + weights, job.device, job.precision)
        if key not in self.references:
            path = self._write_model(f"reference-{job.reference.sha256[:16]}", job.reference, job.reference_weights,
                                     fields)
            try:
                self.references[key] = ov.compile_for_latency(path, job.device, job.precision)
            finally:
                _remove_model(path)
            while len(self.references) > 4:
                self.references.popitem(last=False)
        self.references.move_to_end(key)
        return self.references[key]


class Worker:
    def __init__(self, url: str, devices: Sequence[str], name: str | None = None,
                 max_bytes: int = protocol.DEFAULT_MAX_PAYLOAD, claim_idle: float = 60.0,
                 cache_bytes: int = 1 << 30, lock_timeout: float = 900.0, out: TextIO = sys.stdout) -> None:
        from . import device as ov
        from .broker import connect, redact

        self.url_shown = redact(url)
        self.client = connect(url)
        self.devices = list(devices)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.max_bytes = max_bytes
        self.claim_idle = claim_idle
        self.out = out
        self.openvino = ov.version()
        self.stopping = threading.Event()
        self.current: dict[str, _Current] = {}
        self._state = threading.Lock()
        self._print_lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="prunebench-worker-"))  # mode 0700: ONNX files of jobs
        self.measurer = JobMeasurer(self.client, self.workdir, max_bytes, cache_bytes, lock_timeout)
        self.started = time.time()
        self.jobs_done = 0

    def say(self, line: str) -> None:
        with self._print_lock:
            print(line, file=self.out, flush=True)

    # -- serving ---------------------------------------------------------------------------------------------------

    def serve(self) -> None:
        from .broker import ensure_group

        for device in self.devices:
            ensure_group(self.client, device)
        self.beat()
        self.say(f"worker {self.name}: OpenVINO {self.openvino}, serving {', '.join(self.devices)} on "
                 f"{self.url_shown} (Ctrl-C finishes the current job, twice hands it back)")
        threads = [threading.Thread(target=self._serve_device, args=(device,), name=f"device-{device}", daemon=True)
                   for device in self.devices]
        for thread in threads:
            thread.start()
        try:
            while any(thread.is_alive() for thread in threads):
                for thread in threads:  # a join, not an Event wait: Ctrl-C sets `stopping` and must not spin this
                    thread.join(HEARTBEAT_S / len(threads))
                self._beat_quietly()
        finally:
            with contextlib.suppress(Exception):  # the heartbeat expires by itself when the broker is gone
                self.unregister()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def beat(self) -> None:
        """The heartbeat others see (`prunebench:worker:<name>`), expiring three beats after the worker stops."""
        now = time.monotonic()
        with self._state:
            state = {device: ("measuring " + job.case) if (job := self.current.get(device)) else "idle"
                     for device in self.devices}
            # How long each busy device has held its current job, by this host's clock: a producer whose job a
            # worker holds past --prunebench-lock-timeout (stuck inside OpenVINO, heartbeat alive) stops waiting.
            busy = {device: round(now - job.started, 1) for device, job in self.current.items()}
        beat = {"worker": self.name, "host": socket.gethostname(), "pid": os.getpid(), "devices": self.devices,
                "openvino": self.openvino, "state": state, "busy_s": busy, "jobs": self.jobs_done,
                "started": self.started, "stopping": self.stopping.is_set(), "at": time.time()}
        pipe = self.client.pipeline(transaction=False)  # the heartbeat, then the name producers find it by
        pipe.set(protocol.heartbeat_key(self.name), json.dumps(beat), ex=int(3 * HEARTBEAT_S))
        pipe.sadd(protocol.WORKERS_KEY, self.name)
        pipe.execute()

    def unregister(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(protocol.heartbeat_key(self.name))
        pipe.srem(protocol.WORKERS_KEY, self.name)
        pipe.execute()

    def _beat_quietly(self) -> None:
        import redis

        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):  # the device threads say so, and retry
            self.beat()

    def _serve_device(self, device: str) -> None:
        import redis

        own_pending = True  # first, what this consumer name left pending (a restart under the same --name)
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                entry = self._next(device, own_pending)
                own_pending = own_pending and entry is not None
                if entry is not None:
                    self._handle(device, *entry)
                backoff = 1.0
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.say(f"worker {self.name}: broker {self.url_shown} unreachable ({reason}); retrying in "
                         f"{backoff:g} s")
                self.stopping.wait(backoff)
                backoff = min(30.0, backoff * 2)
            except Exception as exc:  # noqa: BLE001 - one line, and the device stays served (the job is retaken)
                if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
                    from .broker import ensure_group

                    with contextlib.suppress(Exception):  # the broker restarted empty: serve its new stream
                        ensure_group(self.client, device)
                    continue
                self.say(f"worker {self.name}: {device}: {type(exc).__name__}: {str(exc)[:300]}")
                self.stopping.wait(backoff)

    def _next(self, device: str, own_pending: bool) -> tuple[bytes, dict[bytes, bytes]] | None:
        key = protocol.stream_key(device)
        if own_pending:
            got = self.client.xreadgroup(protocol.GROUP, self.name, {key: "0"}, count=1)
            entries = got[0][1] if got else []
            if entries and entries[0][1]:
                return entries[0]
            return None
        # A job whose worker stopped renewing its claim (killed) comes first: it has waited longest.
        claimed = self.client.xautoclaim(key, protocol.GROUP, self.name, int(self.claim_idle * 1000), "0-0", count=1)
        entries = [e for e in claimed[1] if e and e[1]] if len(claimed) > 1 else []
        if entries:
            return entries[0]
        got = self.client.xreadgroup(protocol.GROUP, self.name, {key: ">"}, count=1, block=1000)
        return got[0][1][0] if got and got[0][1] else None

    def _handle(self, device: str, stream_id: bytes, fields: dict[bytes, bytes]) -> None:
        key = protocol.stream_key(device)
        meta = fields.get(b"meta")
        job_id = protocol.job_id_of(meta)
        current = _Current(stream_id, fields, protocol.case_of(meta) or job_id or stream_id.decode())
        with self._state:
            self.current[device] = current
        self._beat_quietly()  # others see at once that this device is busy, and with what
        started = time.perf_counter()
        measurement, error = None, None
        try:
            deliveries = self._deliveries(key, stream_id)
            if deliveries > MAX_DELIVERIES:
                raise PrunebenchError(f"delivered {deliveries} times: the workers that took it died each time")
            job = protocol.parse_job(meta, self.max_bytes)
            current.case = job.case
            if job.device != device:
                raise protocol.ProtocolError(f"job for device {job.device} arrived on the {device} stream")
            measurement = self._keep_claim_while(key, stream_id, lambda: self.measurer.measure(job, fields))
        except PrunebenchError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever a job does, the worker answers it and goes on serving
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            error = f"{type(exc).__name__}: {first}"[:500]
        seconds = time.perf_counter() - started
        with self._state:
            current.storing = True
        self._finish(device, key, stream_id, job_id, current.case, measurement, error, seconds)
        with self._state:
            self.current.pop(device, None)
        self._beat_quietly()

    def _finish(self, device: str, key: str, stream_id: bytes, job_id: str | None, case: str, measurement: Any,
                error: str | None, seconds: float) -> None:
        from .broker import store_result

        if job_id is None:  # nobody to answer: say so here, and drop it
            line = f"{stream_id.decode()} {device} refused: {error}"
        else:
            fields = protocol.encode_result(job_id, self.name, self.openvino, measurement, error)
            if not store_result(self.client, job_id, fields):
                line = f"{case} {device}: a result for job {job_id} was stored already; this one is discarded"
            elif measurement is not None:
                line = RESULT_LINE.format(case=case, device=device, median=measurement.median_ms, seconds=seconds)
            else:
                line = f"{case} {device} error: {error}"
        self.client.xack(key, protocol.GROUP, stream_id)  # only now: the result is stored
        self.jobs_done += 1
        self.say(line)  # after the XACK: a printed job is finished on the broker too

    def _deliveries(self, key: str, stream_id: bytes) -> int:
        pending = self.client.xpending_range(key, protocol.GROUP, min=stream_id, max=stream_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    def _keep_claim_while(self, key: str, stream_id: bytes, work: Any) -> Any:
        """Run `work`, renewing this worker's claim on the entry so that no other worker takes a live job."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(max(0.2, self.claim_idle / 3)):
                with contextlib.suppress(Exception):  # a missed renewal only lets another worker take over
                    self.client.eval(RENEW_IF_OWNER, 1, key, protocol.GROUP, self.name, stream_id)

        thread = threading.Thread(target=renew, daemon=True)
        thread.start()
        try:
            return work()
        finally:
            done.set()

    # -- stopping ---------------------------------------------------------------------------------------------------

    def hand_back(self) -> None:
        """Put the jobs being measured back on their streams (as new entries) and acknowledge the taken ones."""
        with self._state:
            jobs = [(device, job) for device, job in self.current.items() if not job.storing]
            for _, job in jobs:
                job.storing = True  # its thread must not store it after this
        for device, job in jobs:
            key = protocol.stream_key(device)
            self.client.xadd(key, job.fields)
            self.client.xack(key, protocol.GROUP, job.stream_id)
            self.say(f"{job.case} {device}: handed back")


def _remove_model(path: Path) -> None:
    path.unlink(missing_ok=True)
    if path.suffix == ".xml":
        path.with_suffix(".bin").unlink(missing_ok=True)


def check_devices(devices: Sequence[str]) -> list[str]:
    """The devices asked for, each seen by OpenVINO (default: every device it sees)."""
    from . import device as ov
    from .lock import device_family

    available = ov.available_devices()
    if not devices:
        return available
    for name in devices:
        if device_family(name) not in ov.VIRTUAL_DEVICES and name not in available and name not in {
                a.split(".")[0] for a in available}:
            hint = (" (the NCS2 needs OpenVINO 2022.3 LTS from Intel's archive distribution, then setupvars.sh)"
                    if name == "MYRIAD" else "")
            raise PrunebenchError(f"--device {name}: OpenVINO {ov.version()} sees no such device on this host "
                                  f"(available: {', '.join(available) or 'none'}){hint}")
    return list(dict.fromkeys(devices))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .settings import positive_float, positive_int  # stdlib-only parsers, shared with the plugin's options

    # From the environment too: a password on the command line is visible to every user of the host (ps).
    from_env = os.environ.get("PRUNEBENCH_BROKER") or None
    parser.add_argument("--broker", required=from_env is None, default=from_env, metavar="URL",
                        help="redis://[:password@]host:port/db (rediss:// for TLS; default $PRUNEBENCH_BROKER); "
                             "the password is never printed")
    parser.add_argument("--device", action="append", default=[], metavar="NAME",
                        help="an OpenVINO device to serve (repeatable; default: every device OpenVINO sees)")
    parser.add_argument("--name", default=None, help="consumer name (default host:pid); a worker restarted under "
                                                     "the same name finishes what it left pending at once")
    parser.add_argument("--max-bytes", type=positive_int, default=protocol.DEFAULT_MAX_PAYLOAD,
                        help=f"largest payload accepted (default {protocol.DEFAULT_MAX_PAYLOAD})")
    parser.add_argument("--claim-idle", type=positive_float, default=60.0, metavar="SECONDS",
                        help="take over a job whose worker has not renewed its claim for this long (default 60)")
    parser.add_argument("--cache-bytes", type=positive_int, default=1 << 30,
                        help="memory for test sets and dense models kept between jobs (default 1 GiB)")
    parser.add_argument("--lock-timeout", type=positive_float, default=900.0, metavar="SECONDS",
                        help="longest wait for this host's device lock / host gate (default 900)")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (finish the current job), a second Ctrl-C or SIGTERM (hand it back)."""
    worker = Worker(args.broker, check_devices(args.device), args.name, args.max_bytes, args.claim_idle,
                    args.cache_bytes, args.lock_timeout)
    interrupts = 0

    def interrupted(signum: int, _frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if signum == signal.SIGINT and interrupts == 1:
            worker.stopping.set()
            worker.say(f"worker {worker.name}: stopping after the current job (Ctrl-C again hands it back)")
            return
        worker.stopping.set()
        try:
            worker.hand_back()
        finally:
            with contextlib.suppress(Exception):  # the heartbeat expires by itself when the broker is gone
                worker.unregister()
            shutil.rmtree(worker.workdir, ignore_errors=True)
            os._exit(130 if signum == signal.SIGINT else 143)  # the measuring threads stop with the process

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    worker.serve()
    worker.say(f"worker {worker.name}: stopped after {worker.jobs_done} job(s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prunebench worker", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except PrunebenchError as exc:
        print(f"prunebench worker: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
