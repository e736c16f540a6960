"""Where and how the commands run: device choice, mixed precision, RNG state, logging.

Every command (train, evaluate, export, verify, bench_gpu) takes ``--device auto|cpu|cuda|cuda:N``
through :func:`add_device_argument` and resolves it with :meth:`Runtime.select`. A request the
machine cannot honour raises :class:`UsageError`; commands wrapped in :func:`exits_on_usage_error`
print it as one line and exit with status 2, as argparse does for bad arguments.
"""

from __future__ import annotations

import argparse
import functools
import logging
import random
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"

P = ParamSpec("P")
R = TypeVar("R")


class UsageError(Exception):
    """A request that cannot be honoured here (no such device, precision unsupported on it, a
    checkpoint that does not fit the run): reported as one line, exit status 2."""


def exits_on_usage_error(main: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return main(*args, **kwargs)
        except UsageError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    return run


def device_spec(text: str) -> str:
    """argparse type of ``--device``: checks the spelling only; availability is checked later."""
    if text in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"expected {DEVICE_HELP}; got {text!r}")


def add_device_argument(parser: argparse.ArgumentParser, default: str = "auto", note: str = "") -> None:
    parser.add_argument("--device", type=device_spec, default=default, help=f"{DEVICE_HELP} (default {default}){note}")


def cuda_build() -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__}, built without CUDA"
    return f"torch {torch.__version__} with CUDA {torch.version.cuda}, no device visible"


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU; ``cuda`` -> the current one."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: no CUDA device is available ({cuda_build()})")
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= count:
        raise UsageError(f"--device {spec}: only {count} CUDA device(s) are visible (cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", index)


def check_precision(device: torch.device, precision: str) -> None:
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise UsageError(
            "--precision fp16 needs a CUDA device (float16 with loss scaling); on the CPU use bf16 or fp32"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise UsageError(f"--precision bf16: {name} has no bfloat16 support; use fp16 or fp32")


@dataclass(frozen=True)
class Runtime:
    """One device and the precision the networks run in (autocast for bf16/fp16; the weights,
    the optimiser and the loss stay float32)."""

    device: torch.device
    precision: str = "fp32"

    @classmethod
    def select(cls, device: str = "auto", precision: str = "fp32") -> Runtime:
        resolved = resolve_device(device)
        check_precision(resolved, precision)
        if resolved.type == "cuda":
            torch.backends.cudnn.benchmark = True  # input sizes are fixed: let cuDNN pick its fastest kernels
        return cls(resolved, precision)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> AbstractContextManager[Any]:
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision])

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16 (its narrow range underflows small gradients); a no-op otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def to_device(self, batch: Tensor) -> Tensor:
        return batch.to(self.device, non_blocking=True)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.is_cuda else "CPU"
        return f"{self.device} ({name}), {self.precision}"

    def rng_state(self) -> dict[str, Any]:
        """The global generators of Python, numpy and torch (and this CUDA device), picklable
        with ``torch.load(weights_only=True)``."""
        kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
        state: dict[str, Any] = {
            "python": random.getstate(),
            "numpy": (kind, keys.tolist(), pos, has_gauss, gauss),
            "torch": torch.get_rng_state(),
        }
        if self.is_cuda:
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore_rng_state(self, state: dict[str, Any]) -> None:
        random.setstate(state["python"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        torch.set_rng_state(state["torch"])
        if self.is_cuda and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)


CPU_FP32 = Runtime(torch.device("cpu"))


def module_device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@contextmanager
def ieee_float32() -> Iterator[None]:
    """Full float32 arithmetic on CUDA: its convolutions use TF32 by default, whose ~1e-3 relative
    error would break the 1e-4 parity with onnxruntime on the CPU."""
    conv, matmul = torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    torch.backends.cudnn.conv.fp32_precision = torch.backends.cuda.matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = conv, matmul


def configure_logging(level: int = logging.INFO) -> None:
    """Log the ``training`` package's records to stderr. Replaces the handler of an earlier call,
    so that commands run repeatedly in one process (tests) write to the current ``sys.stderr``."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("training")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
