"""Hostile W&B sweep files (tests/hostile/index.yaml, `via: sweep`), each given with --prunebench-sweep:
methods, distributions and metrics that cannot work, unsafe tags, factories... each fails its run with one clear
line and no traceback, before any dense baseline trains; and a bad sweep file is reported once.

This file holds plugin-layer tests (pytester, in-process); the corpus runner is tests/hostile_corpus.py.
"""

from __future__ import annotations

import pytest
from hostile_corpus import SWEEP_SUITE, corpus_test, run_pytest

test_hostile_input_fails_with_one_clear_line = corpus_test("sweeps")


def test_a_bad_sweep_file_is_reported_once(pytester: pytest.Pytester) -> None:
    (pytester.path / "bayes.yaml").write_text("method: bayes\nparameters:\n  sparsity.layer3: {value: 0.5}\n")
    pytester.makepyfile(test_hostile_sweep_suite=SWEEP_SUITE)  # not test_sweep: tests/*/test_sweep.py may be imported
    code, output = run_pytest(pytester, "--prunebench-sweep=bayes.yaml", case=False)
    assert code == pytest.ExitCode.INTERRUPTED
    assert output.count("bayes.yaml: metric: bayes needs a metric to optimise") == 1, output
    assert "During handling of the above exception" not in output
