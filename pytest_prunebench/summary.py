"""The table of cases the terminal shows at the end of a session, and the lines that say what its figures mean.

Its columns are the record fields with a `terminal` column in record.FIELDS, in that table's order: a figure gets a
column there, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import record


def cases_summary(reporter: Any, rows: Sequence[Mapping[str, Any]], device: str) -> None:
    """One line per case (by name), then the dense baselines, the precisions and which latency is which."""
    from .report import text_table

    if not rows:
        return
    collapsed = sum(1 for row in rows if row["collapsed"])
    reporter.write_sep("-", f"prunebench: {len(rows)} case(s) on {device}, {collapsed} collapsed")
    for line in text_table(*cases_table(rows)):
        reporter.write_line(line)
    for line in legend(rows):
        reporter.write_line(line)


def cases_table(rows: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The header and one row of cells per case, sorted by name."""
    fields = record.columns("terminal")
    header = ("case", *record.header("terminal"))
    cells = [(row["name"] + (" [collapsed]" if row["collapsed"] else ""),
              *(field.cell("terminal", row) for field in fields))
             for row in sorted(rows, key=lambda row: row["name"])]
    return header, cells


def legend(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    precision = sorted({r["precision"] for r in rows})
    several = len(precision) > 1  # the dense model is deployed, and measured, once per precision then
    baselines = sorted({(r["model"], r["dataset"], r["top1_dense"], r.get("baseline_epochs"),
                         f" at {r['precision']}" if several else "") for r in rows})
    lines = ["dense baselines: " + "; ".join(f"{model} on {dataset} {top1:.2f}% top1{at} ({epochs} epoch(s))"
                                             for model, dataset, top1, epochs, at in baselines),
             f"precision: {', '.join(precision)}; speed-up = dense median / pruned median latency, timed interleaved "
             f"in each case's window"]
    references = sorted({(r["model"], r["precision"], r["latency_ms_ref"]) for r in rows if r.get("latency_ms_ref")})
    if references:
        lines += ["latency ms = drift-corrected: the session's reference dense median ("
                  + "; ".join(f"{model}{f' {precision}' if several else ''} {ms:.3f} ms"
                              for model, precision, ms in references)
                  + ") / speed-up; abs ms = the case's own median, which drifts between windows",
                  "95% CI: speed-up by a bootstrap over pairs of interleaved blocks (dense, pruned); abs ms by order "
                  "statistics"]
    return lines
