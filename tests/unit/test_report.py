"""`prunebench report` and --prunebench-report: pictures that hold drawn content, tables recomputed independently."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_records import STRONG, rapid_records, write_json

from pytest_prunebench.report import (
    PICTURES,
    Case,
    ReportError,
    correlations,
    dense_points,
    load_cases,
    markdown,
    pareto_front,
    pearson,
    sparsity_bins,
    write_report,
)

RNG = np.random.default_rng(7)


def synthetic_records(count: int = 12) -> list[dict[str, Any]]:
    """Records shaped like the plugin's: latency falls with sparsity of `a`, top1 with sparsity of `b`."""
    records = []
    for index in range(count):
        a, b = round(float(RNG.uniform(0, 0.8)), 2), round(float(RNG.uniform(0, 0.8)), 2)
        info = {"model": "resnet20", "top1": 95 - 20 * b + float(RNG.normal(0, 1)),
                "latency_ms": 1.0 - 0.5 * a + float(RNG.normal(0, 0.02)), "latency_ms_dense": 1.0,
                "top1_dense": 96.0, "latency_speedup": 1.1 + a, "mac_speedup": 1.0 + 1.5 * a, "params": 1000 - index,
                "params_dense": 1200, "macs": 5000 - index, "macs_dense": 6000, "onnx_bytes": 40000 + index,
                "collapsed": index == 3, "collapse_reason": "predicts one class" if index == 3 else None,
                "sparsity.a": a, "sparsity.b": b}
        if index % 4 == 0:
            info["sparsity.c"] = 0.1 * (index // 4)  # only some cases have pruner c
        name = f"test_rapid[x]::cfg-{index:012d}"
        records.append({"name": name, "fullname": f"s.py::{name}", "stats": {"median": info["latency_ms"] / 1000},
                        "extra_info": info})
    return records


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


def test_the_report_writes_pictures_with_drawn_content_and_tables(tmp_path: Path, cases: list[Case]) -> None:
    import matplotlib.image

    written = write_report(cases, tmp_path / "out")
    assert [p.name for p in written] == [*PICTURES, "cases.csv", "report.md", "index.html"]
    for name in PICTURES:
        image = matplotlib.image.imread(tmp_path / "out" / name)
        assert image.shape[0] > 300 and image.shape[1] > 300
        colours = np.unique(image.reshape(-1, image.shape[-1]).round(2), axis=0)
        assert len(colours) > 20, name  # axes, labels, points: not a blank canvas
    text = (tmp_path / "out" / "report.md").read_text()
    for pruner, n, r_lat, r_top in correlations(cases):
        pruned = sum(1 for c in cases if c.info.get(f"sparsity.{pruner}", 0) > 0)
        assert f"| {pruner} | {n} | {pruned} | {r_lat:.3f} | {r_top:.3f} |" in text
    pareto_section = text.split("## Pareto set")[1].split("##")[0]
    rows = [line.split("|")[1].strip() for line in pareto_section.splitlines() if line.startswith("| ")][1:]
    assert rows == [c.name + (" (baseline)" if c.name.startswith("dense ") else "") for c in pareto_front(cases)]
    assert f"- {cases[3].name}: predicts one class" in text
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(PICTURES) and 'src="pareto.png"' not in page


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


def sensitivity_records() -> list[dict[str, Any]]:
    """Two groups pruned alone at three sparsities: `b` loses accuracy faster than `a`."""
    records = []
    for group, slope in (("a", 5.0), ("b", 40.0)):
        for sparsity in (0.3, 0.1, 0.5):
            info = {"model": "resnet20", "top1": 90 - slope * sparsity, "top1_dense": 90.0,
                    "latency_ms": 1.0 - sparsity / 2, "latency_ms_dense": 1.0, f"sparsity.{group}": sparsity}
            name = f"test_sensitivity[{group}-{sparsity}]"
            records.append({"name": name, "fullname": f"s.py::{name}", "stats": {}, "extra_info": info})
    return records


def test_sensitivity_curves_rank_groups_by_their_mean_accuracy_drop(tmp_path: Path) -> None:
    import matplotlib.image

    from pytest_prunebench.report import sensitivities

    cases = load_cases([write_json(tmp_path / "sense.json", sensitivity_records() + synthetic_records(4))])
    curves = sensitivities(cases)  # the synthetic records prune two groups at once: not part of any curve
    assert [c.pruner for c in curves] == ["a", "b"]
    assert [x for x, _, _ in curves[0].points] == [0.1, 0.3, 0.5]
    assert curves[0].mean_top1_drop == pytest.approx(5.0 * 0.3) and curves[1].mean_top1_drop == pytest.approx(12.0)
    written = write_report(cases, tmp_path / "out")
    assert tmp_path / "out" / "sensitivity.png" in written
    image = matplotlib.image.imread(tmp_path / "out" / "sensitivity.png")
    assert len(np.unique(image.reshape(-1, image.shape[-1]).round(2), axis=0)) > 20
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| a | 3 | 1.50 | 87.50 | 0.5 |" in text and "| b | 3 | 12.00 | 70.00 | 0.5 |" in text
    assert "Least sensitive: a; most sensitive: b." in text
    assert 'title="sensitivity.png"' in (tmp_path / "out" / "index.html").read_text()


def test_a_report_without_single_group_cases_has_no_sensitivity(tmp_path: Path, cases: list[Case]) -> None:
    written = write_report(cases, tmp_path / "out")
    assert not (tmp_path / "out" / "sensitivity.png").exists() and len(written) == len(PICTURES) + 3
    assert "Sensitivity" not in (tmp_path / "out" / "report.md").read_text()


def test_filters_png_shows_a_chosen_case_and_unknown_cases_are_refused(tmp_path: Path) -> None:
    import matplotlib.image

    structures = tmp_path / "case.structures.json"
    structures.write_text(json.dumps({
        "layer1.0.conv1": {"pruner": "p", "kind": "filters", "ranker": "l1", "scores": [0.5, 0.1, 0.9, 0.2],
                           "removed": [1, 3], "total": 4},
        "layer2.0.conv2": {"pruner": "q", "kind": "channels", "ranker": "l2", "scores": [0.3, 0.4], "removed": [0],
                           "total": 2}}))
    records = synthetic_records(3)
    records[1]["extra_info"]["structures_path"] = str(structures)
    cases = load_cases([write_json(tmp_path / "run.json", records)])

    with pytest.warns(UserWarning, match="no per-layer device times"):  # that record has no layers files
        written = write_report(cases, tmp_path / "out", filters_of=records[1]["name"])
    assert tmp_path / "out" / "filters.png" in written and tmp_path / "out" / "layers.png" not in written
    image = matplotlib.image.imread(tmp_path / "out" / "filters.png")
    red = (image[..., 0] > 0.7) & (image[..., 1] < 0.3) & (image[..., 2] < 0.3)
    assert red.sum() > 100  # the removed filters' bars are drawn in red
    assert f"`filters.png` shows {records[1]['fullname']}." in (tmp_path / "out" / "report.md").read_text()
    with pytest.raises(ReportError, match="--case nope: no such case"):
        write_report(cases, tmp_path / "out", filters_of="nope")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = write_report(cases, tmp_path / "out2", filters_of=records[0]["name"])
    messages = sorted(str(w.message) for w in caught)
    assert "filters.png" not in {p.name for p in written} and len(messages) == 2, messages
    assert any("has no structures file" in m for m in messages)
    assert any("no per-layer device times" in m for m in messages)


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


def test_a_rapid_runs_report_md_is_headed_by_the_correlations_and_leaves_sparsity_0_out(
        tmp_path: Path, rapid: list[Case]) -> None:
    write_report(rapid, tmp_path / "out")
    text = (tmp_path / "out" / "report.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[0].startswith("## Correlation of each sparsity") and text.index("## Correlation") < text.index("![")
    pruned = [(c.name, p, s) for c in rapid for p, s in c.sparsities.items() if s > 0]
    section = text.split("## Sparsity per pruner")[1].split("\n## ")[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| bench_suites")]
    assert sorted((r[0][2:], r[1], float(r[3])) for r in rows) == sorted(pruned)  # every pruned one, no other
    assert f"{len(rapid) * 27 - len(pruned)} pruner(s) at sparsity 0 left out" in text
    cases_section = text.split("## Cases")[1].split("\n## ")[0]
    listed = {line.split(" | ")[0][2:]: line.split(" | ")[1] for line in cases_section.splitlines()
              if line.startswith("| bench_suites")}
    assert listed == {c.name: ", ".join(f"{p} {s:g}" for p, s in c.sparsities.items() if s > 0) for c in rapid}
    assert "2 case(s) removed no structure" in text
    front = pareto_front(rapid)
    assert not front[0].info.get("dense_baseline") and front[0].figure("macs") < front[0].figure("macs_dense")


def test_cases_csv_holds_every_record_field_one_row_per_case(tmp_path: Path, rapid: list[Case]) -> None:
    import csv

    write_report(rapid, tmp_path / "out")
    with (tmp_path / "out" / "cases.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["case"] for row in rows] == [c.name for c in rapid]
    front = {c.name for c in pareto_front(rapid)}
    for case, row in zip(rapid, rows, strict=True):
        for key, value in case.info.items():
            if key.endswith("_ci"):
                assert [float(row[f"{key}_low"]), float(row[f"{key}_high"])] == value, key
            elif isinstance(value, list):
                assert json.loads(row[key]) == value
            elif isinstance(value, bool) or value is None or isinstance(value, str):
                assert row[key] == ("" if value is None else str(value)), key
            else:
                assert float(row[key]) == value, key  # full precision, not the tables' rounding
        assert float(row["latency_compared_ms"]) == case.latency
        assert row["on_pareto_front"] == str(case.name in front)
    assert sum(row["removed_no_structure"] == "True" for row in rows) == 2


# -- pruning vs quantization --------------------------------------------------------------------------------------


def quantization_cases(int8_interval: list[float]) -> list[Case]:
    """One schedule's f32 and int8 records (as bench_suites/test_pruning_vs_quantization.py writes them), and an
    unrelated record that pairs with nothing."""
    def case(name: str, precision: str, top1: float, dense_ms: float, ms: float, interval: list[float]) -> Case:
        return Case(name, {"model": "resnet20", "device": "CPU", "dataset": "digits", "schedule": "filters",
                           "precision": precision, "top1": top1, "top1_dense": 99.4, "latency_ms": ms,
                           "latency_ms_dense": dense_ms, "latency_speedup": dense_ms / ms,
                           "latency_speedup_ci": interval, "sparsity.a": 0.5})
    return [case("t[filters-f32]", "f32", 99.0, 0.40, 0.30, [1.30, 1.37]),
            case("t[filters-int8]", "int8", 98.6, 0.16, 0.15, int8_interval),
            Case("t[other-f32]", {**case("x", "f32", 97.0, 1.0, 1.0, [0.9, 1.1]).info, "schedule": "other"})]


@pytest.mark.parametrize(("interval", "answer"), [([1.02, 1.09], "yes"), ([0.97, 1.05], "not measurably"),
                                                  ([0.90, 0.96], "no, it is slower")])
def test_the_report_puts_the_four_variants_side_by_side_and_says_whether_pruning_pays(
        tmp_path: Path, interval: list[float], answer: str) -> None:
    from pytest_prunebench.report_quantization import variants

    cases = quantization_cases(interval)
    (found,) = variants(cases)
    assert found.latencies() == {"dense-f32": 0.40, "pruned-f32": 0.30, "dense-int8": 0.16, "pruned-int8": 0.15}
    assert found.top1() == {"dense-f32": 99.4, "pruned-f32": 99.0, "dense-int8": 99.4, "pruned-int8": 98.6}
    text = markdown(cases)
    assert "## Pruning vs quantization" in text and "| filters | pruned-int8 | 98.60 | 0.150 |" in text
    assert (f"filters (resnet20, CPU): pruning after INT8 pays: {answer}; speed-up of pruned-int8 over dense-int8 "
            f"1.07x") in text
    assert "against 1.33x at f32" in text
    written = write_report(cases, tmp_path / "report")
    assert (tmp_path / "report" / "quantization.png") in written
    assert (tmp_path / "report" / "quantization.png").stat().st_size > 10_000
    assert "quantization.png" in (tmp_path / "report" / "index.html").read_text()
    assert "Pruning vs quantization" not in markdown(cases[:1] + cases[2:])  # no int8 record: no section
