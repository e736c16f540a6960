"""Training as on a GPU, checked on the CPU: resume, mixed precision, --config, device errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training import evaluate as evaluate_cli
from training import export as export_cli
from training import train as train_cli
from training import verify as verify_cli
from training.checkpoint import load_checkpoint, load_training_state
from training.runtime import cuda_build

ROOT = Path(__file__).resolve().parents[2]
TINY_RUN = [
    "--width-divisor", "16",
    "--blocks", "1,1,1",
    "--input-size", "32",
    "--batch-size", "8",
    "--holdout", "0.25",
    "--augment", "hflip",
    "--calibrate-teacher-bn",
    "--seed", "5",
    "--checkpoint-every", "1",
    "--no-progress",
]  # fmt: skip
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error reported when CUDA is missing")


def train_tiny(data: Path, out: Path, *extra: str) -> None:
    train_cli.main(["--data", str(data), "--out", str(out), "--device", "cpu", *TINY_RUN, *extra])


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny_category: Path, tmp_path: Path) -> None:
    train_tiny(tiny_category, tmp_path / "straight", "--epochs", "2")
    train_tiny(tiny_category, tmp_path / "resumed", "--epochs", "1")
    assert load_training_state(tmp_path / "resumed" / "last.pt").epoch == 1
    train_tiny(tiny_category, tmp_path / "resumed", "--epochs", "2", "--resume")

    straight = load_training_state(tmp_path / "straight" / "last.pt")
    resumed = load_training_state(tmp_path / "resumed" / "last.pt")
    assert resumed.epoch == straight.epoch == 2
    assert straight.model.keys() == resumed.model.keys()
    for name, tensor in straight.model.items():  # bit-exact: the CPU kernels are deterministic
        assert torch.equal(resumed.model[name], tensor), name
    assert [h["holdout_loss"] for h in resumed.history] == [h["holdout_loss"] for h in straight.history]
    final_straight, info_straight = load_checkpoint(tmp_path / "straight" / "model.pt")
    final_resumed, info_resumed = load_checkpoint(tmp_path / "resumed" / "model.pt")
    assert info_resumed.training_data["best_epoch"] == info_straight.training_data["best_epoch"]
    for name, tensor in final_straight.state_dict().items():
        assert torch.equal(final_resumed.state_dict()[name], tensor), name


def test_resume_refuses_a_different_configuration(
    tiny_category: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_tiny(tiny_category, tmp_path, "--epochs", "1")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train_tiny(tiny_category, tmp_path, "--epochs", "2", "--lr", "0.01", "--resume")
    assert exit_info.value.code == 2
    assert "lr 0.01 (checkpoint: 0.001)" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        train_tiny(tiny_category, tmp_path, "--resume", str(tmp_path / "missing.pt"))
    assert exit_info.value.code == 2
    assert "missing.pt does not exist" in capsys.readouterr().err


def test_bf16_on_cpu_trains_from_a_config_file(tiny_category: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data: {tiny_category}\nout: {tmp_path / 'run'}\ndevice: cpu\nprecision: bf16\nepochs: 5\n"
        "width-divisor: 16\nblocks: [1, 1, 1]\ninput_size: 32\nbatch_size: 8\nholdout: 0.25\nprogress: false\n"
    )
    train_cli.main(["--config", str(config), "--epochs", "1"])
    model, info = load_checkpoint(tmp_path / "run" / "model.pt")
    assert info.training_data["precision"] == "bf16"
    assert [h["epoch"] for h in info.history] == [1]  # the flag overrode the file's 5 epochs
    assert math.isfinite(info.history[0]["train_loss"]) and info.calibration.score_stats["count"] == 6
    assert model.config.blocks == (1, 1, 1) and model.config.input_size == (32, 32)
    assert all(t.dtype == torch.float32 for t in model.state_dict().values() if t.is_floating_point())
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()


def test_config_values_are_used_and_flags_override_them(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        "data: /data/bottle\nepochs: 7\nbatch_size: 4\nlr: 5e-4\nmfr-stages: [true, false, true]\n"
        "augment: [hflip, vflip]\ncalibrate_teacher_bn: true\nprogress: false\nresume: true\n"
    )
    parsed = train_cli.parse_args(["--config", str(config), "--epochs", "3", "--no-calibrate-teacher-bn"])
    assert parsed.data == Path("/data/bottle") and parsed.out == Path("training/out/bottle")
    assert (parsed.epochs, parsed.batch_size, parsed.lr) == (3, 4, 5e-4)
    assert parsed.model.mfr_stages == (True, False, True) and parsed.augment == ("hflip", "vflip")
    assert parsed.calibrate_teacher_bn is False and parsed.progress is False
    assert parsed.resume == Path("training/out/bottle/last.pt")

    json_config = tmp_path / "run.json"
    json_config.write_text(json.dumps({"data": "/data/bottle", "batch-size": 2}))
    parsed = train_cli.parse_args(["--config", str(json_config)])
    assert (parsed.batch_size, parsed.epochs, parsed.resume) == (2, 200, None)


def test_config_refuses_unknown_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("data: /data/bottle\nlearning_rate: 0.1\n")
    with pytest.raises(SystemExit) as exit_info:
        train_cli.parse_args(["--config", str(config)])
    assert exit_info.value.code == 2
    assert "unknown key(s) learning_rate" in capsys.readouterr().err


@no_cuda
@pytest.mark.parametrize(
    ("command", "argv"),
    [
        (train_cli.main, ["--data", "unused", "--device", "cuda"]),
        (evaluate_cli.main, ["--checkpoint", "unused.pt", "--data", "unused", "--device", "cuda"]),
        (export_cli.main, ["--checkpoint", "unused.pt", "--device", "cuda:1"]),
        (verify_cli.main, ["unused.onnx", "--device", "cuda"]),
    ],
    ids=["train", "evaluate", "export", "verify"],
)
def test_missing_cuda_is_one_clear_line_and_exit_code_2(
    command: object, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command(argv)  # type: ignore[operator]
    assert exit_info.value.code == 2
    device = argv[-1]
    assert capsys.readouterr().err == f"error: --device {device}: no CUDA device is available ({cuda_build()})\n"


def test_fp16_on_cpu_is_refused(tiny_category: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(["--data", str(tiny_category), "--device", "cpu", "--precision", "fp16"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: --precision fp16 needs a CUDA device")


@no_cuda
def test_missing_cuda_exit_status_from_the_shell() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training.verify", "unused.onnx", "--device", "cuda"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: --device cuda: no CUDA device is available ({cuda_build()})"]
