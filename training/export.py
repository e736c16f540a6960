"""ONNX export of a trained AST-MFR checkpoint, written node by node with the ``onnx`` package.

The graph is built from the module tree and its weights, not traced through torch's exporters,
so it depends only on the public ``onnx`` API and on this package's own modules. It implements
``ASTMFR.forward`` exactly: BatchNorm is folded into the preceding convolution (in float64), the
distances use ReduceL2/Max/Div like ``losses.normalize_channels``, and the post-processing uses the
same reflect-index Gathers and separable convolutions as ``model.AnomalyMapHead``.

Contract (docs/model-contract.md): input ``image`` float32 [N, 3, H, W]; outputs
``anomaly_map`` float32 [N, 1, H, W] and ``score`` float32 [N]; opset 17; metadata_props.

Usage::

    python -m training.export --checkpoint training/out/run/model.pt [--out training/out/run/model.onnx]

The graph is always built from the checkpoint's float32 weights on the CPU, whatever --device
says (so that the file does not depend on the machine); --device only chooses where the PyTorch
side of the parity check (``training.verify``), run automatically after writing the file, runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from .backbones import Bottleneck, ResNetFeatures
from .checkpoint import CheckpointInfo, load_checkpoint
from .contract import BATCH_DIM, FORMAT_VERSION, INPUT_NAME, OPSET, OUTPUT_MAP, OUTPUT_SCORE
from .data import IMAGENET_MEAN, IMAGENET_STD
from .losses import NORM_EPS
from .model import ASTMFR, MFR, AnomalyMapHead
from .runtime import Runtime, add_device_argument, exits_on_usage_error
from .verify import verify_or_exit


class GraphBuilder:
    """Collects nodes and initializers; every tensor gets a unique, readable name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._used: set[str] = set()

    def reserve(self, *names: str) -> None:
        """Keep graph input/output names free for the nodes that define them."""
        self._used.update(names)

    def _unique(self, hint: str) -> str:
        name, suffix = hint, 1
        while name in self._used:
            suffix += 1
            name = f"{hint}_{suffix}"
        self._used.add(name)
        return name

    def constant(self, hint: str, array: np.ndarray) -> str:
        name = self._unique(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str, **attrs: object) -> str:
        output = self._unique(hint)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attrs))
        return output


def folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[np.ndarray, np.ndarray]:
    """Convolution weights with an eval-mode BatchNorm folded in, computed in float64."""
    weight = conv.weight.detach().double().numpy()
    bias = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(weight.shape[0], np.float64)
    if bn is not None:
        scale = bn.weight.detach().double().numpy() / np.sqrt(bn.running_var.detach().double().numpy() + bn.eps)
        weight = weight * scale[:, None, None, None]
        bias = (bias - bn.running_mean.detach().double().numpy()) * scale + bn.bias.detach().double().numpy()
    return weight.astype(np.float32), bias.astype(np.float32)


def emit_conv(g: GraphBuilder, x: str, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, name: str) -> str:
    weight, bias = folded_conv(conv, bn)
    pad_h, pad_w = conv.padding  # type: ignore[misc]
    return g.op(
        "Conv",
        [x, g.constant(f"{name}.weight", weight), g.constant(f"{name}.bias", bias)],
        name,
        kernel_shape=list(conv.kernel_size),
        strides=list(conv.stride),
        pads=[pad_h, pad_w, pad_h, pad_w],
        dilations=list(conv.dilation),
        group=conv.groups,
    )


def emit_bottleneck(g: GraphBuilder, x: str, block: Bottleneck, name: str) -> str:
    if block.downsample is None:
        identity = x
    else:
        identity = emit_conv(g, x, block.downsample[0], block.downsample[1], f"{name}.downsample")
    out = g.op("Relu", [emit_conv(g, x, block.conv1, block.bn1, f"{name}.conv1")], f"{name}.relu1")
    out = g.op("Relu", [emit_conv(g, out, block.conv2, block.bn2, f"{name}.conv2")], f"{name}.relu2")
    out = emit_conv(g, out, block.conv3, block.bn3, f"{name}.conv3")
    return g.op("Relu", [g.op("Add", [out, identity], f"{name}.add")], f"{name}.out")


