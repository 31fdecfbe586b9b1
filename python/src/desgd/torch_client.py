"""The client half of Algorithm 1 (DeSGD) for any torch module, and the SGD
baseline's client.

Every round t, an honest DeSGD worker updates the momentum of *every* class it
holds, not only of the classes the server asks for:
m^(c) ← β·m^(c) + (1−β)·(g^(c) + wd·x_t), g^(c) the mean cross-entropy
gradient at x_t on a mini-batch of its class-c samples (docs/design.md §2:
the EMA convention, weight decay added to the gradient). It then sends m^(c)
for c in S_t only. Updating the held classes that are not sent keeps each
momentum an average over recent rounds' models rather than over the rounds the
class happened to be drawn, which is what the server's class-momentum buffer
assumes.

The SGD baseline is the same client with a single group, keyed -1 (the live
server's class of a baseline message), over all the worker's local data.

Mini-batches: `batch` distinct samples of the group when it has that many, else
`batch` draws with replacement (desgd's `Simulation.sampleBatch`). The draws
come from a torch.Generator seeded from (seed, worker, round, group), so a
client's batches do not depend on which process or in what order it computes
them (the Flower deployment engine starts a new process for every message).

The flat vector is `module.parameters()` in order, float32: for desgd's models
(desgd.models) it is desgd's own layout.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ClassMomentumClient",
    "Group",
    "batch_generator",
    "flatten_gradients",
    "flatten_parameters",
    "load_flat_parameters",
    "parameter_count",
    "sample_batch",
]

BASELINE_GROUP = -1


def parameter_count(module: nn.Module) -> int:
    """d, the length of the flat vector."""
    return sum(p.numel() for p in module.parameters())


def flatten_parameters(module: nn.Module) -> np.ndarray:
    """The module's parameters concatenated in `parameters()` order, as a new
    float32 array."""
    with torch.no_grad():
        return (
            torch.cat(
                [
                    p.detach().reshape(-1).to(torch.float32)
                    for p in module.parameters()
                ]
            )
            .numpy()
            .copy()
        )


def flatten_gradients(module: nn.Module) -> np.ndarray:
    """The parameters' `.grad` concatenated like `flatten_parameters` (zeros
    where a grad is None)."""
    parts = [
        (p.grad if p.grad is not None else torch.zeros_like(p))
        .detach()
        .reshape(-1)
        .to(torch.float32)
        for p in module.parameters()
    ]
    return torch.cat(parts).numpy().copy()


def load_flat_parameters(module: nn.Module, flat: np.ndarray) -> None:
    """Copies the flat vector into the module's parameters (the inverse of
    `flatten_parameters`)."""
    v = np.asarray(flat, dtype=np.float32).reshape(-1)
    d = parameter_count(module)
    if v.size != d:
        raise ValueError(
            f"a flat vector of {v.size} values for a module of {d} parameters"
        )
    source = torch.from_numpy(np.ascontiguousarray(v))
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            n = p.numel()
            p.copy_(source[offset : offset + n].view_as(p))
            offset += n


def batch_generator(
    seed: int, worker: int, round: int, group: int  # noqa: A002
) -> torch.Generator:
    """A generator keyed by (seed, worker, round, group): independent streams
    per key, reproducible."""
    key = hashlib.sha256(
        b"desgd-torch-client-batch\0"
        + struct.pack("<qqqq", seed, worker, round, group)
    ).digest()
    g = torch.Generator()
    g.manual_seed(int.from_bytes(key[:8], "little") & ((1 << 63) - 1))
    return g


def sample_batch(
    count: int, size: int, generator: torch.Generator
) -> torch.Tensor:
    """Positions of a mini-batch in a group of `count` samples: `size` distinct
    ones, or `size` draws with replacement when the group is smaller."""
    if count <= 0:
        raise ValueError("a mini-batch from an empty group")
    if count >= size:
        return torch.randperm(count, generator=generator)[:size]
    return torch.randint(count, (size,), generator=generator)


@dataclass
class Group:
    """The samples one momentum is computed on: images [N, ...] and the labels
    the loss uses (the true labels, or flipped ones for a label-flipping
    Byzantine client)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if (
            self.images.shape[0] != self.labels.shape[0]
            or self.images.shape[0] == 0
        ):
            raise ValueError(
                "a group needs as many labels as images, and at least one"
                f" ({self.images.shape[0]} images, {self.labels.shape[0]}"
                " labels)"
            )


@dataclass
class ClassMomentumClient:
    """One worker's momenta: one per group (class c, or -1 for the SGD
    baseline).

    `momenta` persists between rounds (the Flower client keeps it in its
    context's state); it starts at zero, as desgd's workers' momenta do.
    """

    module: nn.Module
    groups: Mapping[int, Group]
    batch: int
    beta: float
    weight_decay: float
    seed: int
    worker: int
    momenta: dict[int, np.ndarray] = field(default_factory=dict)

    def gradient(
        self, x: np.ndarray, images: torch.Tensor, labels: torch.Tensor
    ) -> np.ndarray:
        """∇ mean cross-entropy at x on (images, labels), plus wd·x, flat
        float32."""
        load_flat_parameters(self.module, x)
        self.module.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.module(images), labels)
        loss.backward()
        g = flatten_gradients(self.module)
        if self.weight_decay:
            g += np.float32(self.weight_decay) * np.asarray(
                x, dtype=np.float32
            )
        return g

    def step(
        self,
        round: int,  # noqa: A002
        x: np.ndarray,
        send: Iterable[int],
        update: Iterable[int] | None = None,
    ) -> dict[int, np.ndarray]:
        """Round t: updates the momenta of the groups in `update` (default:
        every group, as an honest DeSGD worker does) at x_t and returns those
        of the groups in `send` (S_t ∩ the held classes, or [-1] in the
        baseline). Asking for a group not held, or sending one not updated yet,
        is an error."""
        wanted = list(send)
        updating = (
            sorted(self.groups) if update is None else sorted(set(update))
        )
        missing = [
            c for c in set(wanted) | set(updating) if c not in self.groups
        ]
        if missing:
            raise KeyError(
                f"worker {self.worker} is asked for groups {sorted(missing)}"
                " it does not hold"
            )
        self.module.train()
        beta = np.float32(self.beta)
        for c in updating:
            group = self.groups[c]
            positions = sample_batch(
                group.images.shape[0],
                self.batch,
                batch_generator(self.seed, self.worker, round, c),
            )
            g = self.gradient(
                x, group.images[positions], group.labels[positions]
            )
            m = self.momenta.get(c)
            if m is None:
                m = np.zeros_like(g)
            m *= beta
            m += (np.float32(1) - beta) * g
            self.momenta[c] = m
        stale = [c for c in wanted if c not in self.momenta]
        if stale:
            raise KeyError(
                f"worker {self.worker} has no momentum yet for groups {stale}"
            )
        return {c: self.momenta[c] for c in wanted}
