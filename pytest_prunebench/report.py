"""`prunebench report`: pictures and tables from pytest-benchmark JSON files (one run or many).

Latency, wherever cases are compared with each other, is the drift-corrected figure (`latency_ms_rel`: the session's
reference dense median times the case's own interleaved pruned/dense ratio; see reference.py), and the absolute
median only for records written before it existed.

    pareto.png            top1 vs latency: the Pareto front over the pruned cases and the dense baselines, drawn and
                          labelled; dominated cases grey; cases that removed no structure (dense MACs) apart
    sparsity_latency.png  small multiples, one per pruner whose sparsity correlates most strongly with latency (at
                          most 6): mean latency per 0.02-wide sparsity bin over the cases, and the cases per bin
                          (the seed's Figure 1)
    speedup.png           measured latency speed-up vs MAC speed-up, with y = x
    sensitivity.png       (records that prune one group alone) top1 and latency per sparsity, one curve per group
    filters.png           for one case: per pruned conv, every filter's (or channel's) norm, the removed ones red
    layers.png            for one case: per conv / fc layer, device time vs MACs, dense and pruned
    quantization.png      (a schedule at a float precision and at int8) latency and top1 of dense-float, pruned-float,
                          dense-int8 and pruned-int8, and whether pruning still pays after INT8
    report.md             headed by the Pearson correlations of every sparsity with latency and top1 (the seed's
                          Table 1), then the pictures, the Pareto set, the cases (pruners at sparsity 0 left out),
                          collapsed cases, model sizes
    cases.csv             every record field, one row per case (intervals as _low / _high columns)
    index.html            report.md as a page that needs no other file: every picture inline as a data: URI
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
import statistics
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import record, report_quantization
from .errors import ReportError

BIN_WIDTH = 0.02  # the seed's sparsity bins
LATENCY = "latency_ms_rel"  # the figure cases are compared on (Case.latency); older records: the one it replaces
PICTURES = ("pareto.png", "sparsity_latency.png", "speedup.png")
CHART_PRUNERS = 6  # panels of the sparsity-bin chart: more lines than this nobody can read
CSV_NAME = "cases.csv"
DENSE = "dense_baseline"  # info key of the dense baselines pareto_front adds as points
PARETO_FIELDS = ("top1", LATENCY, "latency_speedup", "macs")  # the Pareto set's columns, as the case table shows them



@dataclass(frozen=True)
class Case:
    """One record: its name and extra_info (the figures the plugin wrote)."""

    name: str
    info: dict[str, Any]

    def figure(self, key: str) -> float:
        value = self.info.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan

    @property
    def latency(self) -> float:
        """The latency cases are compared on: drift-corrected (`latency_ms_rel`), else the absolute median it
        replaces (record.FIELDS)."""
        name, _, _ = record.BY_NAME[LATENCY].shown(self.info)
        return self.figure(name)

    @property
    def latency_interval(self) -> list[float] | None:
        """The 95% interval of `latency`, when the record has one."""
        _, _, interval = record.BY_NAME[LATENCY].shown(self.info)
        return interval if isinstance(interval, list) and len(interval) == 2 else None

    @property
    def sparsities(self) -> dict[str, float]:
        return {k.removeprefix("sparsity."): float(v) for k, v in self.info.items() if k.startswith("sparsity.")}


def load_cases(paths: Sequence[Path]) -> list[Case]:
    """Every prunebench record of the files; a name seen in two files is told apart by the file's name."""
    loaded: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            benchmarks = document["benchmarks"]
            if not isinstance(benchmarks, list) or not all(isinstance(b, dict) for b in benchmarks):
                raise TypeError("`benchmarks` is not a list of records")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ReportError(f"{path}: not a pytest-benchmark JSON file ({type(exc).__name__}: {exc}); write one "
                              f"with --benchmark-json=FILE or --benchmark-autosave") from None
        loaded += [(Path(path), b) for b in benchmarks if isinstance(b.get("extra_info"), dict)
                   and "latency_ms" in b["extra_info"]]
    names = [str(b.get("fullname", b.get("name"))) for _, b in loaded]
    cases = [Case(name if names.count(name) == 1 else f"{path.stem}:{name}", dict(b["extra_info"]))
             for (path, b), name in zip(loaded, names, strict=True)]
    if not cases:
        raise ReportError(f"{', '.join(map(str, paths))}: no prunebench record (no extra_info.latency_ms); run "
                          f"the bench suites with --benchmark-json=FILE first")
    return common_reference(cases)


def _reference_group(case: Case) -> tuple[str, str, str]:
    return str(case.info.get("model")), str(case.info.get("device")), str(case.info.get("precision"))


