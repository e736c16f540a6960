"""The GPU check of the full-size AST-MFR (issue 13): training throughput and peak memory in
bf16, PyTorch inference latency, and GPU outputs against CPU outputs, as one JSON and one
markdown table. scripts/gpu-check/run-on-device.sh runs it on a lent GPU machine, part by part
and each under a time limit, with onnxruntime-node's providers (bench/providers.bench.ts) in
between; see scripts/gpu-check/README.md.

    python -m training.gpu_check --device cuda --precision bf16 --out OUT [--work DIR]
        [--parts compare,train,infer] [--size full|demo|tiny] [--train-iterations 30]
        [--train-batch 32] [--batches 1,8,32] [--runs 20]
    python -m training.gpu_check --report-only --out OUT [--work DIR] [--steps DIR/steps.tsv]

Parts; each writes part-<name>.json in --work, and one that raises is recorded as failed with
its error while the others still run:

- ``train``: the trainer's own step (``training.train.train_epoch``: the networks in
  --precision autocast, the loss in float32, Adam with the paper's settings, loss scaling for
  fp16) on one random batch of --train-batch images, --train-warmup untimed iterations then
  --train-iterations timed ones; images/s and the peak GPU memory
  (``torch.cuda.max_memory_allocated``; null on the CPU, with the reason).
- ``infer``: PyTorch ``model(image)`` in ms/image at each of --batches, in three variants:
  fp32 with full IEEE float32 (the export's arithmetic), fp32 with PyTorch's defaults (TF32
  convolutions on CUDA; skipped on the CPU, which has no TF32) and --precision autocast. Warm-up
  runs first, then the variants and batches interleaved run by run (``bench_cpu.time_interleaved``),
  synchronised on CUDA; medians.
- ``compare``: exports the model (``training.export``; random seeded weights, score statistics
  measured on random images so that the file is a valid contract model) to
  --work/ast-mfr.<size>.onnx, runs it with onnxruntime's CPU provider in Python on max(--batches)
  fixed random images, and writes those images and outputs as the reference (reference.json and
  raw little-endian float32 files, which ``providers.bench.ts --reference`` reads). Then PyTorch
  on --device in the three variants on the same images: the max abs difference of the anomaly
  maps and of the scores from the reference (the outputs are kept as pytorch-<variant>.*.f32).

Without --parts, all three run in this process and the report follows. The report
(--report-only, or after the parts) merges the part files, onnxruntime-node's node-<provider>.json
(written by providers.bench.ts into --work) and the steps of run-on-device.sh (steps.tsv: name,
exit status, seconds, limit, reason) into OUT/gpu-check.json and OUT/gpu-check.md. A part or a
provider without a result is listed as skipped or failed, with the reason.

--size full is the paper's configuration (58.1 M parameters, 256x256), demo the demo model's
architecture, tiny a 32x32 toy for the tests; weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from .bench_cpu import time_interleaved
from .bench_gpu import SMOKE_CONFIG, synchronize
from .checkpoint import Calibration, CheckpointInfo
from .contract import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE
from .demo import MODEL as DEMO_CONFIG
from .export import export
from .model import ASTMFR, ModelConfig, count_parameters
from .runtime import PRECISIONS, Runtime, add_device_argument, exits_on_usage_error, ieee_float32
from .train import TrainConfig, train_epoch

ROOT = Path(__file__).resolve().parents[1]
SIZES: dict[str, ModelConfig] = {"full": ModelConfig(), "demo": DEMO_CONFIG, "tiny": SMOKE_CONFIG}
PARTS = ("compare", "train", "infer")
NODE_PROVIDERS = ("webgpu", "cuda", "cpu", "tensorrt")
REFERENCE_FILE = "reference.json"
REFERENCE_FORMAT = "gpu-check-reference/1"
REPORT_FORMAT = "gpu-check/1"
JSON_NAME, MARKDOWN_NAME = "gpu-check.json", "gpu-check.md"


# ---------------------------------------------------------------- arguments


def _positive(name: str, minimum: int = 1) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} takes an integer >= {minimum}, got {value}")
        return value

    return parse


def batch_list(text: str) -> tuple[int, ...]:
    """``1,8,32`` -> (1, 8, 32): positive integers, each once."""
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item.isdigit() or int(item) < 1 for item in items):
        raise argparse.ArgumentTypeError(
            f"--batches takes comma-separated positive integers, e.g. 1,8,32; got {text!r}"
        )
    values = tuple(int(item) for item in items)
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"--batches lists a size twice: {text!r}")
    return values


def name_list(choices: Sequence[str], flag: str) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(item.strip() for item in text.split(",") if item.strip())
        unknown = [value for value in values if value not in choices]
        if not values or unknown:
            raise argparse.ArgumentTypeError(
                f"{flag} takes a comma-separated subset of {','.join(choices)}; got {text!r}"
            )
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_argument(p, default="cuda")
    p.add_argument("--precision", choices=list(PRECISIONS), default="bf16", help="autocast precision (default bf16)")
    p.add_argument("--size", choices=list(SIZES), default="full", help="full (the paper's), demo or tiny (tests)")
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--parts",
        type=name_list(PARTS, "--parts"),
        help="run only these (compare,train,infer) and write no report; default: all three, then the report",
    )
    what.add_argument("--report-only", action="store_true", help="only merge what --work holds into the report")
    p.add_argument("--train-iterations", type=_positive("--train-iterations"), default=30, help="timed iterations")
    p.add_argument("--train-warmup", type=_positive("--train-warmup", 0), default=3, help="untimed iterations first")
    p.add_argument("--train-batch", type=_positive("--train-batch"), default=32, help="images per step (paper: 32)")
    p.add_argument("--batches", type=batch_list, default=(1, 8, 32), help="inference batch sizes (default 1,8,32)")
    p.add_argument("--runs", type=_positive("--runs"), default=20, help="timed runs per batch size and variant")
    p.add_argument("--warmup", type=_positive("--warmup", 0), default=3, help="untimed inference runs first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive("--threads"), help="CPU threads of torch and onnxruntime")
    p.add_argument("--out", type=Path, required=True, help="where gpu-check.json and gpu-check.md go")
    p.add_argument("--work", type=Path, help="part results, ONNX, reference (default: training/out/gpu-check)")
    p.add_argument("--steps", type=Path, help="run-on-device.sh's steps.tsv (default: <work>/steps.tsv)")
    p.add_argument(
        "--node-providers",
        type=name_list(NODE_PROVIDERS, "--node-providers"),
        default=NODE_PROVIDERS[:3],
        help="onnxruntime-node providers the report expects results of (default webgpu,cuda,cpu)",
    )
    return p


@dataclass(frozen=True)
class Settings:
    device: str
    precision: str
    size: str
    train_iterations: int
    train_warmup: int
    train_batch: int
    batches: tuple[int, ...]
    runs: int
    warmup: int
    seed: int
    threads: int | None

    @property
    def config(self) -> ModelConfig:
        return SIZES[self.size]

    @property
    def reference_batch(self) -> int:
        return max(self.batches)


# ---------------------------------------------------------------- helpers


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def json_safe(data: Any) -> Any:
    """``data`` with NaN and infinities as the strings "nan", "inf", "-inf" (JSON has no such numbers)."""
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def describe_error(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]


def environment(runtime: Runtime) -> dict[str, Any]:
    gpu = None
    if runtime.is_cuda:
        props = torch.cuda.get_device_properties(runtime.device)
        gpu = {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
        }
    return {
        "date": now(),
        "device": str(runtime.device),
        "gpu": gpu,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if runtime.is_cuda else None,
        "torch_fp32_precision": {
            "cudnn_conv": torch.backends.cudnn.conv.fp32_precision,
            "cuda_matmul": torch.backends.cuda.matmul.fp32_precision,
        },
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
    }


@dataclass(frozen=True)
class Variant:
    """One way of running the PyTorch model: its arithmetic."""

    name: str
    label: str
    precision: str
    ieee: bool


def variants(runtime: Runtime) -> tuple[list[Variant], dict[str, dict[str, str]]]:
    """The variants that run on this device, and those skipped with their reason."""
    runnable = [Variant("fp32-ieee", "fp32, IEEE (as exported)", "fp32", True)]
    skipped: dict[str, dict[str, str]] = {}
    if runtime.is_cuda:
        runnable.append(Variant("fp32-default", "fp32, PyTorch defaults (TF32 convolutions)", "fp32", False))
    else:
        skipped["fp32-default"] = {
            "label": "fp32, PyTorch defaults (TF32 convolutions)",
            "status": "skipped",
            "reason": "TF32 is a CUDA feature: on the CPU this is fp32-ieee",
        }
    if runtime.precision != "fp32":
        name, label = f"{runtime.precision}-autocast", f"{runtime.precision} autocast"
        runnable.append(Variant(name, label, runtime.precision, False))
    return runnable, skipped


@contextmanager
def running(variant: Variant, device: torch.device) -> Iterator[None]:
    arithmetic = ieee_float32() if variant.ieee else nullcontext()
    with torch.no_grad(), arithmetic, Runtime(device, variant.precision).autocast():
        yield


def export_random_weights(model: ASTMFR, path: Path, source: str, seed: int = 0) -> Path:
    """Export ``model`` (on the CPU, any weights) as a valid contract model: its score statistics
    are measured on two random images."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        maps, scores = model.eval()(torch.randn(2, 3, *model.config.input_size, generator=generator))
    calibration = Calibration.from_normal_predictions(scores.numpy(), maps.numpy())
    info = CheckpointInfo("benchmark", {"source": source, "seed": seed}, calibration)
    return export(model, info, path)


