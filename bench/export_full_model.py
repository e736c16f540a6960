"""The full-size AST-MFR (the paper's architecture, 256x256) with random weights, as an ONNX file
the service accepts, for `npm run bench:inference`. Latency depends on the architecture, not on
the weights.

    .venv-training/bin/python bench/export_full_model.py [--out models/full/ast-mfr.full.onnx] [--int8]

``--int8`` also writes its INT8 twin (``<out without .full.onnx>.int8.full.onnx``, what
``npm run bench:inference -- --models full,full-int8`` looks for) with ``training.quantize``'s
scheme, calibrated on a few random-texture images: with random weights there is no accuracy to
guard, only the speed of the int8 kernels to measure.

`training.bench_cpu` exports the same graph but with empty score statistics, which the service
refuses (docs/model-contract.md requires them); here they are measured on random inputs, so the
file is a valid contract model (``training.gpu_check.export_random_weights``, which the GPU check
uses for the same model). The output path matches `models/**/*.full.onnx` (git-ignored).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.gpu_check import export_random_weights  # noqa: E402
from training.model import ASTMFR, ModelConfig, count_parameters  # noqa: E402
from training.quantize import QUANTIZATION, quantize_int8, with_metadata  # noqa: E402

CALIBRATION_IMAGES = 8


def write_int8_twin(fp32: Path, input_size: tuple[int, int]) -> Path:
    out = fp32.with_name(fp32.name.removesuffix(".full.onnx") + ".int8.full.onnx")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="full-int8-") as work:
        images = []
        for index in range(CALIBRATION_IMAGES):
            path = Path(work) / f"calibration_{index}.png"
            Image.fromarray(rng.integers(0, 256, (*input_size, 3), dtype=np.uint8)).save(path)
            images.append(path)
        quantized = Path(work) / "model.int8.onnx"
        quantize_int8(fp32, quantized, images, input_size)
        metadata = {"quantization": QUANTIZATION, "quantization_calibration_images": str(CALIBRATION_IMAGES)}
        onnx.save(with_metadata(onnx.load(str(quantized)), onnx.load(str(fp32)), metadata), str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "full" / "ast-mfr.full.onnx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also write the INT8 twin (training.quantize's scheme)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ASTMFR(ModelConfig()).eval()
    path = export_random_weights(model, args.out, "random weights (bench/export_full_model.py)")
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {count_parameters(model):,} parameters)")
    if args.int8:
        int8 = write_int8_twin(path, model.config.input_size)
        print(f"wrote {int8} ({int8.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
