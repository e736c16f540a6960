"""Regenerates ``torchvision_resnets.json`` from torchvision itself (a one-off developer tool).

torchvision is not a dependency of the trainer (its wheel on the local mirror does not import
against the pinned torch because its C++ operators fail to register). Its pure-Python model
definitions still work once the operator meta-registrations are stubbed out:

    pip install --no-deps --target /tmp/tv torchvision==0.28.0
    PYTHONPATH=/tmp/tv .venv-training/bin/python training/tests/data/generate_torchvision_reference.py
"""

from __future__ import annotations

import json
import sys
import types

import torch

sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
import torchvision  # noqa: E402
from torchvision import models  # noqa: E402

from training.tests.torchvision_reference import (  # noqa: E402
    REFERENCE_FILE,
    reference_input,
    stage_samples,
    synthetic_weights,
)


def main() -> None:
    reference: dict = {"torchvision": torchvision.__version__, "torch": torch.__version__, "models": {}}
    for name in ("wide_resnet50_2", "resnext50_32x4d", "resnet50"):
        net = getattr(models, name)().eval()
        shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
        net.load_state_dict(synthetic_weights(shapes))
        with torch.no_grad():
            x = net.maxpool(net.relu(net.bn1(net.conv1(reference_input()))))
            f1 = net.layer1(x)
            f2 = net.layer2(f1)
            f3 = net.layer3(f2)
        reference["models"][name] = {
            "state_dict_shapes": shapes,
            "total_parameters": sum(p.numel() for p in net.parameters()),
            "stage_outputs": stage_samples([f1, f2, f3]),
        }
    REFERENCE_FILE.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {REFERENCE_FILE}")


if __name__ == "__main__":
    main()
