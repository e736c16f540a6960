"""The GPU check (training.gpu_check and the node side), run on the CPU: arguments, the JSON and
markdown it writes, what it says of GPU-only figures here, the CPU comparison, and failures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training import gpu_check
from training.contract import INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE, PARITY_TOLERANCE

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--device", "cpu", "--size", "tiny", "--runs", "2", "--warmup", "1", "--train-iterations", "2"]
FAST += ["--train-warmup", "1", "--train-batch", "8", "--threads", "1"]
# PyTorch against onnxruntime, both float32 on the CPU: the export's parity tolerance, tenfold tighter.
FLOAT32_TOLERANCE = PARITY_TOLERANCE / 10


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """One whole run with the default batches (1, 8, 32): work dir, out dir, the JSON."""
    root = tmp_path_factory.mktemp("gpu-check")
    work, out = root / "work", root / "out"
    gpu_check.main([*FAST, "--work", str(work), "--out", str(out)])
    return work, out, json.loads((out / gpu_check.JSON_NAME).read_text())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--batches", "1,0,32"], "--batches takes comma-separated positive integers"),
        (["--batches", "one"], "--batches takes comma-separated positive integers"),
        (["--batches", "8,8"], "--batches lists a size twice"),
        (["--runs", "0"], "--runs takes an integer >= 1"),
        (["--train-iterations", "x"], "--train-iterations takes an integer >= 1"),
        (["--size", "huge"], "invalid choice: 'huge'"),
        (["--precision", "int8"], "invalid choice: 'int8'"),
        (["--parts", "train,sing"], "--parts takes a comma-separated subset of compare,train,infer"),
        (["--device", "gpu"], "expected auto (CUDA when available, else CPU), cpu, cuda or cuda:N"),
        (["--report-only", "--parts", "train"], "not allowed with argument"),
        (["--node-providers", "metal"], "--node-providers takes a comma-separated subset"),
    ],
)
def test_bad_arguments_are_refused(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--out", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_out_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--device", "cpu"])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_requests_the_machine_cannot_honour_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--device", "cpu", "--precision", "fp16", "--out", str(tmp_path), "--work", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: --precision fp16 needs a CUDA device")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exit_info:
            gpu_check.main(["--out", str(tmp_path), "--work", str(tmp_path)])  # --device cuda by default
        assert exit_info.value.code == 2
        assert "error: --device cuda: no CUDA device is available" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cpu_run_writes_the_json_with_every_part(cpu_run: tuple[Path, Path, dict[str, Any]]) -> None:
    _, out, report = cpu_run
    assert set(report) >= {
        "format",
        "date",
        "settings",
        "environment",
        "model",
        "train",
        "inference_pytorch",
        "compare",
        "onnxruntime_node",
        "steps",
    }
    assert report["format"] == gpu_check.REPORT_FORMAT
    assert report["settings"]["batches"] == [1, 8, 32]
    assert report["settings"]["precision"] == "bf16" and report["settings"]["device"] == "cpu"
    assert report["model"]["size"] == "tiny" and report["model"]["parameters"] > 0

    train = report["train"]
    assert train["status"] == "ok" and train["precision"] == "bf16"
    assert train["iterations"] == 2 and train["batch_size"] == 8
    assert train["images_per_second"] > 0 and train["median_ms_per_iteration"] > 0
    assert train["losses_finite"] is True

    variants = report["inference_pytorch"]["variants"]
    for name in ("fp32-ieee", "bf16-autocast"):
        assert variants[name]["status"] == "ok"
        assert [row["batch"] for row in variants[name]["batches"]] == [1, 8, 32]
        assert all(row["median_ms_per_image"] > 0 for row in variants[name]["batches"])
    assert set(out.iterdir()) == {out / gpu_check.JSON_NAME, out / gpu_check.MARKDOWN_NAME}


def test_gpu_only_figures_are_null_or_skipped_with_a_reason_on_cpu(cpu_run: tuple[Path, Path, dict[str, Any]]) -> None:
    _, _, report = cpu_run
    assert report["environment"]["gpu"] is None and report["environment"]["cuda"] is None
    train = report["train"]
    assert train["peak_gpu_memory_gib"] is None and train["peak_gpu_memory_reserved_gib"] is None
    assert "not a CUDA device" in train["peak_gpu_memory_reason"]
    assert report["inference_pytorch"]["peak_gpu_memory_gib"] is None
    for part in (report["inference_pytorch"]["variants"], report["compare"]["pytorch"]["variants"]):
        assert part["fp32-default"]["status"] == "skipped"
        assert "TF32 is a CUDA feature" in part["fp32-default"]["reason"]
    # Without run-on-device.sh, the node side did not run, and says so.
    assert [(n["provider"], n["status"]) for n in report["onnxruntime_node"]] == [
        ("webgpu", "skipped"),
        ("cuda", "skipped"),
        ("cpu", "skipped"),
    ]
    assert all(n["reason"].startswith("not run") for n in report["onnxruntime_node"])


def test_cpu_comparison_is_within_float32_tolerance(cpu_run: tuple[Path, Path, dict[str, Any]]) -> None:
    work, _, report = cpu_run
    compare = report["compare"]
    assert compare["status"] == "ok"
    assert compare["reference"]["batch"] == 32 and compare["pytorch"]["batch"] == 32
    assert "CPUExecutionProvider" in compare["reference"]["computed_by"]
    variants = compare["pytorch"]["variants"]
    exact = variants["fp32-ieee"]["max_abs_diff"]
    assert 0 <= exact[OUTPUT_MAP] < FLOAT32_TOLERANCE and 0 <= exact[OUTPUT_SCORE] < FLOAT32_TOLERANCE
    # bf16 autocast is measured too, and is visibly coarser than float32.
    coarse = variants["bf16-autocast"]["max_abs_diff"]
    assert exact[OUTPUT_MAP] < coarse[OUTPUT_MAP] < compare["reference"]["max_abs"][OUTPUT_MAP]

    # The reference files hold what they claim: onnxruntime on the exported model reproduces them.
    image, outputs = gpu_check.read_reference(work)
    assert image.shape == (32, 3, 32, 32) and outputs[OUTPUT_MAP].shape == (32, 1, 32, 32)
    session = ort.InferenceSession(str(work / compare["onnx"]["file"]), providers=["CPUExecutionProvider"])
    again_map, again_score = session.run([OUTPUT_MAP, OUTPUT_SCORE], {INPUT_NAME: image[:8]})
    assert np.abs(again_map - outputs[OUTPUT_MAP][:8]).max() < 1e-6
    assert np.abs(again_score - outputs[OUTPUT_SCORE][:8]).max() < 1e-6
    pytorch_map = np.fromfile(work / f"pytorch-fp32-ieee.{OUTPUT_MAP}.f32", dtype="<f4").reshape(32, 1, 32, 32)
    assert np.abs(pytorch_map - outputs[OUTPUT_MAP]).max() == pytest.approx(exact[OUTPUT_MAP])


def test_markdown_table(cpu_run: tuple[Path, Path, dict[str, Any]]) -> None:
    _, out, _ = cpu_run
    text = (out / gpu_check.MARKDOWN_NAME).read_text()
    lines = text.splitlines()
    header = (
        "| runtime | device | precision | ms/img b=1 | ms/img b=8 | ms/img b=32 | max abs diff to CPU: map | score |"
    )
    assert header in lines
    table = [line for line in lines if line.startswith("|")]
    columns = len(re.findall(r"(?<!\\)\|", header))
    assert all(len(re.findall(r"(?<!\\)\|", line)) == columns for line in table)
    assert any(line.startswith("| PyTorch | cpu | fp32, IEEE (as exported) |") for line in table)
    assert any(line.startswith("| PyTorch | cpu | bf16 autocast |") for line in table)
    assert any("TF32 is a CUDA feature" in line for line in table)
    assert any(line.startswith("| onnxruntime-node | webgpu | fp32 | skipped: not run") for line in table)
    assert "peak GPU memory: n/a (not a CUDA device: --device cpu)" in text
    assert "Training (bf16 autocast, batch 8, 2 iterations after 1 warm-ups)" in text


def test_a_failing_part_is_recorded_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> dict[str, Any]:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")

    monkeypatch.setitem(gpu_check.PART_FUNCTIONS, "train", broken)
    work, out = tmp_path / "work", tmp_path / "out"
    gpu_check.main([*FAST, "--batches", "1,2", "--work", str(work), "--out", str(out)])
    report = json.loads((out / gpu_check.JSON_NAME).read_text())
    assert report["train"]["status"] == "failed"
    assert report["train"]["error"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert report["inference_pytorch"]["status"] == "ok" and report["compare"]["status"] == "ok"
    assert "Training: failed: OutOfMemoryError: CUDA out of memory" in (out / gpu_check.MARKDOWN_NAME).read_text()
    assert "Traceback" in capsys.readouterr().err


def test_report_says_why_steps_left_no_result(tmp_path: Path, cpu_run: tuple[Path, Path, dict[str, Any]]) -> None:
    """What run-on-device.sh leaves when a step runs out of time, crashes or is skipped."""
    source, _, _ = cpu_run
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    shutil.copy(source / "part-compare.json", work)
    partial = {
        "machine": "test",
        "complete": False,
        "results": [
            {
                "provider": "cpu",
                "status": "ok",
                "sessionMs": 12.0,
                "batches": [
                    {"batchSize": 1, "msPerImage": 3.0, "maxAbsDiff": {OUTPUT_MAP: 1e-7, OUTPUT_SCORE: 0}},
                    {"batchSize": 8, "msPerImage": 2.0, "maxAbsDiff": {OUTPUT_MAP: "Infinity", OUTPUT_SCORE: 0}},
                ],
            }
        ],
    }
    (work / "node-cpu.json").write_text(json.dumps(partial))
    adapter = (
        "/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::"
        "Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == "
        "wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters"
    )
    webgpu = {"provider": "webgpu", "status": "failed", "reason": adapter, "batches": []}
    failed = {"complete": True, "results": [webgpu]}
    (work / "node-webgpu.json").write_text(json.dumps(failed))
    (work / "steps.tsv").write_text(
        "compare\t0\t40\t180\t\n"
        "train\t124\t150\t150\t\n"
        "infer\t1\t9\t120\t\n"
        "node-webgpu\t0\t3\t150\t\n"
        "node-tensorrt\t139\t3\t150\t\n"
        "node-cuda\tskip\t\t\tno model or CPU reference: the compare step did not finish\n"
        "node-cpu\t124\t150\t150\t\n"
    )
    providers = "webgpu,cuda,cpu,tensorrt"
    gpu_check.main(["--report-only", "--work", str(work), "--out", str(out), "--node-providers", providers])
    report = json.loads((out / gpu_check.JSON_NAME).read_text())
    assert report["train"] == {"status": "failed", "reason": "the train part timed out after its 150 s limit"}
    assert report["inference_pytorch"]["reason"] == "the infer part exited with status 1 before writing its result"
    node = {entry["provider"]: entry for entry in report["onnxruntime_node"]}
    assert node["webgpu"] == {**node["webgpu"], "status": "failed", "reason": adapter}  # the whole text in the JSON
    assert node["tensorrt"]["status"] == "failed" and "exited with status 139" in node["tensorrt"]["reason"]
    assert node["cuda"] == {
        "provider": "cuda",
        "status": "skipped",
        "reason": "no model or CPU reference: the compare step did not finish",
    }
    assert node["cpu"]["status"] == "ok" and node["cpu"]["complete"] is False
    assert node["cpu"]["note"] == "incomplete: the step timed out after its 150 s limit"
    tf32 = next(line for line in text_lines(out) if "TF32" in line)
    assert "skipped: TF32 is a CUDA feature" in tf32
    steps = ["compare", "train", "infer", "node-webgpu", "node-tensorrt", "node-cuda", "node-cpu"]
    assert [step["name"] for step in report["steps"]] == steps

    text = (out / gpu_check.MARKDOWN_NAME).read_text()
    assert "Training: failed: the train part timed out" in text
    cpu_row = next(line for line in text.splitlines() if line.startswith("| onnxruntime-node | cpu"))
    assert cpu_row.endswith("| fp32 | 3.00 | 2.00 | – | inf | 0.0e+00 |")  # the worst over the batches
    assert "incomplete: the step timed out after its 150 s limit" in cpu_row
    # The table keeps onnxruntime's message, not its source location.
    assert "| webgpu | fp32 | failed: Failed to get a WebGPU adapter: No supported adapters |" in text
    assert "train 150 s (time limit)" in text and "node-cuda (skipped)" in text and "infer 9 s (exit 1)" in text


def text_lines(out: Path) -> list[str]:
    return (out / gpu_check.MARKDOWN_NAME).read_text().splitlines()


def _node_bench() -> Path | None:
    """dist/bench/providers.bench.js when node is here and the build is newer than the sources."""
    compiled = ROOT / "dist" / "bench" / "providers.bench.js"
    sources = [ROOT / "bench" / "providers.bench.ts", ROOT / "bench" / "support.ts"]
    if shutil.which("node") is None or not compiled.is_file():
        return None
    if any(source.stat().st_mtime > compiled.stat().st_mtime for source in sources):
        return None
    return compiled


@pytest.mark.skipif(_node_bench() is None, reason="needs node and a current build (tsc -p tsconfig.build.json)")
def test_node_side_on_cpu_against_the_reference(tmp_path: Path, cpu_run: tuple[Path, Path, dict[str, Any]]) -> None:
    """providers.bench.js with the cpu provider reads the reference and matches it; cuda's files are absent."""
    source, _, _ = cpu_run
    work, out = tmp_path / "work", tmp_path / "out"
    shutil.copytree(source, work)
    bench = _node_bench()
    for provider in ("cpu", "cuda"):
        subprocess.run(
            ["node", str(bench), "--model", str(work / "ast-mfr.tiny.onnx"), "--providers", provider,
             "--batches", "1,8,32", "--runs", "2", "--reference", str(work / "reference.json"),
             "--json", str(work / f"node-{provider}.json")],
            check=True, cwd=ROOT, capture_output=True, timeout=60,
        )  # fmt: skip
    gpu_check.main(["--report-only", "--work", str(work), "--out", str(out), "--node-providers", "cpu,cuda"])
    report = json.loads((out / gpu_check.JSON_NAME).read_text())
    node = {entry["provider"]: entry for entry in report["onnxruntime_node"]}
    cpu = node["cpu"]
    assert cpu["status"] == "ok" and cpu["complete"] is True
    assert [row["batch"] for row in cpu["batches"]] == [1, 8, 32]
    for row in cpu["batches"]:
        assert row["ms_per_image"] > 0 and "CPUExecutionProvider" in row["compared_to"]
        assert max(row["max_abs_diff"][OUTPUT_MAP], row["max_abs_diff"][OUTPUT_SCORE]) < FLOAT32_TOLERANCE
    installed = any((ROOT / "node_modules" / "onnxruntime-node" / "bin").rglob("libonnxruntime_providers_cuda*"))
    if not installed:
        assert node["cuda"]["status"] == "skipped" and node["cuda"]["reason"].startswith("provider files absent")
