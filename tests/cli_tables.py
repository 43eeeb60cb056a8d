"""Parsing the `prunebench layers` table."""

from __future__ import annotations

import re

ROW = re.compile(r"^(?P<name>\S+)\s+(?P<kind>conv|fc)\s+(?P<shape>[\dx]+)\s+(?P<filters>\d+)\s+(?P<channels>\d+)"
                 r"\s+(?P<macs>[\d,]+)$")


def table(out: str) -> tuple[list[re.Match[str]], str]:
    """The layer rows and the total line of a `layers` table (after its header)."""
    lines = out.rstrip("\n").splitlines()
    assert lines[0].split() == ["layer", "kind", "weight", "shape", "filters", "channels", "MACs"]
    rows = [ROW.match(text) for text in lines[1:-1]]
    assert all(rows), [text for text, row in zip(lines[1:-1], rows, strict=True) if not row]
    return rows, lines[-1]  # type: ignore[return-value]