def write_reference(work: Path, image: np.ndarray, outputs: dict[str, np.ndarray], about: dict[str, Any]) -> Path:
    """The reference inputs and outputs as raw little-endian float32 files plus reference.json."""

    def save(name: str, array: np.ndarray) -> dict[str, Any]:
        file = f"reference.{name}.f32"
        np.ascontiguousarray(array, dtype="<f4").tofile(work / file)
        return {"file": file, "shape": list(array.shape)}

    meta = {
        "format": REFERENCE_FORMAT,
        "batch": int(image.shape[0]),
        "input": {"name": INPUT_NAME, **save(INPUT_NAME, image)},
        "outputs": {name: save(name, array) for name, array in outputs.items()},
        **about,
    }
    path = work / REFERENCE_FILE
    write_json(path, meta)
    return path


def read_reference(work: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    meta = json.loads((work / REFERENCE_FILE).read_text())

    def load(entry: dict[str, Any]) -> np.ndarray:
        return np.fromfile(work / entry["file"], dtype="<f4").reshape(entry["shape"])

    return load(meta["input"]), {name: load(entry) for name, entry in meta["outputs"].items()}


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|; infinite where either holds NaN or infinities (a broken output, not a small one)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    difference = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
    return difference if math.isfinite(difference) else math.inf


# ---------------------------------------------------------------- parts


def train_part(settings: Settings, runtime: Runtime, work: Path) -> dict[str, Any]:
    config = settings.config
    if runtime.is_cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(runtime.device)
    torch.manual_seed(settings.seed)
    model = ASTMFR(config).to(runtime.device)
    defaults = TrainConfig(data=Path(), out=Path())
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=defaults.lr, betas=defaults.betas)
    scaler = runtime.grad_scaler()
    generator = torch.Generator().manual_seed(settings.seed + 2)
    batch = torch.randn(settings.train_batch, 3, *config.input_size, generator=generator)
    if runtime.is_cuda:
        batch = batch.pin_memory()  # copied to the GPU at every step, as a DataLoader's batches are
    losses, times = [], []
    for iteration in range(settings.train_warmup + settings.train_iterations):
        synchronize(runtime.device)
        started = time.perf_counter()
        losses.append(train_epoch(model, [batch], optimizer, defaults.alpha, runtime, scaler))  # loss.item() syncs
        synchronize(runtime.device)
        if iteration >= settings.train_warmup:
            times.append(time.perf_counter() - started)
    seconds = sum(times)
    median = statistics.median(times)
    result: dict[str, Any] = {
        "status": "ok",
        "precision": runtime.precision,
        "batch_size": settings.train_batch,
        "warmup_iterations": settings.train_warmup,
        "iterations": settings.train_iterations,
        "seconds": seconds,
        "images_per_second": settings.train_iterations * settings.train_batch / seconds,
        "median_ms_per_iteration": 1000 * median,
        "images_per_second_at_median": settings.train_batch / median,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "losses_finite": all(math.isfinite(loss) for loss in losses),
        "parameters": count_parameters(model),
        "trainable_parameters": sum(p.numel() for p in model.trainable_parameters()),
    }
    if runtime.is_cuda:
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated(runtime.device) / 2**30
        result["peak_gpu_memory_reserved_gib"] = torch.cuda.max_memory_reserved(runtime.device) / 2**30
    else:
        result["peak_gpu_memory_gib"] = None
        result["peak_gpu_memory_reserved_gib"] = None
        result["peak_gpu_memory_reason"] = f"not a CUDA device: --device {settings.device}"
    return result


