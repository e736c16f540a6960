"""Static INT8 quantization (ONNX QDQ) of an AST-MFR model, refused when it costs accuracy.

Usage::

    python -m training.quantize --checkpoint training/out/run/model.pt --data <category dir> \\
        [--out training/out/run/model.int8.onnx] [--tolerance 0.5] [--calibration-images 64] \\
        [--onnx training/out/run/model.onnx] [--threads N] [--bench]

1. The fp32 file: ``--onnx`` if given, else exported from the checkpoint (``training.export``)
   into a temporary directory; either way checked against the checkpoint (``training.verify``).
2. ``onnxruntime.quantization.quantize_static`` in QDQ format, calibrated on
   ``--calibration-images`` images spread evenly over the category's ``train/good`` (never test
   images), pre-processed exactly as served (``training.data.preprocess``).
3. The guard: both files run in onnxruntime (CPU) on the category's test split; their outputs
   give ``training.evaluate``'s image AUROC (``score``), pixel AUROC and AUPRO (``anomaly_map``),
   the same inputs ``evaluate_samples`` takes from PyTorch (the graph computes the score as the
   map's maximum; no threshold is involved). When any of the three drops by more than
   ``--tolerance`` points (1 point = 0.01), nothing is written and the exit code is 1.
4. Otherwise ``--out`` (default: ``<checkpoint>.int8.onnx``) is written after the contract checks
   of ``training.verify`` (float32 ``image`` in, ``anomaly_map``/``score`` out, opset 17, metadata).

``--bench`` also times both files (batch 1 and 8, runs interleaved) before the guard decides.
INT8 pays off for wide layers: the full-size model ran 2.4-2.6x faster than fp32, the demo
model (widths / 8) no faster at all.

What is quantized, and why (measured on this project's 2-core x86 CPU with AVX-512 VNNI; accuracy
on the demo model and its 100 test images, speed on the full-size model, 1 thread, batch 1):

- The teacher's and the student's layers and the MFR blocks: int8 weights per output channel
  (symmetric), uint8 activations per tensor (asymmetric): onnxruntime's fast x86 path is uint8
  activations times int8 weights, 2.4-2.6x faster than fp32; int8 activations were only 1.06x.
  MinMax ranges: Percentile (99.999, 99.99) and Entropy were no more accurate (Entropy gave the
  same metrics as MinMax) and 4-10x slower to calibrate (histograms of every tensor).
- Kept in float32: the two stem convolutions, the most sensitive layers (quantized alone they
  moved the demo's scores by up to 0.11; keeping them in float32 cut the mean map error by 27 %
  and costs 3-11 % more int8 time); and the distances and post-processing, whose values differ by a
  few hundredths between normal and defective pixels (quantized too: max map error 0.42 instead
  of 0.16, score rank correlation 0.86 instead of 0.95).
- No ``quant_pre_process``: these graphs have BatchNorm folded and static shapes; it changed no
  output (onnxruntime's warning that recommends it can be ignored) and adds vendor-domain opset
  imports to the file.

Metadata: every key of the fp32 file, plus

- ``quantization``: ``int8-qdq-static-per-channel``
- ``quantization_calibration_images``: number of ``train/good`` images calibrated on
- ``quantization_metrics``: JSON ``{"fp32": {...}, "int8": {...}, "delta_points": {...},
  "max_abs_score_diff", "score_spearman", "tolerance_points", "test_images": {"good", "defective"}}``;
  metrics are ``image_auroc``, ``pixel_auroc``, ``aupro`` in [0, 1]; ``delta_points`` is
  ``100 * (int8 - fp32)``; the last two compare the image scores of the two files.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from scipy import stats

from .checkpoint import load_checkpoint
from .contract import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE
from .data import TestSample, load_mask, preprocess, scan_category
from .evaluate import aupro, auroc
from .export import export
from .verify import contract_problems, verify_or_exit

QUANTIZATION = "int8-qdq-static-per-channel"
METRICS = ("image_auroc", "pixel_auroc", "aupro")
# Node-name prefixes of training.export's graph: the two backbones and the MFR blocks.
QUANTIZED_PREFIXES = ("teacher.", "student.", "mfr.")
FLOAT_NODES = ("teacher.conv1", "student.conv1")
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
BENCH_BATCHES = (1, 8)


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds quantize_static one pre-processed image at a time."""

    def __init__(self, paths: Sequence[Path], input_size: tuple[int, int]) -> None:
        self._paths: Iterator[Path] = iter(paths)
        self._input_size = input_size

    def get_next(self) -> dict[str, np.ndarray] | None:
        path = next(self._paths, None)
        if path is None:
            return None
        return {INPUT_NAME: preprocess(path, self._input_size).numpy()[None]}


