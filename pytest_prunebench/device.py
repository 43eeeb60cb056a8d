"""Every OpenVINO call lives here, so another OpenVINO API (2022.3 LTS for the NCS2) can be supported in one place.

A model is measured as deployed: accuracy of the compiled ONNX on the test set (batches on THROUGHPUT streams,
which also gives throughput) and batch-1 synchronous latency samples after a warm-up, as OpenVINO times them.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NewType

import numpy as np

from .errors import DeviceError
from .intervals import BLOCK, AdaptiveRounds, next_look, relative_half_width
from .lock import device_family
from .settings import NCS_DEVICE, NCS_PRECISION

# A model OpenVINO compiled (compile_for_latency): opaque outside this module, which alone calls its methods.
CompiledModel = NewType("CompiledModel", object)

VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
_PRECISION_NAMES = {"float32": "f32", "f32": "f32", "bfloat16": "bf16", "bf16": "bf16", "float16": "f16",
                    "f16": "f16"}


@cache
def openvino() -> Any:
    """Import OpenVINO with its telemetry replaced by OpenVINO's own stub: a run sends nothing anywhere.

    `import openvino` imports openvino.tools.ovc, which sends a usage event through openvino_telemetry unless
    the user opted out; ovc falls back to a no-op stub when that package cannot be imported.
    """
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino as ov

    if not hasattr(ov, "Core"):  # OpenVINO 2022.3 (the NCS2's last release): the API is openvino.runtime
        import openvino.runtime as ov
    return ov


@cache
def core() -> Any:
    return openvino().Core()


def version() -> str:
    return str(openvino().get_version()).split("-")[0]  # OpenVINO is untyped: its version, as a str


def available_devices() -> list[str]:
    return list(core().available_devices)


def check_device(device: str) -> None:
    """Fail early, with what to do, when OpenVINO cannot see the device."""
    available = available_devices()
    if device_family(device) in VIRTUAL_DEVICES:
        return
    if device in available or device in {name.split(".")[0] for name in available}:
        return
    if device == NCS_DEVICE:
        raise DeviceError(
            f"--ncs: no MYRIAD device (Neural Compute Stick 2) is visible to OpenVINO {version()} "
            f"(devices: {', '.join(available) or 'none'}). The NCS2 needs OpenVINO 2022.3 LTS from the archive "
            f"distribution, which runs on Python <= 3.10 (this is Python {platform.python_version()}); "
            f"use --prunebench-device NPU (Intel NPU) or --prunebench-device CPU instead, or run "
            f"`prunebench worker --device MYRIAD` on the stick's host and pass --prunebench-broker URL."
        )
    raise DeviceError(f"--prunebench-device {device}: OpenVINO {version()} has no such device "
                      f"(available: {', '.join(available) or 'none'}); pick one of those")


@dataclass(frozen=True)
class NodeTime:
    """One executed node of the compiled model: its name, the original (ONNX) ops fused into it, its time."""

    name: str
    originals: tuple[str, ...]
    median_ms: float
    exec_type: str


@dataclass(frozen=True)
class DeviceCounters:
    """OpenVINO performance counters of the profiled inferences.

    Counting slows every node (by ~15% on this CPU), so the raw sums exceed an unprofiled inference. What carries
    over is the share of each profiled inference's wall time that the nodes account for: the device time of a
    timed inference is its end-to-end median times that share (`device_ms_for`).
    """

    counter_ms: float  # median over the profiled inferences of the sum of every executed node's time
    share: float  # median over the profiled inferences of (that sum / the inference's wall time), at most 1
    nodes: tuple[NodeTime, ...]  # each node's median time, raw
    rounds: int

    def device_ms_for(self, e2e_ms: float) -> float:
        return e2e_ms * self.share


@dataclass(frozen=True)
class DeviceMeasurement:
    device: str
    precision: str
    latencies_s: tuple[float, ...]
    throughput_fps: float
    top1: float
    top5: float
    measured_at: tuple[float, float]  # unix seconds: start and end of the measurement window
    reference_latencies_s: tuple[float, ...] = ()  # a reference model timed in the same window, interleaved
    counters: DeviceCounters | None = None  # performance counters, from rounds of their own; None: not reported
    distinct_predictions: int = 0  # how many classes the model predicted over the test set (collapse check)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time: accuracy pass, compiles, timed rounds
    worker: str = ""  # measured by a device worker (worker.py): its name; "" in this process
    worker_openvino: str = ""  # that worker's OpenVINO version

    @property
    def median_ms(self) -> float:
        return float(np.median(self.latencies_s) * 1000.0)

    @property
    def device_ms(self) -> float | None:
        """The device's own share of the end-to-end median (performance counters); None without counters."""
        return self.counters.device_ms_for(self.median_ms) if self.counters else None

    @property
    def reference_median_ms(self) -> float | None:
        return float(np.median(self.reference_latencies_s) * 1000.0) if self.reference_latencies_s else None


