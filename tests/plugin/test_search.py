"""End-to-end runs of hypothesis-generated cases, collapse handling and the seed's three suites.

Generated cases run on tiny settings (conftest.tiny_args). Collapse is only judged against a dense model that is
not itself at chance, and the tiny 1-epoch synthetic baseline is barely above it: the collapse runs use digits and a
3-epoch baseline (about 94% top1), trained once per xdist worker in `shared_cache`.
"""

from __future__ import annotations

import json
import re
import shutil
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from tiny import write_schedules

from pytest_prunebench.schedule import parse_schedule

REPO = Path(__file__).resolve().parents[2]
SUITES = ("test_rapid_pruning.py", "test_target_latency.py", "test_target_top1.py")
CFG = r"cfg-[0-9a-f]{12}"
HEADER = """\
from hypothesis import given, settings
from pytest_prunebench.strategies import SEARCH_SETTINGS, pruning_schedules
"""
# Three residual blocks of resnet20, each pruned by filters (conv1) or input channels (conv2), l1 or l2.
SEARCH_TEST = HEADER + """
LAYERS = {"filters": ["layer3.*.conv1"], "channels": ["layer3.*.conv2"]}

@SEARCH_SETTINGS  # max_examples=20: --prunebench-examples overrides it
@given(schedule=pruning_schedules("resnet20", layers=LAYERS, max_sparsity=0.1, step=0.02, prunebench={"epochs": 0}))
def test_search(prunebench, schedule):
    result = prunebench.run(schedule)
    assert result.macs < result.macs_dense
"""
GROUPS = {"layer3.0", "layer3.1", "layer3.2"}
SPARSITY_LEVELS = {0.02, 0.04, 0.06, 0.08, 0.1}
# The smallest space that still shrinks: which of three blocks, and a sparsity in 5 levels.
SHRINK_TEST = HEADER + """
from hypothesis import HealthCheck

@settings(deadline=None, max_examples=3,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schedule=pruning_schedules("resnet20", layers=["layer3.*.conv1"], kinds=["filters"], rankers=["l1"],
                                  max_sparsity=0.1, step=0.02, prunebench={"epochs": 0}))
def test_x(prunebench, schedule):
    prunebench.run(schedule)
"""
# Hypothesis' explain phase reruns the failing example ~70 times with parts varied (~70 cases, minutes), so the
# first run leaves it out; the second run only replays the example database: nothing runs unless it was saved.
# Both keep the example database on: under CI=true hypothesis' default profile has none.
PROFILES = """
from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

database = DirectoryBasedExampleDatabase(".hypothesis/examples")
settings.register_profile("search", phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                          database=database, derandomize=False)
settings.register_profile("replay", phases=[Phase.explicit, Phase.reuse], database=database, derandomize=False)
"""
# Measured: 90% of five convs' filters leave the 5-epoch digits resnet20 (99.4% top1) predicting one class, on one
# thread and on two (two convs were enough for the 97% baseline of batch 128, not for this one: 18% top1).
COLLAPSE_SCHEDULE = """\
version: 1
pruners:
  wide:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.9
    weights: [module.layer1.0.conv1.weight, module.layer2.0.conv1.weight, module.layer3.0.conv1.weight,
              module.layer3.1.conv1.weight, module.layer3.2.conv1.weight]
policies:
  - pruner: {instance_name: wide}
    epochs: [0]
prunebench:
  model: resnet20
"""

# The collapse runs keep the dense model's BatchNorm statistics: re-estimated ones (the default) rescue this
# schedule, as test_recalibrated_statistics_rescue_what_stale_ones_collapse shows.
STALE_BATCHNORM = ("--prunebench-bn-recalibration", "off")


@pytest.fixture
def digits_args(tiny_args: list[str]) -> list[str]:
    """tiny_args with a dense model that is not at chance (the later option wins)."""
    return [*tiny_args, "--prunebench-data", "digits", "--prunebench-baseline-epochs", "3"]