def evenly_spaced(paths: Sequence[Path], count: int) -> list[Path]:
    """``count`` paths (all when fewer) spread over the sorted list, first and last included."""
    indices = np.unique(np.linspace(0, len(paths) - 1, min(count, len(paths))).round().astype(int))
    return [paths[i] for i in indices]


def nodes_to_quantize(proto: onnx.ModelProto) -> list[str]:
    names = [
        node.name
        for node in proto.graph.node
        if node.name.startswith(QUANTIZED_PREFIXES) and node.name not in FLOAT_NODES
    ]
    if not names:
        raise ValueError(f"no node named {QUANTIZED_PREFIXES}...: is this a training.export file?")
    return names


def quantize_int8(fp32: Path, out: Path, calibration: Sequence[Path], input_size: tuple[int, int]) -> None:
    quantize_static(
        fp32,
        out,
        ImageCalibrationReader(calibration, input_size),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_quantize=nodes_to_quantize(onnx.load(str(fp32))),
    )


def onnx_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0: onnxruntime's default
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class TestSplit:
    images: np.ndarray  # float32 [N, 3, H, W], pre-processed
    labels: np.ndarray  # bool [N], True = defective
    masks: np.ndarray  # bool [N, H, W]


def load_test_split(samples: Sequence[TestSample], input_size: tuple[int, int]) -> TestSplit:
    if not samples:
        raise ValueError("the category has no test images")
    return TestSplit(
        images=np.stack([preprocess(s.path, input_size).numpy() for s in samples]),
        labels=np.array([s.is_anomalous for s in samples]),
        masks=np.stack([load_mask(s.mask_path, input_size) for s in samples]),
    )


