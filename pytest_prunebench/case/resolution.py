"""What a case runs: its model, data and epochs (an option first, then the schedule), the layers its pruners name
checked on that model, `round_to: auto` probed once per session, and the datasets, loaded once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..data import Dataset, DataSpec, parse_data_spec
from ..errors import ModelError, ScheduleError
from ..schedule import Schedule
from ..settings import Settings, canonical_model_name, model_from_file_name

if TYPE_CHECKING:
    from ..granularity import SessionSteps
    from ..lock import HostGate

DEFAULT_FINE_TUNE_EPOCHS = 2  # after the last pruning/thinning epoch, when a schedule does not say
Progress = Callable[[str], None]  # one line for the user, as a case goes


def model_name(settings: Settings, schedule: Schedule) -> str:
    name = settings.model or schedule.model_hint()
    if not name:
        model = model_from_file_name(schedule.path) or "resnet56"
        raise ScheduleError(schedule.path, "prunebench.model", f"the schedule names no model: add "
                            f"`prunebench: {{model: {model}}}` or a thinning extension `arch:`, or pass "
                            f"--prunebench-model {model}")
    return canonical_model_name(name)


def data_spec(settings: Settings, schedule: Schedule) -> DataSpec:
    if settings.data is not None:
        return settings.data
    if schedule.dataset is None:
        return DataSpec("digits")
    try:
        return parse_data_spec(schedule.dataset)
    except ValueError as exc:
        raise ScheduleError(schedule.path, "prunebench.dataset", str(exc)) from None


def epochs(settings: Settings, schedule: Schedule) -> int:
    if settings.epochs is not None:
        return settings.epochs
    if schedule.epochs is not None:
        return schedule.epochs
    return schedule.pruning_horizon() + DEFAULT_FINE_TUNE_EPOCHS


def check_model_layers(settings: Settings, schedule: Schedule, model: str, num_classes: int) -> None:
    """Before any training: every layer the schedule's pruners name is a layer of the model, of the right type."""
    from ..models import build_model
    from ..pruning import check_layers

    try:
        check_layers(schedule, build_model(model, num_classes), model)
    except ModelError as exc:
        if settings.model is None:  # the schedule named it
            raise ScheduleError(schedule.path, "model", str(exc)) from None
        raise


class Datasets:
    """Each dataset and its digest (part of every artifact cache key), loaded once per process."""

    def __init__(self) -> None:
        self._datasets: dict[DataSpec, Dataset] = {}
        self._digests: dict[DataSpec, str] = {}

    def get(self, spec: DataSpec) -> Dataset:
        from ..data import load_dataset

        if spec not in self._datasets:
            self._datasets[spec] = load_dataset(spec)
        return self._datasets[spec]

    def digest(self, spec: DataSpec) -> str:
        if spec not in self._digests:
            from ..baseline import dataset_digest

            self._digests[spec] = dataset_digest(self.get(spec))
        return self._digests[spec]


def resolve_round_to(settings: Settings, schedule: Schedule, name: str, hint: str | None, steps: SessionSteps,
                     host_gate: HostGate | None, progress: Progress) -> tuple[Schedule, str]:
    """`round_to: auto`: the step the device's granularity probe measured (once per session) at the deployment's
    precision `hint`, and what the probe saw; any other round_to as it is, with ""."""
    from ..granularity import AUTO_ROUND_TO
    from ..lock import exclusive_measurement

    if schedule.round_to != AUTO_ROUND_TO:
        return schedule, ""
    if settings.broker:  # the probe times the device, which is behind a worker on another host
        device = settings.device
        raise ScheduleError(schedule.path, "prunebench.round_to",
                            f"auto probes {device} in this process, which --prunebench-broker measures on a "
                            f"device worker: run `prunebench granularity --device {device}` on the worker's "
                            f"host and give its step (round_to: N or --prunebench-round-to N)")
    probed = steps.settled(settings.device, hint)
    if probed is None:
        progress(f"{name}: round_to auto: probing the channel granularity of {settings.device}")
        probed, fresh = steps.step(settings.device, hint, lambda: exclusive_measurement(
            settings.device, settings.lock_path, settings.lock_timeout, host_gate))
        progress(f"{name}: round_to auto -> {probed.step} ({probed.found}"
                 + ("" if fresh else f"; probed by {probed.by}") + ")")
    return replace(schedule, round_to=probed.step), probed.found
