"""The `prunebench` option group: one table of options, each with an ini key, resolved once into Settings."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from . import settings as parsers
from .granularity import AUTO_ROUND_TO
from .regressions import parse_regression_rules
from .schedule import find_yaml_files
from .settings import NCS_DEVICE, NCS_PRECISION, Settings


@dataclass(frozen=True)
class Option:
    flag: str  # command-line flag; its ini key is `ini`
    dest: str  # Settings field
    help: str
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    repeatable: bool = False  # values collect into a tuple; the ini key takes them space- or comma-separated
    switch: bool = False  # a flag without a value; its ini key takes true/false

    @property
    def ini(self) -> str:
        """The flag, underscored (`--prunebench-threshold`: `prunebench_threshold`); W&B's own flags get the
        `prunebench_` prefix (`prunebench_wandb_project`), so the ini file names whose options they are."""
        name = self.flag.removeprefix("--").replace("-", "_")
        return name if name.startswith("prunebench_") else f"prunebench_{name}"


OPTIONS = (
    Option("--prunebench-device", "device", "OpenVINO device to measure on (default CPU)", parsers.device_name,
           "NAME"),
    Option("--prunebench-schedules", "schedules", "schedule file, directory or glob the schedule suites run "
           "(repeatable; default schedules/)", None, "PATH_OR_GLOB", repeatable=True),
    Option("--prunebench-sweep", "sweeps", "W&B sweep file (grid or random), directory or glob the sweep suites "
           "run (repeatable; default sweeps/)", None, "PATH_OR_GLOB", repeatable=True),
    Option("--prunebench-threshold", "thresholds", "a threshold for every case, e.g. min_top1=90 or "
           "max_latency_ms=2 (repeatable; overrides the schedule's own bound)", parsers.case_bound, "KEY=VALUE",
           repeatable=True),
    Option("--prunebench-compare-fail", "compare_fail", "fail the session when a case's figure regressed "
           "against the --benchmark-compare run: top1:0.5 (points), top1:1%%, throughput_fps:5%%, latency_speedup:5%% "
           "(comma-separated, repeatable)", parse_regression_rules, "EXPR[,EXPR]", repeatable=True),
    Option("--prunebench-epochs", "epochs", "retraining epochs for every case, overriding the schedules "
           "(0 = prune to the final targets, thin, no training)", parsers.non_negative_int, "N"),
    Option("--prunebench-examples", "examples", "examples each hypothesis-generated suite draws (default: the "
           "suite's own max_examples)", parsers.positive_int, "N"),
    Option("--prunebench-round-to", "round_to", "round the filters/channels each pruned layer keeps up to a "
           "multiple of N (SIMD-friendly widths; overrides the schedules' round_to); auto: the step a probe "
           "measures on the device once per session (prunebench granularity)", parsers.round_to_spec, "N|auto"),
    Option("--prunebench-bn-recalibration", "bn_recalibration", "re-estimate BatchNorm statistics on N training "
           "images after pruning, before the pruned model is judged or exported (default 1024; off: keep the dense "
           "model's statistics)", parsers.recalibration_images, "N|off"),
    Option("--prunebench-data", "data", "dataset: digits (embedded, default), cifar10:DIR, synthetic",
           parsers.data_spec, "SPEC"),
    Option("--prunebench-model", "model", f"model for every case: {parsers.MODELS_HINT} or package.module:factory",
           parsers.model_name, "NAME"),
    Option("--prunebench-precision", "precision", "deployed precision: f32, bf16 (OpenVINO's inference precision "
           "hint), f16 (FP16-compressed weights and hint; the default with --ncs), int8 (NNCF post-training "
           "quantization), int8-accuracy (with accuracy control); overrides the schedules' (default: the device's own)",
           parsers.deployment_precision, "P"),
    Option("--prunebench-calibration", "calibration", "int8: training images NNCF calibrates on, a fixed seeded "
           f"subset of the training split (default {parsers.DEFAULT_CALIBRATION})", parsers.positive_int, "N"),
    Option("--prunebench-max-drop", "max_drop", "int8-accuracy: top1 points the quantized model may lose against "
           f"f32, in (0, 100) (default {parsers.DEFAULT_MAX_DROP:g})", parsers.max_drop, "POINTS"),
    Option("--prunebench-baseline-epochs", "baseline_epochs", "train each dense baseline exactly N epochs (default: "
           "its model family's recipe, until its test top1 stops improving)", parsers.positive_int, "N"),
    Option("--prunebench-min-dense-top1", "min_dense_top1", "stop the session when a dense baseline's top1 is below "
           "P percent (default: 90 on digits, 80 on cifar10, none on synthetic; off to study weak baselines)",
           parsers.top1_floor, "P|off"),
    Option("--prunebench-seed", "seed", "seed for training and data order (default 0)", parsers.non_negative_int,
           "N"),
    Option("--prunebench-rounds", "rounds", "timed batch-1 inferences per model (default 200), or auto: time "
           "interleaved blocks until the speed-up's 95%% interval is within --prunebench-precision-target",
           parsers.rounds_spec, "N|auto"),
    Option("--prunebench-precision-target", "precision_target", "with --prunebench-rounds auto: the 95%% interval's "
           "half-width to reach, relative to the speed-up (default 1%%)", parsers.precision_target, "P%"),
    Option("--prunebench-max-rounds", "max_rounds", "with --prunebench-rounds auto: timed inferences per model at "
           "most (default 5000)", parsers.positive_int, "N"),
    Option("--prunebench-warmup", "warmup", "untimed inferences before timing (default 20)",
           parsers.non_negative_int, "N"),
    Option("--prunebench-lr", "lr", "base learning rate for retraining when a schedule sets none (default 0.01)",
           parsers.positive_float, "LR"),
    Option("--prunebench-lock", "lock_path", "device lock file (default: one per device in the temp dir)", Path,
           "PATH"),
    Option("--prunebench-lock-timeout", "lock_timeout", "seconds to wait for the device lock, the host gate, or a "
           "cache entry another process is building, e.g. a dense baseline (default 900)",
           parsers.positive_float, "S"),
    Option("--prunebench-broker", "broker", "measure every case on a device worker through this Redis broker, "
           "redis://[:password@]host:port/db (rediss:// for TLS); start workers with `prunebench worker`",
           str, "URL"),
    Option("--prunebench-study", "study", "Optuna study storage that searched sweeps (bayes; grid and random too "
           "when given) share across processes and hosts: a journal file, redis://[:password@]host:port/db, "
           "sqlite:///file.db or postgresql://... (default .prunebench/optuna.journal)", parsers.study_url, "URL"),
    Option("--prunebench-host-gate", "host_gate", "pause CPU-heavy work of other processes during a measurement: "
           "auto (when the device shares the host CPU: CPU, GPU, AUTO...), on, off (default auto)",
           parsers.host_gate_mode, "MODE"),
    Option("--prunebench-report", "report", "at the end of the session, write the report (pictures, tables) "
           "of its cases into DIR, as `prunebench report` does", Path, "DIR"),
    Option("--prunebench-artifacts", "artifacts", "where ONNX files are kept (default .prunebench/artifacts)",
           Path, "DIR"),
    Option("--prunebench-cache", "cache", "artifact cache: dense baselines and pruned + retrained models, keyed by "
           "everything that determines them; a rerun re-measures but does not retrain (default .prunebench/cache; "
           "`prunebench cache ls|prune` manage it)", Path, "DIR"),
    Option("--prunebench-no-cache", "no_cache", "train, prune and export every artifact afresh and store none",
           switch=True),
    Option("--wandb-project", "wandb_project", "log every case as one Weights & Biases run in this project "
           "(offline unless --wandb-mode online)", None, "NAME"),
    Option("--wandb-entity", "wandb_entity", "W&B entity (user or team; default: the API key's)", None, "NAME"),
    Option("--wandb-group", "wandb_group", "W&B group of this session's runs (default: prunebench-<time>-<id>, "
           "one per pytest session, shared by xdist workers)", None, "NAME"),
    Option("--wandb-mode", "wandb_mode", "online, offline or disabled (default: $WANDB_MODE, else offline)",
           parsers.wandb_mode, "MODE"),
    Option("--wandb-log-model", "wandb_log_model", "add each case's ONNX file to its W&B run as a model artifact",
           switch=True),
    Option("--wandb-dir", "wandb_dir", "where W&B runs are written, under wandb/ (default: $WANDB_DIR, else the "
           "rootdir)", Path, "DIR"),
)
PATH_FIELDS = ("lock_path", "artifacts", "cache", "wandb_dir", "report")
ANCHORED_FIELDS = ("schedules", "sweeps")  # file, directory or glob patterns, relative to where they were given
WANDB_GROUP_KEY = "prunebench_wandb_group"  # the controller's group, handed to xdist workers in workerinput
REFERENCE_KEY = "prunebench_references"  # the controller's directory of reference dense medians (reference.py)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("prunebench", "pytest-prunebench: pruned models measured on an OpenVINO device")
    group.addoption("--ncs", action="store_true", default=False,
                    help="measure on the Neural Compute Stick 2 (OpenVINO device MYRIAD)")
    for option in OPTIONS:
        kwargs: dict[str, Any] = {"dest": f"prunebench_{option.dest}", "help": option.help, "default": None}
        if option.switch:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = option.metavar
        if option.repeatable:
            kwargs["action"] = "append"
        if option.parse is not None:
            kwargs["type"] = option.parse
        group.addoption(option.flag, **kwargs)
        parser.addini(option.ini, f"default for {option.flag}", default=None)


def resolve(config: pytest.Config, workerinput: dict[str, Any]) -> Settings:
    """Command line first, then the ini file, then Settings' defaults. Bad ini values are usage errors.
    `workerinput`: on an xdist worker, what the controller handed it (xdist_roles.Controller.configure_node)."""
    values: dict[str, Any] = {"root": config.rootpath, "xdist_workers": int(workerinput.get("workercount", 0))}
    if workerinput.get(REFERENCE_KEY):
        values["reference_dir"] = Path(workerinput[REFERENCE_KEY])
    for option in OPTIONS:
        value = config.getoption(f"prunebench_{option.dest}")
        if value is not None:
            values[option.dest] = _from_cli(option, value, config.invocation_params.dir)
            continue
        ini_value = config.getini(option.ini)
        if ini_value not in (None, ""):
            values[option.dest] = _from_ini(option, str(ini_value), _ini_dir(config))
    if config.getoption("prunebench_no_cache") and config.getoption("prunebench_cache") is not None:
        raise pytest.UsageError("--prunebench-no-cache and --prunebench-cache DIR: use one of them")
    adaptive_only = [option.flag for option in OPTIONS if option.dest in ("precision_target", "max_rounds")
                     and option.dest in values]
    if adaptive_only and values.get("rounds", Settings.rounds) != parsers.AUTO_ROUNDS:
        raise pytest.UsageError(f"{' and '.join(adaptive_only)} apply to adaptive rounds: add --prunebench-rounds "
                                f"auto, or leave them out with a fixed count of rounds")
    if values.get("round_to") == AUTO_ROUND_TO and values.get("broker"):
        raise pytest.UsageError("--prunebench-round-to auto probes the device in this process, which "
                                "--prunebench-broker measures on a device worker: run `prunebench granularity "
                                "--device DEVICE` on the worker's host and pass --prunebench-round-to N")
    _check_deployment(values)
    if config.getoption("ncs"):
        if values.get("device", NCS_DEVICE) != NCS_DEVICE:
            raise pytest.UsageError(f"--ncs measures on MYRIAD but --prunebench-device says {values['device']}: "
                                    f"use one of them")
        values["device"] = NCS_DEVICE
        values["default_precision"] = NCS_PRECISION  # the stick computes in FP16 only
    for name, what in (("schedules", "schedule"), ("sweeps", "W&B sweep")):
        if name in values and not find_yaml_files(values[name]):
            flag = next(option.flag for option in OPTIONS if option.dest == name)
            raise pytest.UsageError(f"{flag} {' '.join(values[name])}: no .yaml/.yml {what} file there; pass a "
                                    f"file, a directory of them or a glob")
    defaults = Settings()
    # Relative defaults live under the project's root, not wherever pytest was started.
    for name in ANCHORED_FIELDS:
        values.setdefault(name, tuple(str(config.rootpath / p) for p in getattr(defaults, name)))
    for name in ("artifacts", "cache"):
        values.setdefault(name, config.rootpath / getattr(defaults, name))
    if "compare_fail" in values:  # each value is a comma-separated list of regression rules
        values["compare_fail"] = tuple(rule for rules in values["compare_fail"] for rule in rules)
    if values.get("wandb_project"):
        values.update(_wandb_values(config, values, workerinput))
    return replace(defaults, **values)


def _check_deployment(values: dict[str, Any]) -> None:
    """Quantization options that the given precision would ignore, and NNCF, before any training."""
    precision = values.get("precision")
    if precision is None:  # the schedules may ask for int8: checked per case, before its training
        return
    if "max_drop" in values and precision != parsers.INT8_ACCURACY:
        raise pytest.UsageError(f"--prunebench-max-drop applies to --prunebench-precision {parsers.INT8_ACCURACY}, "
                                f"not {precision}")
    if "calibration" in values and precision not in parsers.QUANTIZED_PRECISIONS:
        raise pytest.UsageError(f"--prunebench-calibration applies to quantized precisions "
                                f"({', '.join(parsers.QUANTIZED_PRECISIONS)}), not {precision}")
    if precision in parsers.QUANTIZED_PRECISIONS:
        from .errors import PrunebenchError
        from .quantize import nncf_version

        try:
            nncf_version()
        except PrunebenchError as exc:
            raise pytest.UsageError(str(exc)) from None


def _wandb_values(config: pytest.Config, values: dict[str, Any], workerinput: dict[str, Any]) -> dict[str, Any]:
    """Mode: option, ini, $WANDB_MODE, offline. Group: option, ini, the controller's (on a worker), a new one."""
    mode = values.get("wandb_mode")
    if mode is None:
        env = os.environ.get("WANDB_MODE", "").strip()
        try:
            mode = parsers.wandb_mode(env) if env else "offline"
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"environment variable WANDB_MODE={env!r}: {exc}") from None
    if mode == "online" and not parsers.wandb_api_key_configured(os.environ):
        raise pytest.UsageError("--wandb-mode online: no W&B API key (set WANDB_API_KEY or run `wandb login`); "
                                "or log offline (the default) and `wandb sync` later")
    group = values.get("wandb_group") or workerinput.get(WANDB_GROUP_KEY) or parsers.new_wandb_group()
    directory = values.get("wandb_dir") or Path(os.environ.get("WANDB_DIR") or config.rootpath)
    return {"wandb_mode": mode, "wandb_group": group, "wandb_dir": directory}


