"""Device workers for real: a redis-server, `prunebench worker` subprocesses, OpenVINO measuring on the CPU.

Jobs are this project's own exports (ResNet-20, random weights) and tiny test sets; small round counts keep
each job well under a second, except where a test needs a job long enough to kill a worker in the middle.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_worker.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import redis_servers
import torch

from pytest_prunebench import device, protocol
from pytest_prunebench.broker import Broker, BrokerError, connect, store_result, workers
from pytest_prunebench.export import export_onnx
from pytest_prunebench.models import build_model

PRUNEBENCH = Path(sys.executable).parent / "prunebench"
# every job hangs; heartbeat and claim renewals go on
HANGING_WORKER = Path(__file__).parents[1] / "hanging_worker.py"
# lists a MYRIAD device whose models run on this host's CPU: no stick here
STICK_WORKER = Path(__file__).parents[1] / "stick_worker.py"


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A dense and a second model, as the project exports them."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("worker-onnx")
    export_onnx(build_model("resnet20", 10), folder / "dense.onnx")
    export_onnx(build_model("resnet20", 10), folder / "other.onnx")
    return (folder / "dense.onnx").read_bytes(), (folder / "other.onnx").read_bytes()


class WorkerProcess:
    """A real worker subprocess whose output lines the test reads."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        self.command = command
        self.process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}) before {text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*extra: str, url: str = redis_url, console: bool = False, python: str = sys.executable,
              ready: bool = True, script: Path | None = None) -> WorkerProcess:
        base = ([str(PRUNEBENCH), "worker"] if console else [python, str(script)] if script
                else [python, "-m", "pytest_prunebench.worker"])
        worker = WorkerProcess([*base, "--broker", url, "--device", "CPU", *extra],
                               tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        if ready:
            worker.wait_for("serving CPU")
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def private_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir of this test's own for the processes it starts (TMPDIR), so the host gate and device locks they
    take there are theirs: a test with a lock timeout of a second or two must not wait on another test's
    measurement (xdist runs two at once) or on a benchmark run on the same host."""
    folder = tmp_path / "host-tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _test_set(images: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(images, 3, 32, 32)).astype(np.float32), (np.arange(images) % 10).astype(np.int64)


def _submit(broker: Broker, onnx: bytes, dense: bytes | None = None, rounds: int = 20, case: str = "case",
            images: int = 32) -> str:
    x, y = (broker.put_array(array) for array in _test_set(images))
    reference = broker.put_blob(dense) if dense is not None else None
    return broker.submit(case, "CPU", "f32", rounds, 2, onnx, reference, x, y, "tests")


def _heartbeat_state(client: redis.Redis, name_part: str) -> str:
    for beat in workers(client):
        if name_part in beat.get("worker", ""):
            return beat["state"].get("CPU", "")
    return ""


def _wait_measuring(client: redis.Redis, worker: str, timeout: float = 30) -> None:
    """Until the worker's heartbeat (renewed every 5 s) or its log says it took the job."""
    deadline = time.monotonic() + timeout
    while not _heartbeat_state(client, worker).startswith("measuring"):
        assert time.monotonic() < deadline, "the worker never took the job"
        time.sleep(0.05)


def _pending(client: redis.Redis, settle: float = 10) -> int:
    """Jobs taken and not yet acknowledged, once that count is 0 or `settle` seconds have passed (a producer sees
    a result as soon as it is stored, a moment before the worker acknowledges the job)."""
    deadline = time.monotonic() + settle
    while True:
        count = int(client.xpending(protocol.stream_key("CPU"), protocol.GROUP)["pending"])
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _results(client: redis.Redis) -> list[protocol.Result]:
    return [protocol.decode_result(client.hgetall(key)) for key in client.scan_iter(match=protocol.result_key("*"))]


def _assert_one_at_a_time(results: list[protocol.Result]) -> None:
    """No two measurement windows overlap (each worker takes the device's lock for its window)."""
    windows = sorted(r.measurement.measured_at for r in results)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start >= end, windows


def test_worker_measures_a_job_with_its_reference(redis_url: str, start_worker: Callable[..., WorkerProcess],
                                                  onnx_files: tuple[bytes, bytes]) -> None:
    dense, other = onnx_files
    worker = start_worker(console=True)  # the console script, as the README starts it
    broker = Broker(redis_url)
    job = _submit(broker, other, dense, rounds=30, case="resnet20-other")
    result = broker.wait(job, "CPU", timeout=60)
    assert result.error is None, result.error
    m = result.measurement
    assert len(m.latencies_s) == len(m.reference_latencies_s) == 30
    assert m.precision == "f32" and m.throughput_fps > 0 and m.device_ms is not None
    assert m.counters is not None and m.counters.nodes
    assert 0 <= m.top1 <= 100 and m.distinct_predictions >= 1
    assert result.worker_openvino.startswith("2026.") and ":" in result.worker
    worker.wait_for("resnet20-other CPU median ")
    assert _pending(broker.client) == 0  # acknowledged once stored
    # The heartbeat others see: which devices this worker serves, found through the set of worker names.
    beats = [b for b in broker.client.scan_iter(match=protocol.heartbeat_key("*"))]
    assert len(beats) == 1 and json.loads(broker.client.get(beats[0]))["devices"] == ["CPU"]
    assert [beat["worker"] for beat in workers(broker.client)] == [result.worker]


def test_hostile_messages_are_error_results_and_the_worker_keeps_serving(
        redis_url: str, start_worker: Callable[..., WorkerProcess], onnx_files: tuple[bytes, bytes]) -> None:
    import onnx

    dense, other = onnx_files
    worker = start_worker("--max-bytes", "2000000")
    broker = Broker(redis_url)
    client = broker.client
    stream = protocol.stream_key("CPU")
    good = _submit(broker, other)  # a first job stores the test set blobs the hostile ones reuse
    assert broker.wait(good, "CPU", 60).error is None
    template = json.loads(client.xrange(stream)[0][1][b"meta"])

    def push(meta: bytes, **fields: bytes) -> None:
        client.xadd(stream, {"meta": meta, **fields})

    def job(job_id: str, model: bytes, declared: int | None = None, **changes: object) -> bytes:
        body = {**template, "job": job_id, "case": job_id, "reference": None, **changes}
        body["model"] = {"sha256": protocol.sha256(model), "bytes": declared or len(model), "inline": "onnx"}
        return json.dumps(body).encode()

    push(b"{not json")
    client.xadd(stream, {"no-meta": b"x"})
    push(job("unknown-version", other, v=99), onnx=other)
    push(job("unknown-field", other, run="rm -rf /"), onnx=other)
    push(job("truncated", other), onnx=other[: len(other) // 2])
    hostile = onnx.load_from_string(other)
    tensor = hostile.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    external = hostile.SerializeToString()
    push(job("external-data", external), onnx=external)
    big = other + b"\0" * 1_500_000
    push(job("oversized", big), onnx=big)
    push(job("declared-oversized", other, declared=3_000_000), onnx=other)
    push(job("not-onnx", b"\xff" * 64), onnx=b"\xff" * 64)
    after = _submit(broker, other, case="after-hostile")

    expected = {"unknown-version": "protocol version 99", "unknown-field": "unknown field(s) run",
                "truncated": "truncated", "external-data": "external data", "oversized": "over this worker's limit",
                "declared-oversized": "over this worker's limit", "not-onnx": "not a valid protobuf"}
    for job_id, message in expected.items():
        result = broker.wait(job_id, "CPU", 60)
        assert result.measurement is None and message in (result.error or ""), (job_id, result.error)
    assert broker.wait(after, "CPU", 60).error is None
    worker.wait_for("after-hostile CPU median")
    assert worker.process.poll() is None
    log = worker.output()
    assert "Traceback" not in log and log.count("refused:") == 2  # no job id to answer: logged and dropped
    assert _pending(client) == 0


def test_kill_9_mid_job_a_second_worker_takes_it_over(redis_url: str, start_worker: Callable[..., WorkerProcess],
                                                       onnx_files: tuple[bytes, bytes]) -> None:
    _, other = onnx_files
    first = start_worker("--claim-idle", "1", "--name", "first")
    broker = Broker(redis_url)
    job = _submit(broker, other, rounds=1500, case="long")  # about a second of timed inferences
    _wait_measuring(broker.client, "first")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    second = start_worker("--claim-idle", "1", "--name", "second")
    result = broker.wait(job, "CPU", 120)
    assert result.error is None and result.worker == "second"
    assert len(result.measurement.latencies_s) == 1500
    second.wait_for("long CPU median")
    assert _pending(broker.client) == 0


def test_worker_restarted_after_kill_9_finishes_its_own_job(
        redis_url: str, start_worker: Callable[..., WorkerProcess], onnx_files: tuple[bytes, bytes]) -> None:
    _, other = onnx_files
    first = start_worker("--name", "device-host")  # default --claim-idle 60: only its own restart takes it now
    broker = Broker(redis_url)
    job = _submit(broker, other, rounds=1500, case="long")
    _wait_measuring(broker.client, "device-host")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    again = start_worker("--name", "device-host")
    result = broker.wait(job, "CPU", 120)
    assert result.error is None and result.worker == "device-host"
    again.wait_for("long CPU median")
    assert _pending(broker.client) == 0


def test_a_job_measured_twice_is_recorded_once(redis_url: str, start_worker: Callable[..., WorkerProcess],
                                               onnx_files: tuple[bytes, bytes]) -> None:
    """A worker paused (SIGSTOP) past the claim bound loses its job to another; resumed, both finish it."""
    _, other = onnx_files
    paused = start_worker("--claim-idle", "1", "--name", "paused")
    broker = Broker(redis_url)
    job = _submit(broker, other, rounds=1500, case="twice")
    _wait_measuring(broker.client, "paused")
    paused.process.send_signal(signal.SIGSTOP)
    try:
        other_worker = start_worker("--claim-idle", "1", "--name", "other")
        _wait_measuring(broker.client, "other")  # it took the job over (and waits for the device lock)
    finally:
        paused.process.send_signal(signal.SIGCONT)
    result = broker.wait(job, "CPU", 120)
    assert result.error is None
    for worker in (paused, other_worker):
        worker.wait_for("twice CPU")
    assert _pending(broker.client, settle=60) == 0
    logs = paused.output() + other_worker.output()
    assert logs.count("was stored already; this one is discarded") == 1, logs
    assert logs.count("twice CPU median") == 1
    assert broker.client.llen(protocol.done_key(job)) == 0  # signalled once, and that once was consumed


def test_a_waiting_producer_costs_the_broker_the_same_few_commands_whatever_its_keyspace_holds(
        redis_url: str, start_worker: Callable[..., WorkerProcess]) -> None:
    """Finding the heartbeats is one script over the set of worker names, not a SCAN of every key: with 20,000
    other keys (a day of results), a producer waiting for a job sends about 4 commands a second."""
    client = connect(redis_url)
    pipe = client.pipeline(transaction=False)
    for i in range(20_000):
        pipe.set(protocol.result_key(f"old{i}"), b"x", ex=600)
    pipe.execute()
    worker = start_worker("--name", "idle")
    client.sadd(protocol.WORKERS_KEY, "ghost")  # a worker whose heartbeat expired: dropped from the set on sight
    broker = Broker(redis_url)
    job = broker.submit("nobody", "OTHER", None, 1, 0, b"x", None, *(protocol.bytes_ref(b"x"),) * 2, "tests")
    client.config_resetstat()
    started = time.monotonic()
    with pytest.raises(BrokerError, match="no worker served device OTHER"):
        broker.wait(job, "OTHER", timeout=3)
    seconds = time.monotonic() - started
    calls = {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in client.info("commandstats").items()}
    calls.pop("config|resetstat", None)
    worker_calls = calls.pop("xautoclaim", 0) + calls.pop("xreadgroup", 0) + calls.pop("set", 0)  # the idle worker
    assert "scan" not in calls and "keys" not in calls, calls
    assert sum(calls.values()) / seconds < 8, calls  # blpop, the heartbeats' script, xpending: each once a second
    assert worker_calls / seconds < 4, calls
    assert [beat["worker"] for beat in workers(client)] == ["idle"]
    assert client.smembers(protocol.WORKERS_KEY) == {b"idle"}
    worker.process.send_signal(signal.SIGINT)  # a worker that stops leaves the set at once
    assert worker.process.wait(30) == 0 and client.smembers(protocol.WORKERS_KEY) == set()


def test_a_worker_measuring_on_its_hosts_cpu_takes_the_host_gate_exclusively(
        redis_url: str, start_worker: Callable[..., WorkerProcess], onnx_files: tuple[bytes, bytes],
        private_host: Path) -> None:
    """CPU work of a producer on the worker's host (held here as the gate's shared side) holds the worker's CPU
    measurement back until it ends, as it would a local measurement."""
    from pytest_prunebench.lock import HostGate, default_host_gate_path

    start_worker()
    host_gate = HostGate(private_host / default_host_gate_path().name, timeout=60)
    broker = Broker(redis_url)
    with host_gate.work():  # a producer's training step on this host
        job = _submit(broker, onnx_files[1], rounds=20, case="gated")
        _wait_measuring(broker.client, "")  # the worker took the job ...
        time.sleep(3)  # ... and waits for the gate: a 20-round job takes well under a second once it may run
        assert not broker.client.exists(protocol.result_key(job))
        released = time.time()
    result = broker.wait(job, "CPU", timeout=60)
    assert result.error is None, result.error
    assert result.measurement.measured_at[0] >= released


def test_store_result_keeps_the_first(redis_url: str) -> None:
    client = connect(redis_url)
    first = protocol.encode_result("job1", "a", "2026.4", error="first")
    assert store_result(client, "job1", first)
    assert not store_result(client, "job1", protocol.encode_result("job1", "b", "2026.4", error="second"))
    assert protocol.decode_result(client.hgetall(protocol.result_key("job1"))).error == "first"


def test_no_worker_for_the_device_fails_with_the_command_that_starts_one(
        redis_url: str, onnx_files: tuple[bytes, bytes]) -> None:
    broker = Broker(redis_url)
    job = _submit(broker, onnx_files[1])
    with pytest.raises(BrokerError, match=r"no worker served device CPU on the broker redis://127.0.0.1:\d+/0 "
                                          r"for 1 s .*prunebench worker --broker redis://127.0.0.1:\d+/0 --device CPU"):
        broker.wait(job, "CPU", timeout=1)
    assert broker.client.xlen(protocol.stream_key("CPU")) == 0  # withdrawn: no later worker measures it


def test_a_worker_stuck_inside_a_job_does_not_hold_its_producers_forever(
        redis_url: str, start_worker: Callable[..., WorkerProcess], onnx_files: tuple[bytes, bytes]) -> None:
    """A worker alive (heartbeat, claim renewals) but stuck in a job: the producer whose job it holds, and one whose
    job waits behind it, each fail with one line after --prunebench-lock-timeout (plus at most a heartbeat), naming
    the worker; both jobs are withdrawn."""
    stuck = start_worker("--name", "stuck", script=HANGING_WORKER)
    broker = Broker(redis_url)
    held = _submit(broker, onnx_files[1], case="held")
    _wait_measuring(broker.client, "stuck")
    queued = _submit(broker, onnx_files[1], case="queued")
    started = time.monotonic()
    with pytest.raises(BrokerError) as info:
        broker.wait(held, "CPU", timeout=3)
    assert re.fullmatch(r"worker stuck has held this job on device CPU of the broker redis://127\.0\.0\.1:\d+/0 "
                        r"for \d+ s without an answer \(--prunebench-lock-timeout 3 s\) while its heartbeat goes on "
                        r"\(measuring held\): stuck inside OpenVINO\? Restart it: prunebench worker --broker "
                        r"redis://127\.0\.0\.1:\d+/0 --device CPU", str(info.value)), str(info.value)
    assert 3 < time.monotonic() - started < 3 + 5 + 3  # the timeout, a heartbeat's lag, a few polls
    started = time.monotonic()
    with pytest.raises(BrokerError, match=r"^every worker serving device CPU on the broker redis://127\.0\.0\.1:\d+/0 "
                                          r"has held one job for over 3 s \(--prunebench-lock-timeout\) while its "
                                          r"heartbeat goes on: stuck \(measuring held, \d+ s\); stuck inside OpenVINO"):
        broker.wait(queued, "CPU", timeout=3)
    assert 3 < time.monotonic() - started < 3 + 3
    assert broker.client.xlen(protocol.stream_key("CPU")) == 0 and _pending(broker.client, settle=0) == 0
    assert stuck.process.poll() is None and _heartbeat_state(broker.client, "stuck") == "measuring held"


def test_a_pytest_run_fails_the_case_a_stuck_worker_holds_with_one_line(
        pytester: pytest.Pytester, tiny_args: list[str], redis_url: str,
        start_worker: Callable[..., WorkerProcess], private_host: Path) -> None:
    from tiny import run_schedule_suite

    start_worker("--name", "stuck", script=HANGING_WORKER)
    result = run_schedule_suite(pytester, tiny_args, "--prunebench-epochs", "0", f"--prunebench-broker={redis_url}",
                                "--prunebench-lock-timeout", "3", "-k", "filters")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*worker stuck has held this job on device CPU of the broker redis://127.0.0.1:*/0 "
                                 "for * s without an answer (--prunebench-lock-timeout 3 s) while its heartbeat goes "
                                 "on (measuring resnet20-*): stuck inside OpenVINO? Restart it: prunebench worker "
                                 "--broker redis://127.0.0.1:*/0 --device CPU*"])
    assert "Traceback" not in result.stdout.str()


def test_broker_errors_are_one_line_without_the_password(redis_server: int, redis_url: str,
                                                         start_worker: Callable[..., WorkerProcess]) -> None:
    free = redis_servers.free_port()
    with pytest.raises(BrokerError, match=r"cannot reach the broker redis://:\*\*\*@127.0.0.1:\d+/0"):
        connect(f"redis://:hunter2@127.0.0.1:{free}/0")
    admin = redis.Redis(port=redis_server)
    admin.acl_setuser("tester", enabled=True, passwords=["+right-secret"], keys=["*"], commands=["+@all"])
    try:
        wrong = start_worker(url=f"redis://tester:wrong-secret@127.0.0.1:{redis_server}/0", ready=False)
        assert wrong.process.wait(60) == 2
        out = wrong.output()
        assert out.strip() == (f"prunebench worker: error: the broker redis://tester:***@127.0.0.1:{redis_server}/0 "
                               f"refused the password (wrong password or user)")
        from_env = subprocess.run([sys.executable, "-m", "pytest_prunebench.worker", "--device", "CPU"],
                                  env={**os.environ, "PRUNEBENCH_BROKER": f"redis://tester:wrong-secret@127.0.0.1:"
                                                                          f"{redis_server}/0"},
                                  capture_output=True, text=True, timeout=60)
        assert from_env.returncode == 2 and from_env.stderr.strip() == out.strip()  # --broker from the environment
        right = start_worker(url=f"redis://tester:right-secret@127.0.0.1:{redis_server}/0")
        right.process.send_signal(signal.SIGINT)  # Ctrl-C while idle: stops at once
        assert right.process.wait(30) == 0
        assert "right-secret" not in right.output() and "stopped after 0 job(s)" in right.output()
    finally:
        admin.acl_deluser("tester")


TLS_SECRET = "tls-hunter2"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, redis_servers.Certificates]]:
    """A redis-server that speaks only TLS, with a certificate from a throwaway CA, and a password."""
    folder = tmp_path_factory.mktemp("tls-broker")
    certificates = redis_servers.make_certificates(folder)
    server, port = redis_servers.start_tls(folder, certificates, "--requirepass", TLS_SECRET)
    yield port, certificates
    server.terminate()
    server.wait(10)


