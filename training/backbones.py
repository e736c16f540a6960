"""ResNet-family feature extractors (stem + stages 1-3) with torchvision's module names.

The paper's teacher (WideResNet50-2) and student (ResNeXt50-32x4d) are torchvision models cut
after ``layer3``. The classes here reproduce torchvision's ``ResNet``/``Bottleneck`` structure
and parameter names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0`` ...), so
torchvision's ImageNet state dicts load with ``strict=True`` once their ``layer4.*``/``fc.*``
entries are dropped (:func:`load_torchvision_weights`). torchvision itself is not a dependency.

``width_divisor`` and ``blocks`` give reduced configurations of the same structure (used by the
bundled demo model). Grouped backbones keep their per-group width and divide the cardinality, so a
divided ResNeXt is still a ResNeXt (e.g. divisor 8: 4 groups of 4 channels in stage 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

STAGE_PLANES = (64, 128, 256)
EXPANSION = 4
FEATURE_STRIDES = (4, 8, 16)
VALID_WIDTH_DIVISORS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class BackboneSpec:
    """torchvision's constructor arguments for a ResNet-50-family model."""

    name: str
    groups: int
    width_per_group: int


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("wide_resnet50_2", groups=1, width_per_group=128),
        BackboneSpec("resnext50_32x4d", groups=32, width_per_group=4),
        BackboneSpec("resnet50", groups=1, width_per_group=64),
    )
}


def stage_channels(width_divisor: int = 1) -> tuple[int, int, int]:
    """Output channels of stages 1-3 (identical for every backbone in :data:`BACKBONES`)."""
    return tuple(planes * EXPANSION // width_divisor for planes in STAGE_PLANES)  # type: ignore[return-value]


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (ResNet v1.5: the stride sits on the 3x3 convolution)."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int,
        downsample: nn.Sequential | None,
        groups: int,
        base_width: int,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = _conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, planes * EXPANSION)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetFeatures(nn.Module):
    """Stem and stages 1-3 of a torchvision ResNet; ``forward`` returns the three stage outputs."""

    def __init__(self, name: str, blocks: tuple[int, int, int] = (3, 4, 6), width_divisor: int = 1) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
        if width_divisor not in VALID_WIDTH_DIVISORS:
            raise ValueError(f"width_divisor must be one of {VALID_WIDTH_DIVISORS}, got {width_divisor}")
        if len(blocks) != 3 or min(blocks) < 1:
            raise ValueError(f"blocks must be three positive integers, got {blocks}")
        spec = BACKBONES[name]
        self.name = name
        self.blocks = tuple(blocks)
        self.width_divisor = width_divisor
        if spec.groups > 1:
            # Keep the channels per group, divide the cardinality (see module docstring).
            self.groups = spec.groups // width_divisor
            self.base_width = spec.width_per_group * width_divisor
        else:
            self.groups = 1
            self.base_width = spec.width_per_group
        self.inplanes = 64 // width_divisor

        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes = [p // width_divisor for p in STAGE_PLANES]
        self.layer1 = self._make_layer(planes[0], blocks[0], stride=1)
        self.layer2 = self._make_layer(planes[1], blocks[1], stride=2)
        self.layer3 = self._make_layer(planes[2], blocks[2], stride=2)
        self._init_weights()

    def _make_layer(self, planes: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * EXPANSION:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * EXPANSION, stride), nn.BatchNorm2d(planes * EXPANSION)
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * EXPANSION
        layers += [Bottleneck(self.inplanes, planes, 1, None, self.groups, self.base_width) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        """torchvision's initialisation, used whenever no pretrained weights are given."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def out_channels(self) -> tuple[int, int, int]:
        return stage_channels(self.width_divisor)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f1 = self.layer1(x)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [f1, f2, f3]


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a torchvision ``.pth`` (optionally wrapped in ``{"state_dict": ...}``) or ``.safetensors``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path} does not contain a state dict")
    return dict(loaded)


def load_torchvision_weights(backbone: ResNetFeatures, state_dict: Mapping[str, Tensor]) -> None:
    """Load a full torchvision ResNet state dict into the 3-stage backbone with ``strict=True``.

    Only ``layer4.*`` and ``fc.*`` (the parts the method discards) are dropped; any other
    missing, unexpected or mis-shaped tensor is an error, so a wrong file cannot load silently.
    """
    kept = {k: v for k, v in state_dict.items() if not k.startswith(("layer4.", "fc."))}
    backbone.load_state_dict(kept, strict=True)