def emit_backbone(g: GraphBuilder, x: str, net: ResNetFeatures, name: str) -> list[str]:
    out = g.op("Relu", [emit_conv(g, x, net.conv1, net.bn1, f"{name}.conv1")], f"{name}.relu")
    out = g.op("MaxPool", [out], f"{name}.maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    features = []
    for stage_index, stage in enumerate((net.layer1, net.layer2, net.layer3), start=1):
        for block_index, block in enumerate(stage):
            out = emit_bottleneck(g, out, block, f"{name}.layer{stage_index}.{block_index}")
        features.append(out)
    return features


def emit_mfr(g: GraphBuilder, x: str, module: nn.Module, name: str) -> str:
    """Evaluation-mode MFR: the feature-generation block without masking (or nothing)."""
    if not isinstance(module, MFR):
        return x
    first, _, second = module.generation
    out = g.op("Relu", [emit_conv(g, x, first, None, f"{name}.generation.0")], f"{name}.generation.relu")
    return emit_conv(g, out, second, None, f"{name}.generation.2")


def emit_normalize(g: GraphBuilder, x: str, eps: str, name: str) -> str:
    norm = g.op("ReduceL2", [x], f"{name}.norm", axes=[1], keepdims=1)
    return g.op("Div", [x, g.op("Max", [norm, eps], f"{name}.norm_clamped")], f"{name}.unit")


def emit_distance(g: GraphBuilder, student: str, teacher: str, consts: dict[str, str], name: str) -> str:
    """``D_cos + D_L2`` of one stage, ``[N, 1, h, w]``."""
    s = emit_normalize(g, student, consts["eps"], f"{name}.student")
    t = emit_normalize(g, teacher, consts["eps"], f"{name}.teacher")
    dot = g.op("ReduceSum", [g.op("Mul", [s, t], f"{name}.prod"), consts["axis1"]], f"{name}.dot", keepdims=1)
    d_cos = g.op("Sub", [consts["one"], dot], f"{name}.d_cos")
    diff = g.op("Sub", [s, t], f"{name}.diff")
    squared = g.op("ReduceSum", [g.op("Mul", [diff, diff], f"{name}.sq"), consts["axis1"]], f"{name}.sqsum", keepdims=1)
    d_l2 = g.op("Mul", [consts["half"], squared], f"{name}.d_l2")
    return g.op("Add", [d_cos, d_l2], f"{name}.map")


def emit_head(g: GraphBuilder, stage_maps: list[str], head: AnomalyMapHead) -> tuple[str, str]:
    height, width = head.input_size
    batch_and_channel = g.op(
        "Slice",
        [
            g.op("Shape", [stage_maps[0]], "head.map_shape"),
            g.constant("head.slice_start", np.array([0], np.int64)),
            g.constant("head.slice_end", np.array([2], np.int64)),
        ],
        "head.batch_and_channel",
    )
    sizes = g.op(
        "Concat",
        [batch_and_channel, g.constant("head.spatial_size", np.array([height, width], np.int64))],
        "head.sizes",
        axis=0,
    )
    upsampled = [
        g.op(
            "Resize",
            [m, "", "", sizes],
            f"head.upsample{i}",
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        )
        for i, m in enumerate(stage_maps, start=1)
    ]
    amap = upsampled[0]
    for i, other in enumerate(upsampled[1:], start=2):
        amap = g.op("Add", [amap, other], f"head.sum{i}")
    for name in head.filters:
        kernel = getattr(head, name).numpy().astype(np.float32)
        rows = g.constant(f"head.{name}.rows", getattr(head, f"{name}_rows").numpy())
        cols = g.constant(f"head.{name}.cols", getattr(head, f"{name}_cols").numpy())
        amap = g.op("Gather", [amap, rows], f"head.{name}.pad_rows", axis=2)
        amap = g.op("Conv", [amap, g.constant(f"head.{name}.kernel_v", kernel.reshape(1, 1, -1, 1))], f"head.{name}.v")
        amap = g.op("Gather", [amap, cols], f"head.{name}.pad_cols", axis=3)
        amap = g.op("Conv", [amap, g.constant(f"head.{name}.kernel_h", kernel.reshape(1, 1, 1, -1))], f"head.{name}.h")
    score = g.op("ReduceMax", [amap], "head.max", axes=[1, 2, 3], keepdims=0)
    return amap, score


def build_graph(model: ASTMFR) -> onnx.GraphProto:
    model.eval()
    g = GraphBuilder()
    g.reserve(INPUT_NAME, OUTPUT_MAP, OUTPUT_SCORE)
    consts = {
        "eps": g.constant("const.norm_eps", np.array(NORM_EPS, np.float32)),
        "one": g.constant("const.one", np.array(1.0, np.float32)),
        "half": g.constant("const.half", np.array(0.5, np.float32)),
        "axis1": g.constant("const.axis1", np.array([1], np.int64)),
    }
    teacher = emit_backbone(g, INPUT_NAME, model.teacher, "teacher")
    student = emit_backbone(g, INPUT_NAME, model.student, "student")
    stage_maps = []
    for i, (s, t, mfr) in enumerate(zip(student, teacher, model.mfr, strict=True), start=1):
        regenerated = emit_mfr(g, s, mfr, f"mfr.{i - 1}")
        stage_maps.append(emit_distance(g, regenerated, t, consts, f"stage{i}"))
    amap, score = emit_head(g, stage_maps, model.head)
    g.nodes.append(helper.make_node("Identity", [amap], [OUTPUT_MAP], name=OUTPUT_MAP))
    g.nodes.append(helper.make_node("Identity", [score], [OUTPUT_SCORE], name=OUTPUT_SCORE))

    height, width = model.config.input_size
    return helper.make_graph(
        g.nodes,
        "ast_mfr",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, 3, height, width])],
        [
            helper.make_tensor_value_info(OUTPUT_MAP, TensorProto.FLOAT, [BATCH_DIM, 1, height, width]),
            helper.make_tensor_value_info(OUTPUT_SCORE, TensorProto.FLOAT, [BATCH_DIM]),
        ],
        initializer=g.initializers,
    )


