"""The deployment stage (quantize.py) for real: NNCF's post-training quantization and FP16 weight compression of this
project's ONNX exports, the IR files read back without the project (ElementTree over the .xml), the artifact cache,
and every bad input of the precision, calibration and max_drop options and schedule keys.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_quantize.py, tests/plugin/test_quantize.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import pytest
import torch
from quantized_ir import ir_constants

from pytest_prunebench import quantize
from pytest_prunebench.cache import ArtifactCache
from pytest_prunebench.data import DataSpec, load_dataset
from pytest_prunebench.export import export_onnx
from pytest_prunebench.models import build_model
from pytest_prunebench.settings import Deployment

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
