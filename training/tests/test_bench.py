"""The benchmark scripts: FLOP counting, and the GPU script's code path (run on CPU)."""

from __future__ import annotations

import json

import pytest

from training import bench_gpu
from training.bench_cpu import conv_macs
from training.model import ASTMFR, ModelConfig


def test_conv_macs_counts_each_part() -> None:
    config = ModelConfig(width_divisor=4, blocks=(1, 1, 1), input_size=(64, 64))
    macs = conv_macs(ASTMFR(config))
    # Two channel-preserving 3x3 convolutions per stage at strides 4, 8, 16.
    assert macs["mfr"] == sum(2 * 9 * c * c * (64 // s) ** 2 for c, s in ((64, 4), (128, 8), (256, 16)))
    # The stem alone: 7x7 conv, 3 -> 16 channels, output 32x32.
    stem = 16 * 32 * 32 * 49 * 3
    without_mfr = conv_macs(ASTMFR(ModelConfig(**{**config.to_dict(), "mfr_stages": (False, False, False)})))
    assert without_mfr["mfr"] == 0 and without_mfr["teacher"] == macs["teacher"] > stem
    assert macs["student"] < macs["teacher"]  # ResNeXt bottlenecks are cheaper than wide ones


def test_gpu_benchmark_runs_on_cpu_in_smoke_mode(capsys: pytest.CaptureFixture[str]) -> None:
    bench_gpu.main(["--device", "cpu", "--smoke", "--epochs", "2", "--images", "12", "--runs", "2", "--batches", "1,3"])
    result = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in result["inference_fp32"]] == [1, 3]
    assert all(r["median_ms_per_image"] > 0 for r in result["inference_fp32"])
    assert len(result["training_batch32"]["images_per_second_per_epoch"]) == 2
    assert result["training_batch32"]["images_per_epoch"] == 12


def test_full_size_student_compute_matches_the_paper() -> None:
    macs = conv_macs(ASTMFR(ModelConfig()))
    # Table 5 of the paper: 18.9 "FLOPs(G)" (multiply-accumulates) for the ResNeXt50 student with MFR.
    assert round((macs["student"] + macs["mfr"]) / 1e9, 1) == 18.9
