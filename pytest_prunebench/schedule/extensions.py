"""The `extensions:` section: Distiller's thinning extensions (FilterRemover, ChannelRemover)."""

from __future__ import annotations

from typing import Any

from ..errors import shown
from .catalogue import THINNING_CLASSES, THINNING_FUNCS
from .fields import FieldReader, one_of


class ExtensionReader(FieldReader):
    """One `extensions:` entry; its ThinningSpec is made when a policy fires it."""

    def check_extension(self, name: str, spec: Any) -> None:
        where = f"extensions.{name}"
        spec = self.mapping(spec, where)
        self.allowed_class(spec, where, THINNING_CLASSES, "extension")
        func = spec.get("thinning_func_str")
        if not one_of(func, THINNING_FUNCS):
            raise self.fail(f"{where}.thinning_func_str",
                            f"must be remove_filters or remove_channels, got {shown(func)}")
        for key in ("arch", "dataset"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise self.fail(f"{where}.{key}", f"must be a name, got {shown(spec[key])}")
