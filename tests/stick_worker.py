"""`prunebench worker` on a host that pretends to have a Neural Compute Stick 2: OpenVINO lists a `MYRIAD` device,
and whatever is compiled for it runs on this host's CPU.

There is no stick here (and no MYRIAD plugin in the PyPI OpenVINO wheels), so the tests of `--ncs` through a broker
use this script to check what travels around the stick: the job stream a producer picks for `--ncs`, the FP16
deployment it sends, the device the record names, and the compile config the stick is given. Like OpenVINO 2022.3's
MYRIAD plugin, the pretended stick refuses any config key its plugin does not register ("Encountered an unsupported
key", from vpu::PluginConfiguration::validate); INFERENCE_PRECISION_HINT is one of those. Run as a script
(`python tests/stick_worker.py --broker URL --device MYRIAD`); the substitution is patched in here, so the package has
no test hook.
"""

from __future__ import annotations

import sys
from typing import Any

from pytest_prunebench import device, worker
from pytest_prunebench.lock import device_family
from pytest_prunebench.settings import NCS_DEVICE

# The keys prunebench could pass that the 2022.3 MYRIAD plugin registers (its Engine constructor: the MYRIAD_* options
# aside, these); anything else makes it throw.
MYRIAD_KEYS = frozenset({"PERFORMANCE_HINT", "PERFORMANCE_HINT_NUM_REQUESTS", "PERF_COUNT", "NUM_STREAMS",
                         "LOG_LEVEL", "DEVICE_ID", "EXCLUSIVE_ASYNC_REQUESTS"})


class _CoreWithStick:
    """OpenVINO's Core, with a MYRIAD device whose models compile on the CPU after the plugin's key check."""

    def __init__(self, core: Any) -> None:
        self._core = core

    @property
    def available_devices(self) -> list[str]:
        return [*self._core.available_devices, NCS_DEVICE]

    def compile_model(self, model: Any, name: str, config: dict[str, Any] | None = None) -> Any:
        if device_family(name) != NCS_DEVICE:
            return self._core.compile_model(model, name, config or {})
        unsupported = sorted(set(config or {}) - MYRIAD_KEYS)
        if unsupported:
            raise RuntimeError(f"Encountered an unsupported key {unsupported[0]}, supported keys are "
                               f"{sorted(MYRIAD_KEYS)}")
        return self._core.compile_model(model, "CPU", config or {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)


if __name__ == "__main__":
    stick = _CoreWithStick(device.core())
    device.core = lambda: stick  # type: ignore[assignment]
    sys.exit(worker.main())
