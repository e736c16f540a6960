"""Shared fixtures: a tiny MVTec-layout category drawn with numpy, and model builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.model import ASTMFR, ModelConfig

# The test models are tiny: intra-op parallelism costs more than it gains, and busy-waiting
# worker threads make runs many times slower when the CPU is shared.
torch.set_num_threads(1)

TINY_CONFIG = ModelConfig(width_divisor=16, blocks=(1, 1, 1), input_size=(32, 32))


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Diagonal stripes with a random phase plus noise: a simple repetitive 'product'."""
    y, x = np.mgrid[0:size, 0:size]
    phase = rng.uniform(0, 2 * np.pi)
    base = 0.5 + 0.3 * np.sin((x + y) * 0.8 + phase)
    rgb = np.stack([base, base * 0.9, base * 0.6], axis=-1) + rng.normal(0, 0.03, (size, size, 3))
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def write_category(root: Path, *, train: int = 24, size: int = 40, seed: int = 0) -> Path:
    """A category with train/good, test/good and one defect type whose stems are "1" and "10",
    so that listing order of images (1.png, 10.png) and masks (10_mask.png, 1_mask.png) differ."""
    rng = np.random.default_rng(seed)
    for sub in ("train/good", "test/good", "test/blob", "ground_truth/blob"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(train):
        Image.fromarray(_texture(rng, size)).save(root / "train" / "good" / f"{i:03d}.png")
    for i in range(2):
        Image.fromarray(_texture(rng, size)).save(root / "test" / "good" / f"{i:03d}.png")
    for stem, (y0, x0, side) in {"1": (4, 4, 8), "10": (20, 14, 12)}.items():
        image = _texture(rng, size)
        mask = np.zeros((size, size), dtype=np.uint8)
        mask[y0 : y0 + side, x0 : x0 + side] = 255
        image[mask > 0] = (200, 30, 30)
        Image.fromarray(image).save(root / "test" / "blob" / f"{stem}.png")
        Image.fromarray(mask, mode="L").save(root / "ground_truth" / "blob" / f"{stem}_mask.png")
    return root


@pytest.fixture(scope="session")
def tiny_category(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_category(tmp_path_factory.mktemp("data") / "stripes")


@pytest.fixture
def tiny_model() -> ASTMFR:
    torch.manual_seed(0)
    return ASTMFR(TINY_CONFIG)


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics so that eval-mode folding is exercised."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(1.0 + 0.2 * torch.randn(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))
