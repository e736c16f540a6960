"""The TypeScript fixtures: files, shapes and values agree with the pre-processing and the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from training.checkpoint import Calibration, CheckpointInfo
from training.data import preprocess, scan_category
from training.demo import fixture_images, threshold_rates
from training.export import export
from training.fixtures import write_fixtures
from training.model import ASTMFR


def read_f32(path: Path, shape: list[int]) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype="<f4").reshape(shape)


def test_fixtures_hold_inputs_and_pytorch_outputs(tiny_category: Path, tiny_model: ASTMFR, tmp_path: Path) -> None:
    category = scan_category(tiny_category)
    info = CheckpointInfo("stripes", {}, Calibration.from_normal_predictions(np.ones(3), np.ones((3, 4, 4))))
    onnx_path = export(tiny_model, info, tmp_path / "m.onnx")
    images, batch = fixture_images(category)
    assert [i.label for i in images] == ["good", "good", "blob", "blob"]
    assert batch == [images[0].name, images[2].name]
    out = tmp_path / "fixtures"
    (out / "stale").mkdir(parents=True)
    manifest = write_fixtures(tiny_model, onnx_path, images, batch, out, "m.onnx")
    assert not (out / "stale").exists()
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for case, image in zip(manifest["cases"], images, strict=True):
        assert (out / case["image"]).read_bytes() == image.path.read_bytes()
        assert case["source"].startswith("test/")
        x = read_f32(out / case["input"]["file"], case["input"]["shape"])
        # Exact: integer resize plus correctly rounded float64 arithmetic (see training/data.py).
        np.testing.assert_array_equal(x[0], preprocess(image.path, (32, 32)).numpy())
        with torch.no_grad():
            amap, score = tiny_model(torch.from_numpy(x.copy()))
        # PyTorch's float32 kernels promise no bitwise repeatability (thread count, kernel
        # choice by shape), so the written outputs are compared at float32 scale.
        written_map = read_f32(out / case["anomaly_map"]["file"], [1, 1, 32, 32])
        np.testing.assert_allclose(written_map, amap.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(read_f32(out / case["score"]["file"], [1]), score.numpy(), rtol=1e-6, atol=1e-6)
        assert max(case["onnxruntime_python_max_abs_diff"].values()) <= 1e-4
    batched = manifest["batched"]
    assert batched["input"]["shape"] == [2, 3, 32, 32] and batched["anomaly_map"]["shape"] == [2, 1, 32, 32]
    singles = {c["name"]: c["score_values"][0] for c in manifest["cases"]}
    np.testing.assert_allclose(batched["score_values"], [singles[n] for n in batch], atol=1e-5)


def test_threshold_rates() -> None:
    metrics = {"scores": {"good": [0.1, 0.2, 0.9, 0.3], "defective": [0.95, 0.5, 1.2]}}
    assert threshold_rates(metrics, 0.4) == {"false_positive_rate": 0.25, "true_positive_rate": 1.0}
    assert threshold_rates(metrics, 1.0) == {"false_positive_rate": 0.0, "true_positive_rate": 1 / 3}


def test_demo_readme_reports_the_run(tmp_path: Path) -> None:
    from training.demo import write_readme
    from training.verify import ParityReport

    calibration = Calibration.from_normal_predictions(np.array([1.0, 1.2, 1.1]), np.ones((3, 4, 4)))
    info = CheckpointInfo(
        "weave",
        {"train_images": 9, "holdout_images": 3, "epochs": 7, "best_epoch": 5, "batch_size": 4, "lr": 0.001},
        calibration,
    )
    metrics = {
        "image_auroc": 0.5,
        "pixel_auroc": 0.625,
        "aupro": 0.25,
        "image_auroc_per_defect": {"hole": 0.75},
        "test_images": {"good": 2, "defective": 1},
    }
    facts = {
        "metrics": metrics,
        "info": info,
        "calibration": calibration,
        "rates": {"false_positive_rate": 0.5, "true_positive_rate": 1.0},
        "parity": ParityReport(batch=2, max_map_diff=1e-6, max_score_diff=0.0),
        "parameters": 1234,
        "onnx_mib": 2.5,
        "train_seconds": 90.0,
        "train_cpu_seconds": 60.0,
        "machine": "test machine",
        "generator_command": ["node", "gen.js", "--seed", "1"],
        "int8": {
            "shipped": True,
            "mib": 0.7,
            "calibration_images": 64,
            "metrics": {
                "fp32": {"image_auroc": 0.5, "pixel_auroc": 0.625, "aupro": 0.25},
                "int8": {"image_auroc": 0.52, "pixel_auroc": 0.6248, "aupro": 0.2484},
                "delta_points": {"image_auroc": 2.0, "pixel_auroc": -0.02, "aupro": -0.16},
                "max_abs_score_diff": 0.05,
                "score_spearman": 0.97,
                "tolerance_points": 0.5,
            },
        },
    }
    write_readme(tmp_path / "README.md", facts)
    text = (tmp_path / "README.md").read_text()
    for expected in ("| image AUROC | 0.500 |", "| AUPRO (FPR <= 0.3, normalised) | 0.250 |", "| hole | 0.750 |"):
        assert expected in text
    assert "`node gen.js --seed 1`" in text and "7 epochs" in text and "1,234 parameters" in text
    assert "1.5 min wall-clock / 1.0 min CPU time" in text
    assert "| AUPRO | 0.2500 | 0.2484 | -0.16 |" in text and "calibrated on 64" in text


def test_demo_readme_int8_section_is_rewritten_alone(tmp_path: Path) -> None:
    from training.demo import INT8_FILE_ROW, INT8_SECTION, rewrite_int8_section

    readme = tmp_path / "README.md"
    readme.write_text(
        "# Demo\n\n| `model.pt` | its PyTorch checkpoint, so `python -m training.verify models/demo/model.onnx` works |\n"
    )
    rewrite_int8_section(readme, {"shipped": False})
    first = readme.read_text()
    assert INT8_FILE_ROW in first and INT8_SECTION in first and "Not shipped" in first
    rewrite_int8_section(readme, {"shipped": False})
    assert readme.read_text() == first  # the section is replaced, not appended again