def _everything_stored(client: redis.Redis) -> bytes:
    """Every key and value on the broker (streams keep their entries after XACK), to search for a secret."""
    found: list[bytes] = []
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"string":
            found.append(client.get(key) or b"")
        elif kind == b"hash":
            found += [b"%s=%s" % item for item in client.hgetall(key).items()]
        elif kind == b"list":
            found += client.lrange(key, 0, -1)
        elif kind == b"stream":
            found += [b"%s=%s" % item for _, fields in client.xrange(key) for item in fields.items()]
        found.append(key)
    return b"\n".join(found)


def test_a_tls_broker_with_its_ca_named_in_the_url(
        tls_broker: tuple[int, redis_servers.Certificates], start_worker: Callable[..., WorkerProcess],
        venv310: Path, pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    """rediss:// with ?ssl_ca_certs=: a worker on either OpenVINO and a pytest run connect; a CA that did not sign
    the broker's certificate (or none: the system store) is one line; the password is in no output or record."""
    from tiny import run_schedule_suite

    port, certificates = tls_broker

    def url(ca: Path | None) -> str:
        return f"rediss://:{TLS_SECRET}@127.0.0.1:{port}/0" + (f"?ssl_ca_certs={ca}" if ca else "")

    def untrusted(ca: Path | None) -> str:
        shown = url(ca).replace(TLS_SECRET, "***")
        return (re.escape(f"the broker {shown} presented a TLS certificate this host does not trust (") + r"[^\n]+"
                + re.escape("); name the CA that signed it: rediss://host:port/db?ssl_ca_certs=/path/to/ca.pem"))

    for ca in (certificates.other_ca, None):
        refused = start_worker(url=url(ca), ready=False)
        assert refused.process.wait(60) == 2
        assert re.fullmatch("prunebench worker: error: " + untrusted(ca), refused.output().strip()), refused.output()
    old = start_worker(url=url(certificates.ca), python=str(venv310 / "bin" / "python"))  # Python 3.10's ssl
    old.process.send_signal(signal.SIGINT)
    assert old.process.wait(30) == 0 and f"OpenVINO {OPENVINO_2022}" in old.output()
    worker = start_worker("--name", "tls-worker", url=url(certificates.ca))

    result = run_schedule_suite(pytester, tiny_args, "--prunebench-epochs", "0", "-k", "filters",
                                f"--prunebench-broker={url(certificates.ca)}")
    result.assert_outcomes(passed=1)
    records = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert [r["extra_info"]["worker"] for r in records] == ["tls-worker"]
    worker.wait_for("test_schedule_filters CPU median")
    refused_run = pytester.runpytest_subprocess(f"--prunebench-broker={url(certificates.other_ca)}")
    assert refused_run.ret == pytest.ExitCode.USAGE_ERROR
    assert re.fullmatch("ERROR: " + untrusted(certificates.other_ca), refused_run.stderr.str().strip())

    outputs = [result.stdout.str(), result.stderr.str(), refused_run.stdout.str(), refused_run.stderr.str(),
               (pytester.path / "out.json").read_text(), worker.output(), old.output(), refused.output()]
    assert not [text for text in outputs if TLS_SECRET in text]
    client = connect(url(certificates.ca))
    stored = _everything_stored(client)
    assert b"prunebench:result:" in stored and TLS_SECRET.encode() not in stored
    client.flushall()


# -- the NCS2's software: OpenVINO 2022.3 on Python 3.10 ------------------------------------------------------------

OPENVINO_2022 = "2022.3.2"
PY310 = "3.10.13"
VENV_PACKAGES = (f"openvino=={OPENVINO_2022}", "numpy<1.25", "redis", "filelock")


def _python310() -> str | None:
    """pyenv's 3.10 (its bare `python3.10` shim refuses while 3.11 is the global version)."""
    import shutil

    env = {**os.environ, "PYENV_VERSION": PY310}
    for candidate in (shutil.which("python3.10"), f"/root/.pyenv/versions/{PY310}/bin/python3.10"):
        if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 10)"],
                                        env=env, capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="session")
