"""`prunebench report` and --prunebench-report: pictures that hold drawn content, tables recomputed independently.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/plugin/test_report.py, tests/e2e/test_report.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_records import STRONG, rapid_records, write_json
from report_synthetic import synthetic_records

from pytest_prunebench.report import (
    PICTURES,
    Case,
    correlations,
    dense_points,
    load_cases,
    markdown,
    pareto_front,
    pearson,
    sparsity_bins,
    write_report,
)


@pytest.fixture
def cases(tmp_path: Path) -> list[Case]:
    return load_cases([write_json(tmp_path / "run.json", synthetic_records())])


def test_the_pareto_front_is_exactly_the_undominated_cases(cases: list[Case]) -> None:
    # The dense baseline is a point too: 96% top1 at its 1.0 ms (these records have no drift-corrected figure).
    names = [c.name for c in cases] + ["dense resnet20"]
    points = np.array([[c.info["top1"], c.info["latency_ms"]] for c in cases] + [[96.0, 1.0]])
    undominated = {names[i] for i, (top, lat) in enumerate(points)
                   if not np.any((points[:, 0] >= top) & (points[:, 1] <= lat) & ((points[:, 0] > top) |
                                                                                   (points[:, 1] < lat)))}
    front = pareto_front(cases)
    assert {c.name for c in front} == undominated and 1 <= len(front) < len(cases)
    assert "dense resnet20" in undominated  # the most accurate point: no case reaches 96%
    assert [c.info["latency_ms"] for c in front] == sorted(c.info["latency_ms"] for c in front)
    assert [c.info["top1"] for c in front] == sorted(c.info["top1"] for c in front)  # faster is less accurate


def test_correlations_equal_numpys_pearson(cases: list[Case]) -> None:
    rows = {pruner: (n, r_lat, r_top) for pruner, n, r_lat, r_top in correlations(cases)}
    assert set(rows) == {"a", "b", "c"}
    for pruner in ("a", "b", "c"):
        having = [c for c in cases if f"sparsity.{pruner}" in c.info]
        xs = [c.info[f"sparsity.{pruner}"] for c in having]
        n, r_lat, r_top = rows[pruner]
        assert n == len(having)
        assert r_lat == pytest.approx(np.corrcoef(xs, [c.info["latency_ms"] for c in having])[0, 1], abs=1e-12)
        assert r_top == pytest.approx(np.corrcoef(xs, [c.info["top1"] for c in having])[0, 1], abs=1e-12)
    assert rows["a"][1] < -0.9 and rows["b"][2] < -0.9  # the relations the records were built with
    strengths = [abs(r_lat) for _, _, r_lat, _ in correlations(cases)]
    assert strengths == sorted(strengths, reverse=True)  # strongest |r(latency)| first


def test_pearson_is_undefined_for_too_few_or_constant_values() -> None:
    assert pearson([0.1, 0.2], [1.0, 2.0]) is None
    assert pearson([0.5, 0.5, 0.5], [1.0, 2.0, 3.0]) is None
    assert pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(1.0)


def test_sparsity_bins_are_002_wide_means() -> None:
    cases = [Case(f"c{i}", {"sparsity.p": s, "latency_ms": lat})
             for i, (s, lat) in enumerate([(0.0, 1.0), (0.01, 3.0), (0.02, 5.0), (0.5, 7.0), (0.51, 9.0)])]
    assert sparsity_bins(cases, "p") == [(0.0, 2.0, 2), (0.02, 5.0, 1), (0.5, 8.0, 2)]


def test_records_of_several_files_merge_and_same_names_are_told_apart(tmp_path: Path) -> None:
    records = synthetic_records(3)
    first = write_json(tmp_path / "main.json", records)
    second = write_json(tmp_path / "branch.json", [*records[:1], {"name": "other", "stats": {}}])  # not ours
    cases = load_cases([first, second])
    names = [c.name for c in cases]
    assert len(names) == 4 and len(set(names)) == 4
    assert f"main:{records[0]['fullname']}" in names and f"branch:{records[0]['fullname']}" in names


def test_markdown_marks_undefined_correlations() -> None:
    cases = [Case("only", {"top1": 90.0, "latency_ms": 1.0, "sparsity.p": 0.5})]
    assert "| p | 1 | 1 | – | – |" in markdown(cases)


def test_markdown_says_fine_grained_masks_do_not_shrink_dense_latency_and_shows_reached_sparsity() -> None:
    agp = Case("agp", {"top1": 90.0, "latency_ms": 1.0, "sparsity.low": 0.5, "reached.low": 0.094,
                       "kind.low": "filters", "sparsity.fine": 0.7, "reached.fine": 0.05, "kind.fine": "elements"})
    text = markdown([agp])
    assert "| agp | low | filters | 0.5 | 0.094 |  |" in text  # a cut timeline: far short of its target
    assert "| agp | fine | elements | 0.7 | 0.050 | fine-grained zeros: the tensor keeps its dense shape" in text
    assert "they do not shrink dense latency" in text
    surgery = Case("surgery", {"top1": 90.0, "latency_ms": 1.0, "reached.dns": 0.61, "kind.dns": "elements"})
    assert "| surgery | dns | elements | – | 0.610 | fine-grained zeros" in markdown([surgery])  # no target
    plain = markdown([Case("old", {"top1": 90.0, "latency_ms": 1.0, "sparsity.p": 0.5, "kind.p": "filters"})])
    assert "desired and reached" not in plain and "do not shrink" not in plain


def test_a_report_without_single_group_cases_has_no_sensitivity(tmp_path: Path, cases: list[Case]) -> None:
    written = write_report(cases, tmp_path / "out")
    assert not (tmp_path / "out" / "sensitivity.png").exists() and len(written) == len(PICTURES) + 3
    assert "Sensitivity" not in (tmp_path / "out" / "report.md").read_text()


# -- drift-corrected latency --------------------------------------------------------------------------------------


def drifted_cases() -> list[Case]:
    """The issue's finding: a case with the dense model's MACs measured in a fast window (0.675 ms absolute, speed-up
    1.0) beside truly pruned cases measured in slow windows. Session reference: dense at 0.97 ms."""
    def case(name: str, absolute: float, speedup: float, top1: float, macs: int) -> Case:
        return Case(name, {"model": "resnet56", "device": "CPU", "precision": "bf16", "top1": top1,
                           "latency_ms": absolute, "latency_ms_dense": absolute * speedup, "latency_speedup": speedup,
                           "latency_ms_ref": 0.97, "latency_ms_rel": 0.97 / speedup, "top1_dense": 99.0,
                           "macs": macs, "macs_dense": 1000, "sparsity.a": 1 - macs / 1000})
    return [case("dense-macs", 0.675, 1.0, 99.0, 1000), case("half", 1.10, 1.40, 98.0, 500),
            case("third", 1.30, 1.15, 98.5, 700)]


def test_the_pareto_front_ranks_drift_corrected_latency_not_the_window() -> None:
    cases = drifted_cases()
    assert min(cases, key=lambda c: c.info["latency_ms"]).name == "dense-macs"  # what the absolute median says
    front = pareto_front(cases)
    # Fastest first: the half-MAC case; the case that removed no structure is the dense model again (the baseline).
    assert [c.name for c in front] == ["half", "third", "dense resnet56"]
    assert front[0].info["macs"] < front[0].info["macs_dense"]
    assert dense_points(cases) == {"resnet56": (0.97, 99.0)}  # the dense star sits at the session's reference


def test_a_case_that_removed_no_structure_is_not_the_fronts_fastest_point_when_noise_favours_it() -> None:
    """A rapid run's 0.02 of a conv that rounds to no channel: the dense model timed again, here 3% faster by noise
    (and in a fast window). Without setting it apart it would be the front's fastest point."""
    nothing, faster, third = drifted_cases()
    noisy = Case(nothing.name, {**nothing.info, "latency_speedup": 1.03, "latency_ms_rel": 0.97 / 1.03})
    slower = Case(third.name, {**third.info, "latency_speedup": 0.98, "latency_ms_rel": 0.97 / 0.98})
    slight = Case(faster.name, {**faster.info, "latency_speedup": 1.01, "latency_ms_rel": 0.97 / 1.01,
                                "latency_speedup_ci": [1.0, 1.02], "latency_ms_rel_ci": [0.97 / 1.02, 0.97]})
    front = pareto_front([noisy, slight, slower])
    assert noisy.latency < slight.latency  # what ranking it with the others would make the fastest point
    assert [c.name for c in front] == ["half", "dense resnet56"] and front[0].info["macs"] < 1000
    text = markdown([noisy, slight, slower])
    assert "| half | 98.00 | 0.960 [0.951-0.970] | 1.01 [1.00-1.02] | 500 |" in text  # with its intervals
    assert "1 case(s) removed no structure" in text and "spans 1.030-1.030" in text
    assert "No case that removed structures is faster" not in text
    # On a host where pruning buys nothing, the dense baseline is the front's fastest point, and the report says so.
    slow = [noisy, Case("half", {**faster.info, "latency_speedup": 0.95, "latency_ms_rel": 0.97 / 0.95})]
    assert [c.name for c in pareto_front(slow)] == ["dense resnet56"]
    assert "No case that removed structures is faster than the dense model: the fastest, half, has a latency " \
           "speed-up of 0.950." in markdown(slow)