def infer_part(settings: Settings, runtime: Runtime, work: Path) -> dict[str, Any]:
    config = settings.config
    if runtime.is_cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(runtime.device)
    torch.manual_seed(settings.seed)
    model = ASTMFR(config).to(runtime.device).eval()
    generator = torch.Generator().manual_seed(settings.seed + 3)
    images = {
        b: torch.randn(b, 3, *config.input_size, generator=generator).to(runtime.device) for b in settings.batches
    }
    runnable, skipped = variants(runtime)
    cases = [(variant, batch) for variant in runnable for batch in settings.batches]

    def call(variant: Variant, batch: int) -> Callable[[], None]:
        def run() -> None:
            with running(variant, runtime.device):
                model(images[batch])
            synchronize(runtime.device)

        return run

    times = time_interleaved([call(v, b) for v, b in cases], settings.runs, settings.warmup)
    results: dict[str, Any] = {}
    for variant in runnable:
        rows = []
        for (v, batch), seconds in zip(cases, times, strict=True):
            if v is variant:
                median = statistics.median(seconds)
                rows.append(
                    {
                        "batch": batch,
                        "median_ms_per_image": 1000 * median / batch,
                        "min_ms_per_image": 1000 * min(seconds) / batch,
                        "max_ms_per_image": 1000 * max(seconds) / batch,
                        "median_ms_per_batch": 1000 * median,
                        "images_per_second": batch / median,
                    }
                )
        results[variant.name] = {"label": variant.label, "status": "ok", "batches": rows}
    results.update(skipped)
    return {
        "status": "ok",
        "parameters": count_parameters(model),
        "runs": settings.runs,
        "warmup_runs": settings.warmup,
        "variants": results,
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated(runtime.device) / 2**30 if runtime.is_cuda else None,
    }


