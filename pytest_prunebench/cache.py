"""The artifact cache: dense baselines and pruned + retrained models, keyed by everything that determines them.

An entry is a directory `<root>/<kind>/<key>/` holding the artifact's files and a `manifest.json` with each
file's size and SHA-256. It is built in a private `.partial-<key>-<pid>` directory and renamed into place, so a
run killed at any point leaves no half-written entry; a per-key lock makes two workers that need the same entry
build it once. An entry whose files no longer match its manifest is reported as a warning and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import CacheError, CacheWarning

CACHE_FORMAT = 2  # bump when an entry's layout changes: older entries then simply miss
KINDS = ("baselines", "cases", "deployed")
MANIFEST = "manifest.json"
PARTIAL_PREFIX = ".partial-"
_KEY = re.compile(r"^[0-9a-f]{32}$")
T = TypeVar("T")
_PARTIAL = re.compile(r"^\.partial-([0-9a-f]{32})-([0-9]+)$")



def library_versions() -> dict[str, str]:
    """The libraries whose behaviour shapes an artifact: an upgrade misses the cache instead of reusing it."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("torch", "torch-pruning", "onnx", "numpy", "pytest-prunebench"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


def artifact_key(kind: str, document: dict[str, object]) -> str:
    """32 hex digits of SHA-256 over the kind, the cache format, the library versions and `document`."""
    content = {"kind": kind, "format": CACHE_FORMAT, "versions": library_versions(), **document}
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    kind: str
    key: str
    path: Path
    bytes: int
    used: float  # last built or read (unix seconds)
    describe: dict[str, Any]
    problem: str | None  # why the entry cannot be used; None when it checks out


