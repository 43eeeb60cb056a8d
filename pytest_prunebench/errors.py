"""User-facing errors: each one carries a single line that names the file/key/value and what to do."""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 2, 80, 80, 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = _SHOWN.maxfrozenset = 6


def shown(value: Any) -> str:
    """`repr(value)` for a message: bounded in size and depth, so a hostile input (a YAML alias bomb, a huge
    number) cannot make an error message of gigabytes."""
    return _SHOWN.repr(value)


def _one_line(text: str) -> str:
    """A key or value from a user's file as it may appear in a one-line message: quoted when it holds newlines
    or other unprintable characters."""
    return text if text.isprintable() else repr(text)


class PrunebenchWarning(UserWarning):
    """Something a user should know that does not fail a case."""


class PrunebenchError(Exception):
    """An error in user input or environment, shown as one line without a traceback."""


class ScheduleError(PrunebenchError):
    """A schedule file that cannot be parsed or applied."""

    def __init__(self, path: str, where: str, message: str) -> None:
        self.path = path
        self.where = where
        location = f"{path}: {_one_line(where)}" if where else path
        super().__init__(f"{location}: {message}")


class SweepError(ScheduleError):
    """A W&B sweep file that cannot be turned into cases."""


class DataError(PrunebenchError):
    """A dataset that cannot be found or read."""


class ModelError(PrunebenchError):
    """A model name or factory that cannot be resolved."""


class DeviceError(PrunebenchError):
    """An OpenVINO device that is missing or cannot run the model."""


class WeakBaselineError(PrunebenchError):
    """A dense baseline below the session's quality floor (--prunebench-min-dense-top1): the session stops."""


class CacheError(PrunebenchError):
    """An artifact cache directory that cannot be used (unwritable, full, or its lock held too long)."""


class CacheWarning(PrunebenchWarning):
    """A cache entry that could not be used (corrupt, truncated): it is rebuilt."""


class ProtocolError(PrunebenchError):
    """A device-worker message that is malformed, of another protocol version, or too large."""


class BrokerError(PrunebenchError):
    """The broker cannot be reached or used, or no worker served a job in time."""


class StudyError(PrunebenchError):
    """A study that cannot be opened or used: a bad or unreachable URL, a search space that differs."""


class ReportError(PrunebenchError):
    """A results file that cannot be read, or holds no prunebench record."""


class TrackingError(PrunebenchError):
    """W&B could not take a run; the case and its pytest-benchmark record stand."""


class StrategyError(PrunebenchError, ValueError):
    """A generated-suite strategy called with arguments it cannot draw from (a ValueError, as before)."""


def fail_test_on_error(call: Callable[[], T]) -> T:
    """`call()`; a PrunebenchError fails the running test with its one line. pytest.fail is raised outside the
    handler: inside it, pytest prints the message twice, chained. (pytest is imported here, not at the top: the
    device worker imports this module and has no pytest.)"""
    import pytest

    try:
        return call()
    except PrunebenchError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)
