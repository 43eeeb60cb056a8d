"""The record's field table (record.py): what it derives for W&B, regression rules and sweeps, and that it describes the
records cases really write."""

from __future__ import annotations

from pathlib import Path

from pytest_prunebench import record, regressions, sweep, tracking
from pytest_prunebench.intervals import LatencyIntervals
from pytest_prunebench.record import FIELDS
from unit.test_reference import result

W_AND_B_STATISTICS = {"latency_median_ms", "latency_mean_ms", "latency_p90_ms"}  # run_summary adds them
SEARCH_FIELDS = {"study", "trial"}  # a searched sweep's case only


def test_every_field_is_in_a_cases_record_with_its_interval() -> None:
    samples = (0.0010, 0.0011, 0.0012) * 20
    case = result(latencies_s=samples, latency_ms=1.1, latency_ms_dense=2.2, latency_ms_ref=1.0, device_ms=0.9,
                  intervals=LatencyIntervals.of(samples, tuple(2 * s for s in samples)))
    info = case.extra_info()
    assert {f.name for f in FIELDS} - W_AND_B_STATISTICS - SEARCH_FIELDS <= set(info)
    for figure, interval in record.intervals().items():
        low, high = info[interval]
        assert low <= info[figure] <= high or figure == "e2e_ms", figure  # e2e_ms shares latency_ms's interval


def test_regression_rules_sweeps_and_wandb_read_the_table() -> None:
    assert set(regressions.HIGHER_IS_BETTER) == {"top1", "top5", "top1_pruned", "throughput_fps", "latency_speedup",
                                                 "mac_speedup"}
    assert set(regressions.LOWER_IS_BETTER) == {"latency_ms", "latency_ms_rel", "e2e_ms", "device_ms", "params",
                                                "weights", "macs", "onnx_bytes"}
    assert regressions.INTERVALS["latency_ms_rel"] == "latency_ms_rel_ci"
    assert set(sweep.METRICS) == set(regressions.COMPARED_METRICS) | W_AND_B_STATISTICS
    assert set(tracking.CONFIG_FIELDS) == {"model", "dataset", "device", "precision", "schedule", "schedule_hash",
                                           "epochs", "round_to", "study", "trial"}
    assert not set(tracking.CONFIG_FIELDS) & set(sweep.METRICS)  # a field describes the case or measures it


def test_a_figure_with_a_direction_is_comparable_and_a_sweep_metric() -> None:
    directed = [f for f in FIELDS if f.better]
    assert directed and all(f.sweep and not f.config for f in directed)
    assert record.names(better="higher", config=True) == ()
    assert len({f.name for f in FIELDS}) == len(FIELDS)  # one line per field


def field_table() -> list[str]:
    """docs/records.md's table of the record fields, as record.FIELDS says (their `doc` is where it is shown)."""
    lines = ["| field | unit | better | W&B config | sweep metric | 95% interval | shown in | what it is |",
             "|---|---|---|---|---|---|---|---|"]
    for field in FIELDS:
        shown = [f"{table} `{column.label}`" for table in ("terminal", "report")
                 if (column := field.column(table)) is not None]
        shown += ["cases.csv"] if field.csv else []
        sweep = "yes" + (", per epoch" if field.per_epoch else "") if field.sweep else ""
        interval = f"`{field.interval}`" if field.interval else ""
        lines.append(f"| `{field.name}` | {field.unit} | {field.better or ''} | {'yes' if field.config else ''} "
                     f"| {sweep} | {interval} | {', '.join(shown)} | {field.doc} |")
    return lines


def test_the_docs_list_every_field_as_the_table_says() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "records.md").read_text(encoding="utf-8")
    table = "\n".join(field_table())
    assert table in text, f"docs/records.md's field table differs from record.FIELDS; it should read:\n{table}"
    assert all(field.doc for field in FIELDS)
