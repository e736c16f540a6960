"""Parity check of an exported ONNX model against its PyTorch checkpoint.

Runs the file in onnxruntime and the checkpoint in PyTorch on the same random inputs (batch of
two by default, which also exercises the dynamic batch dimension), and fails when the anomaly
map or the score differ by more than 1e-4 absolute. It also checks the contract itself: opset,
input/output names, types and shapes, and the metadata keys.

Usage::

    python -m training.verify model.onnx [--checkpoint model.pt] [--device cuda]

The checkpoint defaults to the ``.pt`` file next to the ONNX file with the same stem. The PyTorch
side runs in full float32 (no TF32) on --device, the CPU by default; onnxruntime on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .checkpoint import load_checkpoint
from .contract import (
    BATCH_DIM,
    INPUT_NAME,
    JSON_METADATA_KEYS,
    METADATA_KEYS,
    NUMBER_METADATA_KEYS,
    OPSET,
    OUTPUT_MAP,
    OUTPUT_SCORE,
    PARITY_TOLERANCE,
)
from .model import ASTMFR
from .runtime import Runtime, add_device_argument, exits_on_usage_error, ieee_float32, module_device


class VerificationError(Exception):
    pass


@dataclass(frozen=True)
class ParityReport:
    batch: int
    max_map_diff: float
    max_score_diff: float

    @property
    def passed(self) -> bool:
        return self.max_map_diff <= PARITY_TOLERANCE and self.max_score_diff <= PARITY_TOLERANCE


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param if d.dim_param else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def contract_problems(proto: onnx.ModelProto, input_size: tuple[int, int]) -> list[str]:
    """Everything in the file that departs from docs/model-contract.md."""
    problems = []
    opsets = {o.domain: o.version for o in proto.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != OPSET:
        problems.append(f"opset is {opsets}, expected {OPSET}")
    graph = proto.graph
    h, w = input_size
    expected_inputs = [(INPUT_NAME, [BATCH_DIM, 3, h, w])]
    expected_outputs = [(OUTPUT_MAP, [BATCH_DIM, 1, h, w]), (OUTPUT_SCORE, [BATCH_DIM])]
    for kind, actual, expected in (("input", graph.input, expected_inputs), ("output", graph.output, expected_outputs)):
        described = [(v.name, _dims(v), v.type.tensor_type.elem_type) for v in actual]
        wanted = [(name, dims, onnx.TensorProto.FLOAT) for name, dims in expected]
        if described != wanted:
            problems.append(f"graph {kind}s are {described}, expected {wanted}")
    props = {p.key: p.value for p in proto.metadata_props}
    for key in METADATA_KEYS:
        if key not in props:
            problems.append(f"metadata key {key!r} is missing")
    for key in JSON_METADATA_KEYS:
        if key in props:
            try:
                json.loads(props[key])
            except json.JSONDecodeError:
                problems.append(f"metadata {key!r} is not JSON: {props[key]!r}")
    for key in NUMBER_METADATA_KEYS:
        if key in props:
            try:
                float(props[key])
            except ValueError:
                problems.append(f"metadata {key!r} is not a number: {props[key]!r}")
    return problems


def parity(onnx_path: Path, model: ASTMFR, batch: int = 2, seed: int = 0) -> ParityReport:
    """Maximum absolute differences between onnxruntime and PyTorch (on the model's device) on
    seeded random inputs."""
    h, w = model.config.input_size
    image = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad(), ieee_float32():
        torch_map, torch_score = (t.cpu() for t in model.eval()(image.to(module_device(model))))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_map, onnx_score = session.run([OUTPUT_MAP, OUTPUT_SCORE], {INPUT_NAME: image.numpy()})
    if onnx_map.shape != tuple(torch_map.shape) or onnx_score.shape != tuple(torch_score.shape):
        raise VerificationError(
            f"output shapes differ: onnx {onnx_map.shape}/{onnx_score.shape}, "
            f"torch {tuple(torch_map.shape)}/{tuple(torch_score.shape)}"
        )
    return ParityReport(
        batch=batch,
        max_map_diff=float(np.abs(onnx_map - torch_map.numpy()).max()),
        max_score_diff=float(np.abs(onnx_score - torch_score.numpy()).max()),
    )


def verify(
    onnx_path: Path, checkpoint: Path | None = None, batch: int = 2, device: torch.device = torch.device("cpu")
) -> ParityReport:
    """Check the contract and PyTorch parity; raises :class:`VerificationError` on any failure."""
    checkpoint = checkpoint or onnx_path.with_suffix(".pt")
    if not checkpoint.is_file():
        raise VerificationError(f"checkpoint {checkpoint} not found (pass --checkpoint)")
    model, _ = load_checkpoint(checkpoint)
    model.to(device)
    problems = contract_problems(onnx.load(str(onnx_path), load_external_data=False), model.config.input_size)
    if problems:
        raise VerificationError("; ".join(problems))
    report = parity(onnx_path, model, batch)
    if not report.passed:
        raise VerificationError(
            f"onnxruntime and PyTorch differ by {report.max_map_diff:.3g} (map) / "
            f"{report.max_score_diff:.3g} (score), tolerance {PARITY_TOLERANCE}"
        )
    return report


def verify_or_exit(
    onnx_path: Path, checkpoint: Path | None = None, batch: int = 2, device: torch.device = torch.device("cpu")
) -> ParityReport:
    try:
        report = verify(onnx_path, checkpoint, batch, device)
    except VerificationError as error:
        print(f"VERIFY FAILED {onnx_path}: {error}", file=sys.stderr)
        sys.exit(1)
    print(
        f"verify ok {onnx_path}: batch {report.batch}, max |diff| map {report.max_map_diff:.2e}, "
        f"score {report.max_score_diff:.2e} (tolerance {PARITY_TOLERANCE})"
    )
    return report


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="default: <onnx without suffix>.pt")
    parser.add_argument("--batch", type=int, default=2)
    add_device_argument(parser, default="cpu", note="; where the PyTorch side of the parity check runs")
    args = parser.parse_args(argv)
    verify_or_exit(args.onnx, args.checkpoint, args.batch, Runtime.select(args.device).device)


if __name__ == "__main__":
    main()