def venv310() -> Path:
    """A Python 3.10 venv with only numpy, redis, filelock and OpenVINO 2022.3, built once per machine (cached
    under ~/.cache, keyed by the versions), and this package installed into it with --no-deps for this session."""
    import hashlib
    import shutil

    from filelock import FileLock

    python = _python310()
    if python is None:
        pytest.skip(f"no Python 3.10 here (tried python3.10 with PYENV_VERSION={PY310}): the OpenVINO 2022.3 "
                    f"wheels exist for CPython <= 3.10 only")
    key = hashlib.sha256(" ".join((PY310, *VENV_PACKAGES)).encode()).hexdigest()[:12]
    root = Path.home() / ".cache" / "prunebench-test-venvs"
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"py{PY310}-openvino{OPENVINO_2022}-{key}"
    env = {**os.environ, "PYENV_VERSION": PY310}
    with FileLock(str(venv) + ".lock"):
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([python, "-m", "venv", str(venv)], env=env, check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                            *VENV_PACKAGES], check=True, capture_output=True)
            (venv / ".complete").touch()
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--force-reinstall", str(Path(__file__).parents[2])],
                       check=True, capture_output=True)
    return venv


def test_openvino_2022_worker_on_python_310_measures_this_projects_export(
        venv310: Path, redis_url: str, start_worker: Callable[..., WorkerProcess],
        onnx_files: tuple[bytes, bytes]) -> None:
    """The NCS2 host's software (on its CPU: the MYRIAD plugin is only in Intel's archive distribution)."""
    python = str(venv310 / "bin" / "python")
    # The environment holds nothing else: no torch, onnx, pytest, wandb, yaml.
    missing = subprocess.run([python, "-c", "import importlib.util as u; print([m for m in ('torch', 'onnx', "
                              "'pytest', 'wandb', 'yaml', 'torch_pruning') if u.find_spec(m)])"],
                             capture_output=True, text=True, check=True)
    assert missing.stdout.strip() == "[]"
    worker = start_worker(console=False, python=python)
    assert f"OpenVINO {OPENVINO_2022}" in worker.output()
    dense, other = onnx_files
    broker = Broker(redis_url)
    results = [broker.wait(_submit(broker, onnx, dense, rounds=30, case=name), "CPU", 120)
               for name, onnx in (("dense", dense), ("other", other))]
    for result in results:
        assert result.error is None, result.error
        assert result.worker_openvino == OPENVINO_2022
        m = result.measurement
        assert len(m.latencies_s) == len(m.reference_latencies_s) == 30
        assert m.precision == "f32" and m.counters is not None and m.device_ms is not None
    # The same ONNX and images through this interpreter's OpenVINO 2026: the same predictions (up to near-ties of
    # random weights' logits: at most 2 of 32 images).
    from pytest_prunebench import device

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "other.onnx"
        path.write_bytes(other)
        images, labels = _test_set(32)
        local = device.measure(path, "CPU", images, labels, "f32", 5, 1)
    assert abs(local.top1 - results[1].measurement.top1) <= 2 * 100 / 32
    console = venv310 / "bin" / "prunebench"  # the console script of the --no-deps install
    assert subprocess.run([str(console), "worker", "--help"], capture_output=True).returncode == 0


