"""How a case deploys its models: the precision (option, schedule, --ncs, device), NNCF's calibration checked
before any training, the deployed IR (f16, int8) built or taken from the artifact cache, and the record's
deployment fields."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..data import Dataset, DataSpec
from ..errors import PrunebenchError, ScheduleError
from ..schedule import Schedule
from ..settings import DEFAULT_CALIBRATION, DEFAULT_MAX_DROP, Deployment, Settings
from .resolution import Datasets, Progress

if TYPE_CHECKING:
    from ..cache import ArtifactCache
    from ..quantize import Deployed


class Deployer:
    def __init__(self, settings: Settings, cache: ArtifactCache, datasets: Datasets, progress: Progress) -> None:
        self.settings = settings
        self.cache = cache
        self.datasets = datasets
        self.progress = progress

    def resolve(self, schedule: Schedule | None) -> Deployment:
        """The option first, then the schedule, then --ncs's f16, then the device's own precision; calibration
        and max_drop likewise (option, schedule, default)."""
        settings = self.settings
        if settings.precision is not None:
            precision, source = settings.precision, "option"
        elif schedule is not None and schedule.precision is not None:
            precision, source = schedule.precision, "schedule"
        elif settings.default_precision is not None:
            precision, source = settings.default_precision, "ncs"
        else:
            precision, source = None, "device"
        calibration = settings.calibration or (schedule and schedule.calibration) or DEFAULT_CALIBRATION
        max_drop = settings.max_drop or (schedule and schedule.max_drop) or DEFAULT_MAX_DROP
        return Deployment(precision, calibration, max_drop, source)

    def check(self, deployment: Deployment, schedule: Schedule | None, data: Dataset) -> None:
        """Before any training: NNCF importable, a calibration set the training split can hold."""
        if not deployment.quantized:
            return
        from ..quantize import calibration_problem, nncf_version

        nncf_version()
        problem = calibration_problem(deployment, len(data.train_x))
        if problem is None:
            return
        if self.settings.calibration is None and schedule is not None and schedule.calibration:
            raise ScheduleError(schedule.path, "prunebench.calibration", problem)
        where = "--prunebench-calibration" if self.settings.calibration else "the default calibration of"
        raise PrunebenchError(f"{where} {problem}")

    def deploy(self, onnx_path: Path, deployment: Deployment, spec: DataSpec) -> Deployed | None:
        """The deployed IR of an exported model (beside it), or None: the ONNX file itself is measured."""
        if not deployment.converted:
            return None
        from ..quantize import load_or_convert

        target = onnx_path.with_name(f"{onnx_path.stem}.{deployment.precision}.xml")
        return load_or_convert(self.cache, onnx_path, target, deployment, self.datasets.get(spec),
                               self.datasets.digest(spec), self.settings.seed, self.progress)


def deployed_precision(deployment: Deployment, compiled: str) -> str:
    """What a model runs at: int8 for a quantized one, else what the device compiled it at (`compiled`)."""
    return str(deployment.precision) if deployment.quantized else compiled


def deployment_record(deployment: Deployment, compiled: str, deployed: Deployed | None,
                      dense_deployed: Deployed | None) -> dict[str, object]:
    """A record's deployment fields: `precision` is the deployed one (deployed_precision), `inference_precision`
    what the device compiled the float parts at, `precision_source` where the precision came from; a converted
    model adds its IR (`ir_path`, `ir_bytes`), and a quantized one NNCF's version, its calibration images, its top1
    before quantization and its layers kept in float."""
    record: dict[str, object] = {"precision": deployed_precision(deployment, compiled),
                                 "inference_precision": compiled, "precision_source": deployment.source}
    if deployed is not None:
        record.update(deployed.record())
    if deployment.precision == "int8-accuracy":
        record["max_drop"] = deployment.max_drop
    if dense_deployed is not None and dense_deployed.top1_float is not None:
        record["top1_dense_float"] = dense_deployed.top1_float
    return record
