"""The `prunebench:` section: model, data, training, rounding, deployment and the case's bounds (its thresholds)."""

from __future__ import annotations

from typing import Any

from ..errors import shown
from ..granularity import AUTO_ROUND_TO
from .fields import FieldReader
from .model import BOUND_KEYS, DEPLOYMENT_KEYS, CaseBounds


class PrunebenchSectionReader(FieldReader):
    """The project's own section: fields of the Schedule beyond Distiller's."""

    def prunebench_section(self, section: Any) -> dict[str, Any]:
        if section is None:
            return {}
        section = self.mapping(section, "prunebench")
        allowed = {"model", "dataset", "epochs", "lr", "round_to", *DEPLOYMENT_KEYS, *BOUND_KEYS}
        extra = sorted(set(section) - allowed)
        if extra:
            raise self.fail(f"prunebench.{extra[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in ("model", "dataset"):
            if key in section and not isinstance(section[key], str):
                raise self.fail(f"prunebench.{key}", f"must be a name, got {shown(section[key])}")
        if "model" in section and ":" in section["model"]:  # a schedule file never makes pytest import a module
            raise self.fail("prunebench.model", "schedules name built-in models only (resnet20 ... resnet110, "
                                                "mobilenetv2, vgg16_bn); pass a user factory with --prunebench-model "
                                                "package.module:factory")
        result: dict[str, Any] = {"model": section.get("model"), "dataset": section.get("dataset")}
        if "epochs" in section:
            result["epochs"] = self.epoch(section["epochs"], "prunebench.epochs")
        if "lr" in section:
            result["lr"] = self.positive(section["lr"], "prunebench.lr")
        if "round_to" in section:
            value = section["round_to"]
            if value != AUTO_ROUND_TO and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise self.fail("prunebench.round_to", f"a whole number >= 1 (e.g. 8: kept filters in multiples "
                                                       f"of 8) or auto (measured on the device), got {shown(value)}")
            result["round_to"] = value
        result.update(self.deployment_keys(section))
        bounds = {k: self.number(section[k], f"prunebench.{k}") for k in BOUND_KEYS if k in section}
        result["thresholds"] = CaseBounds(**bounds)
        return result

    def deployment_keys(self, section: dict[str, Any]) -> dict[str, Any]:
        """precision, calibration and max_drop, each checked as its command-line option checks it."""
        import argparse

        from ..settings import deployment_precision, max_drop, positive_int

        result: dict[str, Any] = {}
        for key, parse in (("precision", deployment_precision), ("calibration", positive_int),
                           ("max_drop", max_drop)):
            if key not in section:
                continue
            value = section[key]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
                    key != "precision" and isinstance(value, str)):
                raise self.fail(f"prunebench.{key}", f"must be {'a name' if key == 'precision' else 'a number'}, "
                                                     f"got {shown(value)}")
            try:
                result[key] = parse(str(value))
            except argparse.ArgumentTypeError as exc:
                raise self.fail(f"prunebench.{key}", str(exc)) from None
        return result
