"""The plugin's options and ini keys parsed in this process, by pytest's own parser, without a pytest run.

What a `pytest ARGS` started in a directory would parse (its ini file, pyproject.toml, the command line), then
`options.resolve` on that Config, as pytest_configure does: the unit layer checks option values, ini keys and
their conflicts this way in milliseconds; tests/plugin keeps one pytester run per kind of usage error for the
end-to-end contract (one line, exit code 4, no traceback).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from _pytest.config import Config

from pytest_prunebench import options
from pytest_prunebench.settings import Settings


class OptionParsing:
    """pytest's parser and the plugin alone (no other installed plugin), started in `directory`."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.directory = directory
        monkeypatch.chdir(directory)  # the invocation dir: rootdir, ini file and relative paths come from it
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only the options of the plugin given with -p
        monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)

    def makeini(self, text: str) -> None:
        (self.directory / "pytest.ini").write_text(text, encoding="utf-8")

    def makepyprojecttoml(self, text: str) -> None:
        (self.directory / "pyproject.toml").write_text(text, encoding="utf-8")

    def config(self, *args: str) -> Config:
        """The Config of `pytest ARGS`: options and ini keys parsed (bad `type=` values raise UsageError here)."""
        # Config.fromdictargs is how pytest-xdist builds a worker's Config: the parser's whole path, no session.
        return Config.fromdictargs({}, ["-p", "pytest_prunebench.plugin", *args])

    def settings(self, *args: str) -> Settings:
        return options.resolve(self.config(*args), {})  # as on the controller (no xdist workerinput)

    def usage_error(self, *args: str) -> str:
        """The message of the UsageError that parsing and resolving `pytest ARGS` raises."""
        with pytest.raises(pytest.UsageError) as raised:
            self.settings(*args)
        return str(raised.value)


def assert_one_line(message: str, needle: str, pattern: str) -> None:
    """Exactly one line of `message` names `needle`, and it matches the fnmatch `pattern`."""
    lines = [line for line in message.splitlines() if needle in line]
    assert len(lines) == 1, message
    assert fnmatch.fnmatch(lines[0], pattern), lines[0]
