"""The terminal's table of cases at the end of a session (summary.py): its columns come from record.FIELDS.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); a real
session's table is checked in tests/plugin/test_end_to_end.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_prunebench import record, summary
from pytest_prunebench.intervals import LatencyIntervals
from pytest_prunebench.record import Column, Field
from pytest_prunebench.report import Case, markdown
from unit.test_reference import result


class Reporter:
    """What the summary calls of pytest's TerminalReporter, kept as text."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str, **markup: Any) -> None:
        self.lines.append(f"{sep} {title}")

    def write_line(self, line: str, **markup: Any) -> None:
        self.lines.append(line)


def crafted_rows() -> list[dict[str, Any]]:
    """Rows as the session keeps them: with and without intervals and a reference, a collapsed case, a speed-up that
    is not a number, two precisions."""
    base = dict(model="resnet20", dataset="cifar10", precision="f32", top1_dense=91.234, baseline_epochs=3,
                collapsed=False, params=270000, onnx_bytes=1_100_000, mac_speedup=1.5)
    return [
        {**base, "name": "test_b[x]", "fullname": "a.py::test_b[x]", "top1": 88.125, "latency_ms": 1.23456,
         "latency_ms_rel": 1.1111, "latency_ms_rel_ci": [1.0, 1.2], "latency_ms_ci": [1.2, 1.3],
         "latency_speedup": 1.234, "latency_speedup_ci": [1.1, 1.35], "latency_ms_ref": 1.5},
        {**base, "name": "test_a[y]", "fullname": "a.py::test_a[y]", "top1": 10.0, "latency_ms": 0.5, "collapsed": True,
         "latency_speedup": 2.0, "mac_speedup": 2.25, "params": 1234567, "onnx_bytes": 512, "latency_ms_ref": None},
        {**base, "name": "test_c", "fullname": "a.py::test_c", "top1": 90.0, "latency_ms": 3.0, "latency_ms_rel": 2.5,
         "latency_speedup": float("nan"), "precision": "int8", "latency_ms_ref": 2.0, "onnx_bytes": 1536},
    ]


# The table session.py printed for crafted_rows() before its columns were read from record.FIELDS, character for
# character.
BEFORE = [
    "- prunebench: 3 case(s) on CPU, 1 collapsed",
    "case                   top1 %  dense %  latency ms [95% CI]      abs ms [95% CI]  speed-up [95% CI]  MAC speed-up"
    "     params  ONNX KB",
    "test_a[y] [collapsed]   10.00    91.23                0.500                0.500              2.00x         2.25x"
    "  1,234,567        0",
    "test_b[x]               88.12    91.23  1.111 [1.000-1.200]  1.235 [1.200-1.300]  1.23x [1.10-1.35]         1.50x"
    "    270,000     1074",
    "test_c                  90.00    91.23                2.500                3.000                  –         1.50x"
    "    270,000        2",
    "dense baselines: resnet20 on cifar10 91.23% top1 at f32 (3 epoch(s)); resnet20 on cifar10 91.23% top1 at int8 "
    "(3 epoch(s))",
    "precision: f32, int8; speed-up = dense median / pruned median latency, timed interleaved in each case's window",
    "latency ms = drift-corrected: the session's reference dense median (resnet20 f32 1.500 ms; resnet20 int8 2.000 ms)"
    " / speed-up; abs ms = the case's own median, which drifts between windows",
    "95% CI: speed-up by a bootstrap over pairs of interleaved blocks (dense, pruned); abs ms by order statistics",
]


def summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    reporter = Reporter()
    summary.cases_summary(reporter, rows, "CPU")
    return reporter.lines


def test_the_table_is_the_one_the_session_printed_before() -> None:
    assert summary_lines(crafted_rows()) == BEFORE


def test_no_rows_print_nothing() -> None:
    assert summary_lines([]) == []


def test_a_cases_real_record_fills_every_column() -> None:
    samples = (0.0010, 0.0011, 0.0012) * 20
    case = result(latencies_s=samples, latency_ms=1.1, latency_ms_dense=2.2, latency_ms_ref=1.0,
                  intervals=LatencyIntervals.of(samples, tuple(2 * s for s in samples)))
    header, (cells,) = summary.cases_table([{"name": "test_x", "fullname": "t.py::test_x", **case.extra_info()}])
    assert header == ("case", "top1 %", "dense %", "latency ms [95% CI]", "abs ms [95% CI]", "speed-up [95% CI]",
                      "MAC speed-up", "params", "ONNX KB")
    assert "–" not in cells
    assert cells[3].startswith("0.500 [") and cells[4].startswith("1.100 [") and cells[5].startswith("2.00x [")
    assert cells[6:] == ("2.00x", "10", "1")  # the result's defaults: 200 / 100 MACs, 10 params, 1000 bytes


@pytest.fixture
def one_more_field(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """record.FIELDS with one line added: a figure every table shows."""
    added = Field("energy_mj", "mJ", better="lower", sweep=True, terminal=Column("energy mJ", 1),
                  report=Column("energy mJ", 1), csv=True, doc="energy per inference")
    monkeypatch.setattr(record, "FIELDS", (*record.FIELDS, added))
    yield


@pytest.mark.usefixtures("one_more_field")
def test_a_field_line_with_a_terminal_column_adds_that_column() -> None:
    rows = [{**row, "energy_mj": 12.345} for row in crafted_rows()]
    lines = summary_lines(rows)
    assert lines[1] == BEFORE[1] + "  energy mJ"
    assert lines[2:5] == [before + "       12.3" for before in BEFORE[2:5]]
    assert lines[5:] == BEFORE[5:]


@pytest.mark.usefixtures("one_more_field")
def test_the_same_line_adds_the_column_to_the_reports_case_table() -> None:
    text = markdown([Case(row["fullname"], {**row, "energy_mj": 2.0}) for row in crafted_rows()])
    assert ("| case | pruned (sparsity > 0) | top1 % | latency ms [95%] | absolute ms | speed-up [95%] | MAC speed-up"
            " | params | MACs | collapsed | energy mJ |") in text
    assert "| a.py::test_c | – | 90.00 | 2.500 | 3.000 | – | 1.50 | 270,000 | – |  | 2.0 |" in text


def test_a_field_that_shows_no_column_in_a_table_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="record field top5 has no terminal column"):
        record.BY_NAME["top5"].cell("terminal", {"top5": 99.0})


def test_a_column_formats_counts_scales_flags_and_missing_figures() -> None:
    assert Column("n", thousands=True).text(1234567.0) == "1,234,567"
    assert Column("KB", scale=1024).text(1536) == "2"
    assert Column("x", 2, "x", interval=True).text(1.5, [1.25, 1.75]) == "1.50x [1.25-1.75]"
    assert Column("x", 2, interval=True).text(1.5, "not an interval") == "1.50"
    assert Column("ms", 3).text(None) == Column("ms", 3).text(float("nan")) == Column("ms", 3).text(True) == "–"
    assert (Column("c", flag=True).text(True), Column("c", flag=True).text(None)) == ("yes", "")
    # An older record: the figure latency_ms_rel replaces, with that figure's interval.
    assert record.BY_NAME["latency_ms_rel"].shown({"latency_ms": 2.0, "latency_ms_ci": [1, 3]}) == (
        "latency_ms", 2.0, [1, 3])
