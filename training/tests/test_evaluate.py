"""Metrics against brute-force definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from training.evaluate import aupro, auroc


def brute_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels], scores[~labels]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def brute_aupro(maps: np.ndarray, masks: np.ndarray, limit: float = 0.3) -> float:
    """Threshold sweep over every distinct score, then trapezoid up to the FPR limit."""
    regions = []
    for i, mask in enumerate(masks):
        labeled, n = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [(i, labeled == k) for k in range(1, n + 1)]
    normal = ~masks
    points = [(0.0, 0.0)]
    for threshold in np.unique(maps)[::-1]:
        predicted = maps >= threshold
        fpr = (predicted & normal).sum() / normal.sum()
        pro = np.mean([predicted[i][region].mean() for i, region in regions])
        points.append((fpr, pro))
    fpr, pro = map(np.array, zip(*points, strict=True))
    keep = fpr <= limit
    x, y = fpr[keep], pro[keep]
    if x[-1] < limit:
        x, y = np.append(x, limit), np.append(y, np.interp(limit, fpr, pro))
    return float(np.trapezoid(y, x) / limit)


def test_auroc_matches_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 40).astype(float)  # many ties
    labels = rng.random(40) < 0.4
    assert auroc(scores, labels) == pytest.approx(brute_auroc(scores, labels))
    assert auroc(np.array([0.1, 0.9]), np.array([False, True])) == 1.0
    assert auroc(np.array([0.9, 0.1]), np.array([False, True])) == 0.0
    with pytest.raises(ValueError):
        auroc(np.array([1.0, 2.0]), np.array([True, True]))


def test_aupro_matches_threshold_sweep() -> None:
    rng = np.random.default_rng(1)
    masks = np.zeros((3, 20, 20), dtype=bool)
    masks[0, 2:6, 2:6] = True
    masks[0, 12:14, 15:19] = True  # two regions of different size in one image
    masks[1, 8:16, 3:5] = True
    maps = rng.random((3, 20, 20)).round(2) + 0.6 * masks * rng.random((3, 20, 20))
    assert aupro(maps, masks) == pytest.approx(brute_aupro(maps, masks), rel=1e-9)


def test_aupro_extremes_and_region_weighting() -> None:
    masks = np.zeros((2, 16, 16), dtype=bool)
    masks[0, 0:8, 0:8] = True  # large region
    masks[1, 10, 10] = True  # single-pixel region
    assert aupro(masks.astype(float), masks) == pytest.approx(1.0)
    # Detecting only the large region: PRO is 0.5 at FPR 0 although 64 of 65 pixels are found;
    # the next threshold (0) admits every pixel, so PRO rises linearly to 1 at FPR 1.
    only_large = masks.copy()
    only_large[1] = False
    assert aupro(only_large.astype(float), masks) == pytest.approx(linear_tail_aupro(0.5))
    # An L of three pixels is one region with 8-connectivity (two with 4-connectivity, which
    # would give PRO 0.5 when the corner pixel alone is found).
    shape = np.zeros((1, 5, 5), dtype=bool)
    shape[0, 1, 1] = shape[0, 2, 2] = shape[0, 2, 3] = True
    corner = np.zeros((1, 5, 5))
    corner[0, 1, 1] = 1.0
    assert aupro(corner, shape) == pytest.approx(linear_tail_aupro(1 / 3))


def linear_tail_aupro(pro_at_zero_fpr: float, limit: float = 0.3) -> float:
    """Normalised area under PRO(f) = p + (1 - p) f for f in [0, limit]."""
    return pro_at_zero_fpr + (1 - pro_at_zero_fpr) * limit / 2
