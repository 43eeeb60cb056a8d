"""User-facing errors: each one carries a single line that names the file/key/value and what to do."""

from __future__ import annotations


class PrunebenchWarning(UserWarning):
    """Something a user should know that does not fail a case."""


class PrunebenchError(Exception):
    """An error in user input or environment, shown as one line without a traceback."""


class ScheduleError(PrunebenchError):
    """A schedule file that cannot be parsed or applied."""

    def __init__(self, path: str, where: str, message: str) -> None:
        self.path = path
        self.where = where
        location = f"{path}: {where}" if where else path
        super().__init__(f"{location}: {message}")


class SweepError(ScheduleError):
    """A W&B sweep file that cannot be turned into cases."""


class DataError(PrunebenchError):
    """A dataset that cannot be found or read."""


class ModelError(PrunebenchError):
    """A model name or factory that cannot be resolved."""


class DeviceError(PrunebenchError):
    """An OpenVINO device that is missing or cannot run the model."""


class ThresholdError(PrunebenchError):
    """A declarative threshold from a schedule's `prunebench:` section that a case did not meet."""


class CacheError(PrunebenchError):
    """An artifact cache directory that cannot be used (unwritable, full, or its lock held too long)."""
