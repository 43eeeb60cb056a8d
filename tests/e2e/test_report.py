"""`prunebench report` and --prunebench-report: pictures that hold drawn content, tables recomputed independently."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path

import pytest
from report_records import rapid_records, write_json

from pytest_prunebench.report import (
    Case,
    ReportError,
    load_cases,
    write_report,
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a pytest-benchmark JSON file (JSONDecodeError"),
        ('{"benchmarks": [{"name": "t", "extra_info": {}}]}', "no prunebench record"),
        ("[]", "not a pytest-benchmark JSON file (TypeError"),
    ],
)
def test_unreadable_results_are_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(ReportError) as raised:
        load_cases([path])
    assert message in str(raised.value) and "\n" not in str(raised.value)
    finished = subprocess.run([sys.executable, "-m", "pytest_prunebench.cli", "report", str(path), "--out",
                               str(tmp_path / "out")], capture_output=True, text=True)
    assert finished.returncode == 2
    assert finished.stderr.startswith("prunebench: error: ") and message in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.fixture
def rapid(tmp_path: Path) -> list[Case]:
    return load_cases([write_json(tmp_path / "rapid.json", rapid_records())])


def chromium_path() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium_path() is None, reason="needs Debian's chromium to open the page as a user would; "
                    ".ci/run installs it (apt-get install -y chromium) and could not here")
def test_index_html_opens_in_a_real_browser_with_every_picture_decoded(tmp_path: Path, rapid: list[Case]) -> None:
    """The page alone in an empty directory (no picture beside it), loaded by headless chromium; after `load`, a
    probe writes each <img>'s decoded size into the DOM chromium dumps."""
    written = write_report(rapid, tmp_path / "out")
    pictures = [p for p in written if p.suffix == ".png"]
    alone = tmp_path / "alone"
    alone.mkdir()
    probe = ("<script>addEventListener('load', () => { document.body.dataset.images = [...document.images].map("
             "i => i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight).join(' ');"
             "document.body.dataset.tables = document.querySelectorAll('table').length;"
             "document.body.dataset.first = document.querySelector('h2').textContent; });</script>")
    page = (tmp_path / "out" / "index.html").read_text()
    (alone / "index.html").write_text(page.replace("</body>", probe + "</body>"))
    finished = subprocess.run(
        [str(chromium_path()), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         (alone / "index.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    dom = finished.stdout

    def attribute(name: str) -> str:
        start = dom.index(f'data-{name}="') + len(f'data-{name}="')
        return html.unescape(dom[start:dom.index('"', start)])

    expected = []
    for picture in pictures:
        header = picture.read_bytes()[:24]  # PNG: the IHDR chunk's width and height, big-endian
        expected.append(f"true:{int.from_bytes(header[16:20], 'big')}x{int.from_bytes(header[20:24], 'big')}")
    assert attribute("images").split() == expected  # every picture decoded at its full size, in report order
    assert int(attribute("tables")) >= 4 and attribute("first").startswith("Correlation of each sparsity")
