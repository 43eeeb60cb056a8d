"""Every OpenVINO call lives here, so another OpenVINO API (2022.3 LTS for the NCS2) can be supported in one place.

A model is measured as deployed: accuracy of the compiled ONNX on the test set (async, which also gives
throughput) and batch-1 synchronous latency samples after a warm-up.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DeviceError
from .settings import NCS_DEVICE

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

    return ov


@cache
def core() -> Any:
    return openvino().Core()


def version() -> str:
    return openvino().get_version().split("-")[0]


def available_devices() -> list[str]:
    return list(core().available_devices)


def check_device(device: str) -> None:
    """Fail early, with what to do, when OpenVINO cannot see the device."""
    available = available_devices()
    if device.split(":")[0].split(".")[0] in VIRTUAL_DEVICES:
        return
    if device in available or device in {name.split(".")[0] for name in available}:
        return
    if device == NCS_DEVICE:
        raise DeviceError(
            f"--ncs: no MYRIAD device (Neural Compute Stick 2) is visible to OpenVINO {version()} "
            f"(devices: {', '.join(available) or 'none'}). The NCS2 needs OpenVINO 2022.3 LTS from the archive "
            f"distribution, which runs on Python <= 3.10 (this is Python {platform.python_version()}); "
            f"use --prunebench-device NPU (Intel NPU) or --prunebench-device CPU instead."
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


def _compile(model: Any, device: str, hint: str, precision: str | None) -> Any:
    config = {"PERFORMANCE_HINT": hint}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    try:
        return core().compile_model(model, device, config)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeviceError(f"OpenVINO could not compile the model for {device}: {first}") from None


def _precision_of(compiled: Any) -> str:
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except RuntimeError:
        return "unknown"
    name = str(getattr(value, "type_name", None) or value).strip("<>").replace("Type: ", "").strip("'")
    return _PRECISION_NAMES.get(name, name)


def measure(onnx_path: Path, device: str, images: np.ndarray, labels: np.ndarray, precision: str | None,
            rounds: int, warmup: int, reference: Path | None = None) -> DeviceMeasurement:
    """Accuracy and throughput (async, every test image) then batch-1 latency samples (sync).

    With a `reference` model (the dense baseline), both are timed in alternating blocks in this one window:
    latency drifts between windows and processes by ~10%, and a speed-up must not absorb that drift.
    """
    ov = openvino()
    model = core().read_model(str(onnx_path))
    started = time.time()
    throughput_model = _compile(model, device, "THROUGHPUT", precision)
    logits, fps = _infer_all(ov, throughput_model, images)
    del throughput_model  # its streams must not compete with the latency rounds
    top = np.argsort(-logits, axis=1)[:, :5]
    top1 = float(np.mean(top[:, 0] == labels) * 100.0)
    top5 = float(np.mean((top == labels[:, None]).any(axis=1)) * 100.0)
    latency_model = _compile(model, device, "LATENCY", precision)
    timed = [latency_model]
    if reference is not None:
        timed.append(_compile(core().read_model(str(reference)), device, "LATENCY", precision))
    profiler = Profiler.compile(model, device, precision)
    samples = _interleaved_latency(timed, images[:1], rounds, warmup, profiler)
    return DeviceMeasurement(device, _precision_of(latency_model), samples[0], fps, top1, top5,
                             (started, time.time()), samples[1] if reference is not None else (),
                             profiler.result() if profiler else None, len(np.unique(top[:, 0])))


PROFILED_PER_BLOCK = 2  # profiled inferences per block of 10 timed ones: 40 for the default 200 rounds


class Profiler:
    """Performance counters from a second compile of the model (PERF_COUNT on), in inferences of their own.

    Its rounds run between the timed blocks (so they share the window's drift) but are never timed: counters
    add work to every inference.
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
        config = {"PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        try:
            return cls(core().compile_model(model, device, config))
        except RuntimeError:
            return None

    def warm_up(self, sample: np.ndarray) -> None:
        self._request.infer({0: sample})

    def step(self, sample: np.ndarray) -> None:
        began = time.perf_counter()
        self._request.infer({0: sample})
        wall = time.perf_counter() - began
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
    """`rounds` timed inferences with profiled ones between them: (end-to-end median ms, counters)."""
    profiler = Profiler.compile(model, device, precision)
    (samples,) = _interleaved_latency([_compile(model, device, "LATENCY", precision)], sample, rounds, 10, profiler)
    return float(np.median(samples) * 1000.0), profiler.result() if profiler else None


def _original_layers(compiled: Any) -> dict[str, tuple[str, ...]]:
    """Executed node -> the original ops fused into it (OpenVINO's `originalLayersNames`)."""
    layers = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        names = str(info["originalLayersNames"].astype(str)) if "originalLayersNames" in info else ""
        if names:
            layers[op.get_friendly_name()] = tuple(n for n in names.split(",") if n)
    return layers


def _infer_all(ov: Any, compiled: Any, images: np.ndarray) -> tuple[np.ndarray, float]:
    queue = ov.AsyncInferQueue(compiled)
    outputs: list[np.ndarray | None] = [None] * len(images)

    def collect(request: Any, index: int) -> None:
        outputs[index] = np.array(request.get_output_tensor(0).data[0], copy=True)

    queue.set_callback(collect)
    started = time.perf_counter()
    for index in range(len(images)):
        queue.start_async({0: images[index:index + 1]}, index)
    queue.wait_all()
    elapsed = time.perf_counter() - started
    return np.stack(outputs), len(images) / elapsed


def _interleaved_latency(models: list[Any], sample: np.ndarray, rounds: int, warmup: int,
                         profiler: Profiler | None = None, block: int = 10) -> list[tuple[float, ...]]:
    """`rounds` synchronous inferences per model, in blocks of `block` whose order alternates (AB, BA, ...);
    after each round of blocks, `PROFILED_PER_BLOCK` untimed inferences of the profiler."""
    requests = [model.create_infer_request() for model in models]
    for request in requests:
        for _ in range(warmup):
            request.infer({0: sample})
    if profiler is not None:
        profiler.warm_up(sample)
    samples: list[list[float]] = [[] for _ in models]
    for index, start in enumerate(range(0, rounds, block)):
        order = range(len(requests)) if index % 2 == 0 else reversed(range(len(requests)))
        for which in order:
            for _ in range(min(block, rounds - start)):
                began = time.perf_counter()
                requests[which].infer({0: sample})
                samples[which].append(time.perf_counter() - began)
        for _ in range(PROFILED_PER_BLOCK if profiler is not None else 0):
            profiler.step(sample)  # type: ignore[union-attr]
    return [tuple(s) for s in samples]
