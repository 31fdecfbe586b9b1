"""A task module (desgd.flower.task) of the tests: a two-layer perceptron on
three Gaussian blobs in four dimensions, each worker holding the classes of a
fixed label skew, drawn here with numpy."""

import numpy as np
import torch
from torch import nn

CLASSES = 3
DATA = "three Gaussian blobs in 4 dimensions, drawn per worker"
HOLDINGS = [[0, 1], [1, 2], [0, 2], [0, 1, 2]]
CENTRES = np.array(
    [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], dtype=np.float32
)


def blobs(
    count: int, seed: int, classes: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` points of each class in `classes` (default: all)."""
    rng = np.random.default_rng(seed)
    held = list(range(CLASSES)) if classes is None else classes
    x = np.concatenate(
        [
            CENTRES[c] + rng.normal(0, 0.7, (count, 4)).astype(np.float32)
            for c in held
        ]
    )
    y = np.repeat(np.array(held), count)
    return torch.from_numpy(x), torch.from_numpy(y)


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, CLASSES))


def client_data(
    worker: int, workers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Honest workers 0..3 hold HOLDINGS' classes; any later (Byzantine) worker
    holds all three."""
    return blobs(
        40,
        seed=worker,
        classes=HOLDINGS[worker] if worker < len(HOLDINGS) else None,
    )


def test_data() -> tuple[torch.Tensor, torch.Tensor]:
    return blobs(100, seed=99)