def common_reference(cases: Sequence[Case]) -> list[Case]:
    """Records of several sessions, each scaled to its own session's reference dense median, rescaled to one
    reference per model, device and precision (the median of the sessions' references), so that they compare.
    A rescaled record keeps its session's figures as `latency_ms_rel_session` and `latency_ms_ref_session`."""
    references: dict[tuple[str, str, str], set[float]] = {}
    for case in cases:
        ref = case.figure("latency_ms_ref")
        if not (math.isnan(ref) or math.isnan(case.figure(LATENCY))):
            references.setdefault(_reference_group(case), set()).add(ref)
    common = {group: statistics.median(sorted(refs)) for group, refs in references.items() if len(refs) > 1}
    anchored = []
    for case in cases:
        ref, target = case.figure("latency_ms_ref"), common.get(_reference_group(case))
        if target is None or math.isnan(ref) or math.isnan(case.figure(LATENCY)) or ref == target:
            anchored.append(case)
            continue
        info = {**case.info, "latency_ms_rel_session": case.info[LATENCY], "latency_ms_ref_session": ref,
                LATENCY: case.figure(LATENCY) * target / ref, "latency_ms_ref": target}
        if isinstance(case.info.get("latency_ms_rel_ci"), list):
            info["latency_ms_rel_ci_session"] = case.info["latency_ms_rel_ci"]
            info["latency_ms_rel_ci"] = [bound * target / ref for bound in case.info["latency_ms_rel_ci"]]
        anchored.append(Case(case.name, info))
    return anchored


# -- analysis ---------------------------------------------------------------------------------------------------


def removed_no_structure(case: Case) -> bool:
    """A case whose MACs equal its dense model's: its pruners removed no structure (0.02 of a conv rounds to no
    channel; fine-grained pruners only zero weights), so its latency is the dense model's timed again, and how far
    it lands from the dense figure is the measurement's noise."""
    macs, dense = case.figure("macs"), case.figure("macs_dense")
    return not case.info.get(DENSE) and not (math.isnan(macs) or math.isnan(dense)) and macs >= dense


def dense_cases(cases: Sequence[Case]) -> list[Case]:
    """Per model, its dense baseline as a point: the latency of `dense_points` (on the scale the cases compare on)."""
    macs = {str(c.info.get("model", "?")): c.info.get("macs_dense") for c in cases}
    return [Case(f"dense {model}", {"model": model, "top1": top, LATENCY: latency, "latency_ms": latency,
                                    "macs": macs.get(model), "macs_dense": macs.get(model), DENSE: True})
            for model, (latency, top) in dense_points(cases).items()]


def pareto_front(cases: Sequence[Case]) -> list[Case]:
    """The points no other point beats on both top1 (higher) and latency (lower, drift-corrected), sorted by latency.
    The points are the cases that removed structures and each model's dense baseline: a case that removed none
    times the dense model's shapes again, and ranking it against the others would rank noise."""
    points = [c for c in (*cases, *dense_cases(cases)) if not (removed_no_structure(c) or math.isnan(c.figure("top1"))
                                                              or math.isnan(c.latency))]

    def dominated(case: Case) -> bool:
        return any(o.figure("top1") >= case.figure("top1") and o.latency <= case.latency
                   and (o.figure("top1"), o.latency) != (case.figure("top1"), case.latency) for o in points)

    return sorted((c for c in points if not dominated(c)), key=lambda c: c.latency)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r; None with fewer than 3 pairs or a constant side (r is undefined there)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 3:
        return None
    mx = sum(x for x, _ in pairs) / len(pairs)
    my = sum(y for _, y in pairs) / len(pairs)
    sxy = sum((x - mx) * (y - my) for x, y in pairs)
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    syy = sum((y - my) ** 2 for _, y in pairs)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None


def correlations(cases: Sequence[Case]) -> list[tuple[str, int, float | None, float | None]]:
    """Per sparsity parameter, strongest |r(latency)| first (undefined r last): (pruner, cases that have it, r with
    latency (drift-corrected), r with top1)."""
    rows = []
    for pruner in sorted({p for c in cases for p in c.sparsities}):
        having = [c for c in cases if pruner in c.sparsities]
        xs = [c.sparsities[pruner] for c in having]
        rows.append((pruner, len(having), pearson(xs, [c.latency for c in having]),
                     pearson(xs, [c.figure("top1") for c in having])))
    return sorted(rows, key=lambda row: (row[2] is None, -abs(row[2] or 0.0), row[0]))


def pruned_cases(cases: Sequence[Case], pruner: str) -> int:
    """How many cases prune with `pruner` at all (sparsity above 0)."""
    return sum(1 for c in cases if c.sparsities.get(pruner, 0.0) > 0)


def chart_pruners(cases: Sequence[Case], limit: int = CHART_PRUNERS) -> list[tuple[str, float | None]]:
    """The pruners the sparsity-bin chart shows: the strongest |r(latency)| first; pruners whose r is undefined
    only to fill the panels, those that pruned the most cases first."""
    rows = correlations(cases)
    return [(pruner, r) for pruner, _, r, _ in sorted(rows, key=lambda row: (
        row[2] is None, -abs(row[2] or 0.0), -pruned_cases(cases, row[0]), row[0]))][:limit]