def predict(session: ort.InferenceSession, images: np.ndarray, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps ``[N, H, W]`` and scores ``[N]``, as ``training.evaluate.predict`` returns them."""
    maps, scores = [], []
    for start in range(0, len(images), batch_size):
        amap, score = session.run([OUTPUT_MAP, OUTPUT_SCORE], {INPUT_NAME: images[start : start + batch_size]})
        maps.append(amap[:, 0])
        scores.append(score)
    return np.concatenate(maps), np.concatenate(scores)


def accuracy(maps: np.ndarray, scores: np.ndarray, split: TestSplit) -> dict[str, float]:
    """The metrics of ``training.evaluate.evaluate_samples``."""
    return {
        "image_auroc": auroc(scores, split.labels),
        "pixel_auroc": auroc(maps, split.masks),
        "aupro": aupro(maps, split.masks),
    }


@dataclass(frozen=True)
class Comparison:
    fp32: dict[str, float]
    int8: dict[str, float]
    max_abs_score_diff: float
    score_spearman: float
    test_images: dict[str, int]

    @property
    def delta_points(self) -> dict[str, float]:
        return {m: 100.0 * (self.int8[m] - self.fp32[m]) for m in METRICS}

    def drops_beyond(self, tolerance_points: float) -> list[str]:
        return [m for m, delta in self.delta_points.items() if -delta > tolerance_points]

    def table(self) -> str:
        rows = [f"{'metric':<12} {'fp32':>8} {'int8':>8} {'delta (points)':>15}"]
        rows += [
            f"{m:<12} {self.fp32[m]:8.4f} {self.int8[m]:8.4f} {self.delta_points[m]:+15.3f}" for m in METRICS
        ]
        rows.append(
            f"image scores: max |int8 - fp32| {self.max_abs_score_diff:.4g}, Spearman {self.score_spearman:.4f}"
        )
        return "\n".join(rows)

    def metadata(self, tolerance_points: float) -> dict:
        return {
            "fp32": self.fp32,
            "int8": self.int8,
            "delta_points": self.delta_points,
            "max_abs_score_diff": self.max_abs_score_diff,
            "score_spearman": self.score_spearman,
            "tolerance_points": tolerance_points,
            "test_images": self.test_images,
        }


def compare(fp32: Path, int8: Path, split: TestSplit, threads: int = 0) -> Comparison:
    fp32_maps, fp32_scores = predict(onnx_session(fp32, threads), split.images)
    int8_maps, int8_scores = predict(onnx_session(int8, threads), split.images)
    return Comparison(
        fp32=accuracy(fp32_maps, fp32_scores, split),
        int8=accuracy(int8_maps, int8_scores, split),
        max_abs_score_diff=float(np.abs(int8_scores - fp32_scores).max()),
        score_spearman=float(stats.spearmanr(fp32_scores, int8_scores).statistic),
        test_images={"good": int((~split.labels).sum()), "defective": int(split.labels.sum())},
    )


def with_metadata(int8: onnx.ModelProto, fp32: onnx.ModelProto, extra: dict[str, str]) -> onnx.ModelProto:
    """The fp32 file's metadata_props followed by ``extra``; replaces the quantizer's own keys."""
    onnx.helper.set_model_props(int8, {p.key: p.value for p in fp32.metadata_props} | extra)
    return int8


def int8_problems(proto: onnx.ModelProto, input_size: tuple[int, int]) -> list[str]:
    """The contract checks of training.verify plus what makes the file an INT8 QDQ model."""
    problems = contract_problems(proto, input_size)
    op_types = {node.op_type for node in proto.graph.node}
    if not {"QuantizeLinear", "DequantizeLinear"} <= op_types:
        problems.append("no QuantizeLinear/DequantizeLinear nodes")
    foreign = sorted({node.domain for node in proto.graph.node if node.domain not in STANDARD_DOMAINS})
    if foreign:
        problems.append(f"nodes of non-standard op domains {foreign}")
    return problems


def bench(fp32: Path, int8: Path, images: np.ndarray, runs: int, threads: int) -> None:
    """Median ms per image of both files, runs interleaved so that both see the same load."""
    sessions = {"fp32": onnx_session(fp32, threads), "int8": onnx_session(int8, threads)}
    for batch in BENCH_BATCHES:
        inputs = {INPUT_NAME: np.resize(images, (batch, *images.shape[1:]))}
        for session in sessions.values():  # warm-up
            session.run(None, inputs)
        times: dict[str, list[float]] = {name: [] for name in sessions}
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(runs):
            for name, session in sessions.items():
                started = time.perf_counter()
                session.run(None, inputs)
                times[name].append(1000.0 * (time.perf_counter() - started) / batch)
        cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
        median = {name: statistics.median(t) for name, t in times.items()}
        print(
            f"bench batch {batch}: fp32 {median['fp32']:.2f} ms/image, int8 {median['int8']:.2f} ms/image "
            f"(medians of {runs}), int8/fp32 {median['int8'] / median['fp32']:.3f}; "
            f"CPU time / wall {cpu_share:.2f}, load average {os.getloadavg()[0]:.2f}"
        )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint written by training.train")
    parser.add_argument("--data", type=Path, required=True, help="MVTec-style category directory")
    parser.add_argument("--out", type=Path, help="INT8 file to write (default: <checkpoint>.int8.onnx)")
    parser.add_argument("--tolerance", type=float, default=0.5, help="largest metric drop allowed, points")
    parser.add_argument("--calibration-images", type=positive_int, default=64, help="train/good images to calibrate on")
    parser.add_argument("--onnx", type=Path, help="fp32 ONNX of the checkpoint (default: export it)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--bench", action="store_true", help="also time fp32 against int8")
    parser.add_argument("--bench-runs", type=positive_int, default=20)
    return parser.parse_args(argv)


def quantization_metadata(calibration_images: int, comparison: Comparison, tolerance: float) -> dict[str, str]:
    return {
        "quantization": QUANTIZATION,
        "quantization_calibration_images": str(calibration_images),
        "quantization_metrics": json.dumps(comparison.metadata(tolerance)),
    }


def run(args: argparse.Namespace) -> int:
    """Quantize, compare, and write ``--out`` only when the guard and the contract checks pass."""
    out = args.out or args.checkpoint.with_suffix(".int8.onnx")
    model, info = load_checkpoint(args.checkpoint)
    input_size = model.config.input_size
    category = scan_category(args.data)
    calibration = evenly_spaced(category.train, args.calibration_images)
    with tempfile.TemporaryDirectory(prefix="quantize-") as work:
        fp32 = args.onnx or export(model, info, Path(work) / "model.onnx")
        verify_or_exit(fp32, args.checkpoint)
        int8 = Path(work) / "model.int8.onnx"
        quantize_int8(fp32, int8, calibration, input_size)
        split = load_test_split(category.test, input_size)
        if args.bench:
            bench(fp32, int8, split.images, args.bench_runs, args.threads)
        comparison = compare(fp32, int8, split, args.threads)
        print(f"{len(calibration)} calibration images, {len(split.labels)} test images")
        print(comparison.table())
        drops = comparison.drops_beyond(args.tolerance)
        if drops:
            print(f"REFUSED: {', '.join(drops)} dropped by more than {args.tolerance} points; nothing written")
            return 1
        metadata = quantization_metadata(len(calibration), comparison, args.tolerance)
        proto = with_metadata(onnx.load(str(int8)), onnx.load(str(fp32)), metadata)
    problems = int8_problems(proto, input_size)
    if problems:
        print(f"REFUSED: the INT8 model breaks the contract: {'; '.join(problems)}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB); every metric within {args.tolerance} points of fp32")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(parse_args(argv)))


if __name__ == "__main__":
    main()
