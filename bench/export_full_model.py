"""The full-size AST-MFR (the paper's architecture, 256x256) with random weights, as an ONNX file
the service accepts, for `npm run bench:inference`. Latency depends on the architecture, not on
the weights.

    .venv-training/bin/python bench/export_full_model.py [--out models/full/ast-mfr.full.onnx]

`training.bench_cpu` exports the same graph but with empty score statistics, which the service
refuses (docs/model-contract.md requires them); here they are measured on random inputs, so the
file is a valid contract model (``training.gpu_check.export_random_weights``, which the GPU check
uses for the same model). The output path matches `models/**/*.full.onnx` (git-ignored).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.gpu_check import export_random_weights  # noqa: E402
from training.model import ASTMFR, ModelConfig, count_parameters  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "full" / "ast-mfr.full.onnx")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ASTMFR(ModelConfig()).eval()
    path = export_random_weights(model, args.out, "random weights (bench/export_full_model.py)")
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {count_parameters(model):,} parameters)")


if __name__ == "__main__":
    main()
