"""`prunebench report` and --prunebench-report: pictures that hold drawn content, tables recomputed independently.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_report.py, tests/plugin/test_report.py.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_records import rapid_records, write_json
from report_synthetic import synthetic_records

from pytest_prunebench.report import (
    PICTURES,
    Case,
    ReportError,
    correlations,
    load_cases,
    markdown,
    pareto_front,
    write_report,
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a pytest-benchmark JSON file (JSONDecodeError"),
        ('{"benchmarks": [{"name": "t", "extra_info": {}}]}', "no prunebench record"),
        ("[]", "not a pytest-benchmark JSON file (TypeError"),
    ],
)
def test_unreadable_results_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ReportError) as raised:
        load_cases([path])
    assert message in str(raised.value) and "\n" not in str(raised.value)
    finished = subprocess.run([sys.executable, "-m", "pytest_prunebench.cli", "report", str(path), "--out",
                               str(tmp_path / "out")], capture_output=True, text=True)
    assert finished.returncode == 2
    assert finished.stderr.startswith("prunebench: error: ") and message in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.fixture
def rapid(tmp_path: Path) -> list[Case]:
    return load_cases([write_json(tmp_path / "rapid.json", rapid_records())])


def chromium_path() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium to open the page as a user would; "
                    ".ci/run installs it (apt-get install -y chromium) and could not here")
def test_index_html_opens_in_a_real_browser_with_every_picture_decoded(tmp_path: Path, rapid: list[Case]) -> None:
    """The page alone in an empty directory (no picture beside it), loaded by headless chromium; after `load`, a
    probe writes each <img>'s decoded size into the DOM chromium dumps."""
    written = write_report(rapid, tmp_path / "out")
    pictures = [p for p in written if p.suffix == ".png"]
    alone = tmp_path / "alone"
    alone.mkdir()
    probe = ("<script>addEventListener('load', () => { document.body.dataset.images = [...document.images].map("
             "i => i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight).join(' ');"
             "document.body.dataset.tables = document.querySelectorAll('table').length;"
             "document.body.dataset.first = document.querySelector('h2').textContent; });</script>")
    page = (tmp_path / "out" / "index.html").read_text()
    (alone / "index.html").write_text(page.replace("</body>", probe + "</body>"))
    finished = subprocess.run(
        [str(chromium_path()), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         (alone / "index.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    dom = finished.stdout

    def attribute(name: str) -> str:
        start = dom.index(f'data-{name}="') + len(f'data-{name}="')
        return html.unescape(dom[start:dom.index('"', start)])

    expected = []
    for picture in pictures:
        header = picture.read_bytes()[:24]  # PNG: the IHDR chunk's width and height, big-endian
        expected.append(f"true:{int.from_bytes(header[16:20], 'big')}x{int.from_bytes(header[20:24], 'big')}")
    assert attribute("images").split() == expected  # every picture decoded at its full size, in report order
    assert int(attribute("tables")) >= 4 and attribute("first").startswith("Correlation of each sparsity")


@pytest.fixture
def cases(tmp_path: Path) -> list[Case]:
    return load_cases([write_json(tmp_path / "run.json", synthetic_records())])


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
