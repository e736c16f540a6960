"""A tiny end-to-end run: training lowers the loss, and train -> export -> verify works from the CLIs."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from training import export as export_cli
from training import train as train_cli
from training import verify as verify_cli
from training.checkpoint import load_checkpoint
from training.data import ImageDataset, scan_category
from training.losses import ast_mfr_loss
from training.model import ASTMFR
from training.train import calibrate_batchnorm, holdout_loss, seed_everything, train_epoch

from .conftest import TINY_CONFIG


def test_training_lowers_the_loss(tiny_category: Path) -> None:
    seed_everything(0)
    model = ASTMFR(TINY_CONFIG)
    images = scan_category(tiny_category).train
    loader = torch.utils.data.DataLoader(ImageDataset(images, (32, 32)), batch_size=8, shuffle=True)
    before = holdout_loss(model, loader, alpha=1.0)
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    losses = [train_epoch(model, loader, optimizer, alpha=1.0) for _ in range(6)]
    after = holdout_loss(model, loader, alpha=1.0)
    assert after < 0.8 * before
    assert losses[-1] < losses[0]
    for key, value in model.teacher.state_dict().items():  # frozen, BatchNorm statistics included
        assert torch.equal(value, teacher_before[key])


def test_cli_train_export_verify(tiny_category: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    train_cli.main(
        [
            "--data",
            str(tiny_category),
            "--out",
            str(out),
            "--width-divisor",
            "16",
            "--blocks",
            "1,1,1",
            "--input-size",
            "32",
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--holdout",
            "0.25",
            "--mfr-stages",
            "1,0,1",
            "--mask-rate",
            "0.3",
            "--augment",
            "hflip",
            "--seed",
            "3",
            "--calibrate-teacher-bn",
        ]
    )
    assert "RANDOM initialisation" in capsys.readouterr().err
    model, info = load_checkpoint(out / "model.pt")
    assert model.config.mfr_stages == (True, False, True) and model.config.mask_rate == 0.3
    assert [h["epoch"] for h in info.history] == [1, 2, 3]
    best = min(info.history, key=lambda h: h["holdout_loss"])
    assert info.training_data["best_epoch"] == best["epoch"]
    assert info.training_data["train_images"] == 18 and info.training_data["holdout_images"] == 6
    assert info.training_data["pretrained"]["teacher"].startswith("none")
    assert info.training_data["calibrate_teacher_bn"] is True
    stats = info.calibration.score_stats
    assert stats["count"] == 6 and stats["min"] <= stats["p50"] <= stats["max"]

    export_cli.main(["--checkpoint", str(out / "model.pt")])
    assert "verify ok" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert json.loads(props["training_data"])["seed"] == 3
    assert json.loads(props["score_stats"]) == pytest.approx(stats)

    verify_cli.main([str(out / "model.onnx"), "--batch", "1"])
    assert "verify ok" in capsys.readouterr().out


def test_pretrained_weights_are_loaded(tiny_category: Path, tmp_path: Path) -> None:
    torch.manual_seed(7)
    donor = ASTMFR(TINY_CONFIG)
    torch.save(donor.teacher.state_dict(), tmp_path / "teacher.pth")
    config = train_cli.TrainConfig(
        data=tiny_category,
        out=tmp_path,
        model=TINY_CONFIG,
        teacher_weights=tmp_path / "teacher.pth",
        student_weights=tmp_path / "teacher.pth",
    )
    with pytest.raises(RuntimeError):  # a wide teacher's weights do not fit the ResNeXt student
        train_cli.build_model(config)
    config.student_weights = None
    model = train_cli.build_model(config)
    for key, value in donor.teacher.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value)
    student, teacher = model.features(torch.randn(1, 3, 32, 32))
    assert ast_mfr_loss(student, teacher).item() > 0


def test_teacher_batchnorm_calibration_measures_the_data(tiny_category: Path) -> None:
    torch.manual_seed(0)
    teacher = ASTMFR(TINY_CONFIG).teacher
    images = torch.stack(list(ImageDataset(scan_category(tiny_category).train, (32, 32))))
    weights_before = teacher.conv1.weight.clone()
    calibrate_batchnorm(teacher, torch.utils.data.DataLoader(images, batch_size=8))  # equal batches
    with torch.no_grad():
        stem = teacher.conv1(images)
    torch.testing.assert_close(teacher.bn1.running_mean, stem.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert torch.equal(teacher.conv1.weight, weights_before)
    assert not teacher.training and teacher.bn1.momentum == 0.1
    # Deeper statistics now follow the data too: the normalised stage-3 input is roughly standard.
    assert teacher.layer3[0].bn1.running_var.mean().item() != pytest.approx(1.0, abs=1e-3)
