"""Hostile user models (tests/hostile/index.yaml, `via: model`), given with --prunebench-model
package.module:factory: missing modules, factories that return, raise or exit wrongly, modules that exit on
import... each fails its run with one clear line and no traceback, before any dense baseline trains.

This file holds plugin-layer tests (pytester, in-process); the corpus runner is tests/hostile_corpus.py.
"""

from __future__ import annotations

from hostile_corpus import corpus_test

test_hostile_input_fails_with_one_clear_line = corpus_test("models")
