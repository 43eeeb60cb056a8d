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

    def set_input_tensor(self, _tensor: object) -> None:
        self.log.append(f"set {self.name}")

    def infer(self) -> None:
        self.log.append(self.name)

    @property
    def latency(self) -> float:  # milliseconds, as OpenVINO's InferRequest.latency
        return 2.5 if self.name == "a" else 4.0


def test_interleaved_latency_alternates_block_order() -> None:
    log: list[str] = []
    samples = device._interleaved_latency([_Recorder("a", log), _Recorder("b", log)],
                                          np.zeros((1, 3, 32, 32), np.float32), rounds=25, warmup=2, block=10)
    assert [len(s) for s in samples] == [25, 25]
    assert log[:6] == ["set a", "a", "a", "set b", "b", "b"]  # input set once, then 2 warm-up inferences each
    timed = "".join(log[6:])
    assert timed == "a" * 10 + "b" * 10 + "b" * 10 + "a" * 10 + "a" * 5 + "b" * 5
    assert set(samples[0]) == {0.0025} and set(samples[1]) == {0.004}  # the runtime's own latency, in seconds


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
    reference = device.compile_for_latency(dense, "CPU", "f32")
    result = device.measure(other, "CPU", images, labels, "f32", rounds=30, warmup=3, reference=reference)
    assert len(result.latencies_s) == len(result.reference_latencies_s) == 30
    assert result.precision == "f32"
    assert 0 < result.median_ms < 1000 and result.reference_median_ms is not None
    assert result.throughput_fps > 0 and 0 <= result.top1 <= result.top5 <= 100
    assert result.measured_at[0] <= result.measured_at[1]
    alone = device.measure(other, "CPU", images, labels, None, rounds=5, warmup=1)
    assert alone.reference_latencies_s == () and alone.reference_median_ms is None


def test_accuracy_pass_in_batches_gives_every_image_its_own_logits(tiny_onnx: tuple[Path, Path]) -> None:
    dense, _ = tiny_onnx
    images = np.random.default_rng(1).normal(size=(13, 3, 32, 32)).astype(np.float32)
    one_by_one, _ = device.accuracy_pass(dense, "CPU", "f32", images, batch=1)
    batched, fps = device.accuracy_pass(dense, "CPU", "f32", images, batch=5)  # 5 + 5 + 3 (padded)
    assert batched.shape == one_by_one.shape == (13, 10) and fps > 0
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-4)
    assert len({tuple(row.round(4)) for row in batched}) == 13  # no image got another's (or the padding's) row


class _FixedBatch(torch.nn.Module):
    """A user model whose graph fixes the batch size at 1 (`view(1, -1)`): it cannot be reshaped."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(1, -1))


def test_accuracy_pass_feeds_a_fixed_batch_model_one_image_at_a_time(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _FixedBatch().eval()
    export_onnx(model, tmp_path / "fixed.onnx")
    images = np.random.default_rng(2).normal(size=(4, 3, 32, 32)).astype(np.float32)
    logits, _ = device.accuracy_pass(tmp_path / "fixed.onnx", "CPU", "f32", images, batch=3)
    with torch.no_grad():
        expected = torch.cat([model(torch.from_numpy(image[None])) for image in images]).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_openvino_is_imported_without_its_telemetry() -> None:
    device.openvino()
    assert sys.modules.get("openvino_telemetry", "absent") in (None, "absent")
    from openvino.tools.ovc import telemetry_utils

    assert telemetry_utils.tm.__name__.endswith("telemetry_stub")  # OpenVINO's no-op fallback is in use
