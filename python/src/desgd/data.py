"""Fashion-MNIST as desgd reads it, as torch tensors.

desgd reads Debian's `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist, or `$DESGD_DATA`): four IDX files,
gzip-compressed or not (Sources/DesgdNumerics/Data/Dataset.swift). Pixels are
scaled to [0, 1] in float32 (byte · Float(1/255)), then both splits are
normalised with the training split's statistics: x ↦ (x − mean) / std computed
in double and rounded once to float32, mean and std being the mean and
population standard deviation of all 47 040 000 training pixels, summed in
storage order (Sources/DesgdNumerics/Data/Normalization.swift). Doing the same
here gives the clients the very inputs desgd's own workers see, so the
federation trains the model the simulation trains.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch  # imported lazily at run time: torch takes seconds

__all__ = [
    "DEFAULT_DIRECTORY",
    "FashionMNIST",
    "indices_by_class",
    "load_split",
    "locate",
    "normalization",
    "normalize",
    "read_split",
]

DEFAULT_DIRECTORY = "/usr/share/datasets/fashion-mnist"
FILE_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def locate(directory: str | os.PathLike[str] | None = None) -> Path:
    """`directory`, else `$DESGD_DATA`, else Debian's directory, as desgd's
    `Dataset.locate` does."""
    d = Path(directory or os.environ.get("DESGD_DATA") or DEFAULT_DIRECTORY)
    for stems in FILE_STEMS.values():
        for stem in stems:
            if not (d / (stem + ".gz")).is_file() and not (d / stem).is_file():
                raise FileNotFoundError(
                    f"Fashion-MNIST not found in {d} (missing {stem}[.gz]):"
                    " install the Debian package dataset-fashion-mnist, or"
                    " pass the directory / set DESGD_DATA"
                )
    return d


def _read_idx(path: Path, dimensions: int) -> np.ndarray:
    """An IDX tensor of unsigned bytes (type 0x08) with `dimensions`
    dimensions."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if (
        len(raw) < 4
        or raw[0] != 0
        or raw[1] != 0
        or raw[2] != 0x08
        or raw[3] != dimensions
    ):
        raise ValueError(
            f"{path}: not an IDX file of unsigned bytes with {dimensions}"
            " dimensions"
        )
    shape = struct.unpack(f">{dimensions}I", raw[4 : 4 + 4 * dimensions])
    start = 4 + 4 * dimensions
    if len(raw) - start != int(np.prod(shape)):
        raise ValueError(
            f"{path}: {len(raw) - start} data bytes for shape {shape}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(shape)


def _file(directory: Path, stem: str) -> Path:
    gz = directory / (stem + ".gz")
    return gz if gz.is_file() else directory / stem


def _scaled(images: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1], float32, as desgd computes them:
    Float(byte) · Float(1/255)."""
    return images.astype(np.float32) * np.float32(1.0 / 255.0)


def _sequential_sum(x: np.ndarray, chunk: int = 1 << 20) -> float:
    """Σx in float64, adding in storage order one value at a time (desgd's
    loop), chunk by chunk."""
    total = 0.0
    for i in range(0, x.size, chunk):
        part = np.concatenate(([total], x[i : i + chunk].astype(np.float64)))
        total = float(np.cumsum(part)[-1])
    return total


def normalization(train_images: np.ndarray) -> tuple[float, float]:
    """(mean, std) of the training pixels exactly as desgd's
    `InputNormalization.statistics`."""
    px = _scaled(train_images).reshape(-1)
    mean = _sequential_sum(px) / px.size
    dev = px.astype(np.float64) - mean
    std = (_sequential_sum(dev * dev) / px.size) ** 0.5
    return mean, (std if std > 0 else 1.0)


@dataclass
class FashionMNIST:
    """One split: images [N, 1, 28, 28] float32 (normalised) and labels [N]
    int64, as torch tensors."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: float
    std: float


def read_split(
    split: str = "train", directory: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The raw split: images [N, 28, 28] uint8 and labels [N] uint8, checked as
    desgd checks them."""
    d = locate(directory)
    image_stem, label_stem = FILE_STEMS[split]
    images = _read_idx(_file(d, image_stem), 3)
    labels = _read_idx(_file(d, label_stem), 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{d}: {images.shape[0]} {split} images but {labels.shape[0]}"
            " labels"
        )
    if labels.max(initial=0) >= 10:
        raise ValueError(f"{d}: a {split} label is outside 0...9")
    return images, labels


def normalize(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 images [N, 28, 28] as the normalised float32 tensor [N, 1, 28, 28]
    desgd's model sees.

    Normalising only the samples a client uses keeps a client process small
    (the whole training set is 188 MB as float32, and the deployment engine
    runs one process per node at once)."""
    import torch

    x = ((_scaled(images).astype(np.float64) - mean) / std).astype(np.float32)
    return torch.from_numpy(x).unsqueeze(1)


def load_split(
    split: str = "train",
    directory: str | os.PathLike[str] | None = None,
    stats: tuple[float, float] | None = None,
) -> FashionMNIST:
    """The `split` ("train" or "test") normalised like desgd; `stats` = (mean,
    std) skips recomputing them (the live server's
    `describe()["normalization"]` gives desgd's own)."""
    import torch

    images, labels = read_split(split, directory)
    if stats is None:
        stats = normalization(
            images if split == "train" else read_split("train", directory)[0]
        )
    mean, std = stats
    return FashionMNIST(
        images=normalize(images, mean, std),
        labels=torch.from_numpy(labels.astype(np.int64)),
        mean=mean,
        std=std,
    )


def indices_by_class(
    labels: torch.Tensor | np.ndarray, classes: int = 10
) -> list[list[int]]:
    """Indices of each class's samples in data set order (desgd's
    `indicesByClass`)."""
    y = np.asarray(labels)
    return [np.flatnonzero(y == c).tolist() for c in range(classes)]
