"""The measurement call: a model file on the device, in this process under the device lock and the host gate, or
on a device worker through --prunebench-broker; and what a case reads off a measurement."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import Dataset
from ..settings import Settings

if TYPE_CHECKING:
    from torch import nn

    from ..broker import RemoteMeasurer
    from ..device import CompiledModel, DeviceMeasurement
    from ..training import EvalResult


@dataclass(frozen=True)
class LatencyReference:
    """The dense model every case of it is timed against, interleaved: compiled once per process here; with a
    broker its file, which the worker compiles (once per worker)."""

    path: Path  # the measured file: the ONNX file or its deployed IR (.xml)
    compiled: CompiledModel | None  # None: measured through the broker


class Measurer:
    def __init__(self, settings: Settings) -> None:
        from ..lock import HostGate, default_host_gate_path, shares_host

        self.settings = settings
        gated = settings.host_gate == "on" or (settings.host_gate == "auto" and shares_host(settings.device))
        self.host_gate = HostGate(default_host_gate_path(), settings.lock_timeout) if gated else None
        self._remote: RemoteMeasurer | None = None  # with --prunebench-broker, made on the first measurement

    def latency_reference(self, model_path: Path, hint: str | None) -> LatencyReference:
        if self.settings.broker:  # the worker compiles it (once per worker): the reference travels as its file
            return LatencyReference(model_path, None)
        from .. import device
        from ..lock import cpu_work

        with cpu_work():  # compiled once: its own measurement and every case's interleaved timing use it
            return LatencyReference(model_path, device.compile_for_latency(model_path, self.settings.device, hint))

    def measure(self, model_path: Path, data: Dataset, hint: str | None, reference: LatencyReference | None = None,
                compiled: CompiledModel | None = None) -> DeviceMeasurement:
        """Accuracy over the test set and latency, interleaved with `reference`'s when given; `compiled`: the
        model itself, already compiled for latency (a broker's worker compiles its own)."""
        from .. import device
        from ..lock import exclusive_measurement

        settings = self.settings
        images = data.test_x.numpy()
        labels = data.test_y.numpy()
        if settings.broker:  # no local lock: the worker takes its device's lock and its host's gate
            if self._remote is None:
                from ..broker import RemoteMeasurer

                self._remote = RemoteMeasurer(settings.broker)
            reference_path = None if reference is None else reference.path
            return self._remote.measure(model_path, reference_path, images, labels, settings, hint)
        reference_model = None if reference is None else reference.compiled
        with exclusive_measurement(settings.device, settings.lock_path, settings.lock_timeout, self.host_gate):
            return device.measure(model_path, settings.device, images, labels, hint, settings.latency_rounds,
                                  settings.warmup, reference_model, compiled)

    @contextlib.contextmanager
    def host_work(self) -> Iterator[None]:
        """A CPU-heavy section outside a case (e.g. writing its W&B run): waits while another process measures."""
        from ..lock import cpu_work, use_host_gate

        with use_host_gate(self.host_gate), cpu_work():
            yield


def deployed_eval(measurement: DeviceMeasurement) -> EvalResult:
    """The exported model as compiled, over the whole test set, as a training.EvalResult (no loss)."""
    from ..training import EvalResult

    return EvalResult(measurement.top1, measurement.top5, math.nan, measurement.distinct_predictions)


def write_layer_profile(model: nn.Module, onnx_path: Path, measurement: DeviceMeasurement,
                        measured: Path) -> Path | None:
    """Per conv / fc layer: MACs, device time and share, beside the measured model file (the ONNX file, or its
    deployed IR: OpenVINO keeps the ONNX layer names through conversion); None without counters."""
    from ..layercost import layer_profile
    from ..lock import cpu_work

    if measurement.counters is None:
        return None
    with cpu_work():
        profile = layer_profile(model, onnx_path, measurement.counters, measurement.median_ms)
    return profile.write(measured.with_suffix(".layers.json"))