def sparsity_bins(cases: Sequence[Case], pruner: str) -> list[tuple[float, float, int]]:
    """(bin start, mean latency ms, cases) per 0.02-wide bin of `pruner`'s sparsity that has cases."""
    bins: dict[int, list[float]] = {}
    for case in cases:
        if pruner in case.sparsities and not math.isnan(case.latency):
            bins.setdefault(int(math.floor(case.sparsities[pruner] / BIN_WIDTH + 1e-9)), []).append(case.latency)
    return [(round(k * BIN_WIDTH, 10), sum(v) / len(v), len(v)) for k, v in sorted(bins.items())]


@dataclass(frozen=True)
class Sensitivity:
    """One group's curve: cases that pruned it alone, by sparsity."""

    pruner: str
    points: tuple[tuple[float, float, float], ...]  # (sparsity, top1, latency ms), by sparsity
    top1_dense: float

    @property
    def mean_top1_drop(self) -> float:
        return self.top1_dense - sum(top1 for _, top1, _ in self.points) / len(self.points)


def sensitivities(cases: Sequence[Case]) -> list[Sensitivity]:
    """Per group, the cases whose record has that one sparsity (a sensitivity analysis); least sensitive first."""
    curves: dict[str, list[Case]] = {}
    for case in cases:
        if len(case.sparsities) == 1:
            curves.setdefault(next(iter(case.sparsities)), []).append(case)
    result = [Sensitivity(pruner, tuple(sorted((c.sparsities[pruner], c.figure("top1"), c.latency)
                                                for c in group)),
                          max(c.figure("top1_dense") for c in group))
              for pruner, group in curves.items()]
    return sorted(result, key=lambda curve: (curve.mean_top1_drop, curve.pruner))


