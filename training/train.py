"""Train AST-MFR on one MVTec-style category.

Defaults are the paper's (WideResNet50-2 teacher, ResNeXt50-32x4d student, MFR after every
stage with mask rate 0.5, Adam lr 1e-3, batch 32, 200 epochs, 256x256). Pretrained ImageNet
weights cannot be downloaded here: pass torchvision state dicts with --teacher-weights and
--student-weights (``wide_resnet50_2-*.pth`` / ``resnext50_32x4d-*.pth`` or .safetensors).
Without them the networks start from random initialisation and the run says so loudly.

Without a pretrained teacher, --calibrate-teacher-bn measures its BatchNorm statistics on the
training images first (see ``calibrate_batchnorm``); it is off by default (not in the paper).

A fraction of train/good is held out: the checkpoint with the lowest held-out loss is kept,
and the held-out normal images give the score statistics written into the ONNX metadata.

Example::

    python -m training.train --data /data/mvtec/bottle --out training/out/bottle \\
        --teacher-weights wide_resnet50_2.pth --student-weights resnext50_32x4d.pth
    python -m training.export --checkpoint training/out/bottle/model.pt
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .backbones import BACKBONES, load_torchvision_weights, read_state_dict
from .checkpoint import Calibration, CheckpointInfo, save_checkpoint
from .data import AUGMENTATIONS, ImageDataset, scan_category, split_holdout
from .evaluate import predict
from .losses import ast_mfr_loss
from .model import ASTMFR, ModelConfig


@dataclass
class TrainConfig:
    data: Path
    out: Path
    model: ModelConfig = field(default_factory=ModelConfig)
    category: str | None = None
    data_source: str | None = None
    teacher_weights: Path | None = None
    student_weights: Path | None = None
    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float = 1.0
    holdout: float = 0.1
    augment: tuple[str, ...] = ()
    calibrate_teacher_bn: bool = False
    seed: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def describe_weights(path: Path | None) -> str:
    if path is None:
        return "none (random initialisation)"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{path.name} (sha256 {digest})"


def warn_random_init(missing: list[str]) -> None:
    bar = "!" * 78
    print(
        f"{bar}\n"
        f"!! WARNING: no pretrained weights for the {' and the '.join(missing)}.\n"
        "!! They start from RANDOM initialisation. AST-MFR relies on ImageNet features;\n"
        "!! without them detection quality is far below the paper's. Pass torchvision\n"
        "!! state dicts with --teacher-weights / --student-weights.\n"
        f"{bar}",
        file=sys.stderr,
        flush=True,
    )


def build_model(config: TrainConfig) -> ASTMFR:
    model = ASTMFR(config.model)
    if config.teacher_weights is not None:
        load_torchvision_weights(model.teacher, read_state_dict(config.teacher_weights))
    if config.student_weights is not None:
        load_torchvision_weights(model.student, read_state_dict(config.student_weights))
    missing = [
        role
        for role, path in (("teacher", config.teacher_weights), ("student", config.student_weights))
        if path is None
    ]
    if missing:
        warn_random_init(missing)
    return model


@torch.no_grad()
def calibrate_batchnorm(net: nn.Module, loader: DataLoader) -> None:
    """Replace the BatchNorm running statistics of ``net`` by their average over ``loader``.

    Meant for a randomly initialised teacher: its default statistics (mean 0, variance 1) do not
    match its actual activations, which then drift and saturate with depth so that its deep
    features hardly vary between image regions. Measuring the statistics on the normal training
    images (a data-dependent initialisation, no labels involved) makes them informative. The
    teacher stays frozen during training.
    """
    layers = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over all batches
    net.train()
    for batch in loader:
        net(batch)
    net.eval()
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


@torch.no_grad()
def holdout_loss(model: ASTMFR, loader: DataLoader, alpha: float) -> float:
    """Mean evaluation-mode loss (no masking) over the held-out normal images."""
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        student, teacher = model.features(batch)
        total += ast_mfr_loss(student, teacher, alpha).item() * len(batch)
        count += len(batch)
    return total / count


def train_epoch(model: ASTMFR, loader: DataLoader, optimizer: torch.optim.Optimizer, alpha: float) -> float:
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        student, teacher = model.features(batch)
        loss = ast_mfr_loss(student, teacher, alpha)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / count


def train(config: TrainConfig) -> Path:
    """Train, keep the best held-out checkpoint, calibrate on the held-out set, save ``model.pt``."""
    seed_everything(config.seed)
    category = scan_category(config.data)
    train_paths, holdout_paths = split_holdout(category.train, config.holdout, config.seed)
    size = config.model.input_size
    train_loader = DataLoader(
        ImageDataset(train_paths, size, config.augment),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    holdout_loader = DataLoader(ImageDataset(holdout_paths, size), batch_size=config.batch_size)

    model = build_model(config)
    if config.calibrate_teacher_bn:
        calibrate_batchnorm(model.teacher, DataLoader(ImageDataset(train_paths, size), batch_size=config.batch_size))
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=config.lr, betas=config.betas)
    print(
        f"training {category.name}: {len(train_paths)} images, {len(holdout_paths)} held out, "
        f"{config.epochs} epochs, batch {config.batch_size}, input {size[0]}x{size[1]}",
        flush=True,
    )
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(model.state_dict())
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        train_loss = train_epoch(model, train_loader, optimizer, config.alpha)
        val_loss = holdout_loss(model, holdout_loader, config.alpha)
        seconds = time.perf_counter() - started
        history.append({"epoch": epoch, "train_loss": train_loss, "holdout_loss": val_loss, "seconds": seconds})
        marker = ""
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
            marker = " *"
        print(f"epoch {epoch:4d}  train {train_loss:.4f}  held-out {val_loss:.4f}  {seconds:5.1f}s{marker}", flush=True)

    model.load_state_dict(best_state)
    maps, scores = predict(model, holdout_paths, config.batch_size)
    info = CheckpointInfo(
        category=config.category or category.name,
        training_data=training_summary(config, len(train_paths), len(holdout_paths), best_epoch),
        calibration=Calibration.from_normal_predictions(scores, maps),
        history=history,
    )
    path = config.out / "model.pt"
    save_checkpoint(path, model, info)
    print(f"best held-out loss {best_loss:.4f} at epoch {best_epoch}; wrote {path}", flush=True)
    return path


def training_summary(config: TrainConfig, n_train: int, n_holdout: int, best_epoch: int) -> dict[str, Any]:
    """The ``training_data`` entry of the ONNX metadata."""
    return {
        "source": config.data_source or config.data.name,
        "train_images": n_train,
        "holdout_images": n_holdout,
        "seed": config.seed,
        "epochs": config.epochs,
        "best_epoch": best_epoch,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "alpha": config.alpha,
        "augment": list(config.augment),
        "calibrate_teacher_bn": config.calibrate_teacher_bn,
        "pretrained": {
            "teacher": describe_weights(config.teacher_weights),
            "student": describe_weights(config.student_weights),
        },
    }


def _int_triple(text: str) -> tuple[int, int, int]:
    values = tuple(int(v) for v in text.split(","))
    if len(values) != 3:
        raise argparse.ArgumentTypeError("expected three comma-separated integers")
    return values  # type: ignore[return-value]


def _flag_triple(text: str) -> tuple[bool, bool, bool]:
    values = tuple(v.strip().lower() in ("1", "on", "true", "yes") for v in text.split(","))
    if len(values) != 3:
        raise argparse.ArgumentTypeError("expected three comma-separated flags, e.g. 1,1,1 or 0,1,0")
    return values  # type: ignore[return-value]


def _augment_list(text: str) -> tuple[str, ...]:
    values = tuple(v for v in text.split(",") if v)
    unknown = set(values) - set(AUGMENTATIONS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown augmentations {sorted(unknown)}; choose from {AUGMENTATIONS}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    defaults = ModelConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="MVTec-style category directory")
    p.add_argument("--out", type=Path, help="output directory (default training/out/<category>)")
    p.add_argument("--category", help="category name for the metadata (default: directory name)")
    p.add_argument("--data-source", help="free-text description of the data for the metadata")
    p.add_argument("--teacher", choices=sorted(BACKBONES), default=defaults.teacher)
    p.add_argument("--student", choices=sorted(BACKBONES), default=defaults.student)
    p.add_argument("--teacher-weights", type=Path, help="torchvision ImageNet state dict of the teacher")
    p.add_argument("--student-weights", type=Path, help="torchvision ImageNet state dict of the student")
    p.add_argument("--width-divisor", type=int, default=defaults.width_divisor, help="reduced widths (1 = paper)")
    p.add_argument("--blocks", type=_int_triple, default=defaults.blocks, help="blocks per stage (3,4,6 = paper)")
    p.add_argument("--mfr-stages", type=_flag_triple, default=defaults.mfr_stages, help="MFR per stage, e.g. 1,1,1")
    p.add_argument("--mask-rate", type=float, default=defaults.mask_rate)
    p.add_argument("--input-size", type=int, default=defaults.input_size[0], help="square input side, multiple of 16")
    p.add_argument("--gaussian-sigma", type=float, default=defaults.gaussian_sigma)
    p.add_argument("--avg-pool-kernel", type=int, default=defaults.avg_pool_kernel)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--alpha", type=float, default=1.0, help="weight of the L2 term of the loss")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of train/good held out")
    p.add_argument("--augment", type=_augment_list, default=(), help=f"comma-separated subset of {AUGMENTATIONS}")
    p.add_argument(
        "--calibrate-teacher-bn",
        action="store_true",
        help="re-estimate the teacher's BatchNorm statistics on the training images (for a random-init teacher)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = ModelConfig(
        teacher=args.teacher,
        student=args.student,
        width_divisor=args.width_divisor,
        blocks=args.blocks,
        mfr_stages=args.mfr_stages,
        mask_rate=args.mask_rate,
        input_size=(args.input_size, args.input_size),
        gaussian_sigma=args.gaussian_sigma,
        avg_pool_kernel=args.avg_pool_kernel,
    )
    return TrainConfig(
        data=args.data,
        out=args.out or Path("training/out") / (args.category or args.data.name),
        model=model,
        category=args.category,
        data_source=args.data_source,
        teacher_weights=args.teacher_weights,
        student_weights=args.student_weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        alpha=args.alpha,
        holdout=args.holdout,
        augment=args.augment,
        calibrate_teacher_bn=args.calibrate_teacher_bn,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
