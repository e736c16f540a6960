"""MVTec layout reading, mask pairing and pre-processing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.data import ImageDataset, load_mask, preprocess, scan_category, split_holdout


def test_scan_pairs_masks_by_stem_not_by_listing_order(tiny_category: Path) -> None:
    category = scan_category(tiny_category)
    assert category.name == "stripes" and len(category.train) == 24
    defective = {s.path.name: s for s in category.test if s.is_anomalous}
    assert sorted(defective) == ["1.png", "10.png"]
    # Listing order differs: 1.png < 10.png but 10_mask.png < 1_mask.png.
    assert sorted(p.name for p in (tiny_category / "ground_truth" / "blob").iterdir()) == ["10_mask.png", "1_mask.png"]
    for name, sample in defective.items():
        assert sample.mask_path is not None and sample.mask_path.name == name.replace(".png", "_mask.png")
        mask = load_mask(sample.mask_path, (40, 40))
        rgb = np.asarray(Image.open(sample.path).convert("RGB")).astype(int)
        red = (rgb[..., 0] > 150) & (rgb[..., 1] < 50)
        assert np.array_equal(mask, red)
    assert category.defect_types == ["blob"]
    assert [s.defect for s in category.test].count("good") == 2


def test_missing_mask_is_an_error(tiny_category: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_category, copy)
    (copy / "ground_truth" / "blob" / "10_mask.png").unlink()
    with pytest.raises(FileNotFoundError, match="10_mask"):
        scan_category(copy)


def test_preprocess_is_bilinear_resize_then_imagenet_normalisation(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (50, 70, 4), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    tensor = preprocess(path, (32, 48))
    resized = np.asarray(Image.fromarray(rgba[..., :3]).resize((48, 32), Image.Resampling.BILINEAR), dtype=np.float64)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = ((resized / 255 - mean) / std).transpose(2, 0, 1).astype(np.float32)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 32, 48)
    # Exact on purpose: the same Pillow resize and the same float64 formula, so the same bits
    # on any machine; the TypeScript pre-processing is held to these bits too.
    np.testing.assert_array_equal(tensor.numpy(), expected)


def test_grayscale_images_become_rgb(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.fromarray(np.full((16, 16), 128, dtype=np.uint8), mode="L").save(path)
    tensor = preprocess(path, (16, 16))
    expected = (128 / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(tensor[:, 0, 0].numpy(), expected, rtol=1e-6)


def test_holdout_split_is_deterministic_disjoint_and_complete(tiny_category: Path) -> None:
    paths = scan_category(tiny_category).train
    kept, held = split_holdout(paths, 0.25, seed=5)
    assert (kept, held) == split_holdout(paths, 0.25, seed=5)
    assert len(held) == 6 and not set(kept) & set(held) and sorted(kept + held) == paths
    assert split_holdout(paths, 0.25, seed=6)[1] != held
    with pytest.raises(ValueError):
        split_holdout(paths[:2], 0.5, seed=0)


def test_augmentations_preserve_the_image_content(tiny_category: Path) -> None:
    paths = scan_category(tiny_category).train[:1]
    plain = ImageDataset(paths, (32, 32))[0]
    torch.manual_seed(0)
    variants = [ImageDataset(paths, (32, 32), ("hflip", "vflip", "rot90"))[0] for _ in range(12)]
    candidates = [
        torch.rot90(p, k, dims=(1, 2))
        for p in (plain, plain.flip(2), plain.flip(1), plain.flip(1).flip(2))
        for k in range(4)
    ]
    assert all(any(torch.equal(v, c) for c in candidates) for v in variants)
    assert any(not torch.equal(v, plain) for v in variants)
    with pytest.raises(ValueError, match="unknown augmentations"):
        ImageDataset(paths, (32, 32), ("shear",))
