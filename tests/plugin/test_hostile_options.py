"""Hostile command-line options and ini keys (tests/hostile/index.yaml, `via: option`, `case` and `ini`): values
argparse refuses, conflicts, paths that are files, calibration beyond the training split, bad pytest.ini
values... each fails its run with one clear line and no traceback, before any dense baseline trains.

This file holds plugin-layer tests (pytester, in-process); the corpus runner is tests/hostile_corpus.py.
"""

from __future__ import annotations

from hostile_corpus import corpus_test

test_hostile_input_fails_with_one_clear_line = corpus_test("options")
