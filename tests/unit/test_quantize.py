"""The deployment stage (quantize.py) for real: NNCF's post-training quantization and FP16 weight compression of this
project's ONNX exports, the IR files read back without the project (ElementTree over the .xml), the artifact cache,
and every bad input of the precision, calibration and max_drop options and schedule keys.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_quantize.py, tests/e2e/test_quantize.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from option_parsing import OptionParsing, assert_one_line
from tiny import FILTERS_SCHEDULE, write_schedules

from pytest_prunebench import quantize
from pytest_prunebench.case import CaseRunner
from pytest_prunebench.data import DataSpec, load_dataset
from pytest_prunebench.errors import PrunebenchError, ScheduleError
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.settings import Deployment, Settings


@pytest.fixture(scope="module")
def synthetic() -> object:
    return load_dataset(DataSpec("synthetic"))


def test_calibration_is_a_fixed_seeded_subset_of_the_training_split() -> None:
    first = quantize.calibration_indices(512, 100, seed=0)
    assert np.array_equal(first, quantize.calibration_indices(512, 100, seed=0))
    assert len(set(first)) == 100 and first.max() < 512
    assert not np.array_equal(first, quantize.calibration_indices(512, 100, seed=1))
    validation = quantize.validation_indices(512, first, seed=0)
    assert len(validation) == 100 and not set(validation) & set(first)
    everything = quantize.calibration_indices(10, 10, seed=0)
    assert np.array_equal(quantize.validation_indices(10, everything, 0), everything)


# -- resolution: option, schedule, --ncs ------------------------------------------------------------------------------

def _schedule(tmp_path: Path, section: str) -> object:
    path = tmp_path / "s.yaml"
    path.write_text(FILTERS_SCHEDULE + f"prunebench: {{{section}}}\n", encoding="utf-8")
    return load_schedule(path)


def test_the_option_overrides_the_schedule_which_overrides_the_ncs_default(tmp_path: Path) -> None:
    schedule = _schedule(tmp_path, "precision: int8-aa, calibration: 64, max_drop: 0.5")
    assert (schedule.precision, schedule.calibration, schedule.max_drop) == ("int8-accuracy", 64, 0.5)
    ncs = Settings(default_precision="f16", artifacts=tmp_path, no_cache=True)
    assert CaseRunner(ncs).deployment(None) == Deployment("f16", source="ncs")
    assert CaseRunner(ncs).deployment(schedule) == Deployment("int8-accuracy", 64, 0.5, "schedule")
    option = Settings(precision="int8", calibration=16, artifacts=tmp_path, no_cache=True)
    assert CaseRunner(option).deployment(schedule) == Deployment("int8", 16, 0.5, "option")
    assert Deployment("f16").hint == "f16" and Deployment("int8").hint is None and Deployment("bf16").hint == "bf16"


@pytest.mark.parametrize(("section", "message"), [
    ("precision: int4", "prunebench.precision*'int4' is not an inference precision or quantized deployment*"),
    ("precision: [int8]", "prunebench.precision*must be a name*"),
    ("max_drop: 0", "prunebench.max_drop*use top1 points above 0 and below 100*"),
    ("max_drop: 100", "prunebench.max_drop*use top1 points above 0 and below 100*"),
    ("max_drop: '1'", "prunebench.max_drop*must be a number*"),
    ("calibration: 0", "prunebench.calibration*must be at least 1*"),
    ("calibration: 1.5", "prunebench.calibration*is not a whole number*"),
])
def test_bad_schedule_keys_are_one_line(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        _schedule(tmp_path, section)
    assert "\n" not in str(caught.value)
    assert Path(str(tmp_path / "s.yaml")).name in str(caught.value)
    from fnmatch import fnmatch

    assert fnmatch(str(caught.value), f"*{message}"), str(caught.value)


def test_a_calibration_set_larger_than_the_training_split_stops_before_training(tmp_path: Path,
                                                                              synthetic: object) -> None:
    runner = CaseRunner(Settings(precision="int8", calibration=513, data=DataSpec("synthetic"), artifacts=tmp_path,
                                 no_cache=True))
    with pytest.raises(PrunebenchError, match=r"^--prunebench-calibration 513: the training split has 512 images; "
                                              r"calibrate on 1 to 512 of them$"):
        runner.run(load_schedule(write_schedules(tmp_path, filters=FILTERS_SCHEDULE) / "filters.yaml"))
    assert not runner.baselines.trained  # nothing trained
    schedule = _schedule(tmp_path, "precision: int8, calibration: 600")
    runner = CaseRunner(Settings(data=DataSpec("synthetic"), artifacts=tmp_path, no_cache=True))
    with pytest.raises(ScheduleError, match=r"prunebench.calibration.*600: the training split has 512 images"):
        runner.run(schedule)
    assert not runner.baselines.trained


def test_a_sweep_takes_precision_calibration_and_max_drop_parameters(tmp_path: Path) -> None:
    from pytest_prunebench.errors import SweepError
    from pytest_prunebench.sweep import load_sweep, point_schedule

    path = tmp_path / "sweep.yaml"
    path.write_text("method: grid\nparameters:\n  model: {value: resnet20}\n  epochs: {value: 0}\n"
                    "  precision: {values: [f32, int8-aa]}\n  calibration: {value: 64}\n  max_drop: {value: 2}\n"
                    "  sparsity.layer2: {value: 0.5}\n", encoding="utf-8")
    sweep = load_sweep(path)
    schedules = [point_schedule(sweep, point, "resnet20") for point in sweep.grid()]
    assert [(s.precision, s.calibration, s.max_drop) for s in schedules] == [("f32", 64, 2.0),
                                                                             ("int8-accuracy", 64, 2.0)]
    assert schedules[0].name != schedules[1].name  # two cases, two records
    for bad, message in (("precision: {values: [f32, int4]}", "'int4' is not an inference precision"),
                         ("max_drop: {value: 100}", "use top1 points above 0 and below 100"),
                         ("calibration: {value: 0.5}", "a whole number of training images")):
        path.write_text("method: grid\nparameters:\n  model: {value: resnet20}\n  sparsity.layer2: {value: 0.5}\n"
                        f"  {bad}\n", encoding="utf-8")
        with pytest.raises(SweepError, match=message):
            load_sweep(path)


# -- the precision, calibration and max_drop options, parsed and resolved in-process ---------------------------


@pytest.mark.parametrize(("args", "line"), [
    (["--prunebench-precision", "int4"], "*--prunebench-precision: 'int4' is not an inference precision or quantized*"),
    (["--prunebench-max-drop", "0"], "*--prunebench-max-drop: 0 must be a finite number greater than 0; use top1*"),
    (["--prunebench-max-drop", "100"], "*--prunebench-max-drop: '100': use top1 points above 0 and below 100*"),
    (["--prunebench-max-drop", "nan"], "*--prunebench-max-drop: nan must be a finite number greater than 0*"),
    (["--prunebench-calibration", "0"], "*--prunebench-calibration: '0' must be at least 1*"),
    (["--prunebench-precision", "int8", "--prunebench-max-drop", "2"],
     "*--prunebench-max-drop applies to --prunebench-precision int8-accuracy, not int8*"),
    (["--prunebench-precision", "bf16", "--prunebench-calibration", "64"],
     "*--prunebench-calibration applies to quantized precisions (int8, int8-accuracy), not bf16*"),
])
def test_bad_options_are_usage_errors(parsing: OptionParsing, args: list[str], line: str) -> None:
    assert_one_line(parsing.usage_error(*args), args[-2], line)


def test_int8_without_nncf_is_one_line_before_anything_runs(parsing: OptionParsing,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nncf", None)  # as if NNCF were not installed: `import nncf` fails
    assert_one_line(parsing.usage_error("--prunebench-precision", "int8"), "--prunebench-precision",
                    "*--prunebench-precision int8 needs NNCF, which cannot be imported here*"
                    "pip install -c constraints.txt nncf==3.4.0*")