def _ini_dir(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath else config.rootpath


def _from_cli(option: Option, value: Any, base: Path) -> Any:
    if option.dest in ANCHORED_FIELDS:
        return tuple(_anchor(v, base) for v in value)
    if option.repeatable:
        return tuple(value)
    if option.dest in PATH_FIELDS:
        return base / value
    if option.dest == "study" and "://" not in value:  # a journal file, relative to where it was given
        return str(base / Path(value).expanduser())
    return value


def _from_ini(option: Option, text: str, base: Path) -> Any:
    if option.dest in ANCHORED_FIELDS:
        return tuple(_anchor(item, base) for item in text.replace(",", " ").split())
    if option.repeatable:
        return tuple(_parse_ini(option, item) for item in text.replace(",", " ").split())
    value = _parse_ini(option, text)
    if option.dest == "study" and "://" not in value:
        return str(base / Path(value).expanduser())
    return base / value if option.dest in PATH_FIELDS else value


def _parse_ini(option: Option, text: str) -> Any:
    if option.switch:
        return _ini_switch(option, text)
    try:
        return option.parse(text) if option.parse else text
    except (argparse.ArgumentTypeError, ValueError) as exc:
        if option.dest == "study":  # a URL's password is never printed
            from .broker import redact

            text = redact(text)
        raise pytest.UsageError(f"ini key {option.ini} = {text!r}: {exc}") from None


def _ini_switch(option: Option, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise pytest.UsageError(f"ini key {option.ini} = {text!r}: use true or false")


def _anchor(pattern: str, base: Path) -> str:
    path = Path(pattern).expanduser()
    return str(path if path.is_absolute() else base / path)