def cases_run(result: pytest.RunResult, test: str) -> list[str]:
    """Case names in the order they started, from the `prunebench: <name>: N pruner(s) ...` progress lines."""
    started = re.compile(rf"^prunebench: ({re.escape(test)}(?:\[[^\]]*\])?::{CFG}): .*pruner\(s\) on ")
    return [m.group(1) for line in result.stdout.lines if (m := started.match(line))]


def records(path: Path) -> dict[str, dict[str, Any]]:
    benchmarks = json.loads(path.read_text())["benchmarks"]
    by_name = {b["name"]: b for b in benchmarks}
    assert len(by_name) == len(benchmarks), f"one record per name: {[b['name'] for b in benchmarks]}"
    return by_name


def failure_configuration(result: pytest.RunResult) -> tuple[str, dict[str, Any]]:
    """The shrunk configuration a failed generated case prints: its name and the YAML that follows."""
    lines = result.stdout.lines
    # The first one: with CI=true pytest repeats whole failure messages in its short summary.
    start = next(i for i, line in enumerate(lines) if line.startswith("configuration cfg-"))
    name = re.fullmatch(rf"configuration ({CFG}) \(pruners at sparsity 0 left out\):", lines[start]).group(1)
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        body.append(line[2:])
    return name, yaml.safe_load("\n".join(body))


def test_every_example_is_its_own_case_and_record(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    pytester.makepyfile(test_search=SEARCH_TEST)
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "--prunebench-examples",
                                           "3", "--hypothesis-seed=1", "--benchmark-json=out.json")

    result.assert_outcomes(passed=1)
    started = cases_run(result, "test_search")
    assert len(started) == 3, f"--prunebench-examples 3 over the suite's max_examples=20: {started}"
    found = records(pytester.path / "out.json")
    assert set(found) == set(started)
    collapsed = sum(record["extra_info"]["collapsed"] for record in found.values())
    result.stdout.fnmatch_lines([f"*prunebench: {len(found)} case(s) on CPU, {collapsed} collapsed*"])
    for name, record in found.items():
        info = record["extra_info"]
        assert name == f"test_search::{info['schedule']}" and record["fullname"] == f"test_search.py::{name}"
        assert info["schedule"] == f"cfg-{info['schedule_hash'][:12]}", "named by the configuration's hash"
        sparsity = {key.removeprefix("sparsity."): value for key, value in info.items()
                    if key.startswith("sparsity.")}
        assert set(sparsity) == GROUPS, "every group's sparsity, drawn or not"
        drawn = {group for group, value in sparsity.items() if value > 0}
        assert drawn and all(sparsity[g] in SPARSITY_LEVELS for g in drawn)
        assert all(sparsity[g] == 0.0 for g in GROUPS - drawn)
        assert {info[f"kind.{g}"] for g in GROUPS} <= {"filters", "channels"}
        assert {info[f"ranker.{g}"] for g in GROUPS} <= {"l1", "l2"}
        assert info["collapsed"] is False and info["collapse_reason"] is None
        assert info["retrained_epochs"] == 0 and info["epochs"] == 0
        start, end = info["measured_at"]
        assert 0 < start < end
        assert info["macs"] < info["macs_dense"]