def compile_config(device: str, hint: str, precision: str | None) -> dict[str, Any]:
    """OpenVINO's compile config: the performance hint, and the precision hint where the device takes one. The NCS2's
    MYRIAD plugin (OpenVINO 2022.3) refuses keys it does not register, INFERENCE_PRECISION_HINT among them, and
    computes in FP16 whatever it is given: its models are compiled without a precision hint."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
    if precision and device_family(device) != NCS_DEVICE:
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


def _compile(model: Any, device: str, hint: str, precision: str | None) -> Any:
    config = compile_config(device, hint, precision)
    try:
        return core().compile_model(model, device, config)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeviceError(f"OpenVINO could not compile the model for {device}: {first}") from None


def compile_for_latency(onnx_path: Path, device: str, precision: str | None) -> CompiledModel:
    """A model compiled as `measure` times it, to be passed as its `reference`."""
    return CompiledModel(_compile(core().read_model(str(onnx_path)), device, "LATENCY", precision))


def _precision_of(compiled: Any, device: str) -> str:
    """What the device compiled the float parts at, as it says; a device that does not say is "unknown", except
    the NCS2 (MYRIAD), whose hardware computes in FP16 only."""
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except RuntimeError:
        return NCS_PRECISION if device_family(device) == NCS_DEVICE else "unknown"
    name = str(getattr(value, "type_name", None) or value).strip("<>").replace("Type: ", "").strip("'")
    return _PRECISION_NAMES.get(name, name)


def measure(onnx_path: Path, device: str, images: np.ndarray, labels: np.ndarray, precision: str | None,
            rounds: int | AdaptiveRounds, warmup: int, reference: CompiledModel | None = None,
            compiled: CompiledModel | None = None) -> DeviceMeasurement:
    """Accuracy and throughput (every test image, in batches: `accuracy_pass`), then batch-1 latency samples
    (sync), then the profiled rounds. `rounds`: timed inferences per model, or an AdaptiveRounds policy (time
    blocks until the interval is narrow enough).

    With a `reference` model (the dense baseline, from `compile_for_latency`: compiled once per process), both are
    timed in alternating blocks in this one window: latency drifts between windows and processes by ~10%, and a
    speed-up must not absorb that drift. `compiled`: the model itself, already from `compile_for_latency`.
    """
    started, clock = time.time(), time.perf_counter()
    laps: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        laps[stage], clock = time.perf_counter() - clock, time.perf_counter()

    logits, fps = accuracy_pass(onnx_path, device, precision, images)
    top = np.argsort(-logits, axis=1)[:, :5]
    top1 = float(np.mean(top[:, 0] == labels) * 100.0)
    top5 = float(np.mean((top == labels[:, None]).any(axis=1)) * 100.0)
    lap("accuracy")
    model = core().read_model(str(onnx_path))
    latency_model = compiled if compiled is not None else _compile(model, device, "LATENCY", precision)
    timed = [latency_model]
    if reference is not None:
        timed.append(reference)
    lap("compile")
    samples = _interleaved_latency(timed, images[:1], rounds, warmup)
    lap("latency")
    # Not before: its threads would share the timed rounds' cores. Adaptive: as for the rounds used, up to 1000.
    profiled_for = rounds if isinstance(rounds, int) else min(len(samples[0]), 1000)
    counters = _profiled(model, device, precision, images[:1], profiled_for)
    lap("profile")
    return DeviceMeasurement(device, _precision_of(latency_model, device), samples[0], fps, top1, top5,
                             (started, time.time()), samples[1] if reference is not None else (),
                             counters, len(np.unique(top[:, 0])), laps)


def profiled_rounds(rounds: int) -> int:
    """Profiled inferences for `rounds` timed ones: 40 for the default 200."""
    return max(2, rounds // 5)


class Profiler:
    """Performance counters from a second compile of the model (PERF_COUNT on), in inferences of their own.

    Its rounds run right after the timed ones, in the same measurement window, and are never timed: counters add
    work to every inference. Run between the timed blocks (as they first were), they and the profiled model's
    threads slowed the timed inferences (by up to ~5% in a noisy probe; benchmarks/harness.py, P2).
    """

    def __init__(self, compiled: Any) -> None:
        self._originals = _original_layers(compiled)
        self._request = compiled.create_infer_request()
        self._per_node: dict[str, list[float]] = {}
        self._exec_types: dict[str, str] = {}
        self._totals: list[float] = []
        self._shares: list[float] = []

    @classmethod
    def compile(cls, model: Any, device: str, precision: str | None) -> Profiler | None:
        """None when the device refuses PERF_COUNT."""
        config = {**compile_config(device, "LATENCY", precision), "PERF_COUNT": True}
        try:
            return cls(core().compile_model(model, device, config))
        except RuntimeError:
            return None

    def run(self, sample: np.ndarray, rounds: int) -> None:
        """One untimed warm-up inference, then `rounds` profiled ones."""
        self._request.set_input_tensor(openvino().Tensor(sample))
        self._request.infer()
        for _ in range(rounds):
            self._step()

    def _step(self) -> None:
        self._request.infer()
        wall = self._request.latency / 1000.0  # as the timed samples are measured (see _interleaved_latency)
        executed = [p for p in self._request.get_profiling_info() if str(p.status).endswith("EXECUTED")]
        for info in executed:
            self._per_node.setdefault(info.node_name, []).append(info.real_time.total_seconds() * 1000.0)
            self._exec_types[info.node_name] = str(info.exec_type)
        total = sum(info.real_time.total_seconds() for info in executed)
        self._totals.append(total * 1000.0)
        self._shares.append(min(1.0, total / wall) if wall > 0 else 1.0)

    def result(self) -> DeviceCounters | None:
        """None when the device reported no executed node (no counters)."""
        if not self._per_node:
            return None
        nodes = tuple(NodeTime(name, self._originals.get(name, (name,)), float(np.median(times)),
                               self._exec_types[name]) for name, times in self._per_node.items())
        return DeviceCounters(float(np.median(self._totals)), float(np.median(self._shares)), nodes, len(self._totals))


def profile(model: Any, device: str, precision: str | None, sample: np.ndarray,
            rounds: int) -> tuple[float, DeviceCounters | None]:
    """`rounds` timed inferences, then profiled ones: (end-to-end median ms, counters)."""
    (samples,) = _interleaved_latency([_compile(model, device, "LATENCY", precision)], sample, rounds, 10)
    return float(np.median(samples) * 1000.0), _profiled(model, device, precision, sample, rounds)


def _profiled(model: Any, device: str, precision: str | None, sample: np.ndarray,
              rounds: int) -> DeviceCounters | None:
    """The counters of `profiled_rounds(rounds)` inferences of a profiling compile, after the timed rounds; None
    where the device reports none."""
    profiler = Profiler.compile(model, device, precision)
    if profiler is None:
        return None
    profiler.run(sample, profiled_rounds(rounds))
    return profiler.result()


def _original_layers(compiled: Any) -> dict[str, tuple[str, ...]]:
    """Executed node -> the original ops fused into it (OpenVINO's `originalLayersNames`)."""
    layers = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        value = info["originalLayersNames"] if "originalLayersNames" in info else ""  # noqa: SIM401 (RTMap)
        names = str(value.astype(str) if hasattr(value, "astype") else value)  # OpenVINO 2022.3 gives a str
        if names:
            layers[op.get_friendly_name()] = tuple(n for n in names.split(",") if n)
    return layers


ACCURACY_BATCH = 32  # images per request of the accuracy pass (benchmarks/harness.py measured 1 to 128)


def accuracy_pass(onnx_path: Path, device: str, precision: str | None, images: np.ndarray,
                  batch: int = ACCURACY_BATCH) -> tuple[np.ndarray, float]:
    """Logits for every image and images per second: THROUGHPUT-hint streams fed batches of `batch` images.

    A model whose graph fixes its batch size (a user model that reshapes to 1 x features) cannot be reshaped;
    it is fed one image per request instead.
    """
    model = core().read_model(str(onnx_path))
    try:
        model.reshape([batch, *images.shape[1:]])
    except RuntimeError:
        model, batch = core().read_model(str(onnx_path)), 1
    compiled = _compile(model, device, "THROUGHPUT", precision)
    try:
        return _infer_all(compiled, images, batch)
    finally:
        del compiled  # its streams must not compete with the latency rounds that follow


def _infer_all(compiled: Any, images: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    queue = openvino().AsyncInferQueue(compiled)
    outputs: list[np.ndarray | None] = [None] * -(-len(images) // batch)

    def collect(request: Any, index: int) -> None:
        outputs[index] = np.array(request.get_output_tensor(0).data, copy=True)

    queue.set_callback(collect)
    started = time.perf_counter()
    for index, start in enumerate(range(0, len(images), batch)):
        chunk = images[start:start + batch]
        if len(chunk) < batch:  # the last batch, padded: its padding's outputs are dropped below
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        queue.start_async({0: chunk}, index)
    queue.wait_all()
    elapsed = time.perf_counter() - started
    done = [output for output in outputs if output is not None]
    if len(done) != len(outputs):  # never a shorter array that would be scored against every label
        raise DeviceError(f"OpenVINO returned no output for {len(outputs) - len(done)} of {len(outputs)} batches")
    return np.concatenate(done)[:len(images)], len(images) / elapsed


def _interleaved_latency(models: list[Any], sample: np.ndarray, rounds: int | AdaptiveRounds, warmup: int,
                         block: int = BLOCK) -> list[tuple[float, ...]]:
    """`rounds` synchronous inferences per model, in blocks of `block` whose order alternates (AB, BA, ...).

    A sample is the request's own `latency`, timed by the runtime around the inference as `benchmark_app` times it,
    on an input set once: timing `infer({0: sample})` from Python adds its argument handling and result copies
    (0.15-0.2 ms per call here, 8% of a dense ResNet-56), which is not the device's time.

    With an AdaptiveRounds policy, whole blocks are timed until the 95% interval of the speed-up (of the first model
    over the second; of the median for one model) is within the policy's target, or its round or time budget is
    spent. The interval is looked at after `min_rounds`, then where it is predicted to be narrow enough (next_look).
    """
    requests = [model.create_infer_request() for model in models]
    for request in requests:
        request.set_input_tensor(openvino().Tensor(sample))
        for _ in range(warmup):
            request.infer()
    samples: list[list[float]] = [[] for _ in models]

    def time_blocks(first: int, last: int, deadline: float = math.inf) -> int:
        """Rounds first..last-1 of every model, in alternating blocks (the alternation continues across calls), or
        up to the first block boundary past `deadline`; returns the rounds per model timed by then."""
        for start in range(first, last, block):
            if time.perf_counter() > deadline:
                return start
            order = range(len(requests)) if (start // block) % 2 == 0 else reversed(range(len(requests)))
            for which in order:
                request = requests[which]
                for _ in range(min(block, last - start)):
                    request.infer()
                    samples[which].append(request.latency / 1000.0)
        return last

    if isinstance(rounds, int):
        time_blocks(0, rounds)
        return [tuple(s) for s in samples]
    policy, deadline, done = rounds, time.perf_counter() + rounds.budget_s, 0
    look = min(policy.max_rounds, -(-policy.min_rounds // block) * block)
    while True:
        reached = time_blocks(done, look, deadline)
        if reached < look or look >= policy.max_rounds:  # the time or the round budget is spent
            break
        done = look
        half_width = relative_half_width(samples[0], samples[1] if len(samples) > 1 else ())
        if half_width <= policy.target:
            break
        look = next_look(done, half_width, policy, block)
    return [tuple(s) for s in samples]