# -- the producer side: --prunebench-broker ------------------------------------------------------------------------

@pytest.mark.parametrize("openvino", ["2026.", OPENVINO_2022])
def test_a_pytest_run_under_xdist_measures_every_case_on_workers(
        pytester: pytest.Pytester, tiny_args: list[str], redis_url: str,
        start_worker: Callable[..., WorkerProcess], request: pytest.FixtureRequest, openvino: str) -> None:
    """Two producers (-n 2) and two workers: every record present once, as local plus the worker's name; with
    OpenVINO 2022.3 workers on Python 3.10 (the NCS2 host's software), every job this project's exports make."""
    from tiny import run_schedule_suite

    python = sys.executable if openvino != OPENVINO_2022 else str(request.getfixturevalue("venv310") / "bin/python")
    workers = [start_worker("--name", name, python=python, ready=False) for name in ("w1", "w2")]  # start at once
    for worker in workers:
        worker.wait_for("serving CPU")
    result = run_schedule_suite(pytester, tiny_args, "-n", "2", "--prunebench-epochs", "0",
                                f"--prunebench-broker={redis_url}")
    result.assert_outcomes(passed=2)
    records = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert sorted(r["name"] for r in records) == ["test_schedule[channels]", "test_schedule[filters]"]
    for record in records:
        info = record["extra_info"]
        assert info["worker"] in ("w1", "w2") and info["worker_openvino"].startswith(openvino)
        assert record["stats"]["rounds"] == 20 and 0 < record["stats"]["median"] < 1
        assert info["latency_speedup"] > 0 and info["throughput_fps"] > 0 and info["device_ms"] is not None
        assert info["top1_pruned"] == info["top1"]
    assert len({r["extra_info"]["latency_ms_ref"] for r in records}) == 1  # one reference for the session
    logs = "".join(w.output() for w in workers)
    for case in ("test_schedule_filters", "test_schedule_channels"):
        assert logs.count(f"{case} CPU median") == 1, logs  # the job's case is its ONNX file's stem
    assert logs.count("resnet20-") >= 1, logs  # the dense baseline measured on a worker too (once per producer)
    client = connect(redis_url)
    assert _pending(client) == 0
    results = _results(client)  # the dense baselines' jobs too
    assert len(results) == client.xlen(protocol.stream_key("CPU")) >= 3
    assert all(r.error is None and r.worker_openvino.startswith(openvino) for r in results)
    _assert_one_at_a_time(results)


