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

Files in --out: ``model.pt`` at the end (best weights, calibrated; what evaluate/export read),
``best.pt`` (the same format, rewritten whenever the held-out loss improves) and ``last.pt``
(the full training state every --checkpoint-every epochs and after the last one; --resume
continues from it exactly, also with a larger --epochs).

--config FILE (YAML or JSON) takes the same options, by their long names; flags given on the
command line override it.

Example::

    python -m training.train --data /data/mvtec/bottle --out training/out/bottle \\
        --teacher-weights wide_resnet50_2.pth --student-weights resnext50_32x4d.pth \\
        --device cuda --precision bf16 --workers 8
    python -m training.export --checkpoint training/out/bottle/model.pt
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
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
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .backbones import BACKBONES, load_torchvision_weights, read_state_dict
from .checkpoint import (
    Calibration,
    CheckpointInfo,
    TrainingState,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from .config_file import with_config_file
from .data import AUGMENTATIONS, ImageDataset, scan_category, split_holdout
from .evaluate import predict
from .losses import ast_mfr_loss
from .model import ASTMFR, ModelConfig
from .runtime import (
    CPU_FP32,
    PRECISIONS,
    Runtime,
    UsageError,
    add_device_argument,
    configure_logging,
    exits_on_usage_error,
    ieee_float32,
    module_device,
)

log = logging.getLogger("training.train")  # not __name__: that is "__main__" under python -m

FINAL_CHECKPOINT, BEST_CHECKPOINT, LAST_CHECKPOINT = "model.pt", "best.pt", "last.pt"
RESUMABLE_CHANGES = "--epochs, --device, --workers, --checkpoint-every, --progress and --threads"


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
    device: str = "auto"
    precision: str = "fp32"
    workers: int = 0
    checkpoint_every: int = 5
    resume: Path | None = None
    progress: bool = True


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
    log.warning(
        f"no pretrained weights for the {' and the '.join(missing)}\n"
        f"{bar}\n"
        "!! They start from RANDOM initialisation. AST-MFR relies on ImageNet features;\n"
        "!! without them detection quality is far below the paper's. Pass torchvision\n"
        "!! state dicts with --teacher-weights / --student-weights.\n"
        f"{bar}"
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
    device = module_device(net)
    layers = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over all batches
    net.train()
    for batch in loader:
        net(batch.to(device))
    net.eval()
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


def batch_loss(model: ASTMFR, batch: Tensor, alpha: float, runtime: Runtime) -> Tensor:
    """The networks run in the runtime's precision; the loss (normalisations, means) in float32."""
    with runtime.autocast():
        student, teacher = model.features(runtime.to_device(batch))
    return ast_mfr_loss([s.float() for s in student], [t.float() for t in teacher], alpha)


@torch.no_grad()
def holdout_loss(model: ASTMFR, loader: DataLoader, alpha: float, runtime: Runtime = CPU_FP32) -> float:
    """Mean evaluation-mode loss (no masking) over the held-out normal images."""
    model.eval()
    total, count = 0.0, 0
    for batch in loader:
        total += batch_loss(model, batch, alpha, runtime).item() * len(batch)
        count += len(batch)
    return total / count


def train_epoch(
    model: ASTMFR,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    alpha: float,
    runtime: Runtime = CPU_FP32,
    scaler: torch.amp.GradScaler | None = None,
    bar: tqdm | None = None,
) -> float:
    """One pass over ``loader``; returns the mean training loss. ``bar`` counts images."""
    scaler = runtime.grad_scaler() if scaler is None else scaler
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        loss = batch_loss(model, batch, alpha, runtime)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        value = loss.item()
        total += value * len(batch)
        count += len(batch)
        if bar is not None:
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            bar.update(len(batch))
    return total / count


def epoch_bar(config: TrainConfig, epoch: int, images: int) -> tqdm:
    """Images/s and the running loss on a terminal; nothing in logs or with --no-progress."""
    return tqdm(
        total=images,
        desc=f"epoch {epoch}/{config.epochs}",
        unit="img",
        leave=False,
        dynamic_ncols=True,
        disable=not (config.progress and sys.stderr.isatty()),
    )


def run_identity(config: TrainConfig, pretrained: dict[str, str]) -> dict[str, Any]:
    """Everything that shapes the weights: a resumed run must match it. JSON-normalised
    (tuples become lists) so that it compares equal after a round trip through ``last.pt``."""
    identity = {
        "data": str(config.data.resolve()),
        **{f"model.{key}": value for key, value in config.model.to_dict().items()},
        "pretrained.teacher": pretrained["teacher"],
        "pretrained.student": pretrained["student"],
        "batch_size": config.batch_size,
        "lr": config.lr,
        "betas": config.betas,
        "alpha": config.alpha,
        "holdout": config.holdout,
        "augment": config.augment,
        "calibrate_teacher_bn": config.calibrate_teacher_bn,
        "seed": config.seed,
        "precision": config.precision,
    }
    return json.loads(json.dumps(identity))


def check_same_run(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    differences = [
        f"{key} {current.get(key)!r} (checkpoint: {saved.get(key)!r})"
        for key in sorted(saved.keys() | current.keys())
        if saved.get(key) != current.get(key)
    ]
    if differences:
        raise UsageError(
            f"--resume {path}: this run's configuration differs from the checkpoint's: {'; '.join(differences)}. "
            f"Resume with the same settings (only {RESUMABLE_CHANGES} may change) or train into another --out"
        )


def read_training_state(path: Path) -> TrainingState:
    if not path.is_file():
        raise UsageError(f"--resume: {path} does not exist")
    try:
        return load_training_state(path)
    except ValueError as error:
        raise UsageError(f"--resume: {error}") from None


@dataclass
class Run:
    """The mutable state of one training run, and its conversion to and from ``last.pt``."""

    runtime: Runtime
    identity: dict[str, Any]
    model: ASTMFR
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loader_rng: torch.Generator
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_loss: float = math.inf
    best_model: dict[str, Tensor] = field(default_factory=dict)

    def record(self, entry: dict[str, float]) -> bool:
        """Append the epoch's figures; True when its held-out loss is the best so far."""
        self.epoch = int(entry["epoch"])
        self.history.append(entry)
        if not entry["holdout_loss"] < self.best_loss:
            return False
        self.best_epoch, self.best_loss = self.epoch, entry["holdout_loss"]
        self.best_model = copy.deepcopy(self.model.state_dict())
        return True

    def training_state(self) -> TrainingState:
        return TrainingState(
            run=self.identity,
            epoch=self.epoch,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=self.runtime.rng_state(),
            loader_rng=self.loader_rng.get_state(),
            history=self.history,
            best_epoch=self.best_epoch,
            best_loss=self.best_loss,
            best_model=self.best_model,
        )

    def restore(self, state: TrainingState, path: Path) -> None:
        check_same_run(state.run, self.identity, path)
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.scaler.load_state_dict(state.scaler)
        self.runtime.restore_rng_state(state.rng)
        self.loader_rng.set_state(state.loader_rng)
        self.epoch, self.history = state.epoch, state.history
        self.best_epoch, self.best_loss, self.best_model = state.best_epoch, state.best_loss, state.best_model


def make_loaders(
    config: TrainConfig, train_paths: list[Path], holdout_paths: list[Path], runtime: Runtime, rng: torch.Generator
) -> tuple[DataLoader, DataLoader]:
    size = config.model.input_size
    train_set = ImageDataset(train_paths, size, config.augment)
    if config.workers > 0:
        train_set.preload()
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        generator=rng,
        num_workers=config.workers,
        pin_memory=runtime.is_cuda,
    )
    # Small, and needed every epoch: loaded in this process, where its cache persists.
    holdout_set = ImageDataset(holdout_paths, size)
    holdout_loader = DataLoader(holdout_set, batch_size=config.batch_size, pin_memory=runtime.is_cuda)
    return train_loader, holdout_loader


def start_run(config: TrainConfig, runtime: Runtime, train_paths: list[Path]) -> Run:
    """A fresh run (seeded, teacher calibrated if asked) or the one in ``config.resume``."""
    pretrained = {
        "teacher": describe_weights(config.teacher_weights),
        "student": describe_weights(config.student_weights),
    }
    model = build_model(config).to(runtime.device)
    run = Run(
        runtime=runtime,
        identity=run_identity(config, pretrained),
        model=model,
        optimizer=torch.optim.Adam(model.trainable_parameters(), lr=config.lr, betas=config.betas),
        scaler=runtime.grad_scaler(),
        loader_rng=torch.Generator().manual_seed(config.seed),
    )
    if config.resume is not None:
        run.restore(read_training_state(config.resume), config.resume)
        if run.epoch > config.epochs:
            raise UsageError(f"--resume {config.resume}: {run.epoch} epochs done, more than --epochs {config.epochs}")
        log.info(f"resuming {config.resume} after epoch {run.epoch} (best held-out loss at epoch {run.best_epoch})")
        return run
    if (config.out / LAST_CHECKPOINT).exists():
        log.warning(f"{config.out / LAST_CHECKPOINT} exists and will be overwritten (--resume continues that run)")
    if config.calibrate_teacher_bn:
        plain = ImageDataset(train_paths, config.model.input_size)
        calibrate_batchnorm(model.teacher, DataLoader(plain, batch_size=config.batch_size))
    run.best_model = copy.deepcopy(model.state_dict())
    return run


def save_calibrated(
    path: Path, model: ASTMFR, config: TrainConfig, info: dict[str, Any], holdout_paths: list[Path]
) -> None:
    """Write the final checkpoint format, with score statistics measured on the held-out images
    in full float32 (the export's precision)."""
    with ieee_float32():
        maps, scores = predict(model, holdout_paths, config.batch_size)
    save_checkpoint(path, model, CheckpointInfo(calibration=Calibration.from_normal_predictions(scores, maps), **info))


def train(config: TrainConfig) -> Path:
    """Train, keep the best held-out checkpoint, calibrate on the held-out set, save ``model.pt``."""
    runtime = Runtime.select(config.device, config.precision)
    seed_everything(config.seed)
    category = scan_category(config.data)
    train_paths, holdout_paths = split_holdout(category.train, config.holdout, config.seed)
    run = start_run(config, runtime, train_paths)
    train_loader, holdout_loader = make_loaders(config, train_paths, holdout_paths, runtime, run.loader_rng)
    size = config.model.input_size
    log.info(
        f"training {category.name}: {len(train_paths)} images, {len(holdout_paths)} held out, "
        f"{config.epochs} epochs, batch {config.batch_size}, input {size[0]}x{size[1]}, on {runtime.describe()}"
    )

    def checkpoint_info(history: list[dict[str, float]]) -> dict[str, Any]:
        return {
            "category": config.category or category.name,
            "training_data": training_summary(config, len(train_paths), len(holdout_paths), run),
            "history": history,
        }

    for epoch in range(run.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        with epoch_bar(config, epoch, len(train_paths)) as bar:
            train_loss = train_epoch(run.model, train_loader, run.optimizer, config.alpha, runtime, run.scaler, bar)
        images_per_second = len(train_paths) / (time.perf_counter() - started)  # loss.item() synchronises
        val_loss = holdout_loss(run.model, holdout_loader, config.alpha, runtime)
        seconds = time.perf_counter() - started
        improved = run.record(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "holdout_loss": val_loss,
                "seconds": seconds,
                "images_per_second": images_per_second,
            }
        )
        if improved:
            best_info = checkpoint_info(run.history)
            save_calibrated(config.out / BEST_CHECKPOINT, run.model, config, best_info, holdout_paths)
        if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
            save_training_state(config.out / LAST_CHECKPOINT, run.training_state())
        log.info(
            f"epoch {epoch:4d}/{config.epochs}  train {train_loss:.4f}  held-out {val_loss:.4f}  "
            f"{seconds:5.1f}s  {images_per_second:6.1f} img/s{' *' if improved else ''}"
        )

    run.model.load_state_dict(run.best_model)
    path = config.out / FINAL_CHECKPOINT
    save_calibrated(path, run.model, config, checkpoint_info(run.history), holdout_paths)
    log.info(f"best held-out loss {run.best_loss:.4f} at epoch {run.best_epoch}; wrote {path}")
    return path


def training_summary(config: TrainConfig, n_train: int, n_holdout: int, run: Run) -> dict[str, Any]:
    """The ``training_data`` entry of the ONNX metadata."""
    return {
        "source": config.data_source or config.data.name,
        "train_images": n_train,
        "holdout_images": n_holdout,
        "seed": config.seed,
        "epochs": config.epochs,
        "best_epoch": run.best_epoch,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "alpha": config.alpha,
        "augment": list(config.augment),
        "calibrate_teacher_bn": config.calibrate_teacher_bn,
        "precision": config.precision,
        "pretrained": {"teacher": run.identity["pretrained.teacher"], "student": run.identity["pretrained.student"]},
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


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    defaults, train_defaults = ModelConfig(), TrainConfig(data=Path(), out=Path())
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML or JSON file of options (long names as keys)")
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
    p.add_argument("--epochs", type=_count(1), default=train_defaults.epochs)
    p.add_argument("--batch-size", type=_count(1), default=train_defaults.batch_size)
    p.add_argument("--lr", type=float, default=train_defaults.lr)
    p.add_argument("--alpha", type=float, default=train_defaults.alpha, help="weight of the L2 term of the loss")
    p.add_argument("--holdout", type=float, default=train_defaults.holdout, help="fraction of train/good held out")
    p.add_argument("--augment", type=_augment_list, default=(), help=f"comma-separated subset of {AUGMENTATIONS}")
    p.add_argument(
        "--calibrate-teacher-bn",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="re-estimate the teacher's BatchNorm statistics on the training images (for a random-init teacher)",
    )
    p.add_argument("--seed", type=int, default=train_defaults.seed)
    add_device_argument(p)
    p.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default=train_defaults.precision,
        help="autocast precision of the networks (weights, optimiser and loss stay fp32); "
        "fp16 adds loss scaling and needs CUDA",
    )
    p.add_argument("--workers", type=_count(0), default=train_defaults.workers, help="DataLoader worker processes")
    p.add_argument(
        "--checkpoint-every",
        type=_count(1),
        default=train_defaults.checkpoint_every,
        metavar="N",
        help=f"write {LAST_CHECKPOINT} every N epochs (and after the last one)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        type=Path,
        metavar="PATH",
        help=f"continue from a training state (default <out>/{LAST_CHECKPOINT}); the run's settings must match "
        f"it, except {RESUMABLE_CHANGES}",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars (only on a terminal)",
    )
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    return p


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    parser = build_parser()
    args = parser.parse_args(with_config_file(parser, sys.argv[1:] if argv is None else argv))
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
    out = args.out or Path("training/out") / (args.category or args.data.name)
    return TrainConfig(
        data=args.data,
        out=out,
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
        device=args.device,
        precision=args.precision,
        workers=args.workers,
        checkpoint_every=args.checkpoint_every,
        resume=out / LAST_CHECKPOINT if args.resume is True else args.resume,
        progress=args.progress,
    )


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> None:
    configure_logging()
    train(parse_args(argv))


if __name__ == "__main__":
    main()
