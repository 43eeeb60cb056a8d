"""Built-in CIFAR models (ResNets, MobileNetV2, VGG-16) with Distiller-style parameter names, user model factories,
and conv+fc MAC counting."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from .errors import ModelError
from .settings import BUILTIN_MODELS, canonical_model_name

RESNET_DEPTHS = {name: int(name.removeprefix("resnet")) for name in BUILTIN_MODELS if name.startswith("resnet")}
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
        _init_convs(self)

    @staticmethod
    def _stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_planes, planes, stride)]
        layers += [BasicBlock(planes, planes, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block with Distiller-style names: conv1 (1x1 expansion) -> conv2 (3x3 depthwise) -> conv3 (1x1
    linear projection, no ReLU), each with its BN; the input is added back when stride and width allow, as in the
    paper (no shortcut conv: the added blocks of a stage share one residual stream, as a ResNet stage's do).

    The expansion conv is there even at expansion 1 (as in the common CIFAR ports) so that every block prunes the
    same way: conv1's filters, with conv2's depthwise channels and conv3's input channels coupled to them. ReLU,
    not ReLU6: the activation rankers (APoZ, mean) read an `nn.ReLU` named like the conv (relu1, relu2)."""

    def __init__(self, in_planes: int, planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_planes * expansion
        self.conv1 = nn.Conv2d(in_planes, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv3 = nn.Conv2d(hidden, planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.residual = stride == 1 and in_planes == planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + x if self.residual else out


# (expansion t, output channels c, blocks n, stride s) per stage: the paper's table, with the CIFAR ports' strides
# (the first two stages and the stem keep 32x32; three stride-2 stages leave 4x4 before pooling).
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                      (6, 320, 1, 1))


def _width(channels: int, multiplier: float) -> int:
    """The paper's width rounding: a multiple of 8, never below 90% of the scaled width."""
    scaled = channels * multiplier
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


class MobileNetV2Cifar(nn.Module):
    """MobileNetV2 for 32x32 images: stem conv1 (3x3, stride 1), stages layer1 ... layer7 of inverted residual
    blocks, head conv2 (1x1 to 1280), global pooling, fc. `width` scales every width as the paper's multiplier;
    `stages` takes a prefix of the table or another one (tests build small ones)."""

    def __init__(self, num_classes: int = 10, width: float = 1.0,
                 stages: tuple[tuple[int, int, int, int], ...] = MOBILENETV2_STAGES, head: int = 1280) -> None:
        super().__init__()
        planes = _width(32, width)
        self.conv1 = nn.Conv2d(3, planes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=False)
        for index, (expansion, channels, blocks, stride) in enumerate(stages, 1):
            out = _width(channels, width)
            layers = [InvertedResidual(planes if block == 0 else out, out, expansion, stride if block == 0 else 1)
                      for block in range(blocks)]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
            planes = out
        head = _width(head, width) if width > 1 else head  # the paper keeps the head at 1280 below width 1
        self.conv2 = nn.Conv2d(planes, head, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(head)
        self.relu2 = nn.ReLU(inplace=False)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(head, num_classes)
        self.stages = len(stages)
        _init_convs(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        for index in range(1, self.stages + 1):
            x = getattr(self, f"layer{index}")(x)
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# Distiller's vgg_cifar configuration D (VGG-16): widths, and "M" for a 2x2 max-pooling.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGGCifar(nn.Module):
    """Distiller's vgg_cifar: `features` (conv, [BN,] ReLU per width, max-pooling at "M") and a single Linear
    `classifier` on the 512 features of the 1x1 map; the layer names are Distiller's (vgg16_bn_cifar: features.0,
    features.3, features.7, ...; without BN, vgg16_cifar: features.0, features.2, features.5, ...). Built in with BN
    only (`vgg16_bn`): without it, VGG-16 does not train at the baselines' learning rate."""

    def __init__(self, num_classes: int = 10, batch_norm: bool = True,
                 config: tuple[int | str, ...] = VGG16_CONFIG) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        planes = 3
        for entry in config:
            if entry == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(planes, int(entry), 3, padding=1))
            layers += [nn.BatchNorm2d(int(entry))] if batch_norm else []
            layers.append(nn.ReLU(inplace=False))
            planes = int(entry)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(planes, num_classes)
        _init_convs(self)
        nn.init.normal_(self.classifier.weight, 0, 0.01)  # as Distiller's _initialize_weights
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def _init_convs(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


@dataclass(frozen=True)
class Architecture:
    """A built-in model: how to build it, and which convs a block's inner width is, per kind (the layers the
    strategies and the sensitivity suite prune by default: they never cut a residual stream)."""

    build: Callable[[int], nn.Module]
    inner_layers: dict[str, tuple[str, ...]]


_RESNET_INNER: dict[str, tuple[str, ...]] = {"filters": ("layer*.*.conv1",), "channels": ("layer*.*.conv2",)}
# A MobileNetV2 block's inner width: the expansion conv's filters, or the projection conv's input channels (the
# depthwise conv between them follows either way: its channels are its filters).
_MOBILENET_INNER: dict[str, tuple[str, ...]] = {"filters": ("layer*.*.conv1",), "channels": ("layer*.*.conv3",)}
# VGG has no residual stream: any conv's filters (its consumer's channels follow), the first conv's excepted for
# channels (it reads the image).
_VGG_INNER: dict[str, tuple[str, ...]] = {"filters": ("features.*",), "channels": ("features.*",)}


def _resnet(depth: int) -> Architecture:
    return Architecture(lambda classes: ResNetCifar(depth, classes), _RESNET_INNER)


ARCHITECTURES: dict[str, Architecture] = {
    **{name: _resnet(depth) for name, depth in RESNET_DEPTHS.items()},
    "mobilenetv2": Architecture(lambda classes: MobileNetV2Cifar(classes), _MOBILENET_INNER),
    "vgg16_bn": Architecture(lambda classes: VGGCifar(classes, batch_norm=True), _VGG_INNER),
}


def build_model(name: str, num_classes: int) -> nn.Module:
    """A built-in model by name, or a user model from `package.module:factory`."""
    if ":" in name:
        return _user_model(name, num_classes)
    return architecture(name).build(num_classes)


def architecture(name: str) -> Architecture:
    canonical = canonical_model_name(name)
    if canonical not in ARCHITECTURES:
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(ARCHITECTURES)} "
                         f"or package.module:factory")
    return ARCHITECTURES[canonical]


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
    groups: int = 1  # a depthwise conv's: one per channel (its weight reads in_channels / groups = 1 channel each)

    @property
    def in_channels(self) -> int:
        return self.weight_shape[1] * self.groups


def layer_costs(model: nn.Module, input_shape: tuple[int, ...] = INPUT_SHAPE) -> list[LayerCost]:
    """Conv and fc MACs per layer as Distiller counts them (direct convolution; no BN, pooling or adds)."""
    costs: list[LayerCost] = []
    names = {module: name for name, module in model.named_modules()}

    def hook(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        weight = cast(torch.Tensor, module.weight)
        if isinstance(module, nn.Conv2d):
            # weight is [out, in / groups, kh, kw]: its elements are the multiply-adds per output position, grouped
            # and depthwise convs included.
            macs = output.shape[2] * output.shape[3] * weight.numel()
            costs.append(LayerCost(names[module], "conv", tuple(weight.shape), int(macs), module.groups))
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
