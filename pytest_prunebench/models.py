"""CIFAR ResNets with Distiller's parameter names, user model factories, and conv+fc MAC counting."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ModelError
from .settings import BUILTIN_MODELS, canonical_model_name

RESNET_DEPTHS = {name: int(name.removeprefix("resnet")) for name in BUILTIN_MODELS}
INPUT_SHAPE = (3, 32, 32)


class BasicBlock(nn.Module):
    """Distiller's resnet_cifar block; the downsample is a 1x1 conv + BN (option B), which prunes cleanly."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=False)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + residual)


class ResNetCifar(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ModelError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=False)
        self.layer1 = self._stage(16, 16, blocks, stride=1)
        self.layer2 = self._stage(16, 32, blocks, stride=2)
        self.layer3 = self._stage(32, 64, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_planes, planes, stride)]
        layers += [BasicBlock(planes, planes, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_model(name: str, num_classes: int) -> nn.Module:
    """A built-in CIFAR ResNet by name, or a user model from `package.module:factory`."""
    if ":" in name:
        return _user_model(name, num_classes)
    canonical = canonical_model_name(name)
    if canonical not in RESNET_DEPTHS:
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(RESNET_DEPTHS)} "
                         f"or package.module:factory")
    return ResNetCifar(RESNET_DEPTHS[canonical], num_classes)


def _user_model(spec: str, num_classes: int) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model {spec!r}: a user model is written package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"model {spec!r}: cannot import {module_name!r} ({exc}); is it on sys.path?") from None
    except (Exception, SystemExit) as exc:  # the user's module is broken: say where, not our traceback
        raise ModelError(f"model {spec!r}: importing {module_name!r} failed: {_one_line(exc)}") from None
    factory: Callable[..., nn.Module] | None = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"model {spec!r}: {module_name} has no callable {attr!r}")
    try:
        model = factory(num_classes=num_classes)
    except (Exception, SystemExit) as exc:
        raise ModelError(f"model {spec!r}: {attr}(num_classes={num_classes}) failed: {_one_line(exc)} "
                         f"(a factory takes the number of classes as `num_classes`)") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {spec!r}: {attr}(num_classes=...) returned {type(model).__name__}, "
                         f"not a torch.nn.Module")
    _check_io(spec, model, num_classes)
    return model


def _check_io(spec: str, model: nn.Module, num_classes: int) -> None:
    """One forward pass on blank images: a model that cannot classify 3x32x32 images into `num_classes` fails
    here, in one line, not with torch's traceback in the middle of training its baseline."""
    try:
        with evaluating(model), torch.no_grad():
            output = model(torch.zeros(2, *INPUT_SHAPE))
    except Exception as exc:
        raise ModelError(f"model {spec!r}: cannot run on a batch of {'x'.join(map(str, INPUT_SHAPE))} images: "
                         f"{_one_line(exc)}") from None
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
    if shape != (2, num_classes):
        got = f"shape {shape}" if shape is not None else f"a {type(output).__name__}"
        raise ModelError(f"model {spec!r}: for a batch of 2 images it returns {got}; a classifier returns logits "
                         f"of shape (batch, num_classes) = (2, {num_classes})")


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block, then back to whatever mode the model was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str  # "conv" or "fc"
    weight_shape: tuple[int, ...]
    macs: int


def layer_costs(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> list[LayerCost]:
    """Conv and fc MACs per layer as Distiller counts them (direct convolution; no BN, pooling or adds)."""
    costs: list[LayerCost] = []
    names = {module: name for name, module in model.named_modules()}

    def hook(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        weight = module.weight
        if isinstance(module, nn.Conv2d):
            macs = output.shape[2] * output.shape[3] * weight.numel()
            costs.append(LayerCost(names[module], "conv", tuple(weight.shape), int(macs)))
        else:
            costs.append(LayerCost(names[module], "fc", tuple(weight.shape), int(weight.numel())))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        with evaluating(model), torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return costs


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> int:
    return sum(cost.macs for cost in layer_costs(model, input_shape))


def count_weights(model: nn.Module) -> int:
    """Conv + fc weight elements: the figure Distiller reports as the model's parameters."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))


def count_params(model: nn.Module) -> int:
    """Every parameter, BN and biases included: what the model weighs on disk."""
    return sum(p.numel() for p in model.parameters())
