"""The artifact cache: keys, atomic entries, corruption, per-key locks across processes, bad cache directories.

This file holds the unit layer's tests (in-process, no pytester, no subprocess, no real training or device); the
topic's other tests are in tests/e2e/test_cache.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch
from cache_builds import KEY, Counting, read_a
from tiny import CHANNELS_SCHEDULE, FILTERS_SCHEDULE, write_schedules

from pytest_prunebench.cache import ArtifactCache, CacheWarning, artifact_key, check_entry
from pytest_prunebench.case import CaseRunner
from pytest_prunebench.checkpoint import load_model, save_model
from pytest_prunebench.errors import CacheError
from pytest_prunebench.models import build_model
from pytest_prunebench.schedule import load_schedule
from pytest_prunebench.settings import Settings


def write_files(**files: bytes):  # noqa: ANN201 - a build callable
    def build(directory: Path) -> None:
        for name, content in files.items():
            (directory / name).write_bytes(content)
    return build


# -- keys -----------------------------------------------------------------------------------------------------

def test_keys_are_hex_and_change_with_every_field_of_the_document() -> None:
    base = {"model": "resnet20", "epochs": 2, "seed": 0}
    key = artifact_key("cases", base)
    assert len(key) == 32 and int(key, 16) >= 0
    assert artifact_key("cases", dict(reversed(list(base.items())))) == key  # order does not matter
    for field, other in (("model", "resnet56"), ("epochs", 3), ("seed", 1)):
        assert artifact_key("cases", {**base, field: other}) != key
    assert artifact_key("baselines", base) != key


@pytest.mark.parametrize(("kind", "key"), [("cases", "../../etc"), ("cases", KEY + "/x"), ("cases", KEY.upper()),
                                           ("../cases", KEY), ("openvino", KEY), ("cases", "")])
def test_an_entry_path_never_leaves_the_cache_dir(tmp_path: Path, kind: str, key: str) -> None:
    with pytest.raises(ValueError, match="not a cache entry"):
        ArtifactCache(tmp_path, 1).entry_path(kind, key)


def test_the_case_key_ignores_name_comments_and_thresholds_but_not_the_pruning(tmp_path: Path) -> None:
    commented = "# a comment\n" + FILTERS_SCHEDULE + "prunebench:\n  min_top1: 90\n  max_latency_ms: 3\n"
    folder = write_schedules(tmp_path, filters=FILTERS_SCHEDULE, renamed_and_commented=commented,
                             sparser=FILTERS_SCHEDULE.replace("desired_sparsity: 0.5", "desired_sparsity: 0.75"),
                             other=CHANNELS_SCHEDULE)
    runner = CaseRunner(Settings(cache=tmp_path / "cache"))

    def key(name: str, epochs: int = 1, baseline: str = "b" * 32, settings: Settings | None = None) -> str:
        if settings is not None:
            runner.settings = settings
        return runner.case_key(load_schedule(folder / f"{name}.yaml"), baseline, epochs, True)

    reference = key("filters")
    assert key("renamed_and_commented") == reference
    assert key("sparser") != reference and key("other") != reference
    assert key("filters", epochs=2) != reference
    assert key("filters", baseline="c" * 32) != reference
    assert key("filters", settings=Settings(seed=1)) != reference
    assert key("filters", settings=Settings(lr=0.05)) != reference


# -- entries --------------------------------------------------------------------------------------------------

def test_an_entry_is_built_once_then_read_from_the_cache(tmp_path: Path) -> None:
    cache, build = ArtifactCache(tmp_path, 5), Counting()
    first = cache.fetch("cases", KEY, {"case": "x"}, build, read_a)
    second = ArtifactCache(tmp_path, 5).fetch("cases", KEY, {"case": "x"}, build, read_a)
    assert first == (b"artifact", False) and second == (b"artifact", True)
    assert build.calls == 1
    assert check_entry(tmp_path / "cases" / KEY) is None
    (entry,) = cache.entries()
    assert (entry.kind, entry.key, entry.describe, entry.problem) == ("cases", KEY, {"case": "x"}, None)
    assert entry.bytes == len(b"artifact") + (entry.path / "manifest.json").stat().st_size


def test_a_failed_build_leaves_no_entry_and_no_partial_directory(tmp_path: Path) -> None:
    def failing(directory: Path) -> None:
        (directory / "a.bin").write_bytes(b"half")
        raise RuntimeError("retraining blew up")

    cache = ArtifactCache(tmp_path, 5)
    with pytest.raises(RuntimeError, match="blew up"):
        cache.fetch("cases", KEY, {}, failing, read_a)
    assert sorted(p.name for p in (tmp_path / "cases").iterdir()) == [f"{KEY}.lock", f"{KEY}.lock.holder"]
    assert cache.fetch("cases", KEY, {}, Counting(), read_a) == (b"artifact", False)


@pytest.mark.parametrize(("damage", "problem"), [
    ("flip_a_byte", "a.bin does not match its checksum"),
    ("truncate", "a.bin has 4 bytes, not 8"),
    ("delete_file", "a.bin is missing"),
    ("delete_manifest", "manifest.json is missing or unreadable"),
    ("garble_manifest", "manifest.json is missing or unreadable"),
])
def test_a_damaged_entry_is_reported_once_and_rebuilt(tmp_path: Path, damage: str, problem: str) -> None:
    cache, build = ArtifactCache(tmp_path, 5), Counting()
    cache.fetch("cases", KEY, {}, build, read_a)
    entry = tmp_path / "cases" / KEY
    if damage == "flip_a_byte":
        (entry / "a.bin").write_bytes(b"artifacT")
    elif damage == "truncate":
        (entry / "a.bin").write_bytes(b"arti")
    elif damage == "delete_file":
        (entry / "a.bin").unlink()
    elif damage == "delete_manifest":
        (entry / "manifest.json").unlink()
    else:
        (entry / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.warns(CacheWarning) as caught:
        assert cache.fetch("cases", KEY, {}, build, read_a) == (b"artifact", False)
    assert len(caught) == 1
    assert str(caught[0].message) == f"cache entry {entry} is unusable ({problem}); rebuilding it"
    assert build.calls == 2
    assert cache.fetch("cases", KEY, {}, build, read_a) == (b"artifact", True)  # whole again


def test_an_entry_its_loader_cannot_read_is_rebuilt(tmp_path: Path) -> None:
    cache, attempts = ArtifactCache(tmp_path, 5), []

    def load(directory: Path) -> bytes:
        attempts.append(directory)
        if len(attempts) == 1:
            raise ValueError("does not fit the model")
        return read_a(directory)

    cache.fetch("cases", KEY, {}, Counting(), read_a)
    with pytest.warns(CacheWarning, match=r"unusable \(ValueError: does not fit the model\); rebuilding"):
        assert cache.fetch("cases", KEY, {}, Counting(b"fresh"), load) == (b"fresh", False)


def test_without_a_cache_every_fetch_builds_and_nothing_is_stored(tmp_path: Path) -> None:
    cache, build = ArtifactCache(None, 5), Counting()
    assert cache.fetch("cases", KEY, {}, build, read_a) == (b"artifact", False)
    assert cache.fetch("cases", KEY, {}, build, read_a) == (b"artifact", False)
    assert build.calls == 2 and not any(tmp_path.iterdir())


# -- bad cache directories ------------------------------------------------------------------------------------

def test_a_cache_dir_under_a_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory", encoding="utf-8")
    root = tmp_path / "file" / "cache"
    with pytest.raises(CacheError) as info:
        ArtifactCache(root, 5).fetch("cases", KEY, {}, Counting(), read_a)
    message = str(info.value)
    assert message.startswith(f"cannot write the artifact cache {root} (Not a directory")
    assert "--prunebench-cache DIR" in message and "--prunebench-no-cache" in message and "\n" not in message


def test_a_model_file_that_does_not_fit_the_architecture_is_a_value_error(tmp_path: Path) -> None:
    save_model(build_model("resnet20", 10), tmp_path / "model.pt")
    with pytest.raises(ValueError, match="does not fit the model"):
        load_model(build_model("resnet32", 10), tmp_path / "model.pt")


def test_a_model_file_with_a_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {marker}",))

    torch.save({"state": Exploit(), "shapes": {}}, tmp_path / "model.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        load_model(build_model("resnet20", 10), tmp_path / "model.pt")
    time.sleep(0.1)
    assert not marker.exists()


def test_manifest_lists_every_file_with_its_checksum(tmp_path: Path) -> None:
    ArtifactCache(tmp_path, 5).fetch("cases", KEY, {"case": "x"}, write_files(**{"a.bin": b"1", "b.bin": b"22"}),
                                     read_a)
    manifest = json.loads((tmp_path / "cases" / KEY / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["a.bin", "b.bin"]
    assert manifest["files"]["b.bin"]["bytes"] == 2 and len(manifest["files"]["b.bin"]["sha256"]) == 64
    assert manifest["describe"] == {"case": "x"} and "torch" in manifest["versions"]


# -- `prunebench cache ls|prune` ------------------------------------------------------------------------------

def populate(root: Path) -> ArtifactCache:
    """Three entries: a fresh case, a case last used 10 days ago, a damaged baseline; and a dead builder's leftover."""
    cache = ArtifactCache(root, 5)
    keys = {"fresh": "a" * 32, "old": "b" * 32, "damaged": "c" * 32}
    cache.fetch("cases", keys["fresh"], {"case": "fresh"}, Counting(), read_a)
    cache.fetch("cases", keys["old"], {"case": "old"}, Counting(), read_a)
    cache.fetch("baselines", keys["damaged"], {"model": "resnet20"}, Counting(), read_a)
    ten_days_ago = time.time() - 10 * 86400
    os.utime(root / "cases" / keys["old"], (ten_days_ago, ten_days_ago))
    (root / "baselines" / keys["damaged"] / "a.bin").write_bytes(b"edited!!")
    (root / "cases" / f".partial-{'d' * 32}-999999999").mkdir()
    return cache


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from pytest_prunebench.cli import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_cache_ls_shows_every_entry_its_size_age_state_and_leftovers(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    status, out, _ = cli(capsys, "cache", "ls", "--cache", str(tmp_path))
    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == ["kind", "key", "size", "last", "used", "state", "what"]
    assert any(line.split()[:2] == ["cases", "a" * 12] and "just now" in line and "case fresh" in line
               for line in lines)
    assert any(line.split()[:2] == ["cases", "b" * 12] and "10 d ago" in line for line in lines)
    assert any(line.split()[:2] == ["baselines", "c" * 12] and "DAMAGED: a.bin does not match its checksum" in line
               for line in lines)
    assert f"leftover of a killed run: {tmp_path / 'cases' / ('.partial-' + 'd' * 32 + '-999999999')}" in lines
    assert lines[-1].startswith("3 entries, ") and lines[-1].endswith(f" in {tmp_path}")


def test_cache_prune_removes_damaged_entries_and_leftovers_by_default(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cache = populate(tmp_path)
    status, out, _ = cli(capsys, "cache", "prune", "--cache", str(tmp_path))
    assert status == 0 and f"removed baselines/{'c' * 32}" in out and "removed leftover" in out
    assert sorted(entry.key[0] for entry in cache.entries()) == ["a", "b"] and cache.leftovers() == []
    assert cli(capsys, "cache", "prune", "--cache", str(tmp_path), "--older-than", "7")[1].startswith(
        f"removed cases/{'b' * 32}")
    assert [entry.key[0] for entry in cache.entries()] == ["a"]
    assert cli(capsys, "cache", "prune", "--cache", str(tmp_path), "--kind", "baselines")[0] == 0
    assert [entry.key[0] for entry in cache.entries()] == ["a"]  # --kind baselines left the case alone
    cli(capsys, "cache", "prune", "--cache", str(tmp_path), "--all")
    assert cache.entries() == []


@pytest.mark.parametrize(("argv", "message"), [
    (["cache", "ls", "--cache", "missing"], "prunebench: error: no artifact cache at missing: pass --cache DIR"),
    (["cache", "prune", "--older-than", "-1"], "'-1': use 0 days or more"),
    (["cache", "prune", "--older-than", "soon"], "'soon' is not a number of days"),
    (["cache", "prune", "--kind", "openvino"], "invalid choice: 'openvino'"),
    (["cache"], "the following arguments are required: action"),
])
def test_cache_cli_refuses_bad_arguments_in_one_line(argv: list[str], message: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        status, _, err = cli(capsys, *argv)
    except SystemExit as exit_:  # argparse
        status, err = int(exit_.code or 0), capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err
