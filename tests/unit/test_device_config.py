"""What a record's `precision` says when the device does or does not report INFERENCE_PRECISION_HINT, and the compile
config each device is given.

OpenVINO's compiled models stand in as tiny objects: the branch under test is what happens around the property,
and a device that cannot report it (the NCS2's MYRIAD plugin) does not exist here.
"""

from __future__ import annotations

import pytest

from pytest_prunebench import device


class _Reports:
    def __init__(self, value: object) -> None:
        self.value = value

    def get_property(self, name: str) -> object:
        assert name == "INFERENCE_PRECISION_HINT"
        return self.value


class _Silent:
    def get_property(self, name: str) -> object:
        raise RuntimeError(f"Unsupported property {name} by CPU plugin")


@pytest.mark.parametrize(("value", "expected"), [("f32", "f32"), ("bf16", "bf16"), ("<Type: 'float16'>", "f16"),
                                                 ("float32", "f32")])
def test_a_device_that_reports_its_precision_is_taken_at_its_word(value: str, expected: str) -> None:
    assert device._precision_of(_Reports(value), "MYRIAD") == expected
    assert device._precision_of(_Reports(value), "CPU") == expected


@pytest.mark.parametrize(("name", "expected"), [("MYRIAD", "f16"), ("MYRIAD.1.2-ma2480", "f16"), ("CPU", "unknown"),
                                                ("NPU", "unknown")])
def test_a_device_that_does_not_say_is_unknown_but_the_stick_computes_in_fp16(name: str, expected: str) -> None:
    assert device._precision_of(_Silent(), name) == expected


@pytest.mark.parametrize(("name", "precision", "expected"), [
    ("CPU", "f16", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f16"}),
    ("GPU.1", "f32", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}),
    ("CPU", None, {"PERFORMANCE_HINT": "LATENCY"}),
    # OpenVINO 2022.3's MYRIAD plugin throws on any key it does not register, this one included
    ("MYRIAD", "f16", {"PERFORMANCE_HINT": "LATENCY"}),
    ("MYRIAD.1.2-ma2480", "f32", {"PERFORMANCE_HINT": "LATENCY"}),
])
def test_the_stick_is_compiled_without_a_precision_hint(name: str, precision: str | None,
                                                        expected: dict[str, str]) -> None:
    assert device.compile_config(name, "LATENCY", precision) == expected