def test_correlations_and_bins_use_the_drift_corrected_latency() -> None:
    cases = drifted_cases()
    (_, _, r_latency, _), = correlations(cases)
    assert r_latency == pytest.approx(pearson([c.sparsities["a"] for c in cases],
                                              [c.info["latency_ms_rel"] for c in cases]))
    assert r_latency < -0.9  # the absolute medians would give a positive r here
    assert pearson([c.sparsities["a"] for c in cases], [c.info["latency_ms"] for c in cases]) > 0
    assert sparsity_bins(cases, "a")[0][1] == pytest.approx(0.97)


def test_with_only_the_dense_baseline_on_the_front_filters_png_shows_the_most_accurate_pruned_case(
        tmp_path: Path) -> None:
    structures = tmp_path / "s.json"
    structures.write_text(json.dumps({"layer1.0.conv1": {"pruner": "a", "kind": "filters", "ranker": "l1",
                                                         "scores": [0.5, 0.1, 0.9], "removed": [1], "total": 3}}))
    nothing, half, third = drifted_cases()
    slower = [Case(c.name, {**c.info, "latency_speedup": 0.9, "latency_ms_rel": 0.97 / 0.9,
                            "structures_path": str(structures)}) for c in (half, third)]
    assert [c.name for c in pareto_front([nothing, *slower])] == ["dense resnet56"]
    written = write_report([nothing, *slower], tmp_path / "out")
    assert tmp_path / "out" / "filters.png" in written
    assert "`filters.png` shows third." in (tmp_path / "out" / "report.md").read_text()  # 98.5% beats 98%