def test_two_pytest_sessions_at_once_share_the_broker_and_two_workers(
        tmp_path: Path, tiny_args: list[str], redis_url: str, start_worker: Callable[..., WorkerProcess]) -> None:
    """Two separate pytest processes (two producers, not xdist) and two workers: each session's records present
    exactly once, every job answered once, and no two measurements on the device at once."""
    from tiny import CHANNELS_SCHEDULE, FILTERS_SCHEDULE, SCHEDULE_SUITE, write_schedules

    workers = [start_worker("--name", name, ready=False) for name in ("w1", "w2")]
    for worker in workers:
        worker.wait_for("serving CPU")
    sessions = {}
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        write_schedules(folder, filters=FILTERS_SCHEDULE, channels=CHANNELS_SCHEDULE)
        (folder / "test_suite.py").write_text(SCHEDULE_SUITE)
        sessions[name] = subprocess.Popen(
            [sys.executable, "-m", "pytest", *tiny_args, "--prunebench-artifacts=artifacts",
             "--benchmark-json=out.json", "--prunebench-epochs", "0", f"--prunebench-broker={redis_url}",
             f"--basetemp={folder / 'tmp'}", "-q"],
            cwd=folder, stdout=(folder / "pytest.log").open("w"), stderr=subprocess.STDOUT)
    for name, session in sessions.items():
        assert session.wait(300) == 0, (tmp_path / name / "pytest.log").read_text()
    client = connect(redis_url)
    for name in sessions:
        records = json.loads((tmp_path / name / "out.json").read_text())["benchmarks"]
        assert sorted(r["name"] for r in records) == ["test_schedule[channels]", "test_schedule[filters]"]
        assert all(r["extra_info"]["worker"] in ("w1", "w2") for r in records)
    # Each session: its dense baseline and two cases, one job each; every job answered once and acknowledged.
    jobs = [protocol.parse_job(fields[b"meta"]) for _, fields in client.xrange(protocol.stream_key("CPU"))]
    assert len({job.producer for job in jobs}) == 2 and len({job.job for job in jobs}) == len(jobs) == 6
    results = _results(client)
    assert sorted(r.job for r in results) == sorted(job.job for job in jobs)
    assert all(r.error is None for r in results)
    assert _pending(client) == 0
    logs = "".join(worker.output() for worker in workers)
    assert logs.count(" CPU median ") == 6 and "discarded" not in logs, logs
    _assert_one_at_a_time(results)


