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
class DeviceMeasurement:
    device: str
    precision: str
    latencies_s: tuple[float, ...]
    throughput_fps: float
    top1: float
    top5: float
    measured_at: tuple[float, float]  # unix seconds: start and end of the measurement window
    reference_latencies_s: tuple[float, ...] = ()  # a reference model timed in the same window, interleaved

    @property
    def median_ms(self) -> float:
        return float(np.median(self.latencies_s) * 1000.0)

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
    samples = _interleaved_latency(timed, images[:1], rounds, warmup)
    return DeviceMeasurement(device, _precision_of(latency_model), samples[0], fps, top1, top5,
                             (started, time.time()), samples[1] if reference is not None else ())


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
                         block: int = 10) -> list[tuple[float, ...]]:
    """`rounds` synchronous inferences per model, in blocks of `block` whose order alternates (AB, BA, ...)."""
    requests = [model.create_infer_request() for model in models]
    for request in requests:
        for _ in range(warmup):
            request.infer({0: sample})
    samples: list[list[float]] = [[] for _ in models]
    for index, start in enumerate(range(0, rounds, block)):
        order = range(len(requests)) if index % 2 == 0 else reversed(range(len(requests)))
        for which in order:
            for _ in range(min(block, rounds - start)):
                began = time.perf_counter()
                requests[which].infer({0: sample})
                samples[which].append(time.perf_counter() - began)
    return [tuple(s) for s in samples]