def compare_part(settings: Settings, runtime: Runtime, work: Path) -> dict[str, Any]:
    config = settings.config
    torch.manual_seed(settings.seed)
    model = ASTMFR(config).eval()
    started = time.perf_counter()
    onnx_path = work / f"ast-mfr.{settings.size}.onnx"
    export_random_weights(model, onnx_path, "random weights (training.gpu_check)")
    export_seconds = time.perf_counter() - started

    generator = torch.Generator().manual_seed(settings.seed + 1)
    image = torch.randn(settings.reference_batch, 3, *config.input_size, generator=generator)
    options = ort.SessionOptions()
    if settings.threads:
        options.intra_op_num_threads = settings.threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    ref_map, ref_score = session.run([OUTPUT_MAP, OUTPUT_SCORE], {INPUT_NAME: image.numpy()})
    reference_seconds = time.perf_counter() - started
    del session
    reference = {OUTPUT_MAP: ref_map, OUTPUT_SCORE: ref_score}
    write_reference(
        work,
        image.numpy(),
        reference,
        {"computed_by": f"onnxruntime {ort.__version__} CPUExecutionProvider (Python)", "model": onnx_path.name},
    )

    model.to(runtime.device)
    runnable, skipped = variants(runtime)
    results: dict[str, Any] = {}
    for variant in runnable:
        with running(variant, runtime.device):
            outputs = model(image.to(runtime.device))
        arrays = dict(zip((OUTPUT_MAP, OUTPUT_SCORE), (t.float().cpu().numpy() for t in outputs), strict=True))
        for name, array in arrays.items():
            np.ascontiguousarray(array, dtype="<f4").tofile(work / f"pytorch-{variant.name}.{name}.f32")
        results[variant.name] = {
            "label": variant.label,
            "status": "ok",
            "max_abs_diff": {name: max_abs_diff(arrays[name], reference[name]) for name in reference},
        }
    results.update(skipped)
    return {
        "status": "ok",
        "parameters": count_parameters(model),
        "onnx": {"file": onnx_path.name, "mib": onnx_path.stat().st_size / 2**20, "export_seconds": export_seconds},
        "reference": {
            "computed_by": f"onnxruntime {ort.__version__} CPUExecutionProvider (Python)",
            "batch": settings.reference_batch,
            "seconds": reference_seconds,
            "max_abs": {name: float(np.abs(array).max()) for name, array in reference.items()},
        },
        "pytorch": {"device": str(runtime.device), "batch": settings.reference_batch, "variants": results},
    }


