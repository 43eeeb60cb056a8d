"""YAML files shared by schedules and sweeps: finding them, and reading them safely with one clear error."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..errors import ScheduleError, shown


def find_yaml_files(patterns: tuple[str, ...]) -> list[Path]:
    """YAML files (schedules, sweeps) named by files, directories (their *.yaml / *.yml) or globs, sorted, once."""
    import glob

    found: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = [*path.glob("*.yaml"), *path.glob("*.yml")]
        elif path.is_file():
            matches = [path]
        else:
            matches = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
        for match in sorted(matches):
            found.setdefault(match.resolve(), None)
    return list(found)



def read_yaml(path: Path, error: type[ScheduleError] = ScheduleError,
              missing: str = "pass an existing schedule with --prunebench-schedules",
              duplicates: list[tuple[int, str]] | None = None) -> Any:
    """`yaml.safe_load` of a file; every failure is one `error` naming the file (and line) and what to do.

    A key repeated in one mapping is read as YAML readers (and Distiller) read it, the later entry winning, and
    described in `duplicates` as (line, text): real Distiller files have them, so they cannot be refused, but a
    user should see that a second pruner of the same name replaced the first."""
    import yaml

    if not path.is_file():
        raise error(str(path), "", f"no such file; {missing}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), "", f"cannot read the file ({exc})") from None
    try:
        loader = _safe_loader()(text)  # a yaml.SafeLoader: no tag runs code
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
        if duplicates is not None:
            duplicates.extend(loader.duplicates)
        return document
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}" if mark else ""
        if "could not determine a constructor" in str(exc.problem):
            message = f"unsafe or unknown YAML tag ({exc.problem}); files are read with yaml.safe_load: remove the tag"
        else:  # "while constructing a mapping", "found unhashable key"; or our own scalar message
            message = ", ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise error(str(path), where, message) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]  # "while scanning ...", "found ..."
        problem = ", ".join(str(part) for part in parts if part) or str(exc).splitlines()[0]
        raise error(str(path), where, f"YAML syntax error: {problem}") from None
    except RecursionError:
        raise error(str(path), "", "YAML nested too deeply to read; a schedule or sweep is a few levels deep") from None


@functools.cache
def _safe_loader() -> type:
    """yaml.SafeLoader that lists duplicate keys (the later one silently replaces the earlier: a second pruner of
    the same name, a repeated parameter) and reports a scalar it cannot build (`2021-13-45` read as a date,
    `!!int half`) with its line instead of a bare ValueError."""
    import yaml
    from yaml.constructor import ConstructorError

    class SafeLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.duplicates: list[tuple[int, str]] = []

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, TypeError, OverflowError, IndexError, KeyError, AttributeError) as exc:
                tag = str(node.tag).rsplit(":", 1)[-1]
                why = f" ({exc})" if isinstance(exc, ValueError) and str(exc) else ""  # else PyYAML's own slip
                raise ConstructorError(None, None, f"cannot read {shown(node.value)} as a YAML {tag}{why}; quote "
                                                   f"it if it is text", node.start_mark) from None

        def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
            if isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, _value in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: the base class refuses it with its own message
                        continue
                    if duplicate:
                        self.duplicates.append((key_node.start_mark.line + 1, f"duplicate key {shown(key)}: the "
                                                f"later entry replaces the earlier one; keep one"))
            return super().construct_mapping(node, deep)

    return SafeLoader
