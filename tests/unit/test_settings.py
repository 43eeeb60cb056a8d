"""The `type=` parsers shared by command-line options and ini keys, and the frozen Settings object.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_settings.py.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from option_parsing import OptionParsing, assert_one_line

from pytest_prunebench.data import DataSpec
from pytest_prunebench.lock import HOST_GATE_MODES
from pytest_prunebench.schedule import BOUND_KEYS
from pytest_prunebench.settings import (
    BUILTIN_MODELS,
    PRECISIONS,
    Settings,
    case_bound,
    data_spec,
    device_name,
    host_gate_mode,
    model_from_file_name,
    model_name,
    non_negative_int,
    positive_float,
    positive_int,
    precision,
    recalibration_images,
)

# --- good values parse to the right value -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (device_name, "CPU", "CPU"),
        (device_name, "GPU", "GPU"),
        (device_name, "NPU", "NPU"),
        (device_name, "MYRIAD", "MYRIAD"),
        (device_name, "GPU.1", "GPU.1"),
        (device_name, " CPU ", "CPU"),
        (device_name, "HETERO:GPU,CPU", "HETERO:GPU,CPU"),
        (device_name, "AUTO:GPU.1,CPU", "AUTO:GPU.1,CPU"),
        (device_name, "AUTO:-CPU", "AUTO:-CPU"),
        (device_name, "BATCH:GPU(4)", "BATCH:GPU(4)"),
        (device_name, "MULTI:GPU.0,GPU.1", "MULTI:GPU.0,GPU.1"),
        (non_negative_int, "0", 0),
        (recalibration_images, "512", 512),
        (recalibration_images, "off", 0),
        (recalibration_images, "0", 0),
        (non_negative_int, "7", 7),
        (non_negative_int, " 12 ", 12),
        (positive_int, "1", 1),
        (positive_int, "200", 200),
        (positive_float, "0.05", 0.05),
        (positive_float, "900", 900.0),
        (positive_float, "1e-3", 0.001),
        (precision, "f32", "f32"),
        (precision, "bf16", "bf16"),
        (precision, " F16 ", "f16"),
        (data_spec, "digits", DataSpec("digits")),
        (data_spec, "Synthetic", DataSpec("synthetic")),
        (case_bound, "min_top1=90", ("min_top1", 90.0)),
        (case_bound, "max_latency_ms=2.5", ("max_latency_ms", 2.5)),
        (case_bound, " max_top1_drop = 1 ", ("max_top1_drop", 1.0)),
        (case_bound, "min_latency_speedup=1e0", ("min_latency_speedup", 1.0)),
        (case_bound, "min_top1=-5", ("min_top1", -5.0)),  # a bound, not a count: any finite number
        (host_gate_mode, "auto", "auto"),
        (host_gate_mode, "on", "on"),
        (host_gate_mode, " OFF ", "off"),
    ],
)
def test_good_values_parse(parse: Callable[[str], Any], text: str, expected: Any) -> None:
    value = parse(text)
    assert value == expected
    assert type(value) is type(expected)


def test_data_spec_resolves_a_cifar10_directory(tmp_path: Path) -> None:
    assert data_spec(f"cifar10:{tmp_path}") == DataSpec("cifar10", str(tmp_path.resolve()))


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_builtin_model_names_parse_to_themselves(name: str) -> None:
    assert model_name(name) == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resnet56_cifar", "resnet56"),  # Distiller's arch name
        ("resnet56_cifar10", "resnet56"),
        ("ResNet56", "resnet56"),
        ("RESNET20_CIFAR", "resnet20"),
        (" resnet110 ", "resnet110"),
        ("pkg.mod:factory", "pkg.mod:factory"),  # a user factory is kept verbatim
        ("my_models:build_net", "my_models:build_net"),
        (" pkg.sub.mod:Factory_2 ", "pkg.sub.mod:Factory_2"),
        ("pkg.mod:factory_cifar", "pkg.mod:factory_cifar"),  # the alias suffix is stripped only from built-ins
    ],
)
def test_model_name_aliases_and_factories(text: str, expected: str) -> None:
    assert model_name(text) == expected


# --- bad values raise ArgumentTypeError naming the value ----------------------------------------------------------


@pytest.mark.parametrize(
    ("parse", "text", "named"),
    [
        (device_name, "cpu", "'cpu'"),  # OpenVINO device names are upper case
        (device_name, "", "''"),
        (device_name, "1GPU", "'1GPU'"),
        (device_name, "GPU.x", "'GPU.x'"),
        (device_name, "CPU;rm -rf", "'CPU;rm -rf'"),
        (non_negative_int, "1.5", "'1.5'"),
        (non_negative_int, "ten", "'ten'"),
        (non_negative_int, "", "''"),
        (non_negative_int, "-1", "-1"),
        (positive_int, "-3", "-3"),
        (positive_int, "two", "'two'"),
        (positive_float, "fast", "'fast'"),
        (positive_float, "0", "0"),
        (positive_float, "-0.5", "-0.5"),
        (positive_float, "nan", "nan"),
        (positive_float, "inf", "inf"),
        (precision, "fp16", "'fp16'"),
        (precision, "int8", "'int8'"),
        (data_spec, "mnist", "'mnist'"),
        (data_spec, "digits:/data", "'digits:/data'"),
        (data_spec, "cifar10", "cifar10:DIR"),  # says what is missing
        (model_name, "resnet57", "'resnet57'"),
        (model_name, "vgg16", "'vgg16'"),
        (model_name, "pkg.mod:", "'pkg.mod:'"),
        (model_name, ":factory", "':factory'"),
        (model_name, "my-pkg:factory", "'my-pkg:factory'"),
        (model_name, "pkg.mod:fac:tory", "'pkg.mod:fac:tory'"),
        (model_name, "", "''"),
        (case_bound, "max_speed=3", "'max_speed=3'"),
        (case_bound, "min_top1", "'min_top1'"),  # no "="
        (case_bound, "=90", "'=90'"),
        (case_bound, "min_top1=fast", "'min_top1=fast'"),
        (case_bound, "min_top1=", "'min_top1='"),
        (case_bound, "min_top1=inf", "'min_top1=inf'"),
        (case_bound, "max_latency_ms=nan", "'max_latency_ms=nan'"),
        (case_bound, "MIN_TOP1=90", "'MIN_TOP1=90'"),
        (recalibration_images, "-5", "-5"),
        (recalibration_images, "all", "'all'"),
        (host_gate_mode, "maybe", "'maybe'"),
        (host_gate_mode, "", "''"),
        (host_gate_mode, "true", "'true'"),
    ],
)
def test_bad_values_are_refused_naming_the_value(parse: Callable[[str], Any], text: str, named: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(text)
    message = str(info.value)
    assert named in message
    assert "\n" not in message


def test_positive_int_refuses_zero() -> None:
    # The message states the bound rather than the value (argparse adds the option name on the command line).
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        positive_int("0")


def test_unknown_model_message_lists_the_choices() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        model_name("nosuchmodel")
    message = str(info.value)
    assert all(name in message for name in BUILTIN_MODELS)
    assert "package.module:factory" in message


def test_bad_precision_message_lists_the_choices() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        precision("double")
    assert all(p in str(info.value) for p in PRECISIONS)


def test_parsers_work_as_argparse_types() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=model_name)
    parser.add_argument("--rounds", type=positive_int)
    args = parser.parse_args(["--model", "resnet56_cifar", "--rounds", "3"])
    assert (args.model, args.rounds) == ("resnet56", 3)


# --- Settings -----------------------------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = Settings()
    assert settings.device == "CPU"
    assert settings.lock_path is None
    assert settings.lock_timeout == 900.0
    assert settings.schedules == ("schedules/",)


@pytest.mark.parametrize(("field", "value"), [("device", "GPU"), ("rounds", 1), ("lock_path", Path("x.lock"))])
def test_settings_are_frozen(field: str, value: Any) -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(settings, field, value)
    assert getattr(settings, field) == getattr(Settings(), field)


def test_settings_replace_makes_a_new_object() -> None:
    settings = Settings()
    changed = dataclasses.replace(settings, device="GPU.1")
    assert (settings.device, changed.device) == ("CPU", "GPU.1")


# --- thresholds and the host gate mode ----------------------------------------------------------------------------


def test_threshold_values_are_floats() -> None:
    key, value = case_bound("min_top1=90")
    assert (key, value, type(value)) == ("min_top1", 90.0, float)


def test_unknown_threshold_key_message_lists_the_keys() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        case_bound("top1=90")
    assert all(key in str(info.value) for key in BOUND_KEYS)


def test_bad_threshold_number_is_named_on_its_own() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"'min_top1=ninety': 'ninety' is not a number"):
        case_bound("min_top1=ninety")
    with pytest.raises(argparse.ArgumentTypeError, match="finite number"):
        case_bound("max_latency_ms=-inf")


def test_bad_host_gate_mode_message_lists_the_modes() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        host_gate_mode("sometimes")
    assert all(mode in str(info.value) for mode in HOST_GATE_MODES)


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("../shared/distiller-schedules/resnet20.network_surgery.yaml", "resnet20"),
        ("resnet20_slimming.yaml", "resnet20"),
        ("ResNet56_cifar_filter_rank.yaml", "resnet56"),
        ("resnet110.yaml", "resnet110"),
        ("resnet1100.yaml", None),  # a longer number is another name
        ("my_resnet20.yaml", None),
        ("anonymous.yaml", None),
    ],
)
def test_a_schedule_file_name_suggests_the_model_it_starts_with(path: str, model: str | None) -> None:
    assert model_from_file_name(path) == model


# --- option resolution: pytest's parser in this process, then options.resolve ----------------------------------


def test_repeated_threshold_options_collect_in_order(parsing: OptionParsing) -> None:
    settings = parsing.settings("--prunebench-threshold", "max_latency_ms=2", "--prunebench-threshold", "min_top1=50")
    assert settings.thresholds == (("max_latency_ms", 2.0), ("min_top1", 50.0))
    assert settings.examples is None
    assert settings.host_gate == "auto"


def test_examples_and_host_gate_options_resolve(parsing: OptionParsing) -> None:
    settings = parsing.settings("--prunebench-examples", "3", "--prunebench-host-gate", "OFF")
    assert (settings.examples, settings.host_gate) == (3, "off")
    assert settings.thresholds == ()


@pytest.mark.parametrize(
    ("args", "option", "expected"),
    [
        (["--prunebench-examples", "0"], "--prunebench-examples", "*--prunebench-examples: '0' must be at least 1"),
        (["--prunebench-examples", "many"], "--prunebench-examples",
         "*--prunebench-examples: 'many' is not a whole number"),
        (["--prunebench-host-gate", "maybe"], "--prunebench-host-gate",
         "*--prunebench-host-gate: 'maybe': use auto (on for devices that share the host CPU), on or off"),
        (["--prunebench-threshold", "min_top1"], "--prunebench-threshold",
         "*--prunebench-threshold: 'min_top1' is not KEY=VALUE with KEY one of min_top1, *"),
        (["--prunebench-threshold", "max_latency_ms=inf"], "--prunebench-threshold",
         "*--prunebench-threshold: 'max_latency_ms=inf': the bound must be a finite number"),
    ],
)
def test_bad_new_option_values_are_one_line_usage_errors(parsing: OptionParsing, args: list[str], option: str,
                                                        expected: str) -> None:
    assert_one_line(parsing.usage_error(*args), option, expected)


def test_threshold_and_examples_ini_keys_resolve(parsing: OptionParsing) -> None:
    parsing.makeini("[pytest]\nprunebench_threshold = min_top1=90 max_latency_ms=3\nprunebench_examples = 7\n"
                    "prunebench_host_gate = on\nprunebench_bn_recalibration = off\n")
    settings = parsing.settings()
    assert settings.bn_recalibration == 0 and Settings().bn_recalibration == 1024
    assert settings.thresholds == (("min_top1", 90.0), ("max_latency_ms", 3.0))
    assert settings.examples == 7
    assert settings.host_gate == "on"


def test_threshold_ini_key_in_pyproject_takes_comma_separated_values(parsing: OptionParsing) -> None:
    parsing.makepyprojecttoml('[tool.pytest.ini_options]\nprunebench_threshold = "min_top1=90, max_latency_ms=3"\n'
                              'prunebench_examples = "2"\n')
    settings = parsing.settings()
    assert settings.thresholds == (("min_top1", 90.0), ("max_latency_ms", 3.0))
    assert settings.examples == 2


def test_command_line_thresholds_replace_the_ini_ones(parsing: OptionParsing) -> None:
    parsing.makeini("[pytest]\nprunebench_threshold = min_top1=90 max_latency_ms=3\nprunebench_examples = 7\n")
    settings = parsing.settings("--prunebench-threshold", "min_top1=10", "--prunebench-examples", "1")
    assert settings.thresholds == (("min_top1", 10.0),)
    assert settings.examples == 1


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        ("prunebench_threshold = min_top1=90 speed=3",
         "*ini key prunebench_threshold = 'speed=3': 'speed=3' is not KEY=VALUE*"),
        ("prunebench_examples = 0", "*ini key prunebench_examples = '0': '0' must be at least 1*"),
        ("prunebench_host_gate = maybe", "*ini key prunebench_host_gate = 'maybe': 'maybe': use auto*"),
    ],
)
def test_bad_new_ini_values_name_the_key(parsing: OptionParsing, ini: str, expected: str) -> None:
    parsing.makeini(f"[pytest]\n{ini}\n")
    assert_one_line(parsing.usage_error(), "ini key", expected)


def test_no_cache_switch_and_its_ini_key_resolve(parsing: OptionParsing) -> None:
    assert parsing.settings().no_cache is False
    assert parsing.settings("--prunebench-no-cache").no_cache is True
    parsing.makeini("[pytest]\nprunebench_no_cache = true\n")
    assert parsing.settings().no_cache is True


def test_no_cache_with_a_cache_dir_is_a_usage_error(parsing: OptionParsing) -> None:
    assert_one_line(parsing.usage_error("--prunebench-no-cache", "--prunebench-cache=elsewhere"),
                    "--prunebench-no-cache", "*--prunebench-no-cache and --prunebench-cache DIR: use one of them")
