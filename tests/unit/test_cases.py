"""The session's logic around a case, on a fake runner: pass or fail, thresholds, the collapse policy, record
names, the weak-baseline stop, sweep grid points, and the xdist roles' spool and hand-over.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
same paths run end to end in tests/plugin/test_plugin.py, test_sweep.py and test_end_to_end.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tiny import CHANNELS_SCHEDULE

from pytest_prunebench.benchmark_records import BenchmarkRecords
from pytest_prunebench.case import CaseResult
from pytest_prunebench.cases import CaseService, Record
from pytest_prunebench.collect import Collector
from pytest_prunebench.errors import PrunebenchWarning, WeakBaselineError
from pytest_prunebench.schedule import Schedule, load_schedule
from pytest_prunebench.schedule.model import GENERATED_PREFIX
from pytest_prunebench.session_end import SessionEnd
from pytest_prunebench.settings import Settings
from pytest_prunebench.xdist_roles import SPOOL_KEY, WORKER_RECORDS, Controller, Worker

GRID = Path(__file__).resolve().parents[2] / "sweeps" / "rapid_grid.yaml"


def result(name: str, **values: Any) -> CaseResult:
    """A plausible CaseResult: top1 90 of a dense 91, 1 ms against a 2 ms dense model; `values` override."""
    base: dict[str, Any] = dict(
        name=name, model="resnet20", dataset="digits", device="CPU", schedule="s", schedule_hash="h", epochs=0,
        top1=90.0, top5=99.0, top1_pruned=90.0, top1_dense=91.0, params=10, params_dense=20, weights=8,
        weights_dense=16, macs=100, macs_dense=200, onnx_bytes=1000, onnx_path="c.onnx",
        latencies_s=(0.001, 0.0011), latency_ms=1.0, latency_ms_dense=2.0, throughput_fps=1000.0,
        collapse_reason=None, precision="f32", sparsities={}, measured_at=(0.0, 1.0))
    return CaseResult(**{**base, **values})


@dataclass
class FakeRunner:
    """Returns a constructed result named as asked; `outcome` sets its figures, or raises."""

    outcome: Callable[[Schedule], dict[str, Any]] = lambda _schedule: {}
    calls: list[tuple[Schedule, str | None, Any]] = field(default_factory=list)

    def run(self, schedule: Schedule, name: str | None = None, *,
            on_epoch: Callable[[int, float], bool] | None = None) -> CaseResult:
        self.calls.append((schedule, name, on_epoch))
        return result(name or schedule.name, **self.outcome(schedule))


@dataclass
class ListSink:
    records: list[Record] = field(default_factory=list)
    amended: list[tuple[set[str], dict[str, Any]]] = field(default_factory=list)

    def record(self, record: Record) -> None:
        self.records.append(record)

    def amend(self, names: set[str], fields: dict[str, Any]) -> None:
        self.amended.append((names, fields))


@dataclass
class Watcher:
    seen: list[tuple[str, Any]] = field(default_factory=list)

    def case_starting(self) -> None:
        self.seen.append(("starting", None))

    def case_finished(self, node: Any, result: CaseResult, passed: bool) -> None:
        self.seen.append((result.name, passed))


def node(name: str = "test_case") -> Any:
    """What the service reads of a pytest item."""
    return SimpleNamespace(name=name, nodeid=f"suite.py::{name}", path=Path("suite.py"),
                           session=SimpleNamespace(shouldfail=False))


def service(runner: FakeRunner, settings: Settings | None = None, sink: Any = None,
            watcher: Watcher | None = None) -> CaseService:
    return CaseService(settings or Settings(warmup=7), lambda: runner, sink if sink is not None else ListSink(),
                       lambda _message: None, watcher)


@pytest.fixture
def schedule(tmp_path: Path) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text(CHANNELS_SCHEDULE, encoding="utf-8")
    return path


@pytest.fixture
def gated(tmp_path: Path) -> Path:
    """The channels schedule with min_top1 95: a case at top1 90 misses it."""
    path = tmp_path / "gated.yaml"
    path.write_text(CHANNELS_SCHEDULE + "  min_top1: 95\n", encoding="utf-8")
    return path


# -- pass or fail -----------------------------------------------------------------------------------------------

def test_a_passing_case_is_recorded_under_the_test_name(schedule: Path) -> None:
    runner, sink = FakeRunner(), ListSink()
    outcome = service(runner, sink=sink).run_case(node(), schedule, None)
    assert outcome.name == "test_case" and runner.calls[0][1] == "test_case"
    (record,) = sink.records
    assert record["name"] == "test_case" and record["fullname"] == "suite.py::test_case"
    assert record["samples"] == [0.001, 0.0011] and record["param"] is None
    assert record["options"]["warmup"] == 7 and record["options"]["min_rounds"] == 2
    assert record["extra_info"]["top1"] == 90.0 and record["extra_info"]["latency_speedup"] == 2.0


def test_a_missed_schedule_threshold_fails_with_one_line_after_recording(gated: Path) -> None:
    sink = ListSink()
    with pytest.raises(pytest.fail.Exception) as failed:
        service(FakeRunner(), sink=sink).run_case(node(), gated, None)
    assert str(failed.value) == (f"prunebench case failed:\n  test_case: top1 90% is below min_top1 95% ({gated})")
    assert len(sink.records) == 1  # recorded before the verdict


def test_a_threshold_option_replaces_the_schedules_bound_for_every_case(gated: Path) -> None:
    lenient = Settings(thresholds=(("min_top1", 50.0),))
    assert service(FakeRunner(), lenient).run_case(node(), gated, None).top1 == 90.0
    strict = Settings(thresholds=(("min_latency_speedup", 3.0),))
    with pytest.raises(pytest.fail.Exception, match=r"below min_latency_speedup 3x \(--prunebench-threshold\)"):
        service(FakeRunner(), strict).run_case(node(), gated, None)


def test_a_collapse_fails_under_the_fail_policy_and_is_recorded_under_record(schedule: Path, gated: Path) -> None:
    collapsed = FakeRunner(lambda _s: {"collapse_reason": "top1 10% is chance"})
    with pytest.raises(pytest.fail.Exception) as failed:
        service(collapsed).run_case(node(), schedule, None, "fail")
    assert "test_case collapsed when pruned: top1 10% is chance; no retraining was scheduled" in str(failed.value)
    assert 'pytest.mark.prunebench(on_collapse="record")' in str(failed.value)
    assert service(collapsed).run_case(node(), schedule, None, "record").collapsed
    # Recorded, but another bound missed: the collapse explains it (first), without the marker hint.
    with pytest.raises(pytest.fail.Exception) as both:
        service(collapsed).run_case(node(), gated, None, "record")
    lines = str(both.value).splitlines()
    assert lines[1].startswith("  test_case collapsed when pruned") and "on_collapse" not in lines[1]
    assert "below min_top1 95%" in lines[2]


def test_an_early_terminated_case_is_recorded_and_never_fails_its_thresholds(gated: Path) -> None:
    sink = ListSink()
    stopped = FakeRunner(lambda _s: {"early_terminated": True, "top1": 20.0})
    outcome, _schedule, failures, record = service(stopped, sink=sink).case(node(), gated, None, "fail")
    assert outcome.early_terminated and failures == [] and sink.records == [record]


def test_a_weak_baseline_stops_the_session_and_fails_the_test_with_its_line(schedule: Path) -> None:
    def weak(_schedule: Schedule) -> dict[str, Any]:
        raise WeakBaselineError("resnet20 on digits: dense top1 40% is below the floor 90%")

    item = node()
    with pytest.raises(pytest.fail.Exception, match="dense top1 40% is below the floor 90%"):
        service(FakeRunner(weak)).run_case(item, schedule, None)
    assert item.session.shouldfail == "resnet20 on digits: dense top1 40% is below the floor 90%"


def test_the_watcher_sees_every_case_start_and_its_verdict(schedule: Path, gated: Path) -> None:
    watcher = Watcher()
    cases = service(FakeRunner(), watcher=watcher)
    cases.run_case(node("a"), schedule, None)
    with pytest.raises(pytest.fail.Exception):
        cases.run_case(node("b"), gated, None)
    assert watcher.seen == [("starting", None), ("a", True), ("starting", None), ("b", False)]


# -- record names -----------------------------------------------------------------------------------------------

def test_a_tests_later_and_named_cases_get_their_own_record_names(schedule: Path) -> None:
    sink = ListSink()
    cases = service(FakeRunner(), sink=sink)
    item = node()
    cases.run_case(item, schedule, None)
    cases.run_case(item, schedule, None)  # a second unnamed case: named by its schedule
    cases.run_case(item, schedule, "wide")
    cases.run_case(node("other"), schedule, "first")  # named, even as its test's first case
    loaded = load_schedule(schedule)
    assert [r["fullname"] for r in sink.records] == [
        "suite.py::test_case", f"suite.py::test_case::{loaded.name}", "suite.py::test_case::wide",
        "suite.py::other::first"]


def test_a_generated_schedule_is_always_named_by_its_configuration(schedule: Path) -> None:
    sink = ListSink()
    drawn = replace(load_schedule(schedule), path=f"{GENERATED_PREFIX} example>")
    service(FakeRunner(), sink=sink).run_case(node(), drawn, None)
    assert sink.records[0]["name"] == f"test_case::{drawn.name}"


def test_amended_fields_reach_the_record_and_the_sinks_copies(schedule: Path) -> None:
    sink = ListSink()
    cases = service(FakeRunner(), sink=sink)
    _result, _schedule, _failures, record = cases.case(node(), schedule, None, "fail")
    cases.amend_records([record], on_pareto_front=True)
    assert record["extra_info"]["on_pareto_front"] is True
    assert sink.amended == [({"suite.py::test_case"}, {"on_pareto_front": True})]


# -- sweeps -----------------------------------------------------------------------------------------------------

def test_a_grid_sweep_is_one_case_per_point_and_a_study_runs_it_as_one() -> None:
    definition = SimpleNamespace(iter_markers=lambda _name: iter(()), nodeid="suite.py::test_sweep",
                                 path=Path("suite.py"))
    points = Collector(Settings(sweeps=(str(GRID),))).sweep_points(definition)  # type: ignore[arg-type]
    assert [p.values for p in points] == [{"model": "resnet20", "epochs": 0, "sparsity.layer2": a,
                                           "sparsity.layer3": b} for a in (0.25, 0.5) for b in (0.25, 0.5)]
    assert points[1].case_id() == "rapid_grid:sparsity.layer2=0.25,sparsity.layer3=0.5"
    searched = Collector(Settings(sweeps=(str(GRID),), study="sqlite:///s.db")).sweep_points(definition)  # type: ignore[arg-type]
    assert [p.values for p in searched] == [None]


def test_a_grid_point_runs_its_schedule_under_its_configuration_name() -> None:
    definition = SimpleNamespace(iter_markers=lambda _name: iter(()), nodeid="suite.py::test_sweep",
                                 path=Path("suite.py"))
    point = Collector(Settings(sweeps=(str(GRID),))).sweep_points(definition)[3]  # type: ignore[arg-type]
    runner, sink = FakeRunner(), ListSink()
    cases = service(runner, sink=sink)
    (outcome,) = cases.run_sweep(node("test_sweep"), point, "fail")
    ran = runner.calls[0][0]
    assert ran == cases.sweep_schedule(point) and ran.generated
    assert {p.name: p.desired_sparsity for p in ran.pruners} == {"layer2": 0.5, "layer3": 0.5}
    assert outcome.name == sink.records[0]["name"] == f"test_sweep::{ran.name}"


# -- where records go: pytest-benchmark's session, or an xdist worker's spool ---------------------------------------

def test_without_pytest_benchmark_a_record_warns_and_still_reaches_the_summary() -> None:
    records = BenchmarkRecords(SimpleNamespace(), Settings())  # type: ignore[arg-type]
    record = {"name": "a", "fullname": "s.py::a", "extra_info": {"top1": 1.0}}
    with pytest.warns(PrunebenchWarning, match="pytest-benchmark is not active"):
        records.record(record)
    records.amend({"s.py::a"}, {"on_pareto_front": False})
    assert records.rows == [{"name": "a", "fullname": "s.py::a", "top1": 1.0, "on_pareto_front": False}]


def test_a_worker_spools_each_record_and_hands_the_latest_over(tmp_path: Path) -> None:
    worker = Worker({SPOOL_KEY: str(tmp_path), "workerid": "gw1"})
    for top1 in (1.0, 2.0):  # a replayed case: one record, the latest
        worker.record({"name": "a", "fullname": "s.py::a", "extra_info": {"top1": top1}})
    spooled = [json.loads(line) for line in (tmp_path / "gw1.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["extra_info"]["top1"] for r in spooled] == [1.0, 2.0]
    session = SimpleNamespace(config=SimpleNamespace(workeroutput={}))
    worker.session_finish(session)  # type: ignore[arg-type]
    assert session.config.workeroutput[WORKER_RECORDS] == [{"name": "a", "fullname": "s.py::a",
                                                             "extra_info": {"top1": 2.0}}]


def test_the_controller_records_handed_over_and_spooled_records_once(tmp_path: Path) -> None:
    settings = Settings()
    records = BenchmarkRecords(SimpleNamespace(), settings)  # type: ignore[arg-type]
    controller = Controller(settings, records, SessionEnd(settings, records, lambda _message: None))
    spool = controller.spool_dir()
    spooled = {"name": "a", "fullname": "s.py::a", "extra_info": {"top1": 1.0}}
    handed = {**spooled, "extra_info": {"top1": 1.0, "on_pareto_front": True}}  # amended after it was spooled
    lost = {"name": "b", "fullname": "s.py::b", "extra_info": {"top1": 2.0}}
    (spool / "gw0.jsonl").write_text(json.dumps(spooled) + "\n" + json.dumps(lost) + '\n{"name": "c", "ful',
                                     encoding="utf-8")  # a worker killed while writing its last line
    with pytest.warns(PrunebenchWarning):
        controller.node_down(SimpleNamespace(workeroutput={WORKER_RECORDS: [handed]}))
        controller.collect_spooled()
    assert [row["fullname"] for row in records.rows] == ["s.py::a", "s.py::b"]
    assert records.rows[0]["on_pareto_front"] is True  # the handed-over record, not its older spooled line
    assert not spool.exists()
