"""Options resolved once into an immutable settings object; value parsers shared by options and ini keys.

Import-light on purpose: the plugin imports this module in every pytest run of the environment.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import DataSpec, parse_data_spec
from .granularity import AUTO_ROUND_TO
from .lock import HOST_GATE_MODES
from .schedule import BOUND_KEYS

if TYPE_CHECKING:
    from .intervals import AdaptiveRounds
    from .regressions import RegressionRule

BUILTIN_MODELS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "mobilenetv2", "vgg16_bn")
MODELS_HINT = "resnet20 ... resnet110, mobilenetv2, vgg16_bn"  # for messages and help texts
PRECISIONS = ("f32", "bf16", "f16")  # OpenVINO INFERENCE_PRECISION_HINT values
# Quantized deployments (quantize.py): NNCF post-training quantization, plain or with accuracy control.
INT8, INT8_ACCURACY = "int8", "int8-accuracy"
QUANTIZED_PRECISIONS = (INT8, INT8_ACCURACY)
DEPLOYMENT_PRECISIONS = (*PRECISIONS, *QUANTIZED_PRECISIONS)  # --prunebench-precision, `prunebench: {precision:}`
NCS_PRECISION = "f16"  # the NCS2 computes in FP16 only: its default deployment
DEFAULT_CALIBRATION = 300  # training images NNCF calibrates on (its own default subset_size)
DEFAULT_MAX_DROP = 1.0  # int8-accuracy: top1 points the quantized model may lose
NCS_DEVICE = "MYRIAD"
# CPU, GPU.1, HETERO:GPU,CPU, AUTO:-CPU, BATCH:GPU(4)
_DEVICE_NAME = re.compile(r"^[A-Z][A-Z0-9_]*(\.[0-9]+)?(:[A-Z0-9_.,()\-]+)?$")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def device_name(text: str) -> str:
    name = text.strip()
    if not _DEVICE_NAME.match(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not an OpenVINO device name (CPU, GPU, NPU, GPU.1, ...)")
    return name


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 or more")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


AUTO_ROUNDS = "auto"  # --prunebench-rounds auto: adaptive rounds (intervals.AdaptiveRounds)
DEFAULT_PRECISION_TARGET = 0.01  # auto: the speed-up's 95% interval within +-1% of it
DEFAULT_MAX_ROUNDS = 5000  # auto: timed inferences per model at most


def positive_int_or_auto(text: str, auto: str, hint: str) -> int | str:
    """A whole number >= 1, or the word `auto` (returned as `auto`); `hint` ends the message of anything else."""
    if text.strip().lower() == "auto":
        return auto
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; {hint}") from None


def rounds_spec(text: str) -> int | str:
    """A count of timed inferences per model, or `auto` (until the interval is narrow enough)."""
    return positive_int_or_auto(text, AUTO_ROUNDS, "use a whole number of rounds or auto")


def round_to_spec(text: str) -> int | str:
    """A width multiple kept structures are rounded up to, or `auto` (probed on the device once per session)."""
    return positive_int_or_auto(text, AUTO_ROUND_TO, "use a whole number such as 8, or auto (measured on the device)")


def precision_target(text: str) -> float:
    """A relative half-width: `1%` or `0.01`, above 0 and at most 50%."""
    value = text.strip()
    percent = value.endswith("%")
    try:
        number = float(value.removesuffix("%")) / (100.0 if percent else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a precision; use a percentage such as 1% (or 0.01)"
                                         ) from None
    if not (0 < number <= 0.5 and math.isfinite(number)):
        raise argparse.ArgumentTypeError(f"{text!r}: use a half-width above 0 and at most 50%, such as 1% (or 0.01)")
    return number


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number greater than 0")
    return value


def case_bound(text: str) -> tuple[str, float]:
    """`KEY=VALUE` with a bound key of the schedules' `prunebench:` section, e.g. `min_top1=90`."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or key not in BOUND_KEYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE with KEY one of {', '.join(BOUND_KEYS)}")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{text!r}: the bound must be a finite number")
    return key, number


def top1_floor(text: str) -> float:
    """A percentage in [0, 100], or `off` (0: no floor)."""
    value = text.strip().lower()
    if value in ("off", "none"):
        return 0.0
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage; use a number from 0 to 100, or off") from None
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a top1 percentage from 0 to 100 (or off)")
    return number


# Training images BatchNorm statistics are re-estimated on after pruning (--prunebench-bn-recalibration). On digits,
# ResNet-20/56 pruned by the shipped schedules: 512 images gave the same top1 as the whole training split.
RECALIBRATION_IMAGES = 1024


