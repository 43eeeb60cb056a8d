"""The deployment stage: the exported ONNX file turned into the OpenVINO IR an edge user ships.

f16: FP16-compressed weights (the NCS2 computes in FP16 only). int8: NNCF post-training quantization of the OpenVINO
model (`nncf.quantize`), calibrated on a fixed, seeded subset of the TRAINING split, never the test split.
int8-accuracy: `nncf.quantize_with_accuracy_control`, which keeps the layers whose quantization costs the most top1
in floating point until the drop is within `max_drop` points; it validates on a second seeded subset of the
training split, disjoint from the calibration images.

Each converted model is an artifact cache entry (kind `deployed`) keyed by the ONNX file's content, the precision
mode, the calibration set and the NNCF and OpenVINO versions: a rerun re-measures without re-quantizing.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import PrunebenchError
from .settings import INT8_ACCURACY, Deployment

if TYPE_CHECKING:
    from .cache import ArtifactCache
    from .data import Dataset

IR_XML, IR_BIN, DEPLOYED_DOCUMENT = "model.xml", "model.bin", "deployed.json"
NNCF_PIN = "nncf==3.4.0"  # constraints.txt
# The ops whose weights NNCF quantizes (conv, depthwise conv, fc).
WEIGHTED_OPS = frozenset({"Convolution", "GroupConvolution", "MatMul"})
QUANTIZED_ELEMENT_TYPES = frozenset({"i8", "u8", "i4", "u4"})
# Between a weight Constant and its layer in a quantized IR: decompression (Convert, Subtract, Multiply), reshapes.
_WEIGHT_PATH_OPS = frozenset({"Convert", "Subtract", "Multiply", "Reshape", "Unsqueeze", "Transpose", "FakeQuantize"})


@dataclass(frozen=True)
class Deployed:
    """A converted model: its IR, and what the conversion found."""

    xml: Path
    precision: str
    top1_float: float | None  # quantized: the unquantized model's test top1 (OpenVINO, CPU, f32)
    quantized_layers: int | None  # quantized: weighted layers (conv, fc) whose weights the IR stores as INT8
    float_layers: int | None  # quantized: weighted layers whose weights stay in float (see layer_precisions)
    nncf: str | None  # NNCF's version (quantized only)
    calibration: int | None  # training images calibrated on (quantized only)
    cache: str = "off"  # "hit", "built", "off"

    @property
    def bin(self) -> Path:
        return self.xml.with_suffix(".bin")

    @property
    def bytes(self) -> int:
        return self.xml.stat().st_size + self.bin.stat().st_size

    def record(self) -> dict[str, object]:
        """The record's fields of this deployment."""
        info: dict[str, object] = {"ir_path": str(self.xml.resolve()), "ir_bytes": int(self.bytes),
                                "deployed_cache": self.cache}
        if self.nncf is not None:
            info.update(nncf_version=self.nncf, calibration_images=self.calibration, top1_float=self.top1_float,
                        quantized_layers=self.quantized_layers, float_layers=self.float_layers)
        return info


def nncf_version() -> str:
    """NNCF's version, or one line saying it cannot be imported (checked before any training)."""
    from importlib.metadata import PackageNotFoundError, version

    from .device import openvino

    openvino()  # first: NNCF's telemetry then finds OpenVINO's telemetry stubbed out, and sends nothing
    try:
        import nncf  # noqa: F401
    except ImportError as exc:
        raise PrunebenchError(f"--prunebench-precision int8 needs NNCF, which cannot be imported here ({exc}): "
                              f"pip install -c constraints.txt {NNCF_PIN}") from None
    try:
        return version("nncf")
    except PackageNotFoundError:
        return str(getattr(nncf, "__version__", "unknown"))


def calibration_problem(deployment: Deployment, train_images: int) -> str | None:
    """Why the training split cannot hold the calibration set, or None."""
    if deployment.quantized and not 1 <= deployment.calibration <= train_images:
        return (f"{deployment.calibration}: the training split has {train_images} images; calibrate on 1 to "
                f"{train_images} of them")
    return None


def calibration_indices(train_images: int, size: int, seed: int) -> np.ndarray:
    """`size` distinct indices of the training split, the same for the same seed (sorted: data order is moot)."""
    return np.sort(np.random.default_rng(seed).choice(train_images, size, replace=False))


def validation_indices(train_images: int, calibration: np.ndarray, seed: int) -> np.ndarray:
    """int8-accuracy's validation images: as many training images again, none of the calibration ones (the
    calibration images themselves when the split has no others)."""
    rest = np.setdiff1d(np.arange(train_images), calibration)
    if not len(rest):
        return calibration
    size = min(len(calibration), len(rest))
    return np.sort(np.random.default_rng(seed + 1).choice(rest, size, replace=False))