class ArtifactCache:
    """`fetch(kind, key, describe, build)` returns a directory holding the artifact, built at most once per key.

    With `root=None` (--prunebench-no-cache) every fetch builds into a scratch directory that lives as long as
    this object, and nothing is stored.
    """

    def __init__(self, root: Path | None, lock_timeout: float,
                 progress: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self.progress = progress
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def fetch(self, kind: str, key: str, describe: dict[str, Any], build: Callable[[Path], None],
              load: Callable[[Path], T]) -> tuple[T, bool]:
        """(`load(directory)`, whether it came from the cache). `build(directory)` writes the entry's files.

        An entry that fails its manifest check, or that `load` cannot read, is reported once and rebuilt.
        """
        if self.root is None:
            return load(self._build_uncached(kind, key, build)), False
        final = self.entry_path(kind, key)
        with self._key_lock(final):
            if final.is_dir():
                problem = check_entry(final)
                if problem is None:
                    with contextlib.suppress(OSError):  # its last use: `prunebench cache prune --older-than`
                        os.utime(final)
                    try:
                        return load(final), True
                    except Exception as exc:  # unreadable in any way: rebuilt, never trusted
                        problem = f"{type(exc).__name__}: {exc}"
                warnings.warn(CacheWarning(f"cache entry {final} is unusable ({problem}); rebuilding it"),
                              stacklevel=3)
                self._remove(final)
            self._build(final, key, describe, build)
            return load(final), False

    def entry_path(self, kind: str, key: str) -> Path:
        """Only our own kinds and hex keys: a key can never name a path outside the cache directory."""
        if kind not in KINDS or not _KEY.match(key):
            raise ValueError(f"not a cache entry: kind {kind!r}, key {key!r}")
        assert self.root is not None
        return self.root / kind / key

    # -- building ---------------------------------------------------------------------------------------------

    def _build(self, final: Path, key: str, describe: dict[str, Any], build: Callable[[Path], None]) -> None:
        for stale in final.parent.glob(f"{PARTIAL_PREFIX}{key}-*"):  # a killed builder's leftovers: we hold the key
            self._remove(stale)
        partial = final.parent / f"{PARTIAL_PREFIX}{key}-{os.getpid()}"
        with self._writing(final.parent):
            partial.mkdir(parents=True)
        try:
            with self._writing(final.parent):
                build(partial)
                _write_manifest(partial, describe)
                os.rename(partial, final)  # atomic: the entry appears whole or not at all
        finally:
            if partial.exists():
                self._remove(partial)

    def _build_uncached(self, kind: str, key: str, build: Callable[[Path], None]) -> Path:
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="prunebench-nocache-")
        directory = Path(self._scratch.name) / kind / key
        if directory.exists():  # the same artifact twice in one run: build afresh, as asked
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        build(directory)
        return directory

    @contextlib.contextmanager
    def _key_lock(self, final: Path) -> Iterator[None]:
        from .lock import describe_holder, file_lock, held_elsewhere

        with self._writing(final.parent):
            final.parent.mkdir(parents=True, exist_ok=True)
        lock = final.with_name(final.name + ".lock")
        if self.progress is not None and held_elsewhere(lock):  # a wait of minutes must not look like a hang
            self.progress(f"waiting for {describe_holder(lock)}, which is building the cache entry {final} (up to "
                          f"{self.lock_timeout:g} s, --prunebench-lock-timeout)")
        with file_lock(lock, self.lock_timeout, "cache lock",
                       "another run is building this artifact: wait for it, or raise --prunebench-lock-timeout",
                       f"--prunebench-cache must name a writable directory (now {self.root})", CacheError):
            yield

    @contextlib.contextmanager
    def _writing(self, directory: Path) -> Iterator[None]:
        """An OSError while writing the cache (unwritable, full, not a directory) is one CacheError line."""
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CacheError(f"cannot write the artifact cache {self.root} ({reason} at {exc.filename or directory}); "
                             f"free space there, pass --prunebench-cache DIR with a writable directory, or run with "
                             f"--prunebench-no-cache") from None

    @staticmethod
    def _remove(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    # -- listing and pruning (`prunebench cache ls|prune`) ----------------------------------------------------

    def entries(self) -> list[Entry]:
        found = []
        for kind in KINDS:
            folder = (self.root or Path()) / kind
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if _KEY.match(path.name) and path.is_dir() and not path.is_symlink():
                    found.append(_entry(kind, path))
        return found

    def leftovers(self) -> list[Path]:
        """Partial directories of builders that died, and lock files nobody holds a note for."""
        found = []
        for kind in KINDS:
            folder = (self.root or Path()) / kind
            if folder.is_dir():
                for path in folder.iterdir():
                    match = _PARTIAL.match(path.name)
                    if match and not _alive(int(match.group(2))):
                        found.append(path)
        return found

    def clear_leftovers(self) -> list[Path]:
        """Remove the partial directories of builders that died; returns them."""
        found = self.leftovers()
        for path in found:
            self._remove(path)
        return found

    def remove(self, entry: Entry) -> None:
        """Delete one entry under its key lock (never while another process builds or reads it)."""
        with self._key_lock(entry.path):
            self._remove(entry.path)


def check_entry(path: Path) -> str | None:
    """None when every file the manifest lists is there with its size and SHA-256; else what is wrong."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != CACHE_FORMAT or not isinstance(files, dict) or not files:
            return "its manifest is from another version"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{MANIFEST} is missing or unreadable"
    for name, expected in files.items():
        member = path / name
        if Path(name).name != name or not member.is_file():
            return f"{name} is missing"
        if member.stat().st_size != expected.get("bytes"):
            return f"{name} has {member.stat().st_size} bytes, not {expected.get('bytes')}"
        if file_digest(member) != expected.get("sha256"):
            return f"{name} does not match its checksum"
    return None


def read_describe(path: Path) -> dict[str, Any]:
    try:
        describe = json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("describe", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return describe if isinstance(describe, dict) else {}


def _write_manifest(directory: Path, describe: dict[str, Any]) -> None:
    files = {member.name: {"bytes": member.stat().st_size, "sha256": file_digest(member)}
             for member in sorted(directory.iterdir()) if member.is_file()}
    manifest = {"format": CACHE_FORMAT, "created": time.time(), "versions": library_versions(),
                "describe": describe, "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")


def _entry(kind: str, path: Path) -> Entry:
    size = sum(member.stat().st_size for member in path.iterdir() if member.is_file() and not member.is_symlink())
    return Entry(kind, path.name, path, size, path.stat().st_mtime, read_describe(path), check_entry(path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