PART_FUNCTIONS: dict[str, Callable[[Settings, Runtime, Path], dict[str, Any]]] = {
    "compare": compare_part,
    "train": train_part,
    "infer": infer_part,
}


def run_part(name: str, settings: Settings, runtime: Runtime, work: Path) -> dict[str, Any]:
    """Run one part and write part-<name>.json; an exception is recorded, not raised."""
    print(f"== {name}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        result = PART_FUNCTIONS[name](settings, runtime, work)
    except Exception as error:  # noqa: BLE001 - a failing part is a result of the check
        traceback.print_exc()
        result = {"status": "failed", "error": describe_error(error)}
    result = {
        **result,
        "part": name,
        "wall_seconds": time.perf_counter() - started,
        "settings": asdict(settings),
        "environment": environment(runtime),
    }
    write_json(work / f"part-{name}.json", result)
    print(f"== {name}: {result['status']} in {result['wall_seconds']:.1f} s", file=sys.stderr, flush=True)
    return result


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class Step:
    name: str
    status: str  # exit status, or "skip"
    seconds: float | None
    limit: float | None
    reason: str

    def ended(self) -> str:
        """How the step's process ended, for a step that left no (complete) result."""
        if self.status in ("124", "137"):
            return f"timed out after its {self.limit:.0f} s limit"
        if self.status == "0":
            return "exited normally"
        return f"exited with status {self.status}"

    def why_missing(self, what: str) -> dict[str, str]:
        if self.status == "skip":
            return {"status": "skipped", "reason": self.reason or "skipped by run-on-device.sh"}
        if self.status == "0":
            return {"status": "failed", "reason": f"{what} exited normally but wrote no result"}
        if self.status in ("124", "137"):
            return {"status": "failed", "reason": f"{what} {self.ended()}"}
        return {"status": "failed", "reason": f"{what} {self.ended()} before writing its result"}


def read_steps(path: Path | None) -> dict[str, Step]:
    """run-on-device.sh's steps.tsv: name, exit status (or "skip"), seconds, limit, reason."""
    if path is None or not path.is_file():
        return {}
    steps = {}
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0]:
            continue
        fields += [""] * (5 - len(fields))
        name, status, seconds, limit, reason = fields[:5]
        steps[name] = Step(name, status, float(seconds) if seconds else None, float(limit) if limit else None, reason)
    return steps


