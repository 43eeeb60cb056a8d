"""The deployment stage (quantize.py) for real: NNCF's post-training quantization and FP16 weight compression of this
project's ONNX exports, the IR files read back without the project (ElementTree over the .xml), the artifact cache,
and every bad input of the precision, calibration and max_drop options and schedule keys.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from quantized_ir import ir_constants
from tiny import FILTERS_SCHEDULE, write_schedules

from pytest_prunebench import quantize
from pytest_prunebench.cache import ArtifactCache
from pytest_prunebench.case import CaseRunner
from pytest_prunebench.data import DataSpec, load_dataset
from pytest_prunebench.errors import PrunebenchError, ScheduleError
from pytest_prunebench.export import export_onnx
from pytest_prunebench.models import build_model
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.settings import Deployment, Settings

CALIBRATION = 32  # tiny: the statistics of 32 images are enough to build (not to judge) a quantized model


def ir_layer_types(xml: Path) -> Counter[str]:
    return Counter(layer.get("type") for layer in ElementTree.parse(xml).getroot().iter("layer"))


@pytest.fixture(scope="module")
def synthetic() -> object:
    return load_dataset(DataSpec("synthetic"))


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("quantize") / "resnet20.onnx"
    export_onnx(build_model("resnet20", 10), path)
    return path


def _convert(onnx_path: Path, target: Path, deployment: Deployment, data: object) -> quantize.Deployed:
    arrays = (data.train_x.numpy(), data.train_y.numpy(), data.test_x.numpy()[:64], data.test_y.numpy()[:64])
    return quantize.convert(onnx_path, target, deployment, *arrays, seed=0)


def test_int8_ir_holds_int8_weights_for_every_conv_and_the_fc(onnx_path: Path, synthetic: object,
                                                               tmp_path: Path) -> None:
    deployed = _convert(onnx_path, tmp_path / "m.int8.xml", Deployment("int8", CALIBRATION), synthetic)
    constants = ir_constants(deployed.xml)
    layers = ir_layer_types(deployed.xml)
    weighted = layers["Convolution"] + layers["MatMul"]
    assert weighted == 22  # ResNet-20: 21 convs and the fc
    assert constants["i8"] == weighted, constants  # one INT8 weight tensor per layer
    assert layers["FakeQuantize"] >= weighted  # activations quantized on the way in
    assert constants.get("f16", 0) == 0  # no FP16 compression of the rest: f32 scales
    assert deployed.quantized_layers == weighted and deployed.float_layers == 0
    assert deployed.calibration == CALIBRATION and deployed.nncf == quantize.nncf_version()
    assert 0 <= deployed.top1_float <= 100
    # INT8 weights: the .bin is about a quarter of the f32 ONNX file's weights.
    assert deployed.bin.stat().st_size < 0.5 * onnx_path.stat().st_size


def test_depthwise_convolutions_are_counted_in_float(synthetic: object, tmp_path: Path) -> None:
    """NNCF stores a depthwise conv's weights in f32 behind a FakeQuantize: the record must not call them INT8."""
    from factories import tiny_mobilenetv2

    torch.manual_seed(0)
    export_onnx(tiny_mobilenetv2(), tmp_path / "mnv2.onnx")
    deployed = _convert(tmp_path / "mnv2.onnx", tmp_path / "mnv2.int8.xml", Deployment("int8", CALIBRATION), synthetic)
    layers = ir_layer_types(deployed.xml)
    assert deployed.float_layers == layers["GroupConvolution"] > 0
    assert deployed.quantized_layers == ir_constants(deployed.xml)["i8"] == layers["Convolution"] + layers["MatMul"]


