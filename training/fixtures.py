"""Fixture files that let the TypeScript service prove it computes what PyTorch computes.

For each chosen test image: the PNG itself, the input tensor exactly as ``data.preprocess``
produced it, and the PyTorch outputs for that tensor; plus one batched case. All tensors are raw
little-endian float32 in C order; ``manifest.json`` gives names, shapes and provenance.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from .contract import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE, PARITY_TOLERANCE
from .data import IMAGENET_MEAN, IMAGENET_STD, load_rgb, normalize
from .model import ASTMFR


@dataclass(frozen=True)
class FixtureImage:
    name: str
    path: Path
    label: str  # "good" or the defect type
    source: str  # path relative to the category directory, for provenance


def write_tensor(directory: Path, filename: str, tensor: torch.Tensor | np.ndarray) -> dict:
    array = np.ascontiguousarray(np.asarray(tensor, dtype="<f4"))
    (directory / filename).write_bytes(array.tobytes())
    return {"file": filename, "shape": list(array.shape)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_fixtures(
    model: ASTMFR,
    onnx_path: Path,
    images: Sequence[FixtureImage],
    batch: Sequence[str],
    out_dir: Path,
    model_reference: str,
) -> dict:
    """Write PNGs, tensors and ``manifest.json`` into ``out_dir`` (emptied first); returns the manifest.

    ``batch`` names the images that make up the batched case, in order.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.eval()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    size = model.config.input_size

    def run(name: str, inputs: torch.Tensor) -> dict:
        with torch.no_grad():
            amap, score = model(inputs)
        onnx_map, onnx_score = session.run([OUTPUT_MAP, OUTPUT_SCORE], {INPUT_NAME: inputs.numpy()})
        return {
            "input": write_tensor(out_dir, f"{name}.input.f32", inputs),
            "anomaly_map": write_tensor(out_dir, f"{name}.anomaly_map.f32", amap),
            "score": write_tensor(out_dir, f"{name}.score.f32", score),
            "score_values": score.tolist(),
            "onnxruntime_python_max_abs_diff": {
                "anomaly_map": float(np.abs(onnx_map - amap.numpy()).max()),
                "score": float(np.abs(onnx_score - score.numpy()).max()),
            },
        }

    tensors: dict[str, torch.Tensor] = {}
    cases = []
    for image in images:
        png = f"{image.name}{image.path.suffix}"
        shutil.copyfile(image.path, out_dir / png)
        rgb = load_rgb(image.path, size)
        tensors[image.name] = normalize(rgb).unsqueeze(0)
        cases.append(
            {
                "name": image.name,
                "image": png,
                "label": image.label,
                "source": image.source,
                **run(image.name, tensors[image.name]),
            }
        )
    batched = {"name": "batch", "cases": list(batch), **run("batch", torch.cat([tensors[n] for n in batch]))}
    manifest = {
        "description": "PyTorch reference outputs of the demo AST-MFR model; see training/fixtures.py",
        "model": model_reference,
        "model_sha256": sha256(onnx_path),
        "dtype": "float32",
        "byte_order": "little-endian",
        "layout": "C order (NCHW)",
        "input_size": list(size),
        "preprocessing": {
            "decode": "8-bit RGB, alpha dropped",
            "resize": "PIL Image.resize(BILINEAR) on uint8 RGB (antialiased triangle filter), rounded to uint8",
            "normalize": "(v / 255 - mean) / std per channel, computed in float64, stored as float32",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
        "parity_tolerance_abs": PARITY_TOLERANCE,
        "cases": cases,
        "batched": batched,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