def load_part(work: Path, name: str, steps: dict[str, Step]) -> dict[str, Any]:
    path = work / f"part-{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if name in steps:
        return steps[name].why_missing(f"the {name} part")
    return {"status": "skipped", "reason": "not run"}


def load_node(work: Path, provider: str, steps: dict[str, Step]) -> dict[str, Any]:
    """One provider's result from providers.bench.ts (node-<provider>.json), in the report's terms."""
    step = steps.get(f"node-{provider}")
    path = work / f"node-{provider}.json"
    if not path.is_file():
        if step is not None:
            return {"provider": provider, **step.why_missing(f"onnxruntime-node ({provider})")}
        return {"provider": provider, "status": "skipped", "reason": "not run (run-on-device.sh runs the node side)"}
    bench = json.loads(path.read_text())
    found = [r for r in bench.get("results", []) if r.get("provider") == provider]
    if not found:
        return {"provider": provider, "status": "failed", "reason": f"{path.name} has no result for {provider}"}
    result = found[0]
    status = result.get("status") or ("failed" if result.get("error") else "ok")
    entry: dict[str, Any] = {
        "provider": provider,
        "status": status,
        "machine": bench.get("machine"),
        "complete": bench.get("complete", True),
        "session_ms": result.get("sessionMs"),
        "batches": [
            {
                "batch": b.get("batchSize"),
                "ms_per_image": b.get("msPerImage"),
                "p50_ms_per_run": b.get("p50Ms"),
                "min_ms_per_run": b.get("minMs"),
                "images_per_second": b.get("imagesPerSecond"),
                "runs": b.get("runs"),
                "max_abs_diff": b.get("maxAbsDiff"),
                "compared_to": b.get("comparedTo"),
                **({"error": b["error"]} if b.get("error") else {}),
            }
            for b in result.get("batches", [])
        ],
    }
    if result.get("reason") or result.get("error"):
        entry["reason"] = result.get("reason") or result.get("error")
    if not entry["complete"]:
        entry["note"] = f"incomplete: the step {step.ended()}" if step is not None else "incomplete"
    return entry


