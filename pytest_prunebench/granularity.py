"""The channel granularity of a device: the width step at which a conv's latency changes.

Vector and matrix units compute channels in tiles (AVX-512: 16 f32 lanes; AMX: 16-row bf16 tiles). A conv whose
width is not a multiple of the tile costs as much as the next multiple, so pruning 1-15 filters of a 64-wide
layer buys nothing there. `probe` times a chain of convs at widths w-32 .. w on the device, all interleaved in one
window, finds the widths where latency jumps, and reports their step: the N to pass to `round_to`.

Measured on this project's AMX host (OpenVINO 2026.4, CPU): jumps at 33 and 49 for both bf16 (+26%, +15%) and f32
(+30%, +21%), 1-4% between most other neighbours: a step of 16.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AUTO_ROUND_TO = "auto"  # round_to: auto: the step this module's probe measures, once per session

SPAN = 32  # widths probed below the reference width: two tiles of 16, four of 8
DEPTH = 4  # conv pairs in the chain: one conv takes ~10 us here, too close to the per-inference overhead
SPATIAL = 16  # feature map side: ResNet's first stage at 32x32 input is 32, its last 8
MIN_JUMP = 0.05  # a latency jump is at least 5% ...
NOISE_FACTOR = 3.0  # ... and at least 3x the median change between neighbouring widths
STEPS = (2, 4, 8, 16, 32)  # tile widths looked for, smallest first


@dataclass(frozen=True)
class Granularity:
    """What a probe found: the step (1: no tile effect seen), the jumps it rests on and every width's median."""

    device: str
    precision: str
    width: int  # the reference width; widths width-SPAN .. width were timed
    step: int
    jumps: tuple[int, ...]  # widths whose latency is a jump above the width below
    medians_us: tuple[tuple[int, float], ...]
    rounds: int

    def summary(self) -> str:
        found = (f"latency jumps at width(s) {', '.join(map(str, self.jumps))}: step {self.step}" if self.jumps
                 else "no latency jump between neighbouring widths: step 1 (no tile effect seen)")
        return f"{self.device} ({self.precision}), widths {self.width - SPAN}-{self.width}: {found}"


def find_step(medians: Sequence[tuple[int, float]]) -> tuple[int, tuple[int, ...]]:
    """(step, jump widths) from (width, median latency) pairs of consecutive widths.

    A jump is a rise from width-1 to width of more than MIN_JUMP and NOISE_FACTOR times the median rise between
    neighbours. A tile of T makes a jump at every width k*T + 1; the step is the smallest power of two (up to
    SPAN) whose every such width in the range is a jump. Noise makes stray jumps elsewhere, which no step needs;
    a step whose boundaries are not all jumps is not the tile. None fits: step 1 (no tile effect seen).
    """
    rises = {width: later / earlier - 1.0
             for (_, earlier), (width, later) in zip(medians, medians[1:], strict=False)}
    if not rises:
        return 1, ()
    threshold = max(MIN_JUMP, NOISE_FACTOR * statistics.median(abs(rise) for rise in rises.values()))
    jumps = tuple(width for width, rise in rises.items() if rise > threshold)
    for step in STEPS:
        boundaries = [width for width in rises if (width - 1) % step == 0]
        if boundaries and all(width in jumps for width in boundaries):
            return step, jumps
    return 1, jumps


