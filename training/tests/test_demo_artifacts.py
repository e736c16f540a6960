"""The committed demo model and the TypeScript fixtures agree with each other and the contract."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from training.checkpoint import load_checkpoint
from training.data import preprocess
from training.quantize import int8_problems
from training.verify import contract_problems

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "demo" / "model.onnx"
FIXTURES = ROOT / "test" / "fixtures" / "model"


def read(entry: dict) -> np.ndarray:
    return np.frombuffer((FIXTURES / entry["file"]).read_bytes(), dtype="<f4").reshape(entry["shape"])


def test_demo_model_follows_the_contract_and_its_checkpoint() -> None:
    model, info = load_checkpoint(MODEL.with_suffix(".pt"))
    proto = onnx.load(str(MODEL))
    assert contract_problems(proto, model.config.input_size) == []
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["score_stats"]) == info.calibration.score_stats
    assert json.loads(props["architecture"]) == model.config.architecture()
    assert MODEL.stat().st_size < 8 * 2**20


def test_fixtures_match_the_committed_model() -> None:
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    assert manifest["model_sha256"] == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    model, _ = load_checkpoint(MODEL.with_suffix(".pt"))
    size = tuple(manifest["input_size"])
    for case in [*manifest["cases"], manifest["batched"]]:
        x = read(case["input"])
        amap, score = session.run(None, {"image": x})
        np.testing.assert_allclose(amap, read(case["anomaly_map"]), atol=1e-4, rtol=0)
        np.testing.assert_allclose(score, read(case["score"]), atol=1e-4, rtol=0)
        if "image" in case:  # single-image cases: the input is the pre-processing of the PNG
            # Exact on purpose, and it holds on any machine: Pillow's BILINEAR resize of 8-bit
            # images is fixed-point integer arithmetic, and the normalisation uses only IEEE
            # float64 subtract/divide (correctly rounded everywhere) before one cast to float32.
            np.testing.assert_array_equal(x[0], preprocess(FIXTURES / case["image"], size).numpy())
            with torch.no_grad():
                torch_score = model(torch.from_numpy(x.copy()))[1]
            # The fixture was written by PyTorch on another CPU; its float32 kernels may differ
            # there in the last place (seen: 1.19e-7 on an AMD EPYC), so compare at float32 scale.
            np.testing.assert_allclose(torch_score.numpy(), read(case["score"]), rtol=1e-6, atol=1e-6)


def test_int8_twin_keeps_the_contract_the_guard_passed_it_and_it_scores_like_fp32() -> None:
    int8 = MODEL.with_name("model.int8.onnx")
    model, _ = load_checkpoint(MODEL.with_suffix(".pt"))
    proto = onnx.load(str(int8))
    assert int8_problems(proto, model.config.input_size) == []
    props = {p.key: p.value for p in proto.metadata_props}
    fp32_props = {p.key: p.value for p in onnx.load(str(MODEL)).metadata_props}
    assert {key: props[key] for key in fp32_props} == fp32_props
    guard = json.loads(props["quantization_metrics"])
    assert all(delta >= -guard["tolerance_points"] for delta in guard["delta_points"].values())
    # Int8 noise, not float32 noise: the guard measured a largest score difference of 0.056.
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    for case in manifest["cases"]:
        _, score = session.run(None, {"image": read(case["input"])})
        np.testing.assert_allclose(score, read(case["score"]), atol=0.1, rtol=0)
