"""Trainer checkpoints.

``model.pt`` / ``best.pt`` (:func:`save_checkpoint`): model configuration, weights, and what the
export needs for its metadata (category, training-data summary, score statistics on held-out
normal images). ``last.pt`` (:func:`save_training_state`): everything ``--resume`` needs to
continue a run exactly.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .model import ASTMFR, ModelConfig

CHECKPOINT_FORMAT = "ast-mfr-checkpoint/1"
TRAINING_STATE_FORMAT = "ast-mfr-training-state/1"


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


def save_atomically(data: dict[str, Any], path: Path) -> None:
    """Write through a temporary file, so that an interrupted run never leaves a truncated file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    torch.save(data, partial)
    os.replace(partial, path)


def save_checkpoint(path: Path, model: ASTMFR, info: CheckpointInfo) -> None:
    save_atomically(
        {
            "format": CHECKPOINT_FORMAT,
            "model_config": model.config.to_dict(),
            "state_dict": {name: tensor.cpu() for name, tensor in model.state_dict().items()},
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


@dataclass
class TrainingState:
    """A run after ``epoch`` epochs: ``last.pt``. ``run`` is the configuration a resumed run must
    match; ``rng`` holds the global generators (``Runtime.rng_state``) and ``loader_rng`` the
    shuffling generator of the training DataLoader."""

    run: dict[str, Any]
    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    rng: dict[str, Any]
    loader_rng: torch.Tensor
    history: list[dict[str, float]]
    best_epoch: int
    best_loss: float
    best_model: dict[str, torch.Tensor]


def save_training_state(path: Path, state: TrainingState) -> None:
    # Not dataclasses.asdict: it would deep-copy every tensor.
    save_atomically({"format": TRAINING_STATE_FORMAT, **{f.name: getattr(state, f.name) for f in fields(state)}}, path)


def load_training_state(path: Path) -> TrainingState:
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.pop("format", None) != TRAINING_STATE_FORMAT:
        raise ValueError(f"{path} is not a training state ({TRAINING_STATE_FORMAT}, the last.pt of training.train)")
    return TrainingState(**data)
