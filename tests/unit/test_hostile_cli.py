"""Hostile input to the prunebench command line (tests/hostile/index.yaml, `via: check`, `layers`, `report` and
`cache`): schedules `prunebench check` refuses, models `prunebench layers` cannot build, broken record files for
`prunebench report`, bad cache directories and arguments... each exits non-zero with one clear line and no
traceback.

This file holds the unit layer's tests (main() in this process, no pytester, no subprocess); the corpus and how
its entries are fed live in tests/hostile_corpus.py, and the other hostile-input tests are in
tests/plugin/test_hostile_*.py and tests/unit/test_hostile_*.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hostile_corpus import CLI_FEEDS, assert_one_clear_line, corpus, forbid_training


@pytest.mark.parametrize("entry", corpus("cli"))
def test_hostile_input_fails_with_one_clear_line(entry: dict[str, Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    forbid_training(monkeypatch)
    monkeypatch.syspath_prepend(str(tmp_path))  # the corpus' model modules are copied there
    code, output = CLI_FEEDS[entry["via"]](entry, tmp_path, capsys)
    assert_one_clear_line(entry, code, output, tmp_path)
