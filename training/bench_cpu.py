"""Full-size AST-MFR on CPU: parameters, GFLOPs, ONNX size, and latency per image of PyTorch and
onnxruntime measured in the same run with the same number of threads.

    python -m training.bench_cpu [--threads 2] [--runs 10] [--batch 1]

Weights are random (seeded) unless --checkpoint is given: latency does not depend on them.
The ONNX file is written to training/out/bench/ast-mfr.full.onnx (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import onnxruntime as ort
import torch
from torch import Tensor, nn

from .checkpoint import Calibration, CheckpointInfo, load_checkpoint
from .export import export
from .model import ASTMFR, ModelConfig, count_parameters
from .verify import parity

ROOT = Path(__file__).resolve().parents[1]


def conv_macs(model: ASTMFR) -> dict[str, int]:
    """Multiply-accumulates of the convolutions of the teacher, the student and the MFR blocks
    for one image (hooks on one forward pass).

    The distances and the post-processing filters add about 0.02 GMAC at 256x256 and are not
    counted, as is usual for backbone FLOP figures.
    """
    totals = {"teacher": 0, "student": 0, "mfr": 0}

    def counter(part: str) -> Callable[[nn.Conv2d, tuple[Tensor, ...], Tensor], None]:
        def hook(module: nn.Conv2d, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
            kernel = math.prod(module.kernel_size) * module.in_channels // module.groups
            totals[part] += output[0].numel() * kernel

        return hook

    handles = [
        conv.register_forward_hook(counter(part))
        for part in totals
        for conv in getattr(model, part).modules()
        if isinstance(conv, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, *model.config.input_size))
    finally:
        for handle in handles:
            handle.remove()
    return totals


def time_interleaved(fns: Sequence[Callable[[], object]], runs: int, warmup: int = 2) -> list[list[float]]:
    """Seconds per call of each function, alternating between them run by run, so that both see
    the same machine conditions (this machine is shared; the load varies over a run)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, bucket in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - started)
    return times


def summarize(times: list[float], batch: int) -> dict[str, float]:
    return {
        "median_ms_per_image": 1000 * statistics.median(times) / batch,
        "min_ms_per_image": 1000 * min(times) / batch,
        "max_ms_per_image": 1000 * max(times) / batch,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a trained full-size checkpoint (default: random weights)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both runtimes")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "training" / "out" / "bench")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.checkpoint:
        model, info = load_checkpoint(args.checkpoint)
    else:
        torch.manual_seed(0)
        model = ASTMFR(ModelConfig()).eval()
        info = CheckpointInfo("benchmark", {"source": "random weights"}, Calibration({}, {}, 0.0))
    onnx_path = export(model, info, args.out / "ast-mfr.full.onnx")
    macs = conv_macs(model)

    image = torch.randn(args.batch, 3, *model.config.input_size)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {"image": image.numpy()}

    def run_torch() -> object:
        with torch.no_grad():
            return model(image)

    torch_times, onnx_times = time_interleaved([run_torch, lambda: session.run(None, feed)], args.runs)
    report = parity(onnx_path, model, batch=1)
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "input_size": list(model.config.input_size),
        "batch": args.batch,
        "threads": args.threads,
        "runs": args.runs,
        "parameters": {
            "total": count_parameters(model),
            "teacher": count_parameters(model.teacher),
            "student": count_parameters(model.student),
            "mfr": count_parameters(model.mfr),
        },
        "gmacs_per_image": {part: count / 1e9 for part, count in macs.items()} | {"total": sum(macs.values()) / 1e9},
        "gflops_per_image": 2 * sum(macs.values()) / 1e9,
        "onnx_mib": onnx_path.stat().st_size / 2**20,
        "pytorch": summarize(torch_times, args.batch),
        "onnxruntime_cpu": summarize(onnx_times, args.batch),
        "parity_max_abs_diff": {"anomaly_map": report.max_map_diff, "score": report.max_score_diff},
    }
    (args.out / "cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