def test_a_failing_threshold_shrinks_and_the_database_replays_it(pytester: pytest.Pytester,
                                                                  tiny_args: list[str]) -> None:
    pytester.makeconftest(PROFILES)
    pytester.makepyfile(test_x=SHRINK_TEST)
    gate = ("--prunebench-threshold", "max_latency_ms=0.000001")  # no device is that fast: every case fails
    first = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", *gate,
                                          "--hypothesis-profile=search", "--benchmark-json=first.json")

    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["prunebench case failed:",
                                "  test_x::cfg-*: latency median * ms is above max_latency_ms 1e-06 "
                                "(--prunebench-threshold)",
                                "configuration cfg-* (pruners at sparsity 0 left out):"])
    shrunk, document = failure_configuration(first)
    # The minimal configuration: one pruner (the first group) at one step of sparsity; the others left out.
    assert document["pruners"] == {"layer3.0": {"class": "L1RankedStructureParameterPruner", "group_type": "Filters",
                                                "desired_sparsity": 0.02,
                                                "weights": ["module.layer3.0.conv1.weight"]}}
    assert document["policies"] == [{"pruner": {"instance_name": "layer3.0"}, "epochs": [0]}]
    assert document["prunebench"] == {"model": "resnet20", "epochs": 0}
    assert parse_schedule(document, "shrunk.yaml", "shrunk").describe() == [
        "layer3.0: filters l1 0.02 (layer3.0.conv1)"], "the printed configuration is a valid schedule"

    started = cases_run(first, "test_x")
    assert started.count(f"test_x::{shrunk}") >= 2, f"hypothesis replays the failing example: {started}"
    found = records(pytester.path / "first.json")  # failed cases keep their records, one per configuration
    assert set(found) == set(started)
    assert found[f"test_x::{shrunk}"]["extra_info"]["sparsity.layer3.0"] == 0.02

    second = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", *gate,
                                           "--hypothesis-profile=replay", "--benchmark-json=second.json")
    second.assert_outcomes(failed=1)
    replayed = cases_run(second, "test_x")
    assert replayed and replayed[0] == f"test_x::{shrunk}", f"the saved failure runs first, same name: {replayed}"
    assert failure_configuration(second) == (shrunk, document)
    assert list(records(pytester.path / "second.json"))[0] == f"test_x::{shrunk}"


def test_a_collapsed_case_fails_by_default_and_skips_retraining(pytester: pytest.Pytester,
                                                               digits_args: list[str]) -> None:
    write_schedules(pytester.path, collapse=COLLAPSE_SCHEDULE)
    shutil.copy(REPO / "bench_suites" / "test_schedules.py", pytester.path / "test_schedules.py")
    result = pytester.runpytest_subprocess(*digits_args, *STALE_BATCHNORM, "--prunebench-artifacts=artifacts",
                                           "--prunebench-epochs", "2", "--benchmark-json=out.json")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "prunebench case failed:",
        "  test_schedule[[]collapse[]] collapsed when pruned: it predicts a single class for every image *; "
        "retraining was skipped *; to record collapses without failing, mark the suite "
        "`pytest.mark.prunebench(on_collapse=\"record\")`",
    ])
    result.stdout.fnmatch_lines(["*prunebench: 1 case(s) on CPU, 1 collapsed*", "case *top1 %*",
                                 "test_schedule[[]collapse[]] [[]collapsed[]] *"])
    result.stdout.no_fnmatch_line("*retrain epoch*")
    info = records(pytester.path / "out.json")["test_schedule[collapse]"]["extra_info"]
    assert info["collapsed"] is True and "single class" in info["collapse_reason"]
    assert info["epochs"] == 2 and info["retrained_epochs"] == 0, "retraining is skipped once collapsed"
    assert info["top1_dense"] > 50 and info["top1_pruned"] <= 20
    assert info["sparsity.wide"] == 0.9