def build_report(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    steps = read_steps(args.steps or work / "steps.tsv")
    parts = {name: load_part(work, name, steps) for name in PARTS}
    environments = [part["environment"] for part in parts.values() if "environment" in part]
    settings = next((part["settings"] for part in parts.values() if "settings" in part), None)
    size = settings["size"] if settings else args.size
    for part in parts.values():  # the same in every part: once, at the top
        part.pop("settings", None)
        part.pop("environment", None)
    return {
        "format": REPORT_FORMAT,
        "date": now(),
        "settings": settings,
        "environment": environments[0] if environments else None,
        "model": {
            "size": size,
            "config": SIZES[size].to_dict(),
            "parameters": next((part["parameters"] for part in parts.values() if "parameters" in part), None),
            "weights": "random (seeded): speed does not depend on them",
        },
        "train": parts["train"],
        "inference_pytorch": parts["infer"],
        "compare": parts["compare"],
        "onnxruntime_node": [load_node(work, provider, steps) for provider in args.node_providers],
        "steps": [asdict(step) for step in steps.values()],
    }


STEP_NOTES = {"skip": " (skipped)", "0": "", "124": " (time limit)", "137": " (time limit, killed)"}


def _cell(text: Any, limit: int = 240) -> str:
    """One table cell: one line, pipes escaped, shortened."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    for limit, digits in ((100, 0), (10, 1), (1, 2)):
        if value >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.3f}"


def _number(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.4f}"  # NaN and infinities are strings in the JSON


def _diff(value: float | str | None) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else f"{value:.1e}"


def _not_ok(entry: dict[str, Any]) -> str:
    reason = str(entry.get("reason") or entry.get("error") or "no reason given")
    # onnxruntime's failed checks start with the source location and the condition: keep the message.
    reason = re.sub(r"^/\S+:\d+ .*? was false\. ", "", reason, flags=re.DOTALL)
    return f"{entry.get('status', 'failed')}: {reason}"


def markdown(report: dict[str, Any], batches: Sequence[int]) -> str:
    env = report["environment"] or {}
    gpu = env.get("gpu")
    where = gpu["name"] if gpu else f"CPU ({env.get('cpu', '?')} × {env.get('cpu_count', '?')})"
    model = report["model"]
    size = model["config"]["input_size"]
    params = f"{model['parameters'] / 1e6:.1f} M parameters, " if model.get("parameters") else ""
    lines = [
        f"### GPU check: {where}, {model['size']}-size AST-MFR",
        "",
        f"{report['date']}; {env.get('device', '?')}; torch {env.get('torch', '?')} (CUDA {env.get('cuda')}), "
        f"onnxruntime {env.get('onnxruntime', '?')} (Python); {params}{size[0]}×{size[1]}, random weights.",
        "",
    ]
    train = report["train"]
    if train.get("status") == "ok":
        memory = (
            f"peak GPU memory {train['peak_gpu_memory_gib']:.2f} GiB allocated, "
            f"{train['peak_gpu_memory_reserved_gib']:.2f} GiB reserved"
            if train.get("peak_gpu_memory_gib") is not None
            else f"peak GPU memory: n/a ({train.get('peak_gpu_memory_reason')})"
        )
        lines.append(
            f"Training ({train['precision']} autocast, batch {train['batch_size']}, {train['iterations']} iterations "
            f"after {train['warmup_iterations']} warm-ups): **{train['images_per_second']:.1f} img/s**, median "
            f"{train['median_ms_per_iteration']:.1f} ms/iteration; {memory}; loss "
            f"{_number(train['first_loss'])} → {_number(train['last_loss'])}."
        )
    else:
        lines.append(f"Training: {_cell(_not_ok(train))}.")
    lines += [
        "",
        "| runtime | device | precision | "
        + " | ".join(f"ms/img b={b}" for b in batches)
        + " | max abs diff to CPU: map | score |",
        "|---|---|---|" + "---|" * len(batches) + "---|---|",
    ]
    blank = ["–"] * len(batches)

    infer, compare = report["inference_pytorch"], report["compare"]
    timing = infer.get("variants", {}) if infer.get("status") == "ok" else {}
    diffs = compare.get("pytorch", {}).get("variants", {}) if compare.get("status") == "ok" else {}
    device = env.get("device", "?")
    for name in dict.fromkeys([*timing, *diffs]):
        t, d = timing.get(name, {}), diffs.get(name, {})
        label = t.get("label") or d.get("label") or name
        skipped = [side for side in (t, d) if side.get("status") == "skipped"]
        if skipped and all(side.get("status") in ("skipped", None) for side in (t, d)):
            lines.append(
                f"| PyTorch | {device} | {_cell(label)} | {_cell(_not_ok(skipped[0]))} |" + " |" * (len(batches) + 1)
            )
            continue
        per_batch = {row["batch"]: row["median_ms_per_image"] for row in t.get("batches", [])}
        cells = [_ms(per_batch.get(b)) for b in batches] if t.get("status") == "ok" else blank
        diff = d.get("max_abs_diff", {}) if d.get("status") == "ok" else {}
        lines.append(
            f"| PyTorch | {device} | {_cell(label)} | {' | '.join(cells)} | "
            f"{_diff(diff.get(OUTPUT_MAP))} | {_diff(diff.get(OUTPUT_SCORE))} |"
        )
    for name, part in (("PyTorch inference", infer), ("comparison", compare)):
        if part.get("status") != "ok":
            lines.append(f"| PyTorch | {device} | {name} | {_cell(_not_ok(part))} |" + " |" * (len(batches) + 1))

    for node in report["onnxruntime_node"]:
        if node["status"] != "ok":
            lines.append(
                f"| onnxruntime-node | {node['provider']} | fp32 | {_cell(_not_ok(node))} |" + " |" * (len(batches) + 1)
            )
            continue
        rows = {row["batch"]: row for row in node["batches"]}
        cells = []
        for b in batches:
            row = rows.get(b)
            if row is None:
                cells.append("–")
            else:
                cells.append(_cell(f"failed: {row['error']}") if row.get("error") else _ms(row["ms_per_image"]))
        differences = [row.get("max_abs_diff") or {} for row in node["batches"]]
        worst = {
            key: max((float(d[key]) for d in differences if d.get(key) is not None), default=None)
            for key in (OUTPUT_MAP, OUTPUT_SCORE)
        }
        note = f" ({_cell(node['note'])})" if node.get("note") else ""
        lines.append(
            f"| onnxruntime-node | {node['provider']}{note} | fp32 | {' | '.join(cells)} | "
            f"{_diff(worst[OUTPUT_MAP])} | {_diff(worst[OUTPUT_SCORE])} |"
        )

    lines.append("")
    notes = []
    if compare.get("status") == "ok":
        ref = compare["reference"]
        notes.append(
            f"Differences are against {ref['computed_by']} on the same {ref['batch']} random images "
            f"(largest |map| {ref['max_abs'][OUTPUT_MAP]:.3g}, |score| {ref['max_abs'][OUTPUT_SCORE]:.3g}): "
            f"PyTorch at batch {ref['batch']}, onnxruntime-node the largest over its batches (the first b images)."
        )
    else:
        notes.append(f"No CPU reference: {_cell(_not_ok(compare))}.")
    if infer.get("status") == "ok":
        notes.append(
            f"PyTorch timings: median of {infer['runs']} runs after {infer['warmup_runs']} warm-ups, variants and "
            "batches interleaved run by run."
        )
    notes.append("onnxruntime-node: p50 of its runs after 2 warm-ups, one process per provider.")
    lines.append(" ".join(notes))
    if report["steps"]:
        described = []
        for step in report["steps"]:
            seconds = f" {step['seconds']:.0f} s" if step["seconds"] is not None else ""
            note = STEP_NOTES.get(step["status"], f" (exit {step['status']})")
            described.append(f"{step['name']}{seconds}{note}")
        lines += ["", "Steps of run-on-device.sh (process exit): " + ", ".join(described) + "."]
    return "\n".join(lines) + "\n"


def write_report(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    report = build_report(args, work)
    batches = report["settings"]["batches"] if report["settings"] else list(args.batches)
    text = markdown(report, batches)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / JSON_NAME, report)
    (args.out / MARKDOWN_NAME).write_text(text)
    print(text)
    print(f"wrote {args.out / JSON_NAME} and {args.out / MARKDOWN_NAME}", file=sys.stderr)
    return report


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    work: Path = args.work or ROOT / "training" / "out" / "gpu-check"
    work.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        if args.threads:
            torch.set_num_threads(args.threads)
        runtime = Runtime.select(args.device, args.precision)
        settings = Settings(
            device=args.device,
            precision=args.precision,
            size=args.size,
            train_iterations=args.train_iterations,
            train_warmup=args.train_warmup,
            train_batch=args.train_batch,
            batches=args.batches,
            runs=args.runs,
            warmup=args.warmup,
            seed=args.seed,
            threads=args.threads,
        )
        print(f"gpu check on {runtime.describe()}, {args.size} size, work {work}", file=sys.stderr, flush=True)
        for name in args.parts or PARTS:
            run_part(name, settings, runtime, work)
        if args.parts:
            return  # one step of run-on-device.sh, which writes the report at the end
    write_report(args, work)


if __name__ == "__main__":
    main()
