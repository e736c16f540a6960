"""Trainer checkpoints: model configuration, weights, and what the export needs for its metadata
(category, training-data summary, score statistics on held-out normal images)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .model import ASTMFR, ModelConfig

CHECKPOINT_FORMAT = "ast-mfr-checkpoint/1"


@dataclass
class Calibration:
    """Statistics of the trained model on held-out normal images (the ONNX ``score_stats``,
    ``map_stats`` and ``proposed_threshold`` metadata)."""

    score_stats: dict[str, float]
    map_stats: dict[str, float]
    proposed_threshold: float

    @classmethod
    def from_normal_predictions(cls, scores: np.ndarray, maps: np.ndarray) -> Calibration:
        """Proposed threshold: ``max(max score, mean + 3 std)`` of the held-out normal scores, so
        that no held-out normal image is flagged and a small held-out set does not give a threshold
        below the normal tail's plausible extent."""
        scores = np.asarray(scores, dtype=np.float64)
        maps = np.asarray(maps, dtype=np.float64)
        score_stats = {
            "count": int(scores.size),
            "min": float(scores.min()),
            "max": float(scores.max()),
            "mean": float(scores.mean()),
            "std": float(scores.std()),
            "p50": float(np.percentile(scores, 50)),
            "p95": float(np.percentile(scores, 95)),
            "p99": float(np.percentile(scores, 99)),
        }
        map_stats = {"min": float(maps.min()), "max": float(maps.max()), "p99": float(np.percentile(maps, 99))}
        threshold = max(score_stats["max"], score_stats["mean"] + 3.0 * score_stats["std"])
        return cls(score_stats, map_stats, threshold)


@dataclass
class CheckpointInfo:
    category: str
    training_data: dict[str, Any]
    calibration: Calibration
    history: list[dict[str, float]] = field(default_factory=list)


def save_checkpoint(path: Path, model: ASTMFR, info: CheckpointInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "model_config": model.config.to_dict(),
            "state_dict": model.state_dict(),
            "category": info.category,
            "training_data": info.training_data,
            "calibration": asdict(info.calibration),
            "history": info.history,
        },
        path,
    )


def load_checkpoint(path: Path) -> tuple[ASTMFR, CheckpointInfo]:
    """Rebuild the model (in eval mode) and its metadata from a checkpoint file."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an AST-MFR checkpoint ({CHECKPOINT_FORMAT})")
    model = ASTMFR(ModelConfig.from_dict(data["model_config"]))
    model.load_state_dict(data["state_dict"], strict=True)
    model.eval()
    info = CheckpointInfo(
        category=data["category"],
        training_data=data["training_data"],
        calibration=Calibration(**data["calibration"]),
        history=data["history"],
    )
    return model, info
