"""AST-MFR: frozen teacher, trainable student with masked feature regeneration, and the
test-time post-processing, as one ``nn.Module`` whose ``forward`` is the ONNX contract:
``image [N, 3, H, W] -> (anomaly_map [N, 1, H, W], score [N])``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import BACKBONES, FEATURE_STRIDES, ResNetFeatures, stage_channels
from .losses import pixel_distances

GAUSSIAN_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default: radius = int(4 * sigma + 0.5)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; the defaults are the paper's."""

    teacher: str = "wide_resnet50_2"
    student: str = "resnext50_32x4d"
    width_divisor: int = 1
    blocks: tuple[int, int, int] = (3, 4, 6)
    mfr_stages: tuple[bool, bool, bool] = (True, True, True)
    mask_rate: float = 0.5
    input_size: tuple[int, int] = (256, 256)
    gaussian_sigma: float = 4.0
    avg_pool_kernel: int = 5
    feature_strides: tuple[int, int, int] = field(default=FEATURE_STRIDES, init=False)

    def __post_init__(self) -> None:
        for role, name in (("teacher", self.teacher), ("student", self.student)):
            if name not in BACKBONES:
                raise ValueError(f"unknown {role} backbone {name!r}; choose one of {sorted(BACKBONES)}")
        if not 0.0 <= self.mask_rate < 1.0:
            raise ValueError(f"mask_rate must be in [0, 1), got {self.mask_rate}")
        if len(self.input_size) != 2 or any(s <= 0 or s % 16 for s in self.input_size):
            raise ValueError(f"input_size must be two positive multiples of 16, got {self.input_size}")
        if len(self.mfr_stages) != 3:
            raise ValueError("mfr_stages needs one flag per stage")
        if self.gaussian_sigma <= 0:
            raise ValueError("gaussian_sigma must be positive")
        if self.avg_pool_kernel < 1 or self.avg_pool_kernel % 2 == 0:
            raise ValueError("avg_pool_kernel must be a positive odd integer")

    def architecture(self) -> dict[str, Any]:
        """The ``architecture`` entry of the ONNX metadata (docs/model-contract.md)."""
        return {
            "name": "ast-mfr",
            "teacher": self.teacher,
            "student": self.student,
            "width_divisor": self.width_divisor,
            "blocks": list(self.blocks),
            "mfr_stages": list(self.mfr_stages),
            "feature_strides": list(self.feature_strides),
            "gaussian_sigma": self.gaussian_sigma,
            "avg_pool_kernel": self.avg_pool_kernel,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("feature_strides")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(
            teacher=data["teacher"],
            student=data["student"],
            width_divisor=int(data["width_divisor"]),
            blocks=tuple(int(b) for b in data["blocks"]),  # type: ignore[arg-type]
            mfr_stages=tuple(bool(m) for m in data["mfr_stages"]),  # type: ignore[arg-type]
            mask_rate=float(data["mask_rate"]),
            input_size=tuple(int(s) for s in data["input_size"]),  # type: ignore[arg-type]
            gaussian_sigma=float(data["gaussian_sigma"]),
            avg_pool_kernel=int(data["avg_pool_kernel"]),
        )


class MFR(nn.Module):
    """Masked feature regeneration (paper Sect. 3.2, Algorithm 1).

    Training: ``f_m = f * (rand(h, w) >= r)``, one spatial mask shared by the batch and the
    channels as in Algorithm 1, then ``f_reg = G(f_m)``. Evaluation: no mask, ``f_reg = G(f)``.
    ``G`` is two 3x3 convolutions (channel-preserving, ReLU between); the paper does not give the
    kernel size, 3x3 reproduces its student parameter count (33.2 M, Table 5).
    """

    def __init__(self, channels: int, mask_rate: float) -> None:
        super().__init__()
        self.mask_rate = mask_rate
        self.generation = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
        )

    def mask(self, x: Tensor) -> Tensor:
        if not self.training or self.mask_rate == 0.0:
            return x
        h, w = x.shape[-2:]
        keep = (torch.rand(h, w, device=x.device) >= self.mask_rate).to(x.dtype)
        return x * keep

    def forward(self, x: Tensor) -> Tensor:
        return self.generation(self.mask(x))