def test_a_broker_that_is_down_at_session_start_is_a_usage_error(pytester: pytest.Pytester) -> None:
    free = redis_servers.free_port()
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess(f"--prunebench-broker=redis://:s3cret@127.0.0.1:{free}/0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: cannot reach the broker redis://:***@127.0.0.1:{free}/0 (*)*"])
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_a_case_with_no_worker_for_its_device_fails_with_one_line(pytester: pytest.Pytester, tiny_args: list[str],
                                                                    redis_url: str, private_host: Path) -> None:
    from tiny import run_schedule_suite

    result = run_schedule_suite(pytester, tiny_args, "--prunebench-epochs", "0", f"--prunebench-broker={redis_url}",
                                "--prunebench-lock-timeout", "1", "-k", "filters")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no worker served device CPU on the broker redis://127.0.0.1:*/0 for 1 s "
                                 "(--prunebench-lock-timeout); start one on the host that has the device: "
                                 "prunebench worker --broker redis://127.0.0.1:*/0 --device CPU*"])
    assert "Traceback" not in result.stdout.str()


def test_ncs_through_a_broker_is_measured_by_a_worker_that_serves_myriad(
        pytester: pytest.Pytester, tiny_args: list[str], redis_url: str,
        start_worker: Callable[..., WorkerProcess]) -> None:
    """`--ncs --prunebench-broker URL`: the case goes to the MYRIAD stream in FP16 (the stick's only precision), a
    worker serving MYRIAD measures it, and the record says so. The stick is pretended (tests/stick_worker.py):
    what is checked is everything around it. A CPU-only worker on the same broker gets none of the jobs."""
    from tiny import run_schedule_suite

    stick = start_worker("--name", "stick", "--device", "MYRIAD", script=STICK_WORKER)
    stick.wait_for("serving CPU, MYRIAD")
    cpu_only = start_worker("--name", "cpu-only")
    result = run_schedule_suite(pytester, tiny_args, "--ncs", "--prunebench-epochs", "0", "-k", "filters",
                                f"--prunebench-broker={redis_url}")
    result.assert_outcomes(passed=1)
    (record,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    info = record["extra_info"]
    assert info["device"] == "MYRIAD" and info["worker"] == "stick"
    # The FP16 IR went to the stick, compiled with the keys its plugin takes (no precision hint: the pretended stick
    # refuses it as the real one does). It runs on this host's CPU at the CPU's own precision (bf16 with AMX, f32
    # without): the record says what OpenVINO reports for it, not a machine's answer written here.
    assert info["precision_source"] == "ncs" and info["ir_path"].endswith(".f16.xml") and info["ir_bytes"] > 0
    on_this_cpu = device.core().compile_model(info["ir_path"], "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    assert info["precision"] == info["inference_precision"] == device._precision_of(on_this_cpu, "CPU")
    assert info["latency_speedup"] > 0
    assert stick.output().count(" MYRIAD median ") == 2, stick.output()  # the dense baseline and the case
    assert " median " not in cpu_only.output(), cpu_only.output()
    client = connect(redis_url)
    assert client.xlen(protocol.stream_key("MYRIAD")) == 2 and client.xlen(protocol.stream_key("CPU")) == 0


def test_ncs_through_a_broker_without_a_stick_worker_names_the_command(
        pytester: pytest.Pytester, tiny_args: list[str], redis_url: str,
        start_worker: Callable[..., WorkerProcess], private_host: Path) -> None:
    """Workers that serve only CPU do not help `--ncs`: the case fails with one line naming MYRIAD and the command
    that starts a worker for it."""
    from tiny import run_schedule_suite

    start_worker("--name", "cpu-only")
    result = run_schedule_suite(pytester, tiny_args, "--ncs", "--prunebench-epochs", "0", "-k", "filters",
                                f"--prunebench-broker={redis_url}", "--prunebench-lock-timeout", "1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no worker served device MYRIAD on the broker redis://127.0.0.1:*/0 for 1 s "
                                 "(--prunebench-lock-timeout); start one on the host that has the device: "
                                 "prunebench worker --broker redis://127.0.0.1:*/0 --device MYRIAD*"])
    assert "Traceback" not in result.stdout.str()


def test_the_worker_imports_no_heavy_library() -> None:
    """`prunebench worker` and `python -m pytest_prunebench.worker` on a host without torch, onnx, pytest, wandb."""
    code = ("import sys; import pytest_prunebench.cli as c, pytest_prunebench.worker as w; "
            "c.build_parser().parse_args(['worker', '--broker', 'redis://h:1/0']); "
            "print(sorted(m for m in ('torch', 'torch_pruning', 'onnx', 'wandb', 'pytest', 'yaml', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ctrl_c_finishes_the_current_job_and_sigterm_hands_it_back(
        redis_url: str, start_worker: Callable[..., WorkerProcess], onnx_files: tuple[bytes, bytes]) -> None:
    _, other = onnx_files
    broker = Broker(redis_url)
    first = start_worker("--name", "interrupted")
    job = _submit(broker, other, rounds=1500, case="finish-me")
    _wait_measuring(broker.client, "interrupted")
    first.process.send_signal(signal.SIGINT)
    assert first.process.wait(60) == 0
    assert broker.wait(job, "CPU", 10).worker == "interrupted"  # finished before it stopped
    assert "finish-me CPU median" in first.output() and "stopped after 1 job(s)" in first.output()

    second = start_worker("--name", "terminated")
    job = _submit(broker, other, rounds=1500, case="hand-me-back")
    _wait_measuring(broker.client, "terminated")
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(30) == 143
    assert "hand-me-back CPU: handed back" in second.output()
    assert _pending(broker.client) == 0 and broker.client.xlen(protocol.stream_key("CPU")) >= 1
    third = start_worker("--name", "third")  # takes the handed-back job at once (no claim bound to wait out)
    result = broker.wait(job, "CPU", 120)
    assert result.error is None and result.worker == "third"
    third.wait_for("hand-me-back CPU median")


def test_the_worker_survives_a_broker_restart(tmp_path: Path, start_worker: Callable[..., WorkerProcess],
                                              onnx_files: tuple[bytes, bytes]) -> None:
    """A broker of its own (the session's one stays up): stopped mid-run, the worker retries; restarted empty,
    the worker serves it again."""
    port = redis_servers.free_port()

    def server() -> subprocess.Popen[bytes]:
        return redis_servers.start(tmp_path, port=port)[0]

    url = f"redis://127.0.0.1:{port}/0"
    first = server()
    try:
        worker = start_worker(url=url)
        first.terminate()
        first.wait(10)
        worker.wait_for("unreachable")
        with pytest.raises(BrokerError, match=r"cannot reach the broker redis://127.0.0.1:\d+/0"):
            Broker(url)
        first = server()
        broker = Broker(url)
        result = broker.wait(_submit(broker, onnx_files[1], case="after-restart"), "CPU", 60)
        assert result.error is None
        assert "Traceback" not in worker.output()
    finally:
        first.terminate()
        first.wait(10)


def test_kill_9_of_a_worker_mid_run_keeps_every_record_once(
        pytester: pytest.Pytester, tiny_args: list[str], redis_url: str,
        start_worker: Callable[..., WorkerProcess]) -> None:
    """A -n 2 run with two workers; the first worker to measure anything is killed with SIGKILL mid-job."""
    import threading

    workers = {name: start_worker("--name", name, "--claim-idle", "2", ready=False) for name in ("w1", "w2")}
    for worker in workers.values():
        worker.wait_for("serving CPU")
    client = connect(redis_url)
    killed: list[str] = []

    def kill_the_first_busy_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for name, worker in workers.items():
                if _heartbeat_state(client, name).startswith("measuring"):
                    worker.process.send_signal(signal.SIGKILL)
                    killed.append(name)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_busy_worker)
    killer.start()
    from tiny import run_schedule_suite

    # 1000 rounds: each measurement lasts long enough (over half a second) to be killed in the middle.
    result = run_schedule_suite(pytester, tiny_args, "-n", "2", "--prunebench-epochs", "0",
                                f"--prunebench-broker={redis_url}", "--prunebench-rounds", "1000")
    killer.join()
    assert len(killed) == 1
    result.assert_outcomes(passed=2)
    records = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert sorted(r["name"] for r in records) == ["test_schedule[channels]", "test_schedule[filters]"]
    survivor = next(name for name in workers if name not in killed)
    assert all(r["extra_info"]["worker"] == survivor for r in records)
    assert _pending(client) == 0


