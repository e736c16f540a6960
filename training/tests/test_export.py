"""ONNX export: contract, metadata and parity with PyTorch for the small and the full-size model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from training.checkpoint import Calibration, CheckpointInfo, load_checkpoint, save_checkpoint
from training.contract import METADATA_KEYS, OPSET
from training.export import export
from training.model import ASTMFR, ModelConfig
from training.verify import VerificationError, contract_problems, parity, verify

from .conftest import randomize_batchnorm


def make_info() -> CheckpointInfo:
    rng = np.random.default_rng(0)
    return CheckpointInfo(
        category="stripes",
        training_data={"source": "unit test", "train_images": 3},
        calibration=Calibration.from_normal_predictions(rng.random(10), rng.random((10, 8, 8))),
    )


def exported(tmp_path: Path, config: ModelConfig, with_checkpoint: bool = True) -> tuple[ASTMFR, Path]:
    torch.manual_seed(0)
    model = ASTMFR(config)
    randomize_batchnorm(model)
    model.eval()
    info = make_info()
    if with_checkpoint:
        save_checkpoint(tmp_path / "model.pt", model, info)
    return model, export(model, info, tmp_path / "model.onnx")


@pytest.fixture(scope="session")
def full_size(tmp_path_factory: pytest.TempPathFactory) -> tuple[ASTMFR, Path]:
    """The paper's configuration, exported once per session (about 220 MiB)."""
    return exported(tmp_path_factory.mktemp("full"), ModelConfig(), with_checkpoint=False)


SMALL = ModelConfig(
    width_divisor=8, blocks=(2, 1, 2), input_size=(64, 48), mfr_stages=(True, False, True), mask_rate=0.3
)


def test_full_size_export_matches_pytorch(full_size: tuple[ASTMFR, Path]) -> None:
    model, path = full_size
    report = parity(path, model, batch=1)
    assert report.max_map_diff <= 1e-4 and report.max_score_diff <= 1e-4
    assert contract_problems(onnx.load(str(path), load_external_data=False), (256, 256)) == []


def test_small_export_matches_pytorch_with_dynamic_batch(tmp_path: Path) -> None:
    model, path = exported(tmp_path, SMALL)
    report = verify(path, batch=3)  # finds model.pt next to model.onnx
    assert report.batch == 3 and report.passed
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    amap, score = session.run(None, {"image": np.zeros((1, 3, 64, 48), np.float32)})
    assert amap.shape == (1, 1, 64, 48) and score.shape == (1,)


def test_graph_contract_and_metadata(tmp_path: Path) -> None:
    model, path = exported(tmp_path, SMALL)
    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["anomaly_map", "score"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert sorted(props) == sorted(METADATA_KEYS)
    assert props["format_version"] == "1"
    assert json.loads(props["architecture"]) == {
        "name": "ast-mfr",
        "teacher": "wide_resnet50_2",
        "student": "resnext50_32x4d",
        "width_divisor": 8,
        "blocks": [2, 1, 2],
        "mfr_stages": [True, False, True],
        "feature_strides": [4, 8, 16],
        "gaussian_sigma": 4.0,
        "avg_pool_kernel": 5,
    }
    assert json.loads(props["input_size"]) == [64, 48]
    assert json.loads(props["mean"]) == [0.485, 0.456, 0.406] and json.loads(props["std"]) == [0.229, 0.224, 0.225]
    assert props["category"] == "stripes" and float(props["mask_rate"]) == 0.3
    stats = json.loads(props["score_stats"])
    assert set(stats) == {"count", "min", "max", "mean", "std", "p50", "p95", "p99"} and stats["count"] == 10
    assert set(json.loads(props["map_stats"])) == {"min", "max", "p99"}
    assert float(props["proposed_threshold"]) >= stats["max"]
    assert json.loads(props["training_data"])["source"] == "unit test"
    # Only standard ONNX operators, and no BatchNormalization: it is folded into the convolutions.
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops and {"Conv", "Resize", "Gather", "ReduceMax"} <= ops


def test_verification_fails_when_the_graph_is_wrong(tmp_path: Path) -> None:
    model, path = exported(tmp_path, SMALL)
    proto = onnx.load(str(path))
    target = next(t for t in proto.graph.initializer if t.name == "student.layer3.1.conv3.weight")
    target.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(target) * 1.5, target.name))
    onnx.save(proto, str(path))
    with pytest.raises(VerificationError, match="differ"):
        verify(path)
    del proto.metadata_props[0]
    onnx.save(proto, str(path))
    with pytest.raises(VerificationError, match="format_version"):
        verify(path)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model, _ = exported(tmp_path, SMALL)
    loaded, info = load_checkpoint(tmp_path / "model.pt")
    assert loaded.config == SMALL and info.category == "stripes"
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
