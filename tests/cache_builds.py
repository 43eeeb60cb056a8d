"""Builds the artifact cache tests fetch: a key and a build that counts its calls."""

from __future__ import annotations

from pathlib import Path

KEY = "0123456789abcdef" * 2


def read_a(directory: Path) -> bytes:
    return (directory / "a.bin").read_bytes()


class Counting:
    """A build that counts its calls."""

    def __init__(self, content: bytes = b"artifact") -> None:
        self.calls = 0
        self.content = content

    def __call__(self, directory: Path) -> None:
        self.calls += 1
        (directory / "a.bin").write_bytes(self.content)