def metadata(model: ASTMFR, info: CheckpointInfo) -> dict[str, str]:
    """The ``metadata_props`` of the contract; every value a string, JSON where structured."""
    config = model.config
    return {
        "format_version": FORMAT_VERSION,
        "architecture": json.dumps(config.architecture()),
        "input_size": json.dumps(list(config.input_size)),
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
        "category": info.category,
        "mask_rate": repr(float(config.mask_rate)),
        "training_data": json.dumps(info.training_data),
        "score_stats": json.dumps(info.calibration.score_stats),
        "map_stats": json.dumps(info.calibration.map_stats),
        "proposed_threshold": repr(float(info.calibration.proposed_threshold)),
    }


def build_onnx(model: ASTMFR, info: CheckpointInfo) -> onnx.ModelProto:
    proto = helper.make_model(
        build_graph(model),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="ast-mfr-trainer",
        doc_string="AST-MFR anomaly detection (Gu, Li, Liu 2024); see docs/model-contract.md",
    )
    proto.ir_version = 8  # the IR version of opset 17, readable by every onnxruntime >= 1.13
    helper.set_model_props(proto, metadata(model, info))
    return proto


def export(model: ASTMFR, info: CheckpointInfo, path: Path) -> Path:
    """Write the ONNX file and check it with ``onnx.checker`` (full check, shape inference)."""
    proto = build_onnx(model, info)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


@exits_on_usage_error
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint written by training.train")
    parser.add_argument("--out", type=Path, help="ONNX file to write (default: next to the checkpoint)")
    add_device_argument(
        parser,
        default="cpu",
        note="; only for the PyTorch side of the parity check: the ONNX graph is always built from "
        "the checkpoint's float32 weights on the CPU",
    )
    args = parser.parse_args(argv)
    device = Runtime.select(args.device).device
    out = args.out or args.checkpoint.with_suffix(".onnx")
    model, info = load_checkpoint(args.checkpoint)
    export(model, info, out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    verify_or_exit(out, args.checkpoint, device=device)


if __name__ == "__main__":
    main()
