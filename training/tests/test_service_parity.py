"""Trainer half of the trainer-vs-service parity check (GitHub issue 13, part 4).

The service must reproduce the trainer's metrics on the same images and the same exported model
(docs/model-contract.md, "Pre-processing"). The check has two halves joined by one committed
golden file, ``test/fixtures/evaluation/trainer-parity.json``, so that ``npm test`` needs no
Python and pytest needs no service:

- here, the project's generator (``dist/scripts/generate-mvtec.js``, as ``training.demo`` runs
  it) writes a small category from the golden's arguments; its files must hash to the golden's
  digest, and ``training.evaluate`` on the exported model's checkpoint (``models/demo/model.pt``)
  must give the golden's metrics;
- ``test/evaluation/trainer-parity.test.ts`` writes the same category with the same generator
  (same digest), imports it into the running service, registers the same ONNX file and requires
  the same metrics from an evaluation with the service's default settings.

Regenerate the golden (after changing the demo model, the generator or the evaluation)::

    npx tsc -p tsconfig.build.json
    .venv-training/bin/python -m training.tests.test_service_parity --write
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from training.checkpoint import load_checkpoint
from training.data import scan_category
from training.evaluate import evaluate_samples, predict

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "test" / "fixtures" / "evaluation" / "trainer-parity.json"
GENERATOR = ROOT / "dist" / "scripts" / "generate-mvtec.js"

# What the golden is written from (--write); the tests read them back from the golden.
GENERATOR_ARGS = {
    "category": "weave",
    "texture": "weave",
    "seed": 2024,
    "size": 256,
    "train": 1,
    "testGood": 10,
    "testDefect": 2,
}
MODEL = {"onnx": "models/demo/model.onnx", "checkpoint": "models/demo/model.pt"}
# "Equal to four decimals": |trainer - golden| < 5e-5, as jest's toBeCloseTo(value, 4).
DECIMALS = 4
TOLERANCE = 0.5 * 10**-DECIMALS
# Per-image scores: PyTorch and onnxruntime agree to ~1e-6 on this model (models/demo/README.md).
SCORE_TOLERANCE = 1e-4


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def category_digest(category_dir: Path) -> tuple[str, int]:
    """sha256 over ``<relative path>\\t<sha256 of the file>\\n`` for every file, sorted by path."""
    files = sorted(p for p in category_dir.rglob("*") if p.is_file())
    lines = sorted(f"{p.relative_to(category_dir).as_posix()}\t{file_sha256(p)}\n" for p in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest(), len(files)


def generate_category(out_dir: Path, args: dict) -> Path:
    if shutil.which("node") is None or not GENERATOR.is_file():
        pytest.skip(f"needs node and {GENERATOR.relative_to(ROOT)}: run `npx tsc -p tsconfig.build.json` first")
    command = ["node", str(GENERATOR), "--out", str(out_dir), "--category", args["category"]]
    command += ["--texture", args["texture"], "--seed", str(args["seed"]), "--size", str(args["size"])]
    command += ["--train", str(args["train"]), "--test-good", str(args["testGood"])]
    command += ["--test-defect", str(args["testDefect"]), "--overwrite"]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out_dir / args["category"]


def trainer_metrics(category_dir: Path, checkpoint: Path) -> dict:
    """``training.evaluate`` on the category's test split: what ``python -m training.evaluate`` prints."""
    model, _ = load_checkpoint(checkpoint)
    samples = scan_category(category_dir).test
    metrics = evaluate_samples(model, samples)
    _, scores = predict(model, [s.path for s in samples])
    return {
        "image_auroc": metrics["image_auroc"],
        "pixel_auroc": metrics["pixel_auroc"],
        "aupro": metrics["aupro"],
        "image_auroc_per_defect": metrics["image_auroc_per_defect"],
        "test_images": metrics["test_images"],
        # Per test image (path in the category), for the jest half to say which scores moved.
        "scores": {s.path.relative_to(category_dir).as_posix(): float(v) for s, v in zip(samples, scores, strict=True)},
    }


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def category(golden: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_category(tmp_path_factory.mktemp("parity"), golden["generator"])


def test_the_generated_category_is_byte_identical_to_the_goldens(golden: dict, category: Path) -> None:
    # The jest half checks the same digest for the category it imports into the service.
    assert category_digest(category) == (golden["category_sha256"], golden["category_files"])


def test_the_model_files_are_the_goldens(golden: dict) -> None:
    assert file_sha256(ROOT / golden["model"]["onnx"]) == golden["model"]["onnx_sha256"]
    assert file_sha256(ROOT / golden["model"]["checkpoint"]) == golden["model"]["checkpoint_sha256"]


def test_training_evaluate_gives_the_golden_metrics(golden: dict, category: Path) -> None:
    actual = trainer_metrics(category, ROOT / golden["model"]["checkpoint"])
    expected = golden["trainer"]
    assert actual["test_images"] == expected["test_images"]
    for name in ("image_auroc", "pixel_auroc", "aupro"):
        assert actual[name] == pytest.approx(expected[name], abs=TOLERANCE), name
    assert actual["image_auroc_per_defect"].keys() == expected["image_auroc_per_defect"].keys()
    for defect, value in expected["image_auroc_per_defect"].items():
        assert actual["image_auroc_per_defect"][defect] == pytest.approx(value, abs=TOLERANCE), defect
    assert actual["scores"].keys() == expected["scores"].keys()
    for name, value in expected["scores"].items():
        assert actual["scores"][name] == pytest.approx(value, abs=SCORE_TOLERANCE), name


def write_golden() -> dict:
    """Generates the category, evaluates it with the trainer and writes the golden file."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        category_dir = generate_category(Path(directory), GENERATOR_ARGS)
        digest, count = category_digest(category_dir)
        metrics = trainer_metrics(category_dir, ROOT / MODEL["checkpoint"])
    golden = {
        "about": (
            "Trainer-vs-service parity (training/tests/test_service_parity.py, "
            "test/evaluation/trainer-parity.test.ts): the generated category, the exported model "
            "and training.evaluate's metrics on it. Written by "
            "`python -m training.tests.test_service_parity --write`; do not edit by hand."
        ),
        "generator": GENERATOR_ARGS,
        "category_sha256": digest,
        "category_files": count,
        "model": {
            **MODEL,
            "onnx_sha256": file_sha256(ROOT / MODEL["onnx"]),
            "checkpoint_sha256": file_sha256(ROOT / MODEL["checkpoint"]),
        },
        "decimals": DECIMALS,
        "score_tolerance": SCORE_TOLERANCE,
        "trainer": metrics,
    }
    GOLDEN.write_text(json.dumps(golden, indent=2) + "\n")
    return golden


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"regenerate {GOLDEN.relative_to(ROOT)}")
    if parser.parse_args().write:
        print(json.dumps(write_golden()["trainer"], indent=2))
    else:
        parser.print_help()
