"""End-to-end runs on tiny settings: resnet20, synthetic data, a 1-epoch baseline, 20 timed inferences.

Everything is real: Torch-Pruning thinning, ONNX files checked by onnx.checker, OpenVINO compile and inference
on the CPU, pytest-benchmark JSON read back and by `pytest-benchmark compare`.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper
from tiny import AGP_SCHEDULE, CHANNELS_SCHEDULE, FILTERS_SCHEDULE, SPLICING_SCHEDULE, write_schedules

from pytest_prunebench.case import CaseRunner
from pytest_prunebench.data import DataSpec
from pytest_prunebench.errors import ScheduleError
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.settings import Settings

REPO = Path(__file__).resolve().parents[1]
EXTRA_INFO_KEYS = {
    "model", "dataset", "device", "schedule", "epochs", "top1", "top5", "top1_pruned", "top1_dense", "params",
    "params_dense", "macs", "macs_dense", "onnx_bytes", "onnx_path", "throughput_fps", "latency_speedup",
    "mac_speedup", "collapsed", "precision", "latency_ms_rel", "latency_ms_ref",
}
RESNET20_MACS = 40_813_184
# Writes which thread gathers the CPU info of pytest-benchmark's machine_info.
CPUINFO_PROBE = """
import threading

import cpuinfo

_get_cpu_info = cpuinfo.get_cpu_info


def get_cpu_info():
    with open("cpuinfo-calls.txt", "a") as out:
        out.write(threading.current_thread().name + "\\n")
    return _get_cpu_info()