# -- pictures ---------------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on CI machines
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(cases: Sequence[Case], path: Path) -> None:
    plt = _pyplot()
    front = pareto_front(cases)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    names = {c.name for c in front}
    others = [c for c in cases if c.name not in names and not removed_no_structure(c)]
    ax.scatter([c.latency for c in others], [c.figure("top1") for c in others], color="0.75",
               label="dominated", zorder=2)
    idle = [c for c in cases if removed_no_structure(c)]
    if idle:
        ax.scatter([c.latency for c in idle], [c.figure("top1") for c in idle], marker="x", color="0.45",
                   label="no structure removed (dense MACs): the dense model's latency", zorder=2)
    ax.plot([c.latency for c in front], [c.figure("top1") for c in front], "o-", color="tab:blue",
            label="Pareto front", zorder=3)
    for case in front:
        if not case.info.get(DENSE):
            ax.annotate(_short(case.name), (case.latency, case.figure("top1")), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    dense = dense_points(cases)
    if dense:
        ax.scatter([lat for lat, _ in dense.values()], [top for _, top in dense.values()], marker="*", s=160,
                   color="tab:red", label="dense (the reference median)" if corrected(cases) else
                   "dense (median of its timings)", zorder=4)
        for model, (lat, top) in dense.items():
            ax.annotate(f"dense {model}", (lat, top), fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax.set(xlabel=latency_label(cases), ylabel="top1 (%)", title="Accuracy vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def corrected(cases: Sequence[Case]) -> bool:
    """Whether every case has a drift-corrected latency (records of older versions have only the absolute one)."""
    return all(not math.isnan(c.figure(LATENCY)) for c in cases)


def latency_label(cases: Sequence[Case]) -> str:
    if corrected(cases):
        return "latency (ms, batch 1, drift-corrected: reference dense median x pruned / dense)"
    return "latency median (ms, batch 1)"


def dense_points(cases: Sequence[Case]) -> dict[str, tuple[float, float]]:
    """Per model, the dense baseline: its top1, and its latency on the scale the cases are compared on: the
    session's reference median (drift-corrected cases), else the median of its timings in every case's window."""
    timings: dict[str, list[float]] = {}
    top1: dict[str, float] = {}
    for case in cases:
        reference = case.figure("latency_ms_ref")
        absolute = math.isnan(reference) or math.isnan(case.figure(LATENCY))
        lat, top = case.figure("latency_ms_dense") if absolute else reference, case.figure("top1_dense")
        if not (math.isnan(lat) or math.isnan(top)):
            model = str(case.info.get("model", "?"))
            timings.setdefault(model, []).append(lat)
            top1[model] = top
    return {model: (statistics.median(values), top1[model]) for model, values in timings.items()}


def sparsity_figure(cases: Sequence[Case]) -> tuple[Any, list[str]]:
    """The seed's Figure 1, readable: one panel per pruner of `chart_pruners` (mean latency per 0.02-wide bin over
    the cases, each case a grey dot, the dense baseline dashed) above a bar of the cases per bin, each bar labelled
    with its count. Returns the figure and the pruners drawn."""
    plt = _pyplot()
    shown = chart_pruners(cases)
    columns = max(1, min(3, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    fig = plt.figure(figsize=(4.4 * columns, 3.6 * rows), layout="constrained")
    # Each pruner's panel: its latency axes on top of its count axes, close together; panels apart.
    panels = [cell.subgridspec(2, 1, height_ratios=[3, 1], hspace=0.02) for cell in fig.add_gridspec(rows, columns)]
    axes = [(fig.add_subplot(panel[0]), fig.add_subplot(panel[1])) for panel in panels]
    dense = dense_points(cases)
    reference = next(iter(dense.values()))[0] if len(dense) == 1 else None  # one model: one dense line
    right = max([s for c in cases for s in c.sparsities.values()] or [0.0]) + 1.5 * BIN_WIDTH
    ylabel = "latency ms, drift-corrected" if corrected(cases) else "latency ms"
    scale = [c.latency for c in cases if c.sparsities and not math.isnan(c.latency)]
    scale += [] if reference is None else [reference]
    low, high = (min(scale), max(scale)) if scale else (0.0, 1.0)
    for (top, bottom), (pruner, r) in zip(axes, shown, strict=False):
        having = [c for c in cases if pruner in c.sparsities and not math.isnan(c.latency)]
        bins = sparsity_bins(cases, pruner)
        centres = [start + BIN_WIDTH / 2 for start, _, _ in bins]
        top.scatter([c.sparsities[pruner] for c in having], [c.latency for c in having], s=9, color="0.72",
                    label="a case", zorder=2)
        top.plot(centres, [mean for _, mean, _ in bins], "o-", color="tab:blue", markersize=4,
                 label="mean per bin", zorder=3)
        if reference is not None:
            top.axhline(reference, linestyle="--", linewidth=0.9, color="tab:red", label="dense", zorder=1)
        r_text = "r undefined" if r is None else f"r = {r:+.2f}"
        top.set_title(f"{pruner}: {r_text}, {pruned_cases(cases, pruner)} of {len(having)} cases pruned",
                      fontsize=9)
        top.set_ylabel(ylabel, fontsize=8)
        top.tick_params(labelbottom=False, labelsize=7)
        top.grid(alpha=0.3)
        counts = [n for _, _, n in bins]
        bottom.bar(centres, counts, width=BIN_WIDTH * 0.9, color="0.55")
        for x, n in zip(centres, counts, strict=True):
            bottom.annotate(str(n), (x, n), ha="center", va="bottom", fontsize=6, xytext=(0, 1),
                            textcoords="offset points")
        bottom.set_ylim(0, max(counts or [1]) * 1.45)
        bottom.set_ylabel("cases", fontsize=8)
        bottom.set_xlabel(f"sparsity of {pruner} ({BIN_WIDTH:g}-wide bins)", fontsize=8)
        bottom.tick_params(labelsize=7)
        for ax in (top, bottom):
            ax.set_xlim(-BIN_WIDTH / 2, right)
        top.set_ylim(low - 0.05 * (high - low or 1), high + 0.05 * (high - low or 1))  # one scale for every panel
    for top, bottom in axes[len(shown):]:
        top.axis("off")
        bottom.axis("off")
    if shown:
        axes[0][0].legend(fontsize=7)
    else:
        axes[0][0].text(0.5, 0.5, "no sparsity.<pruner> in the records", ha="center", va="center")
    pruners = len({p for c in cases for p in c.sparsities})
    fig.suptitle(f"Latency per sparsity bin: the {len(shown)} of {pruners} pruner(s) whose sparsity correlates "
                 f"most strongly with latency", fontsize=10)
    return fig, [pruner for pruner, _ in shown]


def plot_sparsity_latency(cases: Sequence[Case], path: Path) -> list[str]:
    """sparsity_figure into `path`; returns the pruners drawn."""
    fig, shown = sparsity_figure(cases)
    _save(fig, path)
    return shown


def plot_speedup(cases: Sequence[Case], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    xs, ys = [c.figure("mac_speedup") for c in cases], [c.figure("latency_speedup") for c in cases]
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    finite = [v for v in xs + ys if not math.isnan(v)] or [1.0]
    top = max(finite) * 1.1
    ax.plot([0, top], [0, top], "--", color="0.5", label="y = x (latency falls as MACs do)")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="MAC speed-up (dense MACs / pruned MACs)",
           ylabel="measured latency speed-up (dense ms / pruned ms)", title="Measured vs MAC speed-up")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_sensitivity(curves: Sequence[Sensitivity], path: Path) -> None:
    plt = _pyplot()
    fig, (top, lat) = plt.subplots(1, 2, figsize=(12, 5))
    for curve in curves:
        xs = [x for x, _, _ in curve.points]
        top.plot(xs, [t for _, t, _ in curve.points], "o-", markersize=3, label=curve.pruner)
        lat.plot(xs, [ms for _, _, ms in curve.points], "o-", markersize=3, label=curve.pruner)
    top.set(xlabel="sparsity of the group, pruned alone", ylabel="top1 (%), no retraining", title="Accuracy")
    lat.set(xlabel="sparsity of the group, pruned alone", ylabel="latency (ms)", title="Latency")
    for ax in (top, lat):
        ax.grid(alpha=0.3)
    top.legend(fontsize=7, ncol=2)
    fig.suptitle("Sensitivity: each group pruned alone")
    _save(fig, path, top=0.93)


def _side_file(case: Case, key: str, what: str) -> Any:
    """The JSON file a record names under `key` (written beside its ONNX file); None when there is none."""
    path = Path(str(case.info.get(key) or ""))
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: unreadable {what} file of {case.name} ({exc})") from None


def structures(case: Case) -> dict[str, dict[str, Any]] | None:
    """The case's pruned structures file (`structures_path` in its record); None when it has none."""
    document = _side_file(case, "structures_path", "structures")
    return document if isinstance(document, dict) else None


def plot_filters(case: Case, layers: dict[str, dict[str, Any]], path: Path) -> None:
    """Per pruned conv, every structure's norm when it was ranked; the removed ones in red."""
    plt = _pyplot()
    layers = {layer: entry for layer, entry in layers.items() if entry["removed"]}  # sparsity-0 pruners: nothing
    columns = min(3, len(layers))
    rows = math.ceil(len(layers) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
    for ax, (layer, entry) in zip(axes.flat, layers.items(), strict=False):
        scores, removed = entry["scores"], set(entry["removed"])
        ax.bar(range(len(scores)), scores, width=0.9,
               color=["tab:red" if i in removed else "tab:blue" for i in range(len(scores))])
        unit = {"filters": "filter", "rows": "input feature"}.get(entry["kind"], "input channel")
        ax.set(title=f"{layer}: {len(removed)} of {len(scores)} removed", xlabel=f"{unit} index",
               ylabel=f"{entry.get('ranker') or 'l1'} norm (mean)")
        ax.title.set_fontsize(9)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    fig.suptitle(f"{case.name}: structure norms when ranked (red: removed)", fontsize=10)
    _save(fig, path, top=1 - 0.5 / (2.8 * rows))


def _save(fig: Any, path: Path, top: float = 1.0) -> None:
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:  # a figure laid out as it is drawn (constrained) needs nothing
        fig.tight_layout(rect=(0, 0, 1, top))  # `top` < 1 leaves room for a figure title
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- text -------------------------------------------------------------------------------------------------------


def markdown(cases: Sequence[Case]) -> str:
    lines = [f"# prunebench report: {len(cases)} case(s)", ""]
    lines += _correlation_section(cases)
    lines += _latency_note(cases)
    lines += ["![Pareto](pareto.png)", "", "![Sparsity vs latency](sparsity_latency.png)", "",
              "![Speed-up](speedup.png)", ""]
    lines += _pareto_section(cases)
    shown = record.columns("report")
    lines += _table("Cases", ("case", "pruned (sparsity > 0)", *record.header("report")),
                    [(c.name, _pruned_text(c), *(field.cell("report", c.info) for field in shown)) for c in cases])
    lines += _pruner_table(cases)
    lines += _study_sections(cases)
    lines += report_quantization.markdown(report_quantization.variants(cases))
    curves = sensitivities(cases)
    if curves:
        lines += ["![Sensitivity](sensitivity.png)", ""]
        lines += _table("Sensitivity (each group pruned alone; least sensitive first)",
                        ("group", "points", "mean top1 drop", "top1 at the highest sparsity", "highest sparsity"),
                        [(c.pruner, str(len(c.points)), _num(c.mean_top1_drop, 2), _num(c.points[-1][1], 2),
                          f"{c.points[-1][0]:g}") for c in curves])
        lines += [f"Least sensitive: {curves[0].pruner}; most sensitive: {curves[-1].pruner}.", ""]
    collapsed = [c for c in cases if c.info.get("collapsed")]
    lines += ["## Collapsed cases", ""]
    lines += [f"- {c.name}: {c.info.get('collapse_reason') or 'collapsed'}" for c in collapsed] or ["none", ""]
    if collapsed:
        lines.append("")
    sizes = [record.BY_NAME["params"], record.BY_NAME["macs"]]  # the dense model's `<field>_dense`, shown alike
    dense = {(c.info.get("model"), *(c.info.get(f"{field.name}_dense") for field in sizes)) for c in cases}
    lines += _table("Dense model sizes", ("model", *record.header("report", sizes)),
                    [(str(model), *(field.text("report", value) for field, value in zip(sizes, values, strict=True)))
                     for model, *values in sorted(dense, key=str)])
    return "\n".join(lines) + "\n"


def _latency_note(cases: Sequence[Case]) -> list[str]:
    """Which latency the tables and pictures compare, and whether records of several sessions were rescaled."""
    if not corrected(cases):
        return ["Latency: the absolute median of each case's window (some records have no drift-corrected "
                "`latency_ms_rel`: written by an older version). It drifts 20-60% between windows on a shared host.",
                ""]
    lines = ["Latency: drift-corrected (`latency_ms_rel`): the session's reference dense median times the case's "
             "own pruned / dense ratio, timed interleaved in one window. `absolute ms` is the case's own median, "
             "which carries the host's drift between windows."]
    rescaled = sum(1 for c in cases if "latency_ms_ref_session" in c.info)
    if rescaled:
        lines[0] += (f" {rescaled} record(s) of other sessions were rescaled to one reference per model (the "
                     f"median of the sessions' references).")
    return [*lines, ""]


def _correlation_section(cases: Sequence[Case]) -> list[str]:
    """The seed's Table 1, strongest |r(latency)| first, and which pruners the sparsity-bin chart shows."""
    rows = correlations(cases)
    lines = _table("Correlation of each sparsity with latency and top1 (Pearson r; the seed's Table 1)",
                   ("pruner", "cases", "pruned (> 0)", "r(latency)", "r(top1)"),
                   [(p, str(n), str(pruned_cases(cases, p)), _num(r_lat, 3), _num(r_top, 3))
                    for p, n, r_lat, r_top in rows])
    shown = [pruner for pruner, _ in chart_pruners(cases)]
    lines += [f"Strongest |r(latency)| first; `sparsity_latency.png` shows {len(shown)} of {len(rows)}: "
              f"{', '.join(shown) or 'none'}. r is undefined (`–`) with fewer than 3 cases or a sparsity that never "
              f"varies. Every case's figures: `{CSV_NAME}`.", ""]
    return lines


def _pareto_section(cases: Sequence[Case]) -> list[str]:
    """The front (dense baselines among its points), whether any pruned case beat the dense model, and the cases
    that removed no structure: their spread around speed-up 1 is the measurement's noise."""
    front = pareto_front(cases)
    shown = [record.BY_NAME[name] for name in PARETO_FIELDS]
    lines = _table("Pareto set (top1 up, latency down; cases that removed no structure left out)",
                   ("case", *record.header("report", shown)), [_pareto_row(c, shown) for c in front])
    pruned = [c for c in cases if not removed_no_structure(c) and not math.isnan(c.latency)]
    if front and front[0].info.get(DENSE) and pruned:
        fastest = min(pruned, key=lambda c: c.latency)
        lines += [f"No case that removed structures is faster than the dense model: the fastest, {fastest.name}, "
                  f"has a latency speed-up of {_num(fastest.figure('latency_speedup'), 3)}.", ""]
    idle = [c for c in cases if removed_no_structure(c)]
    if idle:
        speedups = [c.figure("latency_speedup") for c in idle if not math.isnan(c.figure("latency_speedup"))]
        spread = f"; their latency speed-up spans {min(speedups):.3f}-{max(speedups):.3f}" if speedups else ""
        lines += [f"{len(idle)} case(s) removed no structure (their MACs equal the dense model's): they time "
                  f"the dense model's shapes again and are left off the front{spread} (the measurement's noise and "
                  f"bias on this host).", ""]
    return lines


def _pareto_row(case: Case, fields: Sequence[record.Field]) -> tuple[str, ...]:
    """A dense baseline's point is the latency reference: its speed-up is 1 by definition."""
    if not case.info.get(DENSE):
        return (case.name, *(field.cell("report", case.info) for field in fields))
    return (f"{case.name} (baseline)",
            *("1 (reference)" if field.name == "latency_speedup" else field.cell("report", case.info)
              for field in fields))


def _pruned_text(case: Case) -> str:
    return ", ".join(f"{pruner} {sparsity:g}" for pruner, sparsity in case.sparsities.items() if sparsity > 0) or "–"


def _study_sections(cases: Sequence[Case]) -> list[str]:
    """Per Optuna study among the records (searched sweeps): its Pareto front and each parameter's importance."""
    from .search import record_points, study_lines

    lines = []
    for study, (points, objectives) in sorted(record_points([(c.name, c.info) for c in cases]).items()):
        lines += [f"## Study {study}", "", "```", *study_lines(f"study {study}", points, objectives), "```", ""]
    return lines


MASK_ONLY_KINDS = {"elements": "fine-grained zeros", "rows": "zeroed fc input features"}


def _pruner_table(cases: Sequence[Case]) -> list[str]:
    """Desired against reached sparsity per pruner (a cut timeline stops short of its targets), and which pruners
    only leave zeros in dense tensors: those cannot make dense inference faster. Pruners at sparsity 0 (desired and
    reached) are left out: a search's records carry every group, most at 0."""
    rows, idle = [], 0
    for case in cases:
        # A SplicingPruner has no desired sparsity, only a reached one.
        targetless = [k.removeprefix("reached.") for k in case.info if k.startswith("reached.")
                      and k.removeprefix("reached.") not in case.sparsities]
        for pruner in [*case.sparsities, *targetless]:
            desired = case.sparsities.get(pruner)
            reached = case.info.get(f"reached.{pruner}")
            if not desired and not reached:
                idle += 1
                continue
            kind = str(case.info.get(f"kind.{pruner}", ""))
            note = (f"{MASK_ONLY_KINDS[kind]}: the tensor keeps its dense shape, so dense latency does not fall"
                    if kind in MASK_ONLY_KINDS else "")
            if reached is not None or note:
                rows.append((case.name, pruner, kind, "–" if desired is None else f"{desired:g}",
                             _num(float(reached) if reached is not None else None, 3), note))
    if not rows:
        return []
    lines = _table("Sparsity per pruner: desired and reached", ("case", "pruner", "kind", "desired", "reached",
                                                                 "note"), rows)
    if idle:
        lines += [f"{idle} pruner(s) at sparsity 0 left out (in `{CSV_NAME}`).", ""]
    if any(row[5] for row in rows):
        lines += ["Fine-grained pruners (AutomatedGradualPruner, SparsityLevelParameterPruner, SplicingPruner) and "
                  "`Rows` pruners zero weights without removing them: the ONNX file carries the zeros, but a dense "
                  "device kernel does the same work, so they do not shrink dense latency. Only thinned filters and "
                  "channels do.",
                  ""]
    return lines


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain-text columns for a terminal: the first left-aligned, the others (figures) right-aligned."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return ["  ".join([row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:],
                                                                                          strict=True))])
            for row in (header, *rows)]


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return [*lines, ""]


CSV_FIRST = record.csv_first()


def cases_csv(cases: Sequence[Case]) -> str:
    """One row per case, every field of its record (the tables' first), plus the latency the report compares on and
    whether the case is on the Pareto front. A 95% interval `[low, high]` is two columns `<key>_low`, `<key>_high`;
    other lists and mappings are JSON text."""
    seen = {key for c in cases for key in c.info}
    keys = [k for k in dict.fromkeys([*CSV_FIRST, *(k for c in cases for k in c.info)]) if k in seen]

    intervals = {key for key in keys if key.endswith("_ci") and all(
        v is None or isinstance(v, list) and len(v) == 2 for v in (c.info.get(key) for c in cases))}
    header = ["case", "latency_compared_ms", "on_pareto_front", "removed_no_structure"]
    for key in keys:
        header += [f"{key}_low", f"{key}_high"] if key in intervals else [key]
    front = {c.name for c in pareto_front(cases)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for case in cases:
        row: list[Any] = [case.name, _csv_value(case.latency), case.name in front, removed_no_structure(case)]
        for key in keys:
            value = case.info.get(key)
            row += [_csv_value(v) for v in (value or [None, None])] if key in intervals else [_csv_value(value)]
        writer.writerow(row)
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None or isinstance(value, float) and math.isnan(value):
        return ""
    return json.dumps(value) if isinstance(value, list | dict) else value


STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;margin:.5em 0;"
         "font-size:13px}td,th{border:1px solid #bbb;padding:2px 6px;text-align:right;white-space:nowrap}"
         "td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left;white-space:normal}"
         "th{background:#eee}img{max-width:100%;border:1px solid #ddd}code{background:#f3f3f3}")


def index_html(markdown_text: str, pictures: Path) -> str:
    """report.md as a page a browser opens from anywhere alone: headings, tables, lists and code as HTML, and
    every picture `![alt](name.png)` of `pictures` inline as a data: URI."""
    body: list[str] = []
    table: list[list[str]] = []
    in_code = False
    for line in [*markdown_text.splitlines(), ""]:
        if table and not line.startswith("|"):
            body.append(_html_table(table))
            table = []
        if line.startswith("```"):
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
        elif in_code:
            body.append(html.escape(line))
        elif line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line):
                table.append([cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif image := re.fullmatch(r"!\[(.*)\]\((.+\.png)\)", line):
            body.append(f"<p>{_inline_image(pictures / image[2], image[1])}</p>")
        elif heading := re.match(r"(#+) ", line):
            level = len(heading[1])
            body.append(f"<h{level}>{_inline(line[heading.end():])}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line:
            body.append(f"<p>{_inline(line)}</p>")
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>prunebench report</title>"
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_inline(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline_image(path: Path, alt: str) -> str:
    """An <img> carrying its PNG as a data: URI (the page needs no file beside it); the alt text alone when the
    picture was not drawn."""
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return f"({html.escape(alt)}: {html.escape(path.name)} not drawn)"
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" title="{html.escape(path.name)}">'


def _pick(cases: Sequence[Case], name: str | None, load: Any, what: str) -> tuple[Case, Any] | None:
    """The case a per-case picture shows: `name`, else the most accurate Pareto case that has the data, else (the
    dense baseline alone on the front: no case is faster) the most accurate case that removed structures."""
    if name is not None:
        chosen = [c for c in cases if c.name == name or c.name.endswith(f"::{name}")]
        if not chosen:
            raise ReportError(f"--case {name}: no such case (cases: {', '.join(c.name for c in cases[:5])}, ...)")
        data = load(chosen[0])
        if not data:
            warnings.warn(f"--case {name}: its record has no {what}: that picture is left out (rerun the case "
                          f"with this version of pytest-prunebench)", stacklevel=3)
            return None
        return chosen[0], data
    front = [c for c in pareto_front(cases) if not c.info.get(DENSE)]
    on_front = {c.name for c in front}
    rest = [c for c in cases if c.name not in on_front and not removed_no_structure(c)]
    for case in sorted(front, key=lambda c: -c.figure("top1")) + sorted(rest, key=lambda c: -c.figure("top1")):
        data = load(case)
        if data:
            return case, data
    return None


def filters_case(cases: Sequence[Case], name: str | None) -> tuple[Case, dict[str, dict[str, Any]]] | None:
    def removed(case: Case) -> dict[str, dict[str, Any]] | None:
        layers = structures(case)
        return layers if layers and any(entry["removed"] for entry in layers.values()) else None

    return _pick(cases, name, removed, "structures file (structures_path) of removed structures")


def layer_times(case: Case, key: str = "layers_path") -> list[dict[str, Any]] | None:
    """A per-layer device-time file of the case (`layers_path`, or `layers_path_dense` for its dense model)."""
    document = _side_file(case, key, "per-layer")
    if document is not None and not (isinstance(document, dict) and isinstance(document.get("layers"), list)):
        raise ReportError(f"{case.info[key]}: per-layer file of {case.name} has no `layers` list")
    return None if document is None else document["layers"]


def layers_case(cases: Sequence[Case], name: str | None
                ) -> tuple[Case, tuple[list[dict[str, Any]], list[dict[str, Any]]]] | None:
    def both(case: Case) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        pruned, dense = layer_times(case), layer_times(case, "layers_path_dense")
        return (pruned, dense) if pruned and dense else None

    return _pick(cases, name, both, "per-layer device times (layers_path, layers_path_dense)")


def plot_layers(case: Case, pruned: list[dict[str, Any]], dense: list[dict[str, Any]], path: Path) -> None:
    """Per conv / fc layer: device time against MACs, dense and pruned, each layer's two points joined."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    now = {row["layer"]: row for row in pruned if row["device_ms"] is not None}
    before = {row["layer"]: row for row in dense if row["device_ms"] is not None}
    for layer in now.keys() & before.keys():
        ax.plot([before[layer]["macs"] / 1e6, now[layer]["macs"] / 1e6],
                [before[layer]["device_ms"], now[layer]["device_ms"]], color="0.8", linewidth=0.8, zorder=1)
    ax.scatter([r["macs"] / 1e6 for r in before.values()], [r["device_ms"] for r in before.values()], color="0.5",
               label="dense", zorder=2)
    ax.scatter([r["macs"] / 1e6 for r in now.values()], [r["device_ms"] for r in now.values()], color="tab:blue",
               label="pruned", zorder=3)
    ax.set(xlabel="layer MACs (millions)", ylabel="layer device time (ms per inference)",
           title=f"Per-layer device time vs MACs: {_short(case.name)}")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def write_report(cases: Sequence[Case], out: Path, filters_of: str | None = None) -> list[Path]:
    """Every picture and page into `out`; returns the files written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--out {out}: cannot create the directory ({exc})") from None
    plot_pareto(cases, out / "pareto.png")
    plot_sparsity_latency(cases, out / "sparsity_latency.png")
    plot_speedup(cases, out / "speedup.png")
    pictures = list(PICTURES)
    curves = sensitivities(cases)
    if curves:
        plot_sensitivity(curves, out / "sensitivity.png")
        pictures.append("sensitivity.png")
    shown = filters_case(cases, filters_of)
    if shown is not None:
        plot_filters(*shown, out / "filters.png")
        pictures.append("filters.png")
    timed = layers_case(cases, filters_of)
    if timed is not None:
        plot_layers(timed[0], *timed[1], out / "layers.png")
        pictures.append("layers.png")
    deployed = report_quantization.variants(cases)
    if deployed:
        _save(report_quantization.figure(deployed, _pyplot()), out / report_quantization.PICTURE)
        pictures.append(report_quantization.PICTURE)
    text = markdown(cases)
    if shown:
        text += f"\n## Filters\n\n`filters.png` shows {shown[0].name}.\n\n![Filters](filters.png)\n"
    if timed:
        text += f"\n## Layers\n\n`layers.png` shows {timed[0].name}.\n\n![Layers](layers.png)\n"
    (out / CSV_NAME).write_text(cases_csv(cases), encoding="utf-8")
    (out / "report.md").write_text(text, encoding="utf-8")
    (out / "index.html").write_text(index_html(text, out), encoding="utf-8")
    return [out / name for name in (*pictures, CSV_NAME, "report.md", "index.html")]


def _short(name: str) -> str:
    return name.rsplit("::", 1)[-1] if "::cfg-" in name else name.split("[", 1)[-1].rstrip("]")


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"
