"""--prunebench-rounds auto: blocks until the speed-up's interval is narrow enough, here and on a device worker.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_adaptive_rounds.py, tests/e2e/test_adaptive_rounds.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

import numpy as np
import pytest
from option_parsing import OptionParsing, assert_one_line

from pytest_prunebench import device, protocol
from pytest_prunebench.intervals import AdaptiveRounds, next_look, relative_half_width
from pytest_prunebench.settings import Settings, precision_target, rounds_spec

# -- the loop, on simulated models -------------------------------------------------------------------------------


class FakeRequest:
    """An infer request whose `latency` (ms) is drawn from a seeded distribution; logs every inference."""

    def __init__(self, name: str, median_ms: float, noise: float, log: list[str], seed: int) -> None:
        self.name, self.median_ms, self.noise, self.log = name, median_ms, noise, log
        self.rng = np.random.default_rng(seed)
        self.latency = 0.0

    def set_input_tensor(self, tensor: Any) -> None:
        pass

    def infer(self) -> None:
        self.latency = self.median_ms * float(self.rng.lognormal(0, self.noise))
        self.log.append(self.name)


class FakeModel:
    def __init__(self, *args: Any) -> None:
        self.args = args

    def create_infer_request(self) -> FakeRequest:
        return FakeRequest(*self.args)


def timed(policy: int | AdaptiveRounds, noise: float = 0.05, warmup: int = 0) -> tuple[list[tuple[float, ...]],
                                                                                      list[str]]:
    log: list[str] = []
    models = [FakeModel("pruned", 1.0, noise, log, 1), FakeModel("dense", 1.3, noise, log, 2)]
    return device._interleaved_latency(models, np.zeros((1, 3, 4, 4), np.float32), policy, warmup), log


def test_fixed_rounds_alternate_blocks_as_before() -> None:
    (pruned, dense), log = timed(25, warmup=2)
    assert len(pruned) == len(dense) == 25
    blocks = [name for name, _ in itertools.groupby(log[4:])]  # after each model's 2 warm-up inferences
    assert blocks == ["pruned", "dense", "pruned", "dense"]  # AB, BA (one run of dense), AB
    assert log[4:].count("pruned") == 25


def test_auto_stops_once_the_speedup_interval_is_within_the_target() -> None:
    policy = AdaptiveRounds(target=0.01)
    (pruned, dense), _ = timed(policy)
    assert len(pruned) == len(dense) and len(pruned) % 10 == 0
    assert policy.min_rounds < len(pruned) < policy.max_rounds  # it looked more than once and stopped early
    assert relative_half_width(pruned, dense) <= 0.01
    (tighter, tighter_dense), _ = timed(AdaptiveRounds(target=0.004))
    assert len(tighter) > len(pruned) and relative_half_width(tighter, tighter_dense) <= 0.004


def test_auto_stops_at_the_round_budget_when_the_target_is_out_of_reach() -> None:
    (pruned, dense), _ = timed(AdaptiveRounds(target=0.001, max_rounds=300), noise=0.5)
    assert len(pruned) == len(dense) == 300
    assert relative_half_width(pruned, dense) > 0.001


def test_auto_stops_at_the_time_budget() -> None:
    started = time.perf_counter()
    (pruned, dense), _ = timed(AdaptiveRounds(target=0.0001, max_rounds=100_000, budget_s=0.2), noise=0.5)
    assert time.perf_counter() - started < 5
    assert len(pruned) == len(dense) < 100_000 and len(pruned) % 10 == 0


def test_a_model_timed_alone_aims_at_its_medians_interval() -> None:
    log: list[str] = []
    (alone,) = device._interleaved_latency([FakeModel("dense", 1.0, 0.05, log, 3)], np.zeros(1, np.float32),
                                           AdaptiveRounds(target=0.01), 0)
    assert relative_half_width(alone) <= 0.01 < relative_half_width(alone[:100])


def test_the_next_look_is_predicted_from_the_half_width() -> None:
    policy = AdaptiveRounds(target=0.01, max_rounds=5000)
    assert next_look(100, 0.015, policy) == 250  # 100 x (0.015 / 0.01)^2 x 1.1 = 247.5, in whole blocks
    assert next_look(100, 0.011, policy) == 140  # 133.1, up to a whole block
    assert next_look(100, 0.5, policy) == 400  # at most 4 times as many
    assert next_look(4000, 0.02, policy) == 5000  # within the budget
    assert next_look(100, 0.0101, policy) == 120


# -- options ------------------------------------------------------------------------------------------------------


def test_rounds_and_precision_target_parse() -> None:
    assert rounds_spec("auto") == rounds_spec(" AUTO ") == "auto" and rounds_spec("300") == 300
    assert precision_target("1%") == pytest.approx(0.01) and precision_target("0.02") == 0.02
    assert Settings().latency_rounds == 200
    policy = Settings(rounds="auto", precision_target=0.02, max_rounds=50).latency_rounds
    assert (policy.target, policy.min_rounds, policy.max_rounds) == (0.02, 50, 50)
    assert Settings(rounds="auto").latency_rounds == AdaptiveRounds(0.01, 100, 5000)


@pytest.mark.parametrize(("parser", "text", "message"), [
    (rounds_spec, "fast", "'fast' is not a whole number; use a whole number of rounds or auto"),
    (rounds_spec, "0", "'0' must be at least 1; use a whole number of rounds or auto"),
    (precision_target, "tight", "'tight' is not a precision"),
    (precision_target, "0%", "use a half-width above 0 and at most 50%"),
    (precision_target, "60%", "use a half-width above 0 and at most 50%"),
    (precision_target, "nan", "use a half-width above 0 and at most 50%"),
])
def test_bad_values_are_refused_with_what_to_use(parser: Any, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parser(text)


# -- the protocol ---------------------------------------------------------------------------------------------------


def job(rounds: int | AdaptiveRounds) -> protocol.Job:
    ref = protocol.bytes_ref(b"onnx", inline="onnx")
    images, _ = protocol.array_ref(np.zeros((2, 3, 4, 4), np.float32))
    labels, _ = protocol.array_ref(np.zeros(2, np.int64))
    return protocol.Job("j1", "case", "CPU", None, rounds, 2, ref, None, images, labels, "tests")


def test_fixed_rounds_travel_as_version_1_and_auto_as_version_2() -> None:
    fixed = json.loads(job(200).meta())
    assert fixed["v"] == 1 and "adaptive" not in fixed and protocol.parse_job(job(200).meta()).rounds == 200
    policy = AdaptiveRounds(0.02, 100, 3000, 60.0)
    meta = job(policy).meta()
    body = json.loads(meta)
    assert body["v"] == 2 and body["rounds"] == 100
    assert body["adaptive"] == {"target": 0.02, "max_rounds": 3000, "budget_s": 60.0}
    assert protocol.parse_job(meta).rounds == policy


@pytest.mark.parametrize(("change", "message"), [
    ({"v": 1}, "unknown field(s) adaptive"),  # a version-1 job has no adaptive rounds
    ({"adaptive": {"target": 0.0, "max_rounds": 3000, "budget_s": 60}}, "target must be in (0, 0.5]"),
    ({"adaptive": {"target": 0.01, "max_rounds": 50, "budget_s": 60}}, "max_rounds from rounds"),
    ({"adaptive": {"target": 0.01, "max_rounds": 3000, "budget_s": 60, "x": 1}}, "adaptive: unknown field(s) x"),
    ({"adaptive": {"target": "1%", "max_rounds": 3000, "budget_s": 60}}, "field 'target' is missing or not"),
    ({"v": 3}, "protocol version 3 is not this worker's 1 or 2"),
])
def test_bad_adaptive_jobs_are_refused(change: dict[str, Any], message: str) -> None:
    body = {**json.loads(job(AdaptiveRounds()).meta()), **change}
    with pytest.raises(protocol.ProtocolError) as raised:
        protocol.parse_job(json.dumps(body).encode())
    assert message in str(raised.value)


def test_a_precision_target_without_auto_is_a_usage_error(parsing: OptionParsing) -> None:
    assert_one_line(parsing.usage_error("--prunebench-precision-target", "2%"), "--prunebench-precision-target",
                    "*--prunebench-precision-target apply to adaptive rounds: add --prunebench-rounds auto*")
    assert_one_line(parsing.usage_error("--prunebench-rounds", "many"), "--prunebench-rounds",
                    "*--prunebench-rounds: 'many' is not a whole number; use a whole number of rounds or auto*")