def top1_of(compiled: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """Top1 in percent of a batch-1 compiled model over `images`, one request after the other."""
    request = compiled.create_infer_request()
    hits = 0
    for image, label in zip(images, labels, strict=True):
        logits = request.infer({0: image[None]})[0]
        hits += int(np.argmax(logits) == label)
    return 100.0 * hits / max(1, len(labels))


def convert(onnx_path: Path, target: Path, deployment: Deployment, train_x: np.ndarray, train_y: np.ndarray,
            test_x: np.ndarray, test_y: np.ndarray, seed: int) -> Deployed:
    """The IR of `onnx_path` at `deployment`, written to `target` (.xml, and its .bin beside it)."""
    from . import device
    from .lock import cpu_work

    ov = device.openvino()
    model = device.core().read_model(str(onnx_path))
    if not deployment.quantized:  # f16: the weights stored as FP16, decompressed by the plugin when it compiles
        with cpu_work():
            ov.save_model(model, str(target), compress_to_fp16=True)
        return Deployed(target, str(deployment.precision), None, None, None, None, None)
    version = nncf_version()
    calibration = calibration_indices(len(train_x), deployment.calibration, seed)
    with cpu_work(), _quiet_nncf():
        float_top1 = top1_of(device.core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}),
                             test_x, test_y)
        quantized = _quantize(model, deployment, train_x, train_y, calibration, seed)
        ov.save_model(quantized, str(target), compress_to_fp16=False)  # INT8 weights stay INT8, the rest f32
    counts = layer_precisions(device.core().read_model(str(target)))
    return Deployed(target, str(deployment.precision), float_top1, counts[0], counts[1], version,
                    len(calibration))


def _quantize(model: Any, deployment: Deployment, train_x: np.ndarray, train_y: np.ndarray,
              calibration: np.ndarray, seed: int) -> Any:
    import nncf

    images = [train_x[i][None] for i in calibration]  # batch 1: the model is exported at batch 1
    if deployment.precision != INT8_ACCURACY:
        return nncf.quantize(model, nncf.Dataset(images), subset_size=len(images))
    validation = validation_indices(len(train_x), calibration, seed)
    pairs = [(train_x[i][None], int(train_y[i])) for i in validation]

    def validate(compiled: Any, items: Any) -> float:  # top1 in points: max_drop is in points too
        batch = list(items)
        return top1_of(compiled, np.concatenate([image for image, _ in batch]),
                       np.array([label for _, label in batch]))

    return nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(images), nncf.Dataset(pairs, lambda item: item[0]), validate,
        max_drop=deployment.max_drop, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(images))


@contextlib.contextmanager
def _quiet_nncf() -> Any:
    """NNCF logs at INFO and draws progress bars on stdout: a pytest run shows neither."""
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def layer_precisions(model: Any) -> tuple[int, int]:
    """(weighted layers whose weights the IR stores as INT8, weighted layers whose weights it keeps in float).

    Float: what int8-accuracy reverted, and depthwise convolutions, whose weights NNCF leaves in f32 behind a
    FakeQuantize (OpenVINO 2026's CPU plugin then ran MobileNetV2's 17 depthwise convs at bf16, its 36 others at
    i8/u8)."""
    quantized = floating = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() not in WEIGHTED_OPS:
            continue
        if _int8_weights(op.input_value(1).get_node()):
            quantized += 1
        else:
            floating += 1
    return quantized, floating


def _int8_weights(node: Any, depth: int = 0) -> bool:
    kind = node.get_type_name()
    if kind == "Constant":
        return str(node.get_element_type().get_type_name()) in QUANTIZED_ELEMENT_TYPES
    if kind not in _WEIGHT_PATH_OPS or depth > 8:
        return False
    return _int8_weights(node.input_value(0).get_node(), depth + 1)


def deployed_key(source: bytes, deployment: Deployment, data_digest: str, seed: int) -> str:
    """What determines the converted model: the ONNX file's content, the precision mode and calibration, the
    training data it calibrates on, the seed, and the NNCF and OpenVINO versions."""
    import hashlib

    from . import device
    from .cache import artifact_key

    document: dict[str, Any] = {"onnx": hashlib.sha256(source).hexdigest(), **deployment.key_document(),
                                "openvino": device.version()}
    if deployment.quantized:
        document.update(data=data_digest, seed=seed, nncf=nncf_version())
    return artifact_key("deployed", document)


def load_or_convert(cache: ArtifactCache, onnx_path: Path, target: Path, deployment: Deployment, data: Dataset,
                    data_digest: str, seed: int, progress: Callable[[str], None]) -> Deployed:
    """The deployed model of `onnx_path`, from the artifact cache or converted into it, placed at `target` (.xml)."""
    source = onnx_path.read_bytes()
    key = deployed_key(source, deployment, data_digest, seed)
    arrays = (data.train_x.numpy(), data.train_y.numpy(), data.test_x.numpy(), data.test_y.numpy())

    def build(directory: Path) -> None:
        progress(f"{onnx_path.name}: converting to {deployment.precision}"
                 + (f" (NNCF, {deployment.calibration} calibration images)" if deployment.quantized else ""))
        scratch = directory / "source.onnx"
        scratch.write_bytes(source)
        deployed = convert(scratch, directory / IR_XML, deployment, *arrays, seed)
        scratch.unlink()
        document = asdict(deployed)
        document["xml"] = IR_XML
        (directory / DEPLOYED_DOCUMENT).write_text(json.dumps(document), encoding="utf-8")

    def load(directory: Path) -> Deployed:
        document = json.loads((directory / DEPLOYED_DOCUMENT).read_text(encoding="utf-8"))
        target.parent.mkdir(parents=True, exist_ok=True)
        for name, placed in ((IR_XML, target), (IR_BIN, target.with_suffix(".bin"))):
            partial = placed.with_suffix(f".{os.getpid()}.partial")
            shutil.copyfile(directory / name, partial)
            os.replace(partial, placed)
        return Deployed(**{**document, "xml": target})

    describe = {"onnx": onnx_path.name, **deployment.key_document()}
    deployed, hit = cache.fetch("deployed", key, describe, build, load)
    return Deployed(**{**asdict(deployed), "cache": "hit" if hit else "built" if cache.root else "off"})