def test_f16_ir_holds_fp16_weights_and_predicts_as_the_onnx(onnx_path: Path, synthetic: object,
                                                            tmp_path: Path) -> None:
    from pytest_prunebench import device

    deployed = _convert(onnx_path, tmp_path / "m.f16.xml", Deployment("f16"), synthetic)
    constants = ir_constants(deployed.xml)
    assert constants["f16"] >= 22 and "i8" not in constants, constants
    assert deployed.nncf is None and deployed.top1_float is None
    images = synthetic.test_x.numpy()[:32]
    onnx_logits, _ = device.accuracy_pass(onnx_path, "CPU", "f32", images)
    ir_logits, _ = device.accuracy_pass(deployed.xml, "CPU", "f32", images)
    assert (onnx_logits.argmax(1) == ir_logits.argmax(1)).mean() >= 0.9  # FP16 rounding flips near-ties only


def test_int8_accuracy_counts_the_layers_it_keeps_in_float(onnx_path: Path, synthetic: object,
                                                          tmp_path: Path) -> None:
    deployed = _convert(onnx_path, tmp_path / "m.aa.xml", Deployment("int8-accuracy", CALIBRATION, max_drop=99.0),
                        synthetic)
    assert deployed.quantized_layers + deployed.float_layers == 22
    assert ir_constants(deployed.xml)["i8"] == deployed.quantized_layers


def test_calibration_is_a_fixed_seeded_subset_of_the_training_split() -> None:
    first = quantize.calibration_indices(512, 100, seed=0)
    assert np.array_equal(first, quantize.calibration_indices(512, 100, seed=0))
    assert len(set(first)) == 100 and first.max() < 512
    assert not np.array_equal(first, quantize.calibration_indices(512, 100, seed=1))
    validation = quantize.validation_indices(512, first, seed=0)
    assert len(validation) == 100 and not set(validation) & set(first)
    everything = quantize.calibration_indices(10, 10, seed=0)
    assert np.array_equal(quantize.validation_indices(10, everything, 0), everything)


def test_a_rerun_takes_the_quantized_model_from_the_cache(onnx_path: Path, synthetic: object, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ArtifactCache(tmp_path / "cache", 60)
    deployment = Deployment("int8", CALIBRATION)
    target = tmp_path / "artifacts" / "m.int8.xml"

    def fetch(deployment: Deployment = deployment) -> quantize.Deployed:
        return quantize.load_or_convert(cache, onnx_path, target, deployment, synthetic, "digest", 0, lambda _: None)

    built = fetch()
    assert built.cache == "built" and target.is_file() and target.with_suffix(".bin").is_file()
    target.unlink()

    def no_quantization(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("quantized again")

    monkeypatch.setattr(quantize, "convert", no_quantization)
    again = fetch()
    assert again.cache == "hit" and target.read_bytes() and again.top1_float == built.top1_float
    with pytest.raises(AssertionError, match="quantized again"):  # another calibration set is another model
        fetch(Deployment("int8", CALIBRATION + 1))
    monkeypatch.setattr(quantize, "nncf_version", lambda: "0.0.0")
    with pytest.raises(AssertionError, match="quantized again"):  # so is another NNCF
        fetch()


def test_the_key_covers_precision_calibration_data_and_seed(onnx_path: Path) -> None:
    source = onnx_path.read_bytes()
    keys = {quantize.deployed_key(source, Deployment("int8", 32), "a", 0),
            quantize.deployed_key(source, Deployment("int8", 33), "a", 0),
            quantize.deployed_key(source, Deployment("int8", 32), "b", 0),
            quantize.deployed_key(source, Deployment("int8", 32), "a", 1),
            quantize.deployed_key(source, Deployment("int8-accuracy", 32, 1.0), "a", 0),
            quantize.deployed_key(source, Deployment("int8-accuracy", 32, 2.0), "a", 0),
            quantize.deployed_key(source, Deployment("f16"), "a", 0),
            quantize.deployed_key(source + b" ", Deployment("f16"), "a", 0)}
    assert len(keys) == 8


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
    assert not runner._baselines  # nothing trained
    schedule = _schedule(tmp_path, "precision: int8, calibration: 600")
    runner = CaseRunner(Settings(data=DataSpec("synthetic"), artifacts=tmp_path, no_cache=True))
    with pytest.raises(ScheduleError, match=r"prunebench.calibration.*600: the training split has 512 images"):
        runner.run(schedule)
    assert not runner._baselines


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
