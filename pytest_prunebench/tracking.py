"""Weights & Biases: one run per case, written offline unless the user asks for online.

Imported only when `--wandb-project` is set: without it, wandb is never imported and nothing is written.
A W&B failure never loses a case: the caller warns and the pytest-benchmark record is written regardless.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import record
from .errors import TrackingError
from .record import PRUNER_PREFIXES

if TYPE_CHECKING:
    from .case import CaseResult

# Record fields that describe the case rather than measure it: they go to the run's config, not its summary.
CONFIG_FIELDS = record.names(config=True)
# Characters W&B refuses in a project name; offline it says so only at `wandb sync`, hours later.
_PROJECT_FORBIDDEN = re.compile(r"[/\\#?%:]")



@dataclass(frozen=True)
class WandbTarget:
    """Where and how runs are written; resolved once per session from the options."""

    project: str
    entity: str | None
    group: str
    mode: str  # online | offline
    directory: Path  # runs go to <directory>/wandb/
    log_model: bool


def run_config(extra_info: Mapping[str, Any], suite: str) -> dict[str, Any]:
    """Flat keys (`sparsity.layer1.0`), so W&B's parameter-importance and parallel-coordinates panels use them."""
    config = {key: extra_info[key] for key in CONFIG_FIELDS if key in extra_info}
    config.update({key: value for key, value in extra_info.items() if key.startswith(PRUNER_PREFIXES)})
    config["suite"] = suite
    return config


def run_summary(extra_info: Mapping[str, Any], latencies_s: tuple[float, ...]) -> dict[str, float | int | bool]:
    """Every numeric figure of the record, its intervals' ends, and the latency statistics in milliseconds."""
    summary: dict[str, float | int | bool] = {
        key: value for key, value in extra_info.items()
        if isinstance(value, int | float) and key not in CONFIG_FIELDS and not key.startswith(PRUNER_PREFIXES)
    }
    for key, value in extra_info.items():  # 95% intervals, [low, high]: two figures W&B panels can plot
        if key.endswith("_ci") and isinstance(value, list | tuple) and len(value) == 2:
            summary.update({f"{key}_low": float(value[0]), f"{key}_high": float(value[1])})
    samples_ms = np.asarray(latencies_s, dtype=float) * 1000.0
    if samples_ms.size:
        summary.update({
            "latency_median_ms": float(np.median(samples_ms)), "latency_mean_ms": float(np.mean(samples_ms)),
            "latency_p90_ms": float(np.percentile(samples_ms, 90)), "latency_min_ms": float(np.min(samples_ms)),
            "latency_max_ms": float(np.max(samples_ms)), "latency_rounds": int(samples_ms.size),
        })
    start, end = extra_info.get("measured_at", (None, None))
    if start is not None:
        summary.update({"measured_start": float(start), "measured_end": float(end)})
    return summary


def history_rows(history: tuple[Mapping[str, float], ...]) -> list[dict[str, float]]:
    """One row per retraining epoch; `retrain/` keeps the torch-side top1 apart from the device's final top1."""
    return [{"epoch": int(row["epoch"]), "retrain/loss": float(row["loss"]), "retrain/top1": float(row["top1"]),
             "retrain/lr": float(row["lr"])} for row in history]


@dataclass(frozen=True)
class TrackedCase:
    """What a W&B run holds of a case: plain JSON data, so the tracking process can write it."""

    name: str
    model: str
    dataset: str
    device: str
    extra_info: dict[str, Any]
    latencies_s: tuple[float, ...]
    history: tuple[dict[str, float], ...]
    onnx_path: str
    macs: int
    params: int

    @classmethod
    def of(cls, result: CaseResult) -> TrackedCase:
        return cls(result.name, result.model, result.dataset, result.device, result.extra_info(),
                   tuple(result.latencies_s), tuple(result.history), result.onnx_path, result.macs, result.params)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrackedCase:
        return cls(**{**data, "latencies_s": tuple(data["latencies_s"]), "history": tuple(data["history"])})


def warm_up() -> None:
    """What a session's first `wandb.init` would do first (about 1 s of one core here): import wandb and the
    launch-input modules every `init` imports, and start wandb's service process."""
    import wandb
    import wandb.sdk.launch.inputs.internal  # noqa: F401  (Run._detect_and_apply_job_inputs, in every init)

    wandb.setup()


def quiet_settings() -> Any:
    """No stdout redirection, no system monitor (it polls cloud metadata URLs), no git or code capture."""
    import wandb

    return wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True, x_disable_machine_info=True,
                          save_code=False, disable_git=True, disable_job_creation=True, x_save_requirements=False,
                          silent=True)


def log_case(target: WandbTarget, result: TrackedCase, suite: str, passed: bool) -> str:
    """Write one run for a finished case; returns the run's directory (offline) or URL (online)."""
    import wandb

    from .case import slug

    _check_project(target.project)
    info = result.extra_info
    target.directory.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=target.project, entity=target.entity, group=target.group, job_type=suite,
                     name=result.name, tags=[result.model, result.dataset, result.device],
                     config=run_config(info, suite), mode=cast(Any, target.mode), dir=str(target.directory),
                     reinit="create_new", settings=quiet_settings())
    exit_code = 1
    try:
        for row in history_rows(result.history):
            run.log(row, step=int(row["epoch"]))
        run.summary.update({**run_summary(info, result.latencies_s), "passed": passed})
        if target.log_model:
            artifact = wandb.Artifact(slug(result.name), type="model",  # W&B names: letters, digits, - _ .
                                      metadata={"case": result.name, "macs": result.macs, "params": result.params})
            artifact.add_file(result.onnx_path)
            run.log_artifact(artifact)
        exit_code = 0
        return str(run.url or Path(run.dir).parent)
    finally:
        run.finish(exit_code=exit_code)


def _check_project(name: str) -> None:
    if not name.strip() or len(name) > 128 or _PROJECT_FORBIDDEN.search(name):
        raise TrackingError(f"--wandb-project {name!r} is not a W&B project name (1-128 characters, none of "
                            f"/ \\ # ? % :)")