@pytest.fixture(scope="module")
def int8_irs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A dense and a second ResNet-20 quantized to INT8 by the producer side (NNCF, 16 calibration images)."""
    from pytest_prunebench.quantize import convert
    from pytest_prunebench.settings import Deployment

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("worker-int8")
    train_x, train_y = _test_set(64)
    test_x, test_y = _test_set(16)
    irs = []
    for name in ("dense", "other"):
        export_onnx(build_model("resnet20", 10), folder / f"{name}.onnx")
        irs.append(convert(folder / f"{name}.onnx", folder / f"{name}.int8.xml", Deployment("int8", 16),
                           train_x, train_y, test_x, test_y, seed=0).xml)
    return irs[0], irs[1]


def test_openvino_2022_worker_measures_the_int8_ir_the_producer_built(
        venv310: Path, redis_url: str, start_worker: Callable[..., WorkerProcess],
        int8_irs: tuple[Path, Path]) -> None:
    """The producer quantizes (NNCF with OpenVINO 2026), the worker only compiles and runs the IR it receives: an
    OpenVINO 2022.3 worker reads 2026's IR (version 11) and runs its INT8 layers as INT8."""
    from types import SimpleNamespace

    from pytest_prunebench import device
    from pytest_prunebench.broker import RemoteMeasurer

    worker = start_worker(python=str(venv310 / "bin" / "python"))
    dense, other = int8_irs
    images, labels = _test_set(32)
    settings = SimpleNamespace(device="CPU", latency_rounds=20, warmup=2, lock_timeout=120)
    remote = RemoteMeasurer(redis_url)
    measured = remote.measure(other, dense, images, labels, settings, None)  # as CaseRunner sends it: no hint
    assert measured.worker_openvino == OPENVINO_2022
    assert len(measured.latencies_s) == len(measured.reference_latencies_s) == 20
    int8_kernels = [n.exec_type for n in measured.counters.nodes if "I8" in n.exec_type.upper()]
    assert int8_kernels, [n.exec_type for n in measured.counters.nodes]  # the convolutions ran in INT8
    local = device.measure(other, "CPU", images, labels, None, 5, 1)  # the same IR in this process (2026)
    assert abs(local.top1 - measured.top1) <= 2 * 100 / 32  # near-ties of random weights' logits may differ
    worker.wait_for("other.int8 CPU median ")
    # An IR job whose .xml is not an IR is an error result, and the worker goes on.
    broker = remote.broker
    x, y = broker.put_array(images), broker.put_array(labels)
    hostile = b'<?xml version="1.0"?><!DOCTYPE net [<!ENTITY a "aaaa">]><net><layers/></net>'
    job = broker.submit("hostile", "CPU", None, 5, 1, hostile, None, x, y, "tests", weights=b"\0" * 8)
    result = broker.wait(job, "CPU", 60)
    assert result.error is not None and "DOCTYPE" in result.error
    alone = remote.measure(dense, None, images, labels, settings, None)  # the dense IR measured on its own
    assert alone.worker_openvino == OPENVINO_2022 and len(alone.latencies_s) == 20 and not alone.reference_latencies_s
