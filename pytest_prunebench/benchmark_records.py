"""The one adapter to pytest-benchmark's internals: records into its session, its machine info, its saved runs.

pytest-benchmark has no public API for records made outside its `benchmark` fixture; everything this plugin
needs of `config._benchmarksession` and `pytest_benchmark.stats` is here, so a change there is a change here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from .errors import PrunebenchWarning
from .settings import Settings

Record = dict[str, Any]  # cases.Record


@dataclass(frozen=True)
class _RecordSource:
    """What pytest-benchmark's Metadata reads from its fixture; one per case, since that fixture is single-use."""

    name: str
    fullname: str
    group: str | None
    param: str | None
    params: dict[str, Any] | None
    extra_info: dict[str, Any]
    cprofile_stats: None = None
    has_error: bool = False


@dataclass
class BenchmarkRecords:
    """The records of the process that writes pytest-benchmark's JSON (pytest alone, or xdist's controller),
    and the summary's rows: every case of the session, from every process."""

    config: pytest.Config
    settings: Settings
    rows: list[dict[str, Any]] = field(default_factory=list)  # what the summary shows, from every process
    _machine_info: Callable[[], dict[str, Any] | None] | None = None  # see gather_machine_info

    def record(self, record: Record) -> None:
        """One pytest-benchmark record per case: stats are the device latency samples in seconds."""
        replace_by_name(self.rows, {"name": record["name"], "fullname": record["fullname"], **record["extra_info"]},
                        lambda r: r["fullname"])
        benchmarks = self._benchmarks()
        if benchmarks is None:
            warnings.warn(PrunebenchWarning("pytest-benchmark is not active (-p no:benchmark?): no record written"),
                          stacklevel=2)
            return
        from pytest_benchmark.stats import Metadata

        source = _RecordSource(name=record["name"], fullname=record["fullname"], group="prunebench",
                               param=record["param"], params=record["params"], extra_info=record["extra_info"])
        metadata = Metadata(source, iterations=1, options=record["options"])
        for sample in record["samples"]:
            metadata.update(sample)
        replace_by_name(benchmarks.benchmarks, metadata, lambda m: m.fullname)

    def amend(self, names: set[str], fields: dict[str, Any]) -> None:
        for row in self.rows:
            if row["fullname"] in names:
                row.update(fields)

    def recorded(self) -> set[str]:
        return {row["fullname"] for row in self.rows}

    def _benchmarks(self) -> Any:
        return getattr(self.config, "_benchmarksession", None)

    def gather_machine_info(self) -> None:
        """pytest-benchmark's machine info for the JSON (0.25 s here, mostly a `python -m cpuinfo` child) is
        gathered in the background while the first case starts, instead of after the last one."""
        benchmarks = self._benchmarks()
        if benchmarks is None or not (benchmarks.save or benchmarks.autosave or benchmarks.json):
            return
        import cpuinfo  # noqa: F401  (pytest-benchmark imports it in the call: not in a thread)
        from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info as generate

        from .threads import in_background

        gathered: dict[str, dict[str, Any]] = {}
        thread = in_background(lambda: gathered.update(info=generate()), "machine-info")

        def result() -> dict[str, Any] | None:
            thread.join()
            return gathered.get("info")  # None: it failed, and pytest-benchmark gathers it itself

        self._machine_info = result

    def machine_info(self) -> dict[str, Any] | None:
        return self._machine_info() if self._machine_info is not None else None

    def saved_run(self) -> tuple[str, dict[str, dict[str, Any]]]:
        """The run `--benchmark-compare` selected: its file and each case's extra_info by full name.

        pytest-benchmark loads it in its own pytest_configure (trylast), so this is asked at session start.
        """
        rules = ", ".join(map(str, self.settings.compare_fail))
        if not self.config.getoption("benchmark_compare", None):
            raise pytest.UsageError(f"--prunebench-compare-fail {rules}: add --benchmark-compare (the saved run to "
                                    f"compare with, e.g. --benchmark-compare or --benchmark-compare=0001)")
        benchmarks = self._benchmarks()
        loaded = getattr(benchmarks, "compared_mapping", None) or {}
        if not loaded:
            storage = getattr(benchmarks, "storage", "the benchmark storage")
            raise pytest.UsageError(f"--prunebench-compare-fail {rules}: --benchmark-compare found no saved run in "
                                    f"{storage}; save one first (--benchmark-autosave on main, see the README's "
                                    f"CI recipe)")
        path, by_name = list(loaded.items())[-1]  # several matches: the newest
        return str(path), {name: bench.get("extra_info", {}) for name, bench in by_name.items()}


def replace_by_name(items: list[Any], item: Any, name: Callable[[Any], str]) -> None:
    """Append, dropping an earlier entry of the same name: hypothesis replays examples (shrinking, the example
    database), and a case run twice is one record, the latest."""
    items[:] = [existing for existing in items if name(existing) != name(item)]
    items.append(item)