def test_on_collapse_record_keeps_the_case_and_the_closest_marker_wins(pytester: pytest.Pytester,
                                                                       digits_args: list[str]) -> None:
    gated = COLLAPSE_SCHEDULE + "  max_latency_ms: 0.000001\n"
    folder = write_schedules(pytester.path, collapse=COLLAPSE_SCHEDULE, gated=gated)
    pytester.makepyfile(test_marked=f"""
        import pytest

        pytestmark = pytest.mark.prunebench(on_collapse="record")

        def test_recorded(prunebench):
            result = prunebench.run({str(folder / "collapse.yaml")!r})
            assert result.collapsed and "single class" in result.collapse_reason

        def test_recorded_but_over_a_threshold(prunebench):
            prunebench.run({str(folder / "gated.yaml")!r})

        @pytest.mark.prunebench(on_collapse="fail")
        def test_strict(prunebench):
            prunebench.run({str(folder / "collapse.yaml")!r})
    """)
    result = pytester.runpytest_subprocess(*digits_args, *STALE_BATCHNORM, "--prunebench-artifacts=artifacts",
                                           "--prunebench-epochs", "0", "--benchmark-json=out.json")

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*prunebench: 3 case(s) on CPU, 3 collapsed*"])
    result.stdout.fnmatch_lines_random(["test_recorded [[]collapsed[]] *", "test_strict [[]collapsed[]] *",
                                        "test_recorded_but_over_a_threshold [[]collapsed[]] *"])
    result.stdout.fnmatch_lines_random(["FAILED test_marked.py::test_strict*",
                                        "FAILED test_marked.py::test_recorded_but_over_a_threshold*"])
    # A collapse over a threshold still fails, collapse first; the hint about on_collapse would be wrong there.
    result.stdout.fnmatch_lines(["  test_recorded_but_over_a_threshold collapsed when pruned: *no retraining was "
                                 "scheduled*seed's runs)",
                                 "  test_recorded_but_over_a_threshold: latency median * is above max_latency_ms*"])
    hint = 'pytest.mark.prunebench(on_collapse="record")'
    over = [line for line in result.stdout.lines if "test_recorded_but_over_a_threshold collapsed when" in line]
    strict = [line for line in result.stdout.lines if "test_strict collapsed when" in line]
    assert over and strict and not any(hint in line for line in over) and all(hint in line for line in strict)
    found = records(pytester.path / "out.json")
    assert set(found) == {"test_recorded", "test_recorded_but_over_a_threshold", "test_strict"}
    assert all(record["extra_info"]["collapsed"] is True for record in found.values())


def test_recalibrated_statistics_rescue_what_stale_ones_collapse(pytester: pytest.Pytester,
                                                                  digits_args: list[str]) -> None:
    """The schedule the collapse tests use, with the default BatchNorm re-estimation: not collapsed at all."""
    write_schedules(pytester.path, collapse=COLLAPSE_SCHEDULE)
    shutil.copy(REPO / "bench_suites" / "test_schedules.py", pytester.path / "test_schedules.py")
    result = pytester.runpytest_subprocess(*digits_args, "--prunebench-artifacts=artifacts", "--prunebench-epochs",
                                           "0", "--benchmark-json=out.json")

    result.assert_outcomes(passed=1)
    info = records(pytester.path / "out.json")["test_schedule[collapse]"]["extra_info"]
    assert info["bn_recalibration"] == 1024 and info["collapsed"] is False
    assert info["top1_pruned"] > 20, "the stale statistics' single class is at 10%"


def test_a_bad_prunebench_marker_fails_its_test_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.prunebench(on_collapse="maybe")
        def test_maybe(prunebench):
            pass

        @pytest.mark.prunebench(on_collapse="record", retries=2)
        def test_unknown(prunebench):
            pass

        @pytest.mark.prunebench("record")
        def test_positional(prunebench):
            pass

        @pytest.mark.prunebench(on_collapse="record")
        def test_fine(prunebench):
            assert prunebench.on_collapse == "record"
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")  # no case runs: in-process is safe

    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines_random([
        "test_bad.py::test_maybe: pytest.mark.prunebench(on_collapse='maybe'): use one of 'fail', 'record'",
        "test_bad.py::test_unknown: pytest.mark.prunebench takes only on_collapse=... and sweep=..., got retries",
        "test_bad.py::test_positional: pytest.mark.prunebench takes only on_collapse=... and sweep=..., "
        "got ('record',)",
    ])
    output = result.stdout.str()
    assert "Traceback" not in output and "collapse_policy" not in output and "\n>" not in output


