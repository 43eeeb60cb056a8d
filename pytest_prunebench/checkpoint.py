"""Models saved as weights only and restored onto a freshly built architecture, thinned layers included.

A thinned model's layers are narrower than the architecture builds them. Torch-Pruning's own `tp.state_dict`
copies every module's `__dict__` and needs a full unpickler to load; here the file holds tensors and integers
only, so loading it (`torch.load(weights_only=True)`) can never run code from a cache directory.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

# Module attributes that follow the tensor shapes when Torch-Pruning thins a layer.
SHAPE_ATTRIBUTES = ("in_channels", "out_channels", "groups", "num_features", "in_features", "out_features")


def save_model(model: nn.Module, path: Path) -> None:
    """Written through an ordinary file write, so a full disk is an OSError like any other write."""
    shapes = {name: {attr: int(getattr(module, attr)) for attr in SHAPE_ATTRIBUTES if hasattr(module, attr)}
              for name, module in model.named_modules()}
    buffer = io.BytesIO()
    torch.save({"state": model.state_dict(), "shapes": {name: s for name, s in shapes.items() if s}}, buffer)
    path.write_bytes(buffer.getvalue())


def load_model(model: nn.Module, path: Path) -> nn.Module:
    """Load `path` into `model` (the architecture as built), resizing every tensor and layer attribute first.

    Raises ValueError when the file does not fit the architecture (other layer names or kinds).
    """
    saved = torch.load(path, map_location="cpu", weights_only=True)
    try:
        state, shapes = saved["state"], saved["shapes"]
        for name, attributes in shapes.items():
            module = model.get_submodule(name)
            for attr, value in attributes.items():
                if not hasattr(module, attr):
                    raise ValueError(f"layer {name} has no attribute {attr}")
                setattr(module, attr, value)
        for name, tensor in state.items():
            _resize(model, name, tensor)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise ValueError(f"{path} does not fit the model ({type(exc).__name__}: {exc})") from None
    return model


def _resize(model: nn.Module, name: str, tensor: torch.Tensor) -> None:
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    current = getattr(owner, attr, None)
    if not isinstance(current, torch.Tensor) or current.shape == tensor.shape:
        return
    if isinstance(current, nn.Parameter):
        owner._parameters[attr] = nn.Parameter(torch.empty_like(tensor), requires_grad=current.requires_grad)
    else:
        owner._buffers[attr] = torch.empty_like(tensor)