def chain_onnx(width: int, base: int, spatial: int = SPATIAL, depth: int = DEPTH, seed: int = 0) -> bytes:
    """An ONNX model of `depth` pairs of 3x3 convs, base -> width -> base channels, each followed by a ReLU: the
    inner width is what pruning a ResNet block's first conv changes. Built with onnx.helper, without torch."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    previous, channels = "input", base
    for index in range(depth * 2):
        filters = width if index % 2 == 0 else base
        weight = (rng.standard_normal((filters, channels, 3, 3)) * 0.05).astype(np.float32)
        weights.append(numpy_helper.from_array(weight, f"w{index}"))
        nodes.append(helper.make_node("Conv", [previous, f"w{index}"], [f"conv{index}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{index}"], [f"relu{index}"]))
        previous, channels = f"relu{index}", filters
    shape = [1, base, spatial, spatial]
    graph = helper.make_graph(nodes, "granularity", [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, shape)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def probe(device_name: str, precision: str | None, width: int = 64, rounds: int = 200, warmup: int = 20) -> Granularity:
    """Time the chain at widths width-SPAN .. width on `device_name`, interleaved in one window (the caller holds
    the device lock and host gate), and find the step."""
    import numpy as np

    from . import device

    if width <= SPAN:
        raise ValueError(f"width {width}: probe a layer wider than {SPAN} channels")
    widths = list(range(width - SPAN, width + 1))
    compiled: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="prunebench-granularity-") as folder:
        for inner in widths:
            path = Path(folder) / f"w{inner}.onnx"
            path.write_bytes(chain_onnx(inner, width))
            compiled.append(device.compile_for_latency(path, device_name, precision))
    sample = np.random.default_rng(0).standard_normal((1, width, SPATIAL, SPATIAL)).astype(np.float32)
    samples = device._interleaved_latency(compiled, sample, rounds, warmup)
    medians = tuple((inner, statistics.median(times) * 1e6) for inner, times in zip(widths, samples, strict=True))
    step, jumps = find_step(medians)
    return Granularity(device_name, device._precision_of(compiled[0], device_name), width, step, jumps, medians, rounds)


# -- round_to: auto ------------------------------------------------------------------------------------------------

SESSION_WIDTH = 64  # the width a session's probe times below: ResNet's last stage, MobileNetV2's middle blocks
SESSION_ROUNDS = 300  # ~3 s here: steps of 16 and 32 differ by a 5-15% jump, which 100 rounds blurred in a probe


@dataclass(frozen=True)
class ProbedStep:
    """The step `round_to: auto` resolves to on one device and precision, and what the probe saw."""

    step: int
    found: str  # Granularity.summary() of the probe that settled it
    by: str  # host:pid of the process that probed


def step_key(device: str, precision: str | None) -> str:
    return f"granularity|{device}|{precision or 'default'}"


class SessionSteps:
    """The session's probed steps: one probe per device and precision, the first settled wins in this process
    and, under xdist, in `directory` (shared like the reference dense medians, reference.publish_first), so every
    case of a session rounds to the same step."""

    def __init__(self, directory: Path | None, prober: Callable[[str, str | None], Granularity] | None = None) -> None:
        self.directory = directory
        self.prober = prober or (lambda device, precision: probe(device, precision, SESSION_WIDTH, SESSION_ROUNDS))
        self._settled: dict[str, ProbedStep] = {}

    def settled(self, device: str, precision: str | None) -> ProbedStep | None:
        """The step this process already settled for the device and precision, or None."""
        return self._settled.get(step_key(device, precision))

    def step(self, device: str, precision: str | None,
             window: Callable[[], contextlib.AbstractContextManager[Any]]) -> tuple[ProbedStep, bool]:
        """(the step, whether this call probed it). `window` is the device lock and host gate to probe under."""
        import os
        import socket

        from .reference import publish_first, published

        key = step_key(device, precision)
        if key in self._settled:
            return self._settled[key], False
        with window():  # another worker may have published while this one waited for the device
            known = published(self.directory, key)
            if known is None:
                found = self.prober(device, precision)
                mine = ProbedStep(found.step, found.summary(), f"{socket.gethostname()}:{os.getpid()}")
                document = mine.__dict__ if self.directory is None else publish_first(self.directory, key,
                                                                                      dict(mine.__dict__))
            else:
                document = known
        self._settled[key] = ProbedStep(int(document["step"]), str(document["found"]), str(document["by"]))
        return self._settled[key], known is None
