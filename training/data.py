"""MVTec AD layout reader and the pre-processing shared with the service (docs/model-contract.md).

Layout of one category directory::

    <category>/train/good/*.png
    <category>/test/good/*.png
    <category>/test/<defect>/<stem>.png
    <category>/ground_truth/<defect>/<stem>_mask.png     (single channel, 0 / 255)

Masks are paired with test images by file stem, never by listing order.

Pre-processing (the service re-implements it with sharp): decode, convert to 8-bit RGB (alpha
dropped), resize to the model input size with PIL's BILINEAR filter (a triangle filter whose
support widens with the downscale factor, i.e. antialiased) rounding back to uint8, then
``(v / 255 - mean) / std`` per channel computed in float64 and stored as float32, CHW.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
AUGMENTATIONS = ("hflip", "vflip", "rot90")


def load_rgb(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Decode ``path`` as 8-bit RGB resized to ``size`` = (H, W); returns uint8 ``[H, W, 3]``."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        if rgb.size != (size[1], size[0]):
            rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).copy()


def normalize(rgb: np.ndarray) -> Tensor:
    """uint8 ``[H, W, 3]`` -> float32 ``[3, H, W]`` with ImageNet mean/std."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64)
    std = np.asarray(IMAGENET_STD, dtype=np.float64)
    chw = ((rgb.astype(np.float64) / 255.0 - mean) / std).astype(np.float32).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(chw))


def preprocess(path: Path, size: tuple[int, int]) -> Tensor:
    """The full pre-processing of one image file: ``[3, H, W]`` float32."""
    return normalize(load_rgb(path, size))


def load_mask(path: Path | None, size: tuple[int, int]) -> np.ndarray:
    """Ground-truth mask resized (nearest) to ``size``; an all-false mask for ``None``."""
    if path is None:
        return np.zeros(size, dtype=bool)
    with Image.open(path) as image:
        gray = image.convert("L")
        if gray.size != (size[1], size[0]):
            gray = gray.resize((size[1], size[0]), Image.Resampling.NEAREST)
        return np.asarray(gray) > 127


def list_images(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class TestSample:
    path: Path
    defect: str  # "good" for normal images
    mask_path: Path | None

    @property
    def is_anomalous(self) -> bool:
        return self.defect != "good"


@dataclass(frozen=True)
class Category:
    root: Path
    name: str
    train: list[Path]
    test: list[TestSample]

    @property
    def defect_types(self) -> list[str]:
        return sorted({s.defect for s in self.test if s.is_anomalous})


def find_mask(root: Path, defect: str, stem: str) -> Path:
    candidates = [p for p in list_images(root / "ground_truth" / defect) if p.stem == f"{stem}_mask"]
    if len(candidates) != 1:
        raise FileNotFoundError(
            f"expected exactly one mask ground_truth/{defect}/{stem}_mask.* for test/{defect}/{stem}, "
            f"found {len(candidates)}"
        )
    return candidates[0]


def scan_category(root: str | Path) -> Category:
    """Index an MVTec-style category directory (see module docstring)."""
    root = Path(root)
    train = list_images(root / "train" / "good")
    if not train:
        raise FileNotFoundError(f"no training images in {root / 'train' / 'good'}")
    test: list[TestSample] = []
    test_dir = root / "test"
    if test_dir.is_dir():
        for defect_dir in sorted(d for d in test_dir.iterdir() if d.is_dir()):
            defect = defect_dir.name
            for path in list_images(defect_dir):
                mask = None if defect == "good" else find_mask(root, defect, path.stem)
                test.append(TestSample(path, defect, mask))
    return Category(root=root, name=root.name, train=train, test=test)


def split_holdout(paths: Sequence[Path], fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Deterministically split normal training images into (train, held-out); at least two held out."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("holdout fraction must be in (0, 1)")
    count = max(2, round(fraction * len(paths)))
    if count >= len(paths):
        raise ValueError(f"{len(paths)} training images are too few to hold out {count}")
    order = np.random.default_rng(seed).permutation(len(paths))
    held = sorted(int(i) for i in order[:count])
    kept = sorted(int(i) for i in order[count:])
    return [paths[i] for i in kept], [paths[i] for i in held]


class ImageDataset(Dataset[Tensor]):
    """Pre-processed images, decoded and resized once and cached as uint8.

    ``augment`` applies label-preserving random transforms for training: any of ``hflip``,
    ``vflip`` and ``rot90`` (quarter turns; square inputs only). They suit textures and
    rotation-invariant objects; leave them off for objects with a fixed orientation.
    """

    def __init__(self, paths: Sequence[Path], size: tuple[int, int], augment: Iterable[str] = ()) -> None:
        self.paths = list(paths)
        self.size = size
        self.augment = frozenset(augment)
        unknown = self.augment - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}; choose from {AUGMENTATIONS}")
        if "rot90" in self.augment and size[0] != size[1]:
            raise ValueError("rot90 augmentation needs a square input size")
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def _rgb(self, index: int) -> np.ndarray:
        if index not in self._cache:
            self._cache[index] = load_rgb(self.paths[index], self.size)
        return self._cache[index]

    def preload(self) -> None:
        """Decode every image now, e.g. before DataLoader workers are forked: they inherit the
        cache instead of decoding again in every epoch."""
        for index in range(len(self)):
            self._rgb(index)

    def __getitem__(self, index: int) -> Tensor:
        image = normalize(self._rgb(index))
        if "hflip" in self.augment and torch.rand(()) < 0.5:
            image = image.flip(2)
        if "vflip" in self.augment and torch.rand(()) < 0.5:
            image = image.flip(1)
        if "rot90" in self.augment:
            image = torch.rot90(image, int(torch.randint(4, ())), dims=(1, 2))
        return image.contiguous()
