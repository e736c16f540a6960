"""MFR masking, the loss, the post-processing and the assembled model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from training.losses import ast_mfr_loss, pixel_distances
from training.model import ASTMFR, MFR, AnomalyMapHead, ModelConfig, reflect_indices

from .conftest import TINY_CONFIG


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.7])
def test_mfr_masks_spatial_positions_at_the_requested_rate_in_training(rate: float) -> None:
    torch.manual_seed(0)
    mfr = MFR(channels=8, mask_rate=rate).train()
    x = torch.rand(3, 8, 64, 64) + 1.0  # strictly positive, so zeros come from the mask only
    masked = mfr.mask(x)
    zero = masked == 0
    # One spatial mask shared by all channels and batch items (Algorithm 1: rand(h, w)).
    assert torch.equal(zero, zero[:1, :1].expand_as(zero))
    assert zero[0, 0].float().mean().item() == pytest.approx(rate, abs=0.03)
    assert torch.equal(masked[~zero], x[~zero])


def test_mfr_does_not_mask_in_eval_mode_but_keeps_the_generation_block() -> None:
    torch.manual_seed(0)
    mfr = MFR(channels=8, mask_rate=0.5)
    x = torch.randn(2, 8, 16, 16)
    mfr.eval()
    assert torch.equal(mfr.mask(x), x)
    with torch.no_grad():
        assert torch.equal(mfr(x), mfr.generation(x))
        mfr.train()
        assert not torch.allclose(mfr(x), mfr.generation(x))


def test_mfr_with_zero_rate_never_masks() -> None:
    x = torch.rand(1, 4, 32, 32) + 1.0
    assert torch.equal(MFR(4, 0.0).train().mask(x), x)


def test_mfr_stages_can_be_switched_off() -> None:
    model = ASTMFR(
        ModelConfig(width_divisor=16, blocks=(1, 1, 1), input_size=(32, 32), mfr_stages=(False, True, False))
    )
    assert [type(m).__name__ for m in model.mfr] == ["Identity", "MFR", "Identity"]
    assert not any(k.startswith(("mfr.0.", "mfr.2.")) for k in model.state_dict())


def direct_loss(students: list[np.ndarray], teachers: list[np.ndarray], alpha: float) -> float:
    """Eq. 1-5 written out pixel by pixel in float64."""
    total = 0.0
    for s, t in zip(students, teachers, strict=True):
        n, _, h, w = s.shape
        per_sample = []
        for b in range(n):
            d_cos = d_l2 = 0.0
            for i in range(h):
                for j in range(w):
                    a, c = s[b, :, i, j], t[b, :, i, j]
                    d_cos += 1 - a @ c / (np.linalg.norm(a) * np.linalg.norm(c))
                    d_l2 += 0.5 * np.sum((a / np.linalg.norm(a) - c / np.linalg.norm(c)) ** 2)
            per_sample.append((d_cos + alpha * d_l2) / (h * w))
        total += float(np.mean(per_sample))
    return total


@pytest.mark.parametrize("alpha", [1.0, 0.25])
def test_loss_equals_direct_computation(alpha: float) -> None:
    gen = torch.Generator().manual_seed(1)
    shapes = [(2, 6, 5, 4), (2, 12, 3, 2), (2, 24, 2, 1)]
    students = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    teachers = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    loss = ast_mfr_loss(students, teachers, alpha).item()
    assert loss == pytest.approx(
        direct_loss([s.numpy() for s in students], [t.numpy() for t in teachers], alpha), rel=1e-10
    )


def test_distances_are_zero_for_aligned_features_and_scale_invariant() -> None:
    t = torch.rand(1, 8, 4, 4) + 0.1
    d_cos, d_l2 = pixel_distances(3.0 * t, t)
    assert d_cos.abs().max() < 1e-6 and d_l2.abs().max() < 1e-6
    d_cos, d_l2 = pixel_distances(-t, t)
    torch.testing.assert_close(d_cos, torch.full_like(d_cos, 2.0))
    torch.testing.assert_close(d_l2, torch.full_like(d_l2, 2.0))


def test_loss_gradient_flows_only_to_the_student() -> None:
    model = ASTMFR(TINY_CONFIG).train()
    student, teacher = model.features(torch.randn(2, 3, 32, 32))
    ast_mfr_loss(student, teacher).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.trainable_parameters())
    assert not model.teacher.training and model.student.training


@pytest.mark.parametrize("length,pad", [(10, 3), (5, 12), (1, 2)])
def test_reflect_indices_match_numpy_symmetric_padding(length: int, pad: int) -> None:
    values = np.arange(length)
    assert np.array_equal(reflect_indices(length, pad), np.pad(values, pad, mode="symmetric"))


@pytest.mark.parametrize("sigma,kernel", [(4.0, 5), (2.0, 3)])
def test_smoothing_equals_scipy_gaussian_then_uniform_filter(sigma: float, kernel: int) -> None:
    head = AnomalyMapHead((48, 80), sigma, kernel)
    maps = torch.rand(2, 1, 48, 80, generator=torch.Generator().manual_seed(2), dtype=torch.float64).float()
    smoothed = head.smooth(maps)
    for b in range(2):
        expected = ndimage.uniform_filter(
            ndimage.gaussian_filter(maps[b, 0].double().numpy(), sigma=sigma, mode="reflect"),
            size=kernel,
            mode="reflect",
        )
        np.testing.assert_allclose(smoothed[b, 0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_head_upsamples_sums_and_takes_the_maximum() -> None:
    head = AnomalyMapHead((32, 32), 4.0, 5)
    coarse = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
    coarse[0][0, 0, 1, 6] = 1.0
    coarse[2][0, 0, 1, 1] = 0.05
    amap, score = head(coarse)
    expected = sum(
        torch.nn.functional.interpolate(m, size=(32, 32), mode="bilinear", align_corners=False) for m in coarse
    )
    torch.testing.assert_close(amap, head.smooth(expected))
    assert score.shape == (1,) and score.item() == pytest.approx(amap.max().item())
    peak = np.unravel_index(amap[0, 0].argmax().item(), (32, 32))
    assert peak[0] < 16 and peak[1] > 16  # the strongest coarse cell lies top-right


def test_model_outputs_and_input_size_check(tiny_model: ASTMFR) -> None:
    tiny_model.eval()
    with torch.no_grad():
        amap, score = tiny_model(torch.randn(3, 3, 32, 32))
    assert amap.shape == (3, 1, 32, 32) and score.shape == (3,)
    torch.testing.assert_close(score, amap.amax(dim=(1, 2, 3)))
    student, teacher = tiny_model.features(torch.randn(1, 3, 32, 32))
    assert (
        [tuple(f.shape) for f in student]
        == [tuple(f.shape) for f in teacher]
        == [(1, 16, 8, 8), (1, 32, 4, 4), (1, 64, 2, 2)]
    )
    with pytest.raises(ValueError, match="input of size"):
        tiny_model(torch.randn(1, 3, 64, 64))


def test_config_round_trip_and_validation() -> None:
    config = ModelConfig(
        student="resnet50",
        width_divisor=4,
        blocks=(2, 2, 2),
        mfr_stages=(True, False, True),
        mask_rate=0.3,
        input_size=(64, 96),
    )
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.architecture()["feature_strides"] == [4, 8, 16]
    for bad in ({"mask_rate": 1.0}, {"input_size": (100, 100)}, {"avg_pool_kernel": 4}, {"teacher": "vit"}):
        with pytest.raises(ValueError):
            ModelConfig(**bad)  # type: ignore[arg-type]
