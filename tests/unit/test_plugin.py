"""The plugin's options: bad values, conflicts and patterns that match nothing, each one line naming the option.

This file holds the unit layer's tests (in-process: pytest's parser and options.resolve, no pytest run); the
topic's other tests are in tests/plugin/test_plugin.py, tests/e2e/test_plugin.py.
"""

from __future__ import annotations

import pytest
from option_parsing import OptionParsing, assert_one_line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--prunebench-epochs", "-1"], "*--prunebench-epochs: -1 is negative; use 0 or more*"),
        (["--prunebench-epochs", "two"], "*--prunebench-epochs: 'two' is not a whole number*"),
        (["--prunebench-data", "imagenet"], "*--prunebench-data: unknown dataset 'imagenet'*"),
        (["--prunebench-data", "cifar10"], "*cifar10 needs the directory of its python batches*"),
        (["--prunebench-model", "resnet99"], "*--prunebench-model: unknown model 'resnet99'*"),
        (["--prunebench-precision", "int3"], "*--prunebench-precision: 'int3' is not an inference precision*"),
        (["--prunebench-device", "cpu!"], "*--prunebench-device: 'cpu!' is not an OpenVINO device name*"),
        (["--prunebench-rounds", "0"], "*--prunebench-rounds: '0' must be at least 1*"),
        (["--prunebench-lock-timeout", "-3"], "*--prunebench-lock-timeout: -3 must be a finite number greater than 0*"),
    ],
)
def test_bad_option_values_are_usage_errors(parsing: OptionParsing, args: list[str], expected: str) -> None:
    assert_one_line(parsing.usage_error(*args), args[0], expected)


def test_ncs_conflicts_with_another_device(parsing: OptionParsing) -> None:
    assert_one_line(parsing.usage_error("--ncs", "--prunebench-device", "GPU"), "--ncs",
                    "*--ncs measures on MYRIAD but --prunebench-device says GPU*")


def test_schedules_option_that_matches_nothing(parsing: OptionParsing) -> None:
    assert_one_line(parsing.usage_error("--prunebench-schedules", "nowhere/*.yaml"), "--prunebench-schedules",
                    "*--prunebench-schedules *nowhere/*.yaml: no .yaml/.yml schedule file there*")


def test_round_to_auto_conflicts_with_a_broker(parsing: OptionParsing) -> None:
    message = parsing.usage_error("--prunebench-round-to", "auto", "--prunebench-broker", "redis://127.0.0.1:9/0")
    assert_one_line(message, "--prunebench-round-to", "*--prunebench-round-to auto probes the device in this "
                    "process*`prunebench granularity --device DEVICE` on the worker's host*")
    assert_one_line(parsing.usage_error("--prunebench-round-to", "often"), "--prunebench-round-to",
                    "*--prunebench-round-to*'often' is not a whole number*or auto*")
