"""Hostile CIFAR-10 data directories (tests/hostile/index.yaml, `via: data`), given with --prunebench-data: a
file, an archive, truncated, gzipped or pickled-code batches, wrong shapes and types... each fails its run with
one clear line and no traceback, before any dense baseline trains (and no pickle runs code).

This file holds plugin-layer tests (pytester, in-process); the corpus runner is tests/hostile_corpus.py.
"""

from __future__ import annotations

from hostile_corpus import corpus_test

test_hostile_input_fails_with_one_clear_line = corpus_test("data")
