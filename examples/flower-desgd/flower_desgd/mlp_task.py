"""Your own model and data, as a Flower app keeps them in its task module (docs/federation.md, "Your own
model and data"): the two-hidden-layer perceptron of McMahan et al. (2017, "2NN": 784-200-200-10) on
Fashion-MNIST split by their pathological non-IID shard partition, not desgd's CNN and label skew.

Run it with `python -m desgd.flower.run_local --task flower_desgd.mlp_task --options "--honest 10
--byzantine 2 --agg trmean --attack alie --rounds 20 --eval-every 5" --out mlp.trace`.
"""

from functools import cache

import numpy as np
import torch
from torch import nn

from desgd.data import read_split

CLASSES = 10
DATA = ("Fashion-MNIST (Debian dataset-fashion-mnist), pixels scaled to [0, 1]; training set sorted by label "
        "into 4 shards per worker, worker w holding shards w, w+n, w+2n, w+3n")
SHARDS_PER_WORKER = 4


def model() -> nn.Module:
    torch.manual_seed(2017)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                         nn.Linear(200, CLASSES))


@cache
def _split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_split(name)
    pixels = torch.from_numpy(np.asarray(images, dtype=np.float32) / np.float32(255))
    return pixels, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def client_data(worker: int, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Worker w's shards: the training set sorted by label (stable), cut into 4·n equal shards."""
    pixels, labels = _split("train")
    order = torch.from_numpy(np.argsort(labels.numpy(), kind="stable"))
    shards = torch.tensor_split(order, SHARDS_PER_WORKER * workers)
    mine = torch.cat([shards[worker + k * workers] for k in range(SHARDS_PER_WORKER)])
    return pixels[mine], labels[mine]


def test_data() -> tuple[torch.Tensor, torch.Tensor]:
    return _split("test")
