"""Full-size AST-MFR on a CUDA GPU: PyTorch inference latency at batch 1 and 32, and training
throughput for a few epochs (the paper's setting: batch 32, 256x256, Adam lr 1e-3).

    python -m training.bench_gpu [--epochs 3] [--images 320] [--out gpu.json]

Training uses synthetic normalised images (throughput does not depend on content) unless
--data points at an MVTec-style category. ``--device cpu --smoke`` runs a tiny configuration on
the CPU so that the script itself is tested where no GPU exists (training/tests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from .data import ImageDataset, scan_category
from .losses import ast_mfr_loss
from .model import ASTMFR, ModelConfig, count_parameters
from .runtime import Runtime, add_device_argument, exits_on_usage_error

SMOKE_CONFIG = ModelConfig(width_divisor=16, blocks=(1, 1, 1), input_size=(32, 32))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def inference_latency(model: ASTMFR, device: torch.device, batch: int, runs: int, warmup: int = 5) -> dict[str, float]:
    model.eval()
    image = torch.randn(batch, 3, *model.config.input_size, device=device)
    for _ in range(warmup):
        model(image)
    synchronize(device)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        model(image)
        synchronize(device)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        "batch": batch,
        "median_ms_per_batch": 1000 * median,
        "median_ms_per_image": 1000 * median / batch,
        "images_per_second": batch / median,
    }


def training_throughput(model: ASTMFR, loader: DataLoader, device: torch.device, epochs: int) -> dict[str, object]:
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=1e-3, betas=(0.9, 0.999))
    model.train()
    per_epoch = []
    for _ in range(epochs):
        synchronize(device)
        started = time.perf_counter()
        seen = 0
        for batch in loader:
            batch = batch[0] if isinstance(batch, (list, tuple)) else batch
            batch = batch.to(device, non_blocking=True)
            student, teacher = model.features(batch)
            loss = ast_mfr_loss(student, teacher)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(batch)
        synchronize(device)
        per_epoch.append(seen / (time.perf_counter() - started))
    return {
        "epochs": epochs,
        "images_per_epoch": len(loader.dataset),  # type: ignore[arg-type]
        "images_per_second_per_epoch": per_epoch,
        "images_per_second_after_first_epoch": statistics.mean(per_epoch[1:]) if epochs > 1 else per_epoch[0],
        "last_loss": loss.item(),
    }


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_argument(parser, default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny configuration (to test the script on CPU)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=320, help="synthetic training images per epoch")
    parser.add_argument("--data", type=Path, help="MVTec-style category to train on instead of synthetic images")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batches", default="1,32", help="inference batch sizes")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)

    device = Runtime.select(args.device).device
    torch.manual_seed(0)
    config = SMOKE_CONFIG if args.smoke else ModelConfig()
    model = ASTMFR(config).to(device)

    inference = [inference_latency(model, device, int(b), args.runs) for b in args.batches.split(",")]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if args.data:
        dataset = ImageDataset(scan_category(args.data).train, config.input_size)
    else:
        dataset = TensorDataset(torch.randn(args.images, 3, *config.input_size))
    loader = DataLoader(dataset, batch_size=32, shuffle=True, drop_last=False, pin_memory=device.type == "cuda")
    training = training_throughput(model, loader, device, args.epochs)

    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "input_size": list(config.input_size),
        "parameters": count_parameters(model),
        "inference_fp32": inference,
        "training_batch32": training,
        "peak_training_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
