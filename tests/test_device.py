"""The OpenVINO stage: device checks, interleaved timing, and a real measurement on the CPU."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_prunebench import device
from pytest_prunebench.errors import DeviceError
from pytest_prunebench.export import export_onnx
from pytest_prunebench.models import build_model


class _Recorder:
    """Stands in for a compiled model: its requests log which model ran."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def create_infer_request(self) -> _Recorder:
        return self

    def infer(self, _inputs: object) -> None:
        self.log.append(self.name)


def test_interleaved_latency_alternates_block_order() -> None:
    log: list[str] = []
    samples = device._interleaved_latency([_Recorder("a", log), _Recorder("b", log)], np.zeros(1), rounds=25,
                                          warmup=2, block=10)
    assert [len(s) for s in samples] == [25, 25]
    timed = "".join(log[4:])  # after 2 warm-up inferences each
    assert timed == "a" * 10 + "b" * 10 + "b" * 10 + "a" * 10 + "a" * 5 + "b" * 5


def test_unknown_device_and_missing_stick_are_clear() -> None:
    with pytest.raises(DeviceError, match=r"--prunebench-device FPGA: OpenVINO .* has no such device"):
        device.check_device("FPGA")
    with pytest.raises(DeviceError, match=r"NCS2 needs OpenVINO 2022.3 LTS.*Python <= 3.10"):
        device.check_device("MYRIAD")
    device.check_device("CPU")
    device.check_device("AUTO:CPU")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("onnx")
    dense, pruned = build_model("resnet20", 10), build_model("resnet20", 10)
    export_onnx(dense, folder / "dense.onnx")
    export_onnx(pruned, folder / "other.onnx")
    return folder / "dense.onnx", folder / "other.onnx"


def test_measure_times_the_reference_in_the_same_window(tiny_onnx: tuple[Path, Path]) -> None:
    dense, other = tiny_onnx
    images = np.random.default_rng(0).normal(size=(16, 3, 32, 32)).astype(np.float32)
    labels = np.arange(16) % 10
    result = device.measure(other, "CPU", images, labels, "f32", rounds=30, warmup=3, reference=dense)
    assert len(result.latencies_s) == len(result.reference_latencies_s) == 30
    assert result.precision == "f32"
    assert 0 < result.median_ms < 1000 and result.reference_median_ms is not None
    assert result.throughput_fps > 0 and 0 <= result.top1 <= result.top5 <= 100
    assert result.measured_at[0] <= result.measured_at[1]
    alone = device.measure(other, "CPU", images, labels, None, rounds=5, warmup=1)
    assert alone.reference_latencies_s == () and alone.reference_median_ms is None


def test_openvino_is_imported_without_its_telemetry() -> None:
    device.openvino()
    assert sys.modules.get("openvino_telemetry", "absent") in (None, "absent")
    from openvino.tools.ovc import telemetry_utils

    assert telemetry_utils.tm.__name__.endswith("telemetry_stub")  # OpenVINO's no-op fallback is in use
