"""Shared by the torchvision-compatibility tests and by ``data/generate_torchvision_reference.py``.

The reference file ``data/torchvision_resnets.json`` holds, for each torchvision backbone, the
names and shapes of its full ImageNet state dict and the stage outputs that torchvision's own
``ResNet`` computes from a deterministic synthetic state dict (built by :func:`synthetic_weights`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

REFERENCE_FILE = Path(__file__).parent / "data" / "torchvision_resnets.json"
INPUT_SHAPE = (1, 3, 64, 64)
SAMPLES_PER_STAGE = 16
SEED = 1234


def load_reference() -> dict:
    return json.loads(REFERENCE_FILE.read_text())


def is_discarded(key: str) -> bool:
    """Entries of stage 4 and the classifier, which AST-MFR does not use."""
    return key.startswith(("layer4.", "fc."))


def synthetic_weights(shapes: dict[str, list[int]]) -> dict[str, Tensor]:
    """A deterministic, well-conditioned state dict with the given names and shapes.

    Stage-4/classifier entries are zeros (they are dropped before loading).
    """
    generator = torch.Generator().manual_seed(SEED)
    weights: dict[str, Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if is_discarded(key) or key.endswith("num_batches_tracked"):
            weights[key] = torch.zeros(shape, dtype=torch.int64 if key.endswith("tracked") else torch.float32)
        elif key.endswith("running_var"):
            weights[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith(("running_mean", "bias")):
            weights[key] = 0.1 * torch.randn(shape, generator=generator)
        elif len(shape) == 1:  # BatchNorm scale
            weights[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:  # convolution weight, He-scaled
            fan_in = shape[1] * shape[2] * shape[3]
            weights[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
    return weights


def reference_input() -> Tensor:
    return torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(SEED + 1))


def stage_samples(features: list[Tensor]) -> list[dict[str, list[float] | float]]:
    """A compact fingerprint of each stage output: its mean absolute value and a strided sample."""
    out = []
    for f in features:
        flat = f.detach().flatten()
        step = max(1, flat.numel() // SAMPLES_PER_STAGE)
        out.append({"mean_abs": flat.abs().mean().item(), "samples": flat[::step][:SAMPLES_PER_STAGE].tolist()})
    return out
