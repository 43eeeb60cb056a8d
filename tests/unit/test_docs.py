"""The docs a newcomer reads: every link resolves (file and heading), every module, file and option they name
exists. A renamed module or option, or a moved section, fails here instead of misleading a reader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Files named in prose or code spans: a path with a folder, or a bare module name of this project.
FOLDERS = "pytest_prunebench|benchmarks|bench_suites|schedules|sweeps|tests|docs"
PATH = re.compile(rf"(?<![\w/.-])((?:{FOLDERS})/[\w./-]+\.\w+)")
MODULE = re.compile(r"(?<![\w/.-])([a-z_][a-z0-9_]*)\.py\b")  # a path's last part (another project's) is not one
EXAMPLES = {"schedules/x.yaml"}  # a file named in an example message
OPTION = re.compile(r"(--prunebench-[a-z0-9-]+|--wandb-[a-z-]+|--ncs\b)")


def headings(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings (outside code blocks): lower case, punctuation dropped, spaces -."""
    anchors, fence = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"^#+ ", line):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_there_are_docs_pages() -> None:
    assert {p.name for p in PAGES} >= {"README.md", "schedules.md", "search.md", "records.md", "parallel.md",
                                       "cache.md", "reports.md", "measurement.md", "distiller-corpus.md",
                                       "architecture.md"}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in headings(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves_to_a_file_and_heading(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, f"{page.name}: " + "; ".join(broken)


def _project_files() -> set[str]:
    return {p.name for p in REPO.rglob("*.py") if ".venv" not in p.parts and "build" not in p.parts}


def missing_files(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    missing = [path for path in PATH.findall(text) if not (REPO / path.rstrip(".,;:")).exists()
               and "*" not in path and "<" not in path and path not in EXAMPLES]
    modules = _project_files()
    # Module names of other projects (Distiller's, Torch-Pruning's) that the docs cite as such.
    foreign = {"thinning", "thresholding", "pruning_schedules", "compress_classifier", "setup", "conftest_plugin"}
    missing += [f"{name}.py" for name in MODULE.findall(text) if f"{name}.py" not in modules and name not in foreign]
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_and_module_named_exists(page: Path) -> None:
    missing = missing_files(page)
    assert not missing, f"{page.name} names files that do not exist: {sorted(set(missing))}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_option_named_exists(page: Path, pytestconfig: pytest.Config) -> None:
    parser = pytestconfig._parser  # the options the plugin registered in this very session
    known = {name for option in parser._anonymous.options + [o for g in parser._groups for o in g.options]
             for name in option.names()}
    named = set(OPTION.findall(page.read_text(encoding="utf-8")))
    assert not named - known, f"{page.name} names options the plugin does not have: {sorted(named - known)}"


def test_the_checks_catch_a_broken_link_a_missing_heading_and_a_missing_module(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## The artifact cache\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n[ok](other.md#the-artifact-cache) [self](#page) [gone](missing.md) "
                    "[moved](other.md#collapse) [web](https://example.org/x)\n\n```\n# not a heading\n```\n"
                    "See `runner.py`, `casey.py`, `pytest_prunebench/nothing.py` and distiller/pruning/policy.py.\n")
    assert broken_links(page) == [f"missing.md: no file {tmp_path / 'missing.md'}",
                                  "other.md#collapse: no heading #collapse in other.md"]
    assert headings(page) == {"page"}
    assert sorted(missing_files(page)) == ["casey.py", "pytest_prunebench/nothing.py"]
