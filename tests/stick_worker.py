"""`prunebench worker` on a host that pretends to have a Neural Compute Stick 2: OpenVINO lists a `MYRIAD` device,
and whatever is compiled for it runs on this host's CPU.

There is no stick here (and no MYRIAD plugin in the PyPI OpenVINO wheels), so the tests of `--ncs` through a broker
use this script to check what travels around the stick: the job stream a producer picks for `--ncs`, the FP16
deployment it sends, the device the record names. Run as a script (`python tests/stick_worker.py --broker URL
--device MYRIAD`); the substitution is patched in here, so the package has no test hook.
"""

from __future__ import annotations

import sys
from typing import Any

from pytest_prunebench import device, worker
from pytest_prunebench.settings import NCS_DEVICE

_available = device.available_devices
_compile = device._compile


def _with_stick() -> list[str]:
    return [*_available(), NCS_DEVICE]


def _on_the_cpu(model: Any, name: str, hint: str, precision: str | None) -> Any:
    return _compile(model, "CPU" if name == NCS_DEVICE else name, hint, precision)


if __name__ == "__main__":
    device.available_devices = _with_stick  # type: ignore[assignment]
    device._compile = _on_the_cpu  # type: ignore[assignment]
    sys.exit(worker.main())
