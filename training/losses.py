"""Per-pixel feature distances (paper Eq. 1 and 3) and the training loss (Eq. 2, 4, 5).

Both distances compare channel vectors after L2 normalisation. For unit vectors
``0.5 * ||a - b||^2 == 1 - cos(a, b)``, so the paper's L2 term equals its cosine term up to the
normalisation epsilon; it is nevertheless computed as written, so that the loss and the anomaly
map are the paper's formulas and ``alpha`` keeps its meaning.

The normalisation is ``x / max(||x||_2, eps)``; the ONNX export (``training.export``) emits the
same operations (ReduceL2, Max, Div) so that PyTorch and onnxruntime agree to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

NORM_EPS = 1e-12


def normalize_channels(x: Tensor, eps: float = NORM_EPS) -> Tensor:
    """Divide every pixel's channel vector of an ``[N, C, H, W]`` tensor by its L2 norm."""
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(eps)


def pixel_distances(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(D_cos, D_L2)``, each ``[N, 1, H, W]``, for features of shape ``[N, C, H, W]``."""
    s = normalize_channels(student)
    t = normalize_channels(teacher)
    d_cos = 1.0 - (s * t).sum(dim=1, keepdim=True)
    d_l2 = 0.5 * (s - t).pow(2).sum(dim=1, keepdim=True)
    return d_cos, d_l2


def ast_mfr_loss(students: Sequence[Tensor], teachers: Sequence[Tensor], alpha: float = 1.0) -> Tensor:
    """``L_cos + alpha * L_L2``: per stage the pixel-averaged distances, summed over stages.

    The batch is averaged too (the paper states the loss per sample).
    """
    total = students[0].new_zeros(())
    for s, t in zip(students, teachers, strict=True):
        d_cos, d_l2 = pixel_distances(s, t)
        total = total + d_cos.mean() + alpha * d_l2.mean()
    return total