def gaussian_kernel1d(sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter's 1-D kernel (float64, normalised, radius int(4 sigma + 0.5))."""
    radius = int(GAUSSIAN_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def reflect_indices(length: int, pad: int) -> np.ndarray:
    """Source index of every position of a length-``length`` axis padded by ``pad`` on both sides,
    in scipy.ndimage's ``mode='reflect'`` (``d c b a | a b c d | d c b a``, edge repeated)."""
    positions = np.arange(-pad, length + pad) % (2 * length)
    return np.where(positions >= length, 2 * length - 1 - positions, positions).astype(np.int64)


class AnomalyMapHead(nn.Module):
    """Test-time post-processing (paper Sect. 3.4/4.1): upsample the per-stage distance maps
    bilinearly to the input size and sum them, smooth with a Gaussian (sigma) and a box filter
    (k x k, stride 1), take the maximum as image score.

    Both filters are separable and use scipy.ndimage's 'reflect' border, so the result equals
    ``uniform_filter(gaussian_filter(m, sigma), k)``. Padding is an index gather (static indices)
    because ONNX Pad has no symmetric mode; the export emits the same Gather/Conv pairs.
    """

    def __init__(self, input_size: tuple[int, int], sigma: float, pool_kernel: int) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        gauss = torch.from_numpy(gaussian_kernel1d(sigma)).float()
        box = torch.full((pool_kernel,), 1.0 / pool_kernel)
        self.filters = ("gauss", "box")  # applied in this order
        self.register_buffer("gauss", gauss, persistent=False)
        self.register_buffer("box", box, persistent=False)
        for name, pad in (("gauss", gauss.numel() // 2), ("box", pool_kernel // 2)):
            for axis, length in (("rows", input_size[0]), ("cols", input_size[1])):
                self.register_buffer(f"{name}_{axis}", torch.from_numpy(reflect_indices(length, pad)), persistent=False)

    def smooth(self, amap: Tensor) -> Tensor:
        """Apply the Gaussian then the box filter to ``[N, 1, H, W]`` maps."""
        for name in self.filters:
            kernel: Tensor = getattr(self, name)
            amap = F.conv2d(amap.index_select(2, getattr(self, f"{name}_rows")), kernel.view(1, 1, -1, 1))
            amap = F.conv2d(amap.index_select(3, getattr(self, f"{name}_cols")), kernel.view(1, 1, 1, -1))
        return amap

    def forward(self, stage_maps: list[Tensor]) -> tuple[Tensor, Tensor]:
        amap = sum(F.interpolate(m, size=self.input_size, mode="bilinear", align_corners=False) for m in stage_maps)
        amap = self.smooth(amap)  # type: ignore[arg-type]
        return amap, amap.amax(dim=(1, 2, 3))


class ASTMFR(nn.Module):
    """The full model. ``forward`` returns ``(anomaly_map [N,1,H,W], score [N])``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.teacher = ResNetFeatures(config.teacher, config.blocks, config.width_divisor)
        self.teacher.requires_grad_(False)
        self.student = ResNetFeatures(config.student, config.blocks, config.width_divisor)
        self.mfr = nn.ModuleList(
            MFR(channels, config.mask_rate) if enabled else nn.Identity()
            for channels, enabled in zip(stage_channels(config.width_divisor), config.mfr_stages, strict=True)
        )
        self.head = AnomalyMapHead(config.input_size, config.gaussian_sigma, config.avg_pool_kernel)

    def train(self, mode: bool = True) -> ASTMFR:
        """The teacher stays in eval mode (frozen BatchNorm statistics) in both modes."""
        super().train(mode)
        self.teacher.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.student.parameters()
        yield from self.mfr.parameters()

    def features(self, image: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """``(student features after MFR, teacher features)`` of stages 1-3."""
        with torch.no_grad():
            teacher = self.teacher(image)
        student = [mfr(f) for mfr, f in zip(self.mfr, self.student(image), strict=True)]
        return student, teacher

    def stage_maps(self, image: Tensor) -> list[Tensor]:
        """Per-stage ``D_cos + D_L2`` maps at feature resolution."""
        student, teacher = self.features(image)
        maps = []
        for s, t in zip(student, teacher, strict=True):
            d_cos, d_l2 = pixel_distances(s, t)
            maps.append(d_cos + d_l2)
        return maps

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        if tuple(image.shape[-2:]) != self.config.input_size:
            raise ValueError(f"expected input of size {self.config.input_size}, got {tuple(image.shape[-2:])}")
        return self.head(self.stage_maps(image))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