def test_the_markdown_says_which_latency_it_compares() -> None:
    text = markdown(drifted_cases())
    assert "Latency: drift-corrected (`latency_ms_rel`)" in text
    assert "| dense-macs | – | 99.00 | 0.970 | 0.675 |" in text  # what it pruned (nothing), corrected, absolute
    assert "| half | a 0.5 | 98.00 | 0.693 | 1.100 |" in text
    old = markdown([Case("old", {"top1": 90.0, "latency_ms": 1.0, "sparsity.p": 0.5})])
    assert "no drift-corrected" in old


def test_records_of_two_sessions_are_rescaled_to_one_reference(tmp_path: Path) -> None:
    def record(name: str, ref: float, speedup: float) -> dict[str, Any]:
        info = {"model": "resnet56", "device": "CPU", "precision": "bf16", "top1": 90.0, "latency_ms": 9.9,
                "latency_speedup": speedup, "latency_ms_ref": ref, "latency_ms_rel": ref / speedup,
                "latency_ms_rel_ci": [0.9 * ref / speedup, 1.1 * ref / speedup]}
        return {"name": name, "fullname": name, "extra_info": info}

    slow = write_json(tmp_path / "slow.json", [record("a", 1.5, 2.0)])
    fast = write_json(tmp_path / "fast.json", [record("b", 0.5, 1.0), record("c", 0.5, 4.0)])
    cases = {c.name: c for c in load_cases([slow, fast])}
    common = 1.0  # the median of the two sessions' references
    assert cases["a"].latency == pytest.approx(common / 2.0) and cases["b"].latency == pytest.approx(common / 1.0)
    assert cases["c"].latency == pytest.approx(common / 4.0)
    assert cases["a"].info["latency_ms_rel_session"] == pytest.approx(0.75)
    assert cases["a"].latency_interval == pytest.approx([0.45, 0.55])  # the interval moves with its figure
    assert cases["a"].info["latency_ms_rel_ci_session"] == pytest.approx([0.675, 0.825])
    assert "rescaled to one reference" in markdown(list(cases.values()))
    single = load_cases([fast])  # one session: nothing to rescale
    assert all("latency_ms_rel_session" not in c.info for c in single)


# -- a rapid run's report: readable seed figures -------------------------------------------------------------------


@pytest.fixture
def rapid(tmp_path: Path) -> list[Case]:
    return load_cases([write_json(tmp_path / "rapid.json", rapid_records())])


