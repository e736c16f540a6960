"""Evaluation with the MVTec AD protocol: image AUROC, pixel AUROC and AUPRO (FPR <= 0.3).

Usage::

    python -m training.evaluate --checkpoint training/out/run/model.pt --data <category dir> [--device cuda]

The model runs in float32 on the chosen device (default: CUDA when available).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage, stats

from .checkpoint import load_checkpoint
from .data import TestSample, load_mask, preprocess, scan_category
from .model import ASTMFR
from .runtime import Runtime, add_device_argument, exits_on_usage_error, module_device

PRO_FPR_LIMIT = 0.3


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs both positive and negative samples")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pro_curve(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-region overlap against false-positive rate, for every threshold.

    ``maps`` float ``[N, H, W]``, ``masks`` bool ``[N, H, W]``. Regions are the 8-connected
    components of each ground-truth mask; PRO at a threshold is the mean, over all regions of all
    images, of the fraction of the region above it; FPR is over all normal pixels. Computed
    exactly, as in the MVTec AD evaluation code, by sorting all pixels once.
    """
    structure = np.ones((3, 3), dtype=int)
    fp_step = np.zeros(masks.shape, dtype=np.float64)
    pro_step = np.zeros(masks.shape, dtype=np.float64)
    regions = 0
    for i, mask in enumerate(masks):
        labeled, count = ndimage.label(mask, structure=structure)
        regions += count
        fp_step[i][labeled == 0] = 1.0
        if count:
            sizes = np.bincount(labeled.ravel())
            region_pixels = labeled > 0
            pro_step[i][region_pixels] = 1.0 / sizes[labeled[region_pixels]]
    normal_pixels = fp_step.sum()
    if regions == 0 or normal_pixels == 0:
        raise ValueError("PRO needs anomalous regions and normal pixels")
    order = np.argsort(maps.ravel(), kind="stable")[::-1]
    sorted_scores = maps.ravel()[order]
    fpr = np.cumsum(fp_step.ravel()[order]) / normal_pixels
    pro = np.cumsum(pro_step.ravel()[order]) / regions
    # Pixels with equal scores pass a threshold together: keep the last of each run.
    last_of_run = np.append(np.diff(sorted_scores) != 0, True)
    fpr = np.concatenate(([0.0], np.clip(fpr[last_of_run], 0.0, 1.0)))
    pro = np.concatenate(([0.0], np.clip(pro[last_of_run], 0.0, 1.0)))
    return fpr, pro


def aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = PRO_FPR_LIMIT) -> float:
    """Area under the PRO curve up to ``fpr_limit`` (linear interpolation there), divided by it."""
    fpr, pro = pro_curve(np.asarray(maps, dtype=np.float64), np.asarray(masks, dtype=bool))
    inside = fpr <= fpr_limit
    x = fpr[inside]
    y = pro[inside]
    if x[-1] < fpr_limit:
        x = np.append(x, fpr_limit)
        y = np.append(y, np.interp(fpr_limit, fpr, pro))
    return float(np.trapezoid(y, x) / fpr_limit)


@torch.no_grad()
def predict(model: ASTMFR, paths: Sequence[Path], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps ``[N, H, W]`` and scores ``[N]`` for image files, computed on the model's device."""
    model.eval()
    device = module_device(model)
    maps, scores = [], []
    for start in range(0, len(paths), batch_size):
        batch = torch.stack([preprocess(p, model.config.input_size) for p in paths[start : start + batch_size]])
        amap, score = model(batch.to(device))
        maps.append(amap[:, 0].cpu().numpy())
        scores.append(score.cpu().numpy())
    return np.concatenate(maps), np.concatenate(scores)


def evaluate_samples(model: ASTMFR, samples: Sequence[TestSample], batch_size: int = 16) -> dict:
    """Image AUROC, pixel AUROC and AUPRO on a labelled test split, plus per-defect image AUROC."""
    maps, scores = predict(model, [s.path for s in samples], batch_size)
    labels = np.array([s.is_anomalous for s in samples])
    masks = np.stack([load_mask(s.mask_path, model.config.input_size) for s in samples])
    defects = sorted({s.defect for s in samples if s.is_anomalous})
    normal = ~labels
    per_defect = {}
    for defect in defects:
        chosen = normal | np.array([s.defect == defect for s in samples])
        per_defect[defect] = auroc(scores[chosen], labels[chosen])
    return {
        "image_auroc": auroc(scores, labels),
        "pixel_auroc": auroc(maps, masks),
        "aupro": aupro(maps, masks),
        "image_auroc_per_defect": per_defect,
        "test_images": {"good": int(normal.sum()), "defective": int(labels.sum())},
        "scores": {"good": scores[normal].tolist(), "defective": scores[labels].tolist()},
    }


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="MVTec-style category directory")
    parser.add_argument("--batch-size", type=int, default=16)
    add_device_argument(parser)
    args = parser.parse_args(argv)
    runtime = Runtime.select(args.device)
    model, _ = load_checkpoint(args.checkpoint)
    model.to(runtime.device)
    metrics = evaluate_samples(model, scan_category(args.data).test, args.batch_size)
    metrics.pop("scores")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
