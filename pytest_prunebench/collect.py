"""Collection: schedule files and sweep points become test parameters; the `prunebench` marker is read here."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import fail_test_on_error
from .schedule import find_yaml_files
from .settings import Settings

if TYPE_CHECKING:
    from .sweep import Sweep, SweepPoint

DEFAULT_SWEEP_MODEL = "resnet20"  # when neither the sweep's `model` parameter nor --prunebench-model names one
MARKER_KWARGS = frozenset({"on_collapse", "sweep"})
COLLAPSE_POLICIES = ("fail", "record")  # what a collapsed case does to its test (suites choose with the marker)


@dataclass(frozen=True)
class Collector:
    """What the session's cases are: the `prunebench_schedule` and `prunebench_sweep` parameters, the cases
    among the collected items, and how many examples their hypothesis tests draw."""

    settings: Settings

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        if "prunebench_schedule" in metafunc.fixturenames:
            files = self.schedule_files()
            metafunc.parametrize("prunebench_schedule", files, ids=self.schedule_ids(files))
        if "prunebench_sweep" in metafunc.fixturenames:
            points = self.sweep_points(metafunc.definition)
            metafunc.parametrize("prunebench_sweep", points, ids=[point.case_id() for point in points])

    def mark_cases(self, items: list[pytest.Item]) -> None:
        cases = [item for item in items if "prunebench" in getattr(item, "fixturenames", ())]
        for item in cases:  # `-m prunebench` / `-m "not prunebench"` select the cases
            item.add_marker("prunebench")
        self.limit_examples(cases)

    def schedule_files(self) -> list[Path]:
        return find_yaml_files(self.settings.schedules)

    @staticmethod
    def schedule_ids(files: list[Path]) -> list[str]:
        """File stems; the parent folder is added only where two stems collide. Stable across runs."""
        stems = [f.stem for f in files]
        return [f.stem if stems.count(f.stem) == 1 else f"{f.parent.name}/{f.stem}" for f in files]

    def sweep_points(self, definition: pytest.Function) -> list[SweepPoint]:
        """The cases of a sweep suite: one per grid point, one per random sweep (its cases are drawn inside).

        Files come from the suite's `pytest.mark.prunebench(sweep=...)` (relative to the suite file), else from
        --prunebench-sweep. A bad file is a collection error of one line.
        """
        from .sweep import SweepPoint, early_terminate_problem

        points: list[Any] = []
        for path in self._sweep_files(definition):
            sweep = fail_test_on_error(functools.partial(self._load_sweep, path))
            problem = early_terminate_problem(sweep, self.settings.epochs)
            if problem is not None:
                pytest.fail(f"{path}: early_terminate: {problem}", pytrace=False)
            values = sweep.grid() if sweep.method == "grid" and not searched(self.settings, sweep) else [None]
            points += [SweepPoint(sweep, point) for point in values]
        return points

    def _sweep_files(self, definition: pytest.Function) -> list[Path]:
        for marker in definition.iter_markers("prunebench"):
            if "sweep" in marker.kwargs:
                given = marker.kwargs["sweep"]
                patterns = (given,) if isinstance(given, str | Path) else tuple(given)
                files = find_yaml_files(tuple(str(definition.path.parent / Path(p).expanduser()) for p in patterns))
                if not files:
                    pytest.fail(f"{definition.nodeid}: pytest.mark.prunebench(sweep={given!r}) names no .yaml/.yml "
                                f"file (paths are relative to the suite file)", pytrace=False)
                return files
        return find_yaml_files(self.settings.sweeps)

    def _load_sweep(self, path: Path) -> Sweep:
        """The sweep file, its groups checked against the model its cases prune."""
        from .sweep import check_groups, load_sweep

        sweep = load_sweep(path)
        check_groups(sweep, sweep_model(self.settings, sweep))
        return sweep

    def limit_examples(self, items: list[pytest.Item]) -> None:
        """--prunebench-examples N: every hypothesis test among the cases draws N examples.

        Hypothesis has no public way to change one test's settings after decoration; its own pytest plugin sets
        the same attribute (`_hypothesis_internal_use_settings`) for parametrised tests, so this does too.
        """
        if self.settings.examples is None:
            return
        tests = {id(f): f for item in items if getattr(f := getattr(item, "obj", None), "is_hypothesis_test", False)}
        if not tests:
            return
        from hypothesis import settings as hypothesis_settings

        for test in tests.values():
            function: Any = getattr(test, "__func__", test)
            current = getattr(function, "_hypothesis_internal_use_settings", None) or hypothesis_settings.default
            function._hypothesis_internal_use_settings = hypothesis_settings(current,
                                                                             max_examples=self.settings.examples)


def searched(settings: Settings, sweep: Sweep) -> bool:
    """bayes sweeps always run through an Optuna study; grid and random ones when a study URL is given."""
    return sweep.method == "bayes" or settings.study is not None


def sweep_model(settings: Settings, sweep: Sweep) -> str:
    """--prunebench-model (the model of every case), else the sweep's `model`, else resnet20."""
    from .sweep import model_of

    return settings.model or model_of(sweep, DEFAULT_SWEEP_MODEL)


def collapse_policy(node: pytest.Item) -> str:
    """`on_collapse` from the closest `prunebench` marker that sets it (test, class or module)."""
    for marker in node.iter_markers("prunebench"):
        unknown = sorted(set(marker.kwargs) - MARKER_KWARGS)
        if unknown or marker.args:
            pytest.fail(f"{node.nodeid}: pytest.mark.prunebench takes only on_collapse=... and sweep=..., got "
                        f"{', '.join(unknown) or marker.args}", pytrace=False)
        if "on_collapse" in marker.kwargs:
            policy = marker.kwargs["on_collapse"]
            if policy not in COLLAPSE_POLICIES:
                pytest.fail(f"{node.nodeid}: pytest.mark.prunebench(on_collapse={policy!r}): use one of "
                            f"{', '.join(map(repr, COLLAPSE_POLICIES))}", pytrace=False)
            return policy
    return "fail"
