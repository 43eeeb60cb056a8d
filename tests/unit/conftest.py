"""Fixtures of the unit layer."""

from __future__ import annotations

from pathlib import Path

import pytest
from option_parsing import OptionParsing


@pytest.fixture
def parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OptionParsing:
    """pytest's parser with the plugin's options, in an empty directory of this test's own."""
    return OptionParsing(tmp_path, monkeypatch)