def recalibration_images(text: str) -> int:
    """A count of training images, or `off` (0)."""
    if text.strip().lower() in ("off", "none"):
        return 0
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; use a count of training images, or off") from None


def host_gate_mode(text: str) -> str:
    value = text.strip().lower()
    if value not in HOST_GATE_MODES:
        raise argparse.ArgumentTypeError(f"{text!r}: use auto (on for devices that share the host CPU), on or off")
    return value


WANDB_MODES = ("online", "offline", "disabled")
def wandb_mode(text: str) -> str:
    value = text.strip().lower()
    value = {"dryrun": "offline"}.get(value, value)  # wandb's old name for offline
    if value not in WANDB_MODES:
        raise argparse.ArgumentTypeError(f"{text!r}: use online, offline (the default) or disabled")
    return value


def wandb_api_key_configured(environ: Mapping[str, str]) -> bool:
    """WANDB_API_KEY, or a `wandb login` entry for the W&B host in ~/.netrc (where wandb keeps it)."""
    if environ.get("WANDB_API_KEY", "").strip():
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    try:
        return netrc.netrc(environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def new_wandb_group() -> str:
    """`prunebench-20261121-103000-1a2b`: sorts by time, unique per session."""
    import secrets
    import time

    return f"prunebench-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def data_spec(text: str) -> DataSpec:
    try:
        return parse_data_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def canonical_model_name(name: str) -> str:
    """`resnet56_cifar` (Distiller's arch names) and `ResNet56` mean `resnet56`; factories stay as written."""
    name = name.strip()
    return name if ":" in name else re.sub(r"_cifar(10)?$", "", name.lower())


def model_from_file_name(path: str | Path) -> str | None:
    """The built-in model a schedule's file name starts with (`resnet20.network_surgery.yaml`), for the hint of
    a schedule that names no model: Distiller took the model from its command line, and named files after it."""
    stem = Path(path).name.lower()
    longest_first = sorted(BUILTIN_MODELS, key=len, reverse=True)  # vgg16_bn_filters.yaml is vgg16_bn's
    return next((name for name in longest_first if re.match(rf"{name}(?![0-9])", stem)), None)


def model_name(text: str) -> str:
    name = canonical_model_name(text)
    if name in BUILTIN_MODELS or _FACTORY.match(name):
        return name
    raise argparse.ArgumentTypeError(f"unknown model {text!r}: use one of {', '.join(BUILTIN_MODELS)} "
                                     f"or package.module:factory")


def study_url(text: str) -> str:
    from .search import study_url as checked

    try:
        return checked(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def precision(text: str) -> str:
    """An inference precision hint (the `prunebench layers|granularity` commands time ONNX files as they are)."""
    value = text.strip().lower()
    if value not in PRECISIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not an inference precision; use one of {', '.join(PRECISIONS)}")
    return value


def deployment_precision(text: str) -> str:
    """A hint (f32, bf16, f16) or a quantized deployment (int8, int8-accuracy); `int8-aa` is NNCF's short name."""
    value = text.strip().lower()
    value = {"int8-aa": INT8_ACCURACY, "i8": INT8, "fp16": "f16", "fp32": "f32"}.get(value, value)
    if value not in DEPLOYMENT_PRECISIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not an inference precision or quantized deployment; use one "
                                         f"of {', '.join(DEPLOYMENT_PRECISIONS)}")
    return value


def max_drop(text: str) -> float:
    """int8-accuracy's bound: top1 points in (0, 100)."""
    hint = "use top1 points above 0 and below 100, such as 1"
    try:
        value = positive_float(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; {hint}") from None
    if value >= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: {hint}")
    return value


@dataclass(frozen=True)
class Deployment:
    """How a case's models are deployed and measured: its precision and, when quantized, NNCF's calibration.

    f32 / bf16: the ONNX file, compiled with that INFERENCE_PRECISION_HINT. f16: an OpenVINO IR with FP16-compressed
    weights, compiled with the f16 hint (the NCS2 computes in FP16 only). int8 / int8-accuracy: an IR quantized by
    NNCF (INT8 weights and activations), compiled without a hint, so what stays in float runs at the device's own.
    None: the ONNX file at the device's own precision.
    """

    precision: str | None = None
    calibration: int = DEFAULT_CALIBRATION  # training images NNCF calibrates on (quantized only)
    max_drop: float = DEFAULT_MAX_DROP  # int8-accuracy: top1 points it may lose
    source: str = "device"  # where the precision came from: option, schedule, ncs (the default with --ncs), device

    @property
    def hint(self) -> str | None:
        """The INFERENCE_PRECISION_HINT to compile with."""
        return self.precision if self.precision in PRECISIONS else None

    @property
    def quantized(self) -> bool:
        return self.precision in QUANTIZED_PRECISIONS

    @property
    def converted(self) -> bool:
        """Measured as an OpenVINO IR built from the ONNX file (f16 weights, or quantized)."""
        return self.quantized or self.precision == "f16"

    def key_document(self) -> dict[str, Any]:
        """What determines the converted model (the artifact cache key's part)."""
        document: dict[str, Any] = {"precision": self.precision}
        if self.quantized:
            document["calibration"] = self.calibration
        if self.precision == INT8_ACCURACY:
            document["max_drop"] = self.max_drop
        return document


@dataclass(frozen=True)
class Settings:
    """Everything a case needs from the command line and ini file, resolved once per session."""

    device: str = "CPU"
    wandb_project: str | None = None  # None: W&B is never imported
    wandb_entity: str | None = None  # None: the API key's default entity
    wandb_group: str | None = None  # one per pytest session, shared by its xdist workers
    wandb_mode: str = "offline"  # --wandb-mode, else WANDB_MODE, else offline
    wandb_log_model: bool = False
    wandb_dir: Path | None = None  # None: WANDB_DIR, else the rootdir; runs go to <dir>/wandb/
    schedules: tuple[str, ...] = ("schedules/",)
    sweeps: tuple[str, ...] = ("sweeps/",)  # W&B sweep files the sweep suites run
    epochs: int | None = None  # None: each schedule's own
    examples: int | None = None  # None: each generated suite's own max_examples
    thresholds: tuple[tuple[str, float], ...] = ()  # case bounds for every case, over the schedules' own
    compare_fail: tuple[RegressionRule, ...] = ()  # regression rules against the --benchmark-compare run
    data: DataSpec | None = None  # None: the schedule's dataset, else digits
    model: str | None = None  # None: the model the schedule names
    precision: str | None = None  # a DEPLOYMENT_PRECISIONS value; None: each schedule's, else default_precision
    default_precision: str | None = None  # with --ncs: f16; None: the device's own
    calibration: int | None = None  # quantized: training images NNCF calibrates on; None: schedule's, else default
    max_drop: float | None = None  # int8-accuracy: top1 points; None: the schedule's, else DEFAULT_MAX_DROP
    baseline_epochs: int | None = None  # None: the model family's recipe, with its early stop (baseline.py)
    min_dense_top1: float | None = None  # None: the dataset's floor (case/dense.py: DENSE_TOP1_FLOORS); 0: no floor
    seed: int = 0
    rounds: int | str = 200  # timed inferences per model, or AUTO_ROUNDS (see latency_rounds)
    precision_target: float | None = None  # auto: relative half-width to reach; None: DEFAULT_PRECISION_TARGET
    max_rounds: int | None = None  # auto: the round budget per model; None: DEFAULT_MAX_ROUNDS
    warmup: int = 20
    round_to: int | str | None = None  # None: each schedule's own (default 1: no rounding); AUTO_ROUND_TO: probed
    bn_recalibration: int = RECALIBRATION_IMAGES  # training images BN statistics are re-estimated on after pruning
    lr: float = 0.01  # fine-tuning: 0.05 left pruned ResNets 4-20 points short after 3 epochs
    lock_path: Path | None = None  # None: one per device in the temp dir
    lock_timeout: float = 900.0
    broker: str | None = None  # redis://...: every measurement goes to a device worker (worker.py); None: local
    study: str | None = None  # Optuna study storage of searched sweeps (search.py); None: .prunebench/ journal
    xdist_workers: int = 0  # on a pytest-xdist worker: how many workers share this host (torch threads split)
    reference_dir: Path | None = None  # where xdist workers share the session's reference dense medians; None: here
    host_gate: str = "auto"  # auto: measurements pause other processes' CPU work when the device shares the host
    report: Path | None = None  # where the session writes its report; None: no report
    artifacts: Path = Path(".prunebench/artifacts")
    cache: Path = Path(".prunebench/cache")  # dense baselines and pruned + retrained models (cache.py)
    no_cache: bool = False  # build every artifact afresh and store none
    root: Path = Path(".")

    @property
    def latency_rounds(self) -> int | AdaptiveRounds:
        """What a measurement times: a fixed count per model, or an intervals.AdaptiveRounds policy."""
        if isinstance(self.rounds, int):  # the option's parser: a count, or AUTO_ROUNDS
            return self.rounds
        from .intervals import MIN_ROUNDS, AdaptiveRounds  # numpy: not at import (the plugin imports this module)

        most = self.max_rounds or DEFAULT_MAX_ROUNDS
        return AdaptiveRounds(self.precision_target or DEFAULT_PRECISION_TARGET, min(MIN_ROUNDS, most), most)