cpuinfo.get_cpu_info = get_cpu_info
"""


def conv_macs(out_hw: int, filters: int, channels: int, kernel: int = 3) -> int:
    return out_hw * out_hw * filters * channels * kernel * kernel


# FILTERS_SCHEDULE removes floor(0.5 * 16) = 8 filters of layer1.0.conv1 (32x32 maps) and floor(0.5 * 32) = 16
# of layer2.1.conv1 (16x16 maps); each block's conv2 loses the matching input channels.
FILTERS_MACS = RESNET20_MACS - 2 * conv_macs(32, 8, 16) - 2 * conv_macs(16, 16, 32)
# CHANNELS_SCHEDULE removes floor(0.25 * 64) = 16 input channels of layer3.1.conv2 (8x8 maps) and the same
# filters of layer3.1.conv1.
CHANNELS_MACS = RESNET20_MACS - 2 * conv_macs(8, 16, 64)


@pytest.fixture
def settings(shared_cache: Path, tmp_path: Path) -> Settings:
    return Settings(data=DataSpec("synthetic"), baseline_epochs=1, rounds=20, warmup=2, cache=shared_cache,
                    artifacts=tmp_path / "artifacts")


def run_suite(pytester: pytest.Pytester, tiny_args: list[str], *args: str) -> pytest.RunResult:
    shutil.copy(REPO / "bench_suites" / "test_schedules.py", pytester.path / "test_schedules.py")
    return pytester.runpytest_subprocess(*tiny_args, "--prunebench-artifacts=artifacts", *args)


def test_schedule_suite_records_every_case_for_pytest_benchmark(pytester: pytest.Pytester,
                                                                 tiny_args: list[str]) -> None:
    gated = CHANNELS_SCHEDULE + "  max_latency_ms: 0.000001\n"  # no device is that fast: this case must fail
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE, gated=gated)
    pytester.makeconftest(CPUINFO_PROBE)
    result = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-json=out.json")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*test_schedule[[]gated[]]: latency median * ms is above max_latency_ms 1e-06 (*gated.yaml)*",
    ])
    result.stdout.fnmatch_lines(["*prunebench: 2 case(s) on CPU*",
                                 "case *top1 %*dense %*latency ms [[]95% CI[]]*speed-up [[]95% CI[]]*ONNX KB*",
                                 "test_schedule[[]filters[]] * [[]*-*[]] * [[]*-*[]] *x [[]*-*[]] *x *",
                                 "test_schedule[[]gated[]] *", "*latency ms = drift-corrected*", "95% CI: *"])
    document = json.loads((pytester.path / "out.json").read_text())
    records = {b["name"]: b for b in document["benchmarks"]}
    assert set(records) == {"test_schedule[filters]", "test_schedule[gated]"}  # a failed threshold keeps its record
    # pytest-benchmark's machine info, gathered once, in the background from the session's start
    assert (pytester.path / "cpuinfo-calls.txt").read_text().split() == ["prunebench-machine-info"]
    assert document["machine_info"]["node"] == platform.node() and document["machine_info"]["cpu"]["arch"]
    for record in records.values():
        info = record["extra_info"]
        assert set(info) >= EXTRA_INFO_KEYS, EXTRA_INFO_KEYS - set(info)
        assert "UNSERIALIZABLE" not in json.dumps(info)
        assert record["stats"]["rounds"] == 20 and len(record["stats"]["data"]) == 20
        assert 0 < record["stats"]["median"] < 1, "latency samples are in seconds"
        assert info["device"] == "CPU" and info["dataset"] == "synthetic" and info["epochs"] == 0
        assert info["top1_pruned"] == info["top1"], "0 epochs: the exported model is the pruned one"
        assert info["seconds.measure"] >= info["seconds.measure.accuracy"] + info["seconds.measure.latency"] > 0
        assert info["macs_dense"] == RESNET20_MACS
        low, high = info["latency_speedup_ci"]
        assert low <= info["latency_speedup"] <= high
        low, high = info["latency_ms_ci"]
        assert low <= info["latency_ms"] <= high
        low, high = info["latency_ms_rel_ci"]
        assert low <= info["latency_ms_rel"] <= high
        onnx.checker.check_model(info["onnx_path"], full_check=True)
        assert Path(info["onnx_path"]).stat().st_size == info["onnx_bytes"]
    assert records["test_schedule[filters]"]["extra_info"]["macs"] == FILTERS_MACS
    assert records["test_schedule[filters]"]["extra_info"]["sparsity.head_filters"] == 0.5
    assert records["test_schedule[gated]"]["extra_info"]["macs"] == CHANNELS_MACS

    compare = subprocess.run([str(Path(sys.executable).parent / "pytest-benchmark"), "compare",
                              str(pytester.path / "out.json")], capture_output=True, text=True, cwd=pytester.path)
    assert compare.returncode == 0, compare.stderr
    assert "test_schedule[filters]" in compare.stdout and "test_schedule[gated]" in compare.stdout


def test_a_rerun_reuses_the_baseline_and_keeps_record_names(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE)
    first = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-json=first.json")
    second = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-json=second.json")
    first.assert_outcomes(passed=1)
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*prunebench: dense resnet20: loaded from *"])

    def names(path: str) -> list[str]:
        return [(b["name"], b["fullname"]) for b in json.loads((pytester.path / path).read_text())["benchmarks"]]

    assert names("first.json") == names("second.json") == [
        ("test_schedule[filters]", "test_schedules.py::test_schedule[filters]")]


def test_several_cases_in_one_test_are_separate_records(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    folder = write_schedules(pytester.path, filters=FILTERS_SCHEDULE, channels=CHANNELS_SCHEDULE)
    pytester.makepyfile(test_pair=f"""
        def test_pair(prunebench):
            first = prunebench.run({str(folder / "filters.yaml")!r})
            second = prunebench.run({str(folder / "channels.yaml")!r})
            assert first.macs == {FILTERS_MACS} and second.macs == {CHANNELS_MACS}
    """)
    result = pytester.runpytest_subprocess(*tiny_args, "--prunebench-epochs", "0", "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    records = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert [b["name"] for b in records] == ["test_pair", "test_pair::channels"]


def test_retraining_follows_the_schedule_through_the_library(settings: Settings) -> None:
    with_lr = (FILTERS_SCHEDULE + "lr_schedulers:\n  decay:\n    class: ExponentialLR\n    gamma: 0.5\n").replace(
        "policies:\n", "policies:\n  - lr_scheduler: {instance_name: decay}\n    starting_epoch: 0\n"
                       "    ending_epoch: 5\n")
    schedule_path = write_schedules(settings.artifacts.parent, lr=with_lr) / "lr.yaml"
    schedule = load_schedule(schedule_path)
    result = CaseRunner(settings).run(schedule)

    assert result.epochs == schedule.pruning_horizon() + 2 == 3  # pruned at epoch 0, then two fine-tune epochs
    assert [row["lr"] for row in result.history] == [0.01, 0.005, 0.0025]  # the schedule's ExponentialLR
    assert result.macs == FILTERS_MACS
    assert 0 <= result.top1_pruned <= 100 and result.history[-1]["top1"] >= 0
    onnx.checker.check_model(result.onnx_path, full_check=True)
    assert sys.modules.get("openvino_telemetry", "absent") in (None, "absent")  # never imported: nothing sent


def test_thinning_waits_for_its_epoch_and_masks_hold_until_then(settings: Settings) -> None:
    delayed = FILTERS_SCHEDULE.replace("  - extension: {instance_name: net_thinner}\n    epochs: [0]",
                                       "  - extension: {instance_name: net_thinner}\n    epochs: [1]")
    schedule = load_schedule(write_schedules(settings.artifacts.parent, delayed=delayed) / "delayed.yaml")
    runner = CaseRunner(replace(settings, epochs=2))
    result = runner.run(schedule)
    assert result.macs == FILTERS_MACS and len(result.history) == 2


def test_autosave_compare_and_compare_fail_see_the_records(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE)
    storage = f"--benchmark-storage=file://{pytester.path / 'storage'}"
    saved = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-autosave", storage)
    saved.assert_outcomes(passed=1)
    (run_file,) = (pytester.path / "storage").rglob("0001_*.json")
    compared = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-compare", storage)
    compared.assert_outcomes(passed=1)
    compared.stdout.fnmatch_lines_random(["*test_schedule[[]filters[]] (0001_*", "*test_schedule[[]filters[]] (NOW)*"])

    # Make the saved run impossibly fast: the gate must now report the current run as a regression.
    run = json.loads(run_file.read_text())
    for field in ("min", "max", "mean", "median"):
        run["benchmarks"][0]["stats"][field] = 1e-9
    run_file.write_text(json.dumps(run))
    gated = run_suite(pytester, tiny_args, "--prunebench-epochs", "0", "--benchmark-compare", storage,
                      "--benchmark-compare-fail=median:5%")
    assert gated.ret != 0
    output = pytest.LineMatcher(gated.stdout.lines + gated.stderr.lines)  # pytest-benchmark logs to stderr
    output.fnmatch_lines(["*Performance has regressed*", "*test_schedule[[]filters[]]*median*"])


def test_xdist_workers_records_reach_one_json_file(pytester: pytest.Pytester, tiny_args: list[str]) -> None:
    write_schedules(pytester.path, filters=FILTERS_SCHEDULE, channels=CHANNELS_SCHEDULE)
    result = run_suite(pytester, tiny_args, "-n", "2", "--prunebench-epochs", "0", "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*prunebench: 2 case(s) on CPU*"])
    records = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert sorted(b["name"] for b in records) == ["test_schedule[channels]", "test_schedule[filters]"]
    assert all(len(b["stats"]["data"]) == 20 for b in records)
    # Each worker measured its own dense window; both cases are scaled to the session's one reference.
    references = {b["extra_info"]["latency_ms_ref"] for b in records}
    assert len(references) == 1 and next(iter(references)) > 0
    for record in records:
        info = record["extra_info"]
        assert info["latency_ms_rel"] == pytest.approx(info["latency_ms_ref"] / info["latency_speedup"])


def test_the_round_to_option_rounds_kept_filters_and_is_recorded(settings: Settings) -> None:
    from dataclasses import replace as with_values

    schedule_path = write_schedules(settings.artifacts.parent, filters=FILTERS_SCHEDULE) / "filters.yaml"
    result = CaseRunner(with_values(settings, round_to=16, epochs=0)).run(load_schedule(schedule_path))

    # 50% of layer1.0.conv1's and layer2.1.conv1's filters: 8 of 16 kept rounds up to all 16; 16 of 32 kept is a
    # multiple already. So only layer2.1.conv1 loses half its filters, and layer2.1.conv2 half its inputs.
    assert result.macs_dense - result.macs == 1_179_648 + 1_179_648 and result.round_to == 16
    assert result.macs > FILTERS_MACS  # without rounding both layers lose half
    assert result.extra_info()["round_to"] == 16
    assert result.schedule_hash != load_schedule(schedule_path).semantic_hash()  # round_to is part of the config


def test_round_to_auto_rounds_to_the_step_probed_once_on_the_device(settings: Settings) -> None:
    """A real probe on the CPU (whatever step this machine shows), the case thinned to multiples of it."""
    from dataclasses import replace as with_values

    schedule = load_schedule(write_schedules(settings.artifacts.parent, filters=FILTERS_SCHEDULE) / "filters.yaml")
    messages: list[str] = []
    runner = CaseRunner(with_values(settings, round_to="auto", epochs=0), messages.append)
    result = runner.run(schedule)

    step = result.round_to
    settled = runner.steps.settled("CPU", None)
    assert settled is not None and settled.step == step and f"step {step}" in settled.found
    info = result.extra_info()
    assert info["round_to"] == step and info["round_to_auto"] is True and info["round_to_probe"] == settled.found
    # 8 of layer1.0.conv1's 16 filters and 16 of layer2.1.conv1's 32 kept, each rounded up to a multiple of step
    kept1, kept2 = min(16, -(-8 // step) * step), min(32, -(-16 // step) * step)
    assert result.macs_dense - result.macs == 2 * conv_macs(32, 16 - kept1, 16) + 2 * conv_macs(16, 32 - kept2, 32)
    assert sum("probing the channel granularity" in m for m in messages) == 1
    runner._resolve_round_to(schedule, "again")  # the session's step, not a second probe
    assert sum("probing the channel granularity" in m for m in messages) == 1
    given = load_schedule(write_schedules(settings.artifacts.parent, filters=FILTERS_SCHEDULE) / "filters.yaml")
    assert runner._resolve_round_to(given, "given") == (given, "")  # a schedule's own N, no probe


def test_round_to_auto_with_a_broker_names_the_command_to_run_on_the_worker_host(settings: Settings) -> None:
    from dataclasses import replace as with_values

    auto = FILTERS_SCHEDULE + "prunebench: {round_to: auto}\n"
    path = write_schedules(settings.artifacts.parent, auto=auto) / "auto.yaml"
    schedule = load_schedule(path)
    assert schedule.round_to == "auto"
    runner = CaseRunner(with_values(settings, broker="redis://127.0.0.1:9/0"))
    with pytest.raises(ScheduleError, match=r"prunebench.round_to: auto probes CPU in this process, which "
                                            r"--prunebench-broker measures on a device worker: run `prunebench "
                                            r"granularity --device CPU` on the worker's host"):
        runner.run(schedule)


def test_a_cut_agp_case_records_the_sparsity_reached_and_exports_its_zeros(settings: Settings) -> None:
    schedule = load_schedule(write_schedules(settings.artifacts.parent, agp=AGP_SCHEDULE) / "agp.yaml")
    with pytest.warns(UserWarning, match=r"timeline is cut at 1 epoch\(s\)"):
        result = CaseRunner(replace(settings, epochs=1)).run(schedule, stop_on_collapse=False)
    info = result.extra_info()
    assert (info["sparsity.gradual"], info["reached.gradual"]) == (0.75, 4 / 16)  # only epoch 0's target, 0.25
    assert info["sparsity.fine"] == 0.6 and info["reached.fine"] == pytest.approx(0.2, abs=1e-3)
    assert (info["kind.fine"], info["kind.fc_inputs"], info["reached.fc_inputs"]) == ("elements", "rows", 0.5)
    # The fine-grained zeros held through the retraining epoch and are in the exported file (BN folded into the
    # conv scales each filter, so zeros stay zeros); no other 64x64 conv has any.
    weights = [numpy_helper.to_array(init) for init in onnx.load(result.onnx_path).graph.initializer]
    shares = sorted(float((w == 0).mean()) for w in weights if w.shape == (64, 64, 3, 3))
    assert shares[-1] == pytest.approx(info["reached.fine"]) and shares[-2] == 0
    (fc,) = [w for w in weights if w.shape == (10, 64)]  # every class kept; half the input features zero
    assert int((fc == 0).all(axis=0).sum()) == 32


def test_a_splicing_case_keeps_its_masks_and_exports_their_zeros(settings: Settings) -> None:
    schedule = load_schedule(write_schedules(settings.artifacts.parent, splicing=SPLICING_SCHEDULE) / "splicing.yaml")
    result = CaseRunner(replace(settings, epochs=1)).run(schedule, stop_on_collapse=False)
    info = result.extra_info()
    assert (info["kind.surgery"], info["ranker.surgery"]) == ("elements", "splicing")
    assert "sparsity.surgery" not in info  # SplicingPruner has no target sparsity
    # |w| below 0.9 * (mean + 0.5 std) of the dense weights goes: about half of a trained conv's weights.
    assert 0.2 < info["reached.surgery"] < 0.9
    # keep_mask applied the masks at the end of epoch 0, the policy's last, after weights revived during it: the
    # exported conv holds exactly the recorded zeros; no other 64x64 conv has any.
    weights = [numpy_helper.to_array(init) for init in onnx.load(result.onnx_path).graph.initializer]
    shares = sorted(float((w == 0).mean()) for w in weights if w.shape == (64, 64, 3, 3))
    assert shares[-1] == pytest.approx(info["reached.surgery"]) and shares[-2] == 0
