"""Hostile schedule files (tests/hostile/index.yaml, `via: schedule`), each given with --prunebench-schedules:
unsafe YAML tags, foreign classes, bad values, layers and models that do not exist, alias bombs... each fails its
run with one clear line and no traceback, before any dense baseline trains.

This file holds plugin-layer tests (pytester, in-process); the corpus runner is tests/hostile_corpus.py.
"""

from __future__ import annotations

from hostile_corpus import corpus_test

test_hostile_input_fails_with_one_clear_line = corpus_test("schedules")