def test_the_sparsity_chart_shows_the_strongest_pruners_with_their_bins_and_counts(rapid: list[Case]) -> None:
    from pytest_prunebench.report import CHART_PRUNERS, chart_pruners, sparsity_figure

    chosen = chart_pruners(rapid)
    assert len(chosen) == CHART_PRUNERS == 6 and {p for p, _ in chosen[:3]} == set(STRONG)
    strengths = {pruner: abs(r_lat) for pruner, _, r_lat, _ in correlations(rapid) if r_lat is not None}
    assert min(strengths[p] for p, _ in chosen) >= max(v for p, v in strengths.items() if p not in dict(chosen))
    fig, shown = sparsity_figure(rapid)
    try:
        assert shown == [p for p, _ in chosen]
        tops, bottoms = fig.axes[0::2], fig.axes[1::2]
        assert [ax.get_title().split(":")[0] for ax in tops] == shown
        for pruner, top, bottom in zip(shown, tops, bottoms, strict=True):
            bins = sparsity_bins(rapid, pruner)
            assert [round(b.get_x() + b.get_width() / 2, 6) for b in bottom.patches] == [
                round(start + 0.01, 6) for start, _, _ in bins]  # one bar per 0.02-wide bin, at its centre
            assert {round(b.get_width(), 6) for b in bottom.patches} == {0.018}
            assert [b.get_height() for b in bottom.patches] == [n for _, _, n in bins]
            assert [t.get_text() for t in bottom.texts] == [str(n) for _, _, n in bins]  # the count, written
            (means,) = [line for line in top.get_lines() if line.get_label() == "mean per bin"]
            assert list(means.get_ydata()) == pytest.approx([mean for _, mean, _ in bins])
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_case_and_pareto_tables_and_the_csv_columns_are_those_written_before_the_field_table() -> None:
    """report.py wrote these for these records when its columns were listed by hand; now they come from
    record.FIELDS. Three slow cases put the dense baseline alone on the front; `old` has no latency_ms_rel."""
    from pytest_prunebench.report import cases_csv

    cases = [Case(f"s.py::slow{i}", {"model": "resnet20", "top1": 80.0 + i, "latency_ms": 2.0 + i,
                                     "latency_ms_rel": 2.0 + i, "latency_ms_rel_ci": [1.9 + i, 2.1 + i],
                                     "latency_ms_ref": 1.0, "top1_dense": 90.0, "latency_speedup": 0.5,
                                     "latency_speedup_ci": [0.4, 0.6], "macs": 10 - i, "macs_dense": 20,
                                     "params": 5, "collapsed": False}) for i in range(3)]
    cases.append(Case("s.py::old", {"model": "resnet20", "top1": 85.0, "latency_ms": 1.5, "latency_ms_ci": [1.4, 1.6],
                                    "top1_dense": 90.0, "macs": 5, "macs_dense": 20, "mac_speedup": 4.0}))
    text = markdown(cases)
    assert """| case | top1 % | latency ms [95%] | speed-up [95%] | MACs |
|---|---|---|---|---|
| dense resnet20 (baseline) | 90.00 | 1.000 | 1 (reference) | 20 |
""" in text
    assert """| case | pruned (sparsity > 0) | top1 % | latency ms [95%] | absolute ms | speed-up [95%] | MAC speed-up \
| params | MACs | collapsed |
|---|---|---|---|---|---|---|---|---|---|
| s.py::slow0 | – | 80.00 | 2.000 [1.900-2.100] | 2.000 | 0.50 [0.40-0.60] | – | 5 | 10 |  |
| s.py::slow1 | – | 81.00 | 3.000 [2.900-3.100] | 3.000 | 0.50 [0.40-0.60] | – | 5 | 9 |  |
| s.py::slow2 | – | 82.00 | 4.000 [3.900-4.100] | 4.000 | 0.50 [0.40-0.60] | – | 5 | 8 |  |
| s.py::old | – | 85.00 | 1.500 [1.400-1.600] | 1.500 | – | 4.00 | – | 5 |  |
""" in text
    assert cases_csv(cases).splitlines()[0] == (
        "case,latency_compared_ms,on_pareto_front,removed_no_structure,top1,latency_ms_rel,latency_ms_rel_ci_low,"
        "latency_ms_rel_ci_high,latency_ms,latency_ms_ci_low,latency_ms_ci_high,latency_speedup,"
        "latency_speedup_ci_low,latency_speedup_ci_high,mac_speedup,params,macs,collapsed,model,latency_ms_ref,"
        "top1_dense,macs_dense")