def test_xdist_workers_hand_every_example_to_one_json_and_one_autosave(pytester: pytest.Pytester,
                                                                       tiny_args: list[str]) -> None:
    pytester.makepyfile(test_pair=HEADER + """
import pytest
from hypothesis import strategies as st

@pytest.mark.parametrize("ranker", ["l1", "l2"])
@SEARCH_SETTINGS
@given(data=st.data())
def test_pair(prunebench, ranker, data):
    prunebench.run(data.draw(pruning_schedules("resnet20", rankers=[ranker], max_sparsity=0.5,
                                               prunebench={"epochs": 0})))
""")
    storage = pytester.path / "storage"
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "-n", "2",
                                           "--prunebench-examples", "2", "--hypothesis-seed=0",
                                           "--benchmark-json=out.json", "--benchmark-autosave",
                                           f"--benchmark-storage=file://{storage}")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*prunebench: 4 case(s) on CPU, 0 collapsed*"])
    found = records(pytester.path / "out.json")
    assert len(found) == 4, sorted(found)
    for ranker in ("l1", "l2"):
        mine = {name: r for name, r in found.items() if name.startswith(f"test_pair[{ranker}]::cfg-")}
        assert len(mine) == 2, sorted(found)
        for record in mine.values():
            assert record["param"] == ranker and record["params"] == {"ranker": ranker}
            info = record["extra_info"]
            drawn = [k.removeprefix("sparsity.") for k, v in info.items() if k.startswith("sparsity.") and v > 0]
            assert drawn and all(info[f"ranker.{group}"] == ranker for group in drawn)
    (saved,) = storage.rglob("0001_*.json")
    assert {b["name"] for b in json.loads(saved.read_text())["benchmarks"]} == set(found)
    # One device, one measurement at a time, whichever worker runs the case.
    windows = sorted(tuple(r["extra_info"]["measured_at"]) for r in found.values())
    for (_, previous_end), (start, _) in pairwise(windows):
        assert start >= previous_end, windows


def test_the_seeds_suites_collect_as_prunebench_cases_without_torch(pytester: pytest.Pytester) -> None:
    for suite in SUITES:
        shutil.copy(REPO / "bench_suites" / suite, pytester.path / suite)
    pytester.makeconftest("""
        import sys

        def pytest_collection_finish(session):
            print(f"torch imported while collecting: {'torch' in sys.modules}")
    """)
    selected = pytester.runpytest_subprocess("--collect-only", "-q", "-m", "prunebench", "-p", "no:cacheprovider")

    assert selected.ret == 0, selected.stdout.str()
    selected.stdout.fnmatch_lines_random(["test_rapid_pruning.py::test_rapid_pruning*",
                                          "test_target_latency.py::test_target_latency",
                                          "test_target_top1.py::test_target_top1"])
    selected.stdout.fnmatch_lines(["torch imported while collecting: False"])
    items = [line for line in selected.stdout.lines if "::" in line]
    assert {item.split("::")[0] for item in items} == set(SUITES)
    deselected = pytester.runpytest_subprocess("--collect-only", "-q", "-m", "not prunebench", "-p",
                                               "no:cacheprovider")
    deselected.stdout.fnmatch_lines([f"no tests collected ({len(items)} deselected)*"])


def test_the_rapid_suite_runs_on_resnet20(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    suite = (REPO / "bench_suites" / "test_rapid_pruning.py").read_text()
    assert suite.count('"resnet56"') >= 1
    pytester.makepyfile(test_rapid_pruning=suite.replace('"resnet56"', '"resnet20"'))
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", "--prunebench-examples",
                                           "2", "--hypothesis-seed=0", "--benchmark-json=out.json")

    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1 and "failed" not in outcomes and "errors" not in outcomes, outcomes
    found = records(pytester.path / "out.json")
    assert len(found) == 2 * outcomes["passed"], sorted(found)
    blocks = {f"layer{stage}.{block}" for stage in (1, 2, 3) for block in range(3)}
    for name, record in found.items():
        assert re.fullmatch(rf"test_rapid_pruning(\[\w+\])?::{CFG}", name)
        info = record["extra_info"]
        sparsity = {k.removeprefix("sparsity."): v for k, v in info.items() if k.startswith("sparsity.")}
        assert set(sparsity) == blocks and any(v > 0 for v in sparsity.values())
        assert info["model"] == "resnet20" and info["retrained_epochs"] == 0
