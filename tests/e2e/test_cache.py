"""The artifact cache: keys, atomic entries, corruption, per-key locks across processes, bad cache directories.

This file holds the end-to-end layer's tests (real training and devices, subprocesses, redis-server, workers); the
topic's other tests are in tests/unit/test_cache.py.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cache_builds import KEY, Counting, read_a
from tiny import CHANNELS_SCHEDULE, FILTERS_SCHEDULE, write_schedules

from pytest_prunebench.cache import ArtifactCache
from pytest_prunebench.checkpoint import load_model, save_model
from pytest_prunebench.errors import CacheError
from pytest_prunebench.models import build_model, count_macs
from pytest_prunebench.pruning import prune_to_final
from pytest_prunebench.schedule import load_schedule


def test_a_killed_builders_partial_directory_is_cleared(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    partial = tmp_path / "cases" / f".partial-{KEY}-{dead.stdout.strip()}"
    partial.mkdir(parents=True)
    (partial / "a.bin").write_bytes(b"half")
    cache = ArtifactCache(tmp_path, 5)
    assert cache.leftovers() == [partial]
    assert cache.fetch("cases", KEY, {}, Counting(), read_a) == (b"artifact", False)
    assert not partial.exists() and cache.leftovers() == []


# -- locks across processes -----------------------------------------------------------------------------------

# Fetch KEY in the cache at argv[1] with a build that logs to argv[2] and takes argv[3] seconds.
FETCHER = """
import sys, time
from pathlib import Path
from pytest_prunebench.cache import ArtifactCache

root, log, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
def build(directory):
    with log.open("a") as handle:
        handle.write("build\\n")
    print("building", flush=True)
    time.sleep(seconds)
    (directory / "a.bin").write_bytes(b"artifact")
value, hit = ArtifactCache(root, 30).fetch("cases", sys.argv[4], {}, build, lambda d: (d / "a.bin").read_bytes())
print("hit" if hit else "built", value.decode(), flush=True)
"""


def fetcher(root: Path, log: Path, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", FETCHER, str(root), str(log), str(seconds), KEY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_that_need_one_entry_build_it_once(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    procs = [fetcher(tmp_path / "cache", log, 1.0) for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    assert log.read_text().splitlines() == ["build"]
    assert sorted(out.splitlines()[-1] for out, _ in outputs) == ["built artifact", "hit artifact"]


def test_a_cache_lock_held_by_a_live_process_names_the_lock_file_and_its_holder(tmp_path: Path) -> None:
    proc = fetcher(tmp_path / "cache", tmp_path / "builds.log", 60.0)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "building"
        messages: list[str] = []
        with pytest.raises(CacheError) as info:
            ArtifactCache(tmp_path / "cache", 0.3, messages.append).fetch("cases", KEY, {}, Counting(), read_a)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    lock = tmp_path / "cache" / "cases" / f"{KEY}.lock"
    assert str(info.value).startswith(f"cache lock {lock} is still held after 0.3 s by pid {proc.pid} on ")
    assert "--prunebench-lock-timeout" in str(info.value) and "\n" not in str(info.value)
    assert len(messages) == 1 and messages[0].startswith(f"waiting for pid {proc.pid} on {socket.gethostname()} since ")
    assert messages[0].endswith(f", which is building the cache entry {lock.with_suffix('')} (up to 0.3 s, "
                                f"--prunebench-lock-timeout)")
    # Killed mid-build: the kernel freed the lock, the partial directory is cleared, the entry is built whole.
    cache = ArtifactCache(tmp_path / "cache", 5)
    assert cache.fetch("cases", KEY, {}, Counting(), read_a) == (b"artifact", False)
    assert cache.leftovers() == []


FULL_DISK = """
import sys
from pathlib import Path
from pytest_prunebench.cache import ArtifactCache
from pytest_prunebench.errors import CacheError

def build(directory):
    (directory / "a.bin").write_bytes(b"x" * 1_000_000)
try:
    ArtifactCache(Path(sys.argv[1]), 5).fetch("cases", sys.argv[2], {}, build, lambda d: None)
except CacheError as exc:
    print(exc)
"""


def test_a_full_cache_disk_is_one_clear_error(tmp_path: Path) -> None:
    """A 256 KiB tmpfs in a private mount namespace (unshare: no root needed, nothing mounted outside)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    mount = tmp_path / "small"
    mount.mkdir()
    script = f"mount -t tmpfs -o size=256k tmpfs {mount} && exec {sys.executable} -c '{FULL_DISK}' {mount}/cache {KEY}"
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    if "mount" in result.stderr and result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"cannot write the artifact cache {mount}/cache (No space left on device")
    assert result.stdout.count("\n") == 1 and "Traceback" not in result.stderr


# -- thinned models as weights only ---------------------------------------------------------------------------

def test_a_thinned_model_round_trips_onto_a_freshly_built_architecture(tmp_path: Path) -> None:
    schedule = load_schedule(write_schedules(tmp_path, filters=FILTERS_SCHEDULE, channels=CHANNELS_SCHEDULE)
                             / "filters.yaml")
    torch.manual_seed(0)
    model = build_model("resnet20", 10)
    prune_to_final(model, schedule)
    save_model(model, tmp_path / "model.pt")
    restored = load_model(build_model("resnet20", 10), tmp_path / "model.pt")
    assert count_macs(restored) == count_macs(model) < count_macs(build_model("resnet20", 10))
    sample = torch.randn(2, 3, 32, 32)
    model.eval(), restored.eval()
    assert torch.equal(model(sample), restored(sample))
    assert restored.layer1[0].conv1.out_channels == 8 and restored.layer1[0].bn1.num_features == 8
