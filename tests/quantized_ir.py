"""Reading a quantized OpenVINO IR's .xml without OpenVINO."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path


def ir_constants(xml: Path) -> Counter[str]:
    """Element types of the IR's Const layers, read from the .xml alone (no OpenVINO, nothing of this project)."""
    layers = ElementTree.parse(xml).getroot().iter("layer")
    return Counter(layer.find("data").get("element_type") for layer in layers if layer.get("type") == "Const")
