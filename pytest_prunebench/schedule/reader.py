"""Reading a schedule: a YAML file or document validated section by section into a Schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ScheduleError
from .catalogue import SECTION_KEYS
from .checks import check_masking, unused_entries
from .extensions import ExtensionReader
from .fields import FieldReader, name_of
from .lr_schedulers import LRSchedulerReader
from .model import Schedule
from .policies import PolicyReader
from .prunebench_section import PrunebenchSectionReader
from .pruners import PrunerReader
from .regularizers import RegularizerReader
from .yaml_io import read_yaml


def load_schedule(path: str | Path) -> Schedule:
    """Read and validate one Distiller-format schedule file."""
    path = Path(path)
    duplicates: list[tuple[int, str]] = []
    schedule = parse_schedule(read_yaml(path, duplicates=duplicates), str(path), name=path.stem)
    found = tuple(f"{path}: line {line}: {text}" for line, text in duplicates)
    return replace(schedule, warnings=found + schedule.warnings) if found else schedule


def parse_schedule(document: Any, path: str, name: str) -> Schedule:
    """Validate an already-loaded YAML document; `path` is only used in messages."""
    if document is None:
        raise ScheduleError(path, "", "the file is empty; a schedule needs `pruners:` and `policies:`")
    if isinstance(document, str) and document.strip().endswith((".yaml", ".yml")):
        raise ScheduleError(path, "", f"the file holds only the text {document.strip()!r}: a symlink copied as a "
                                      f"plain file? Point at the schedule it names")
    if not isinstance(document, Mapping):
        raise ScheduleError(path, "", f"a schedule is a YAML mapping, got {type(document).__name__}")
    return DocumentReader(path).schedule(document, name)


class DocumentReader(FieldReader):
    """Reads the sections in order (one reader each), then resolves the policies and checks the whole."""

    def schedule(self, doc: Mapping[str, Any], name: str) -> Schedule:
        unknown = sorted(str(k) for k in doc if k not in SECTION_KEYS)
        if unknown:
            hint = "; a W&B sweep file? pass it with --prunebench-sweep" if {"method", "parameters"} & set(doc) else ""
            raise self.fail(unknown[0], f"unknown top-level key (expected one of {sorted(SECTION_KEYS)}){hint}")
        if doc.get("quantizers"):
            classes = sorted({name_of(v.get("class")) for v in self.mapping(doc["quantizers"], "quantizers").values()
                              if isinstance(v, Mapping)})
            raise self.fail("quantizers", f"{', '.join(classes) or 'quantizers'}: quantization is not supported by "
                                          f"pytest-prunebench, which measures pruned f32/bf16 models (remove the "
                                          f"`quantizers:` section)")
        regularizer_reader = RegularizerReader(self.path)
        regularizers = {n: regularizer_reader.regularizer(n, s)
                        for n, s in self.mapping(doc.get("regularizers") or {}, "regularizers").items()}
        pruner_reader = PrunerReader(self.path)
        pruners = {n: pruner_reader.pruner(n, s) for n, s in self.mapping(doc.get("pruners") or {}, "pruners").items()}
        extensions = self.mapping(doc.get("extensions") or {}, "extensions")
        extension_reader = ExtensionReader(self.path)
        for ext_name, ext in extensions.items():
            extension_reader.check_extension(ext_name, ext)
        schedulers = self.mapping(doc.get("lr_schedulers") or {}, "lr_schedulers")
        lr_reader = LRSchedulerReader(self.path)
        lr_definitions = tuple(lr_reader.check_lr_scheduler(n, spec) for n, spec in schedulers.items())
        policies = doc.get("policies") or []
        if not isinstance(policies, list):
            raise self.fail("policies", "must be a list of policies (`- pruner: {instance_name: ...}`)")
        pruner_policies, thinning, lr_schedulers, regularized = PolicyReader(self.path).policies(
            policies, pruners, extensions, schedulers, regularizers)
        check_masking(self.path, pruner_policies, pruners, regularized)
        fired = {p.pruner for p in pruner_policies}
        used = {"pruners": fired, "extensions": {t.name for t in thinning},
                "lr_schedulers": {s.name for s in lr_schedulers}, "regularizers": {r.name for r in regularized}}
        defined = {"pruners": set(pruners), "extensions": set(extensions), "lr_schedulers": set(schedulers),
                   "regularizers": set(regularizers)}
        settings = PrunebenchSectionReader(self.path).prunebench_section(doc.get("prunebench"))
        return Schedule(
            name=name,
            path=self.path,
            pruners=tuple(pruners[n] for n in pruners if n in fired),
            pruner_policies=tuple(pruner_policies),
            thinning=tuple(thinning),
            lr_schedulers=tuple(lr_schedulers),
            regularizers=tuple(regularized),
            warnings=tuple(unused_entries(self.path, defined, used)),
            lr_scheduler_definitions=lr_definitions,
            **settings,
        )
