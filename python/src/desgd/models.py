"""desgd's two CNNs in torch, with desgd's parameter layout and function.

desgd trains its networks on a flat parameter vector
(Sources/DesgdNumerics/Model/CNNArchitecture.swift, `ParameterLayout`):
conv1.weight [c1, 1, 5, 5], conv1.bias, conv2.weight [c2, c1, 5, 5],
conv2.bias, fc1.weight [hidden, c2·4·4], fc1.bias, fc2.weight [10, hidden],
fc2.bias, in that order. A torch module whose `parameters()` come in the same
order with the same shapes maps onto that vector with a plain concatenation, so
the live server can aggregate torch momenta as its own.

The function matches too: conv 5×5 (no padding, stride 1) → ReLU → 2×2
max-pool, twice, then flatten, fc1 → ReLU → fc2, softmax cross-entropy. desgd's
batched pass computes conv2 channels-last, but its fused ReLU + max-pool writes
pool2 in PyTorch's per-sample order (c, y, x)
(Sources/DesgdNumerics/Model/Layers.swift, `ReLUMaxPool2.forwardChannelsLast`:
dst[c·hw + oy·h + ox]), so fc1's 800 columns are ordered channels-first and
torch's `flatten(1)` needs no permutation. (desgd adds the bias after the max,
max(best + b, 0); since the bias is per channel this equals
pool(relu(conv + b)).)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CNN", "CNNShape", "SHAPES", "build_model", "layout"]


@dataclass(frozen=True)
class CNNShape:
    """The sizes of a two-convolution network (desgd's `CNNShape`)."""

    conv1: int
    conv2: int
    hidden: int
    classes: int = 10
    input_size: int = 28
    in_channels: int = 1
    kernel: int = 5

    @property
    def flat(self) -> int:
        """Inputs of fc1: conv2 channels × (side after two convolutions and
        poolings)²."""
        side = (
            (self.input_size - self.kernel + 1) // 2 - self.kernel + 1
        ) // 2
        return self.conv2 * side * side


SHAPES: dict[str, CNNShape] = {
    "lenet": CNNShape(conv1=20, conv2=50, hidden=500),  # 431 080 parameters
    "small": CNNShape(conv1=6, conv2=16, hidden=64),  # 19 670 parameters
}


class CNN(nn.Module):
    """conv → ReLU → pool → conv → ReLU → pool → fc → ReLU → fc, desgd's
    `lenet` or `small`."""

    def __init__(self, shape: CNNShape) -> None:
        super().__init__()
        self.shape = shape
        self.conv1 = nn.Conv2d(shape.in_channels, shape.conv1, shape.kernel)
        self.conv2 = nn.Conv2d(shape.conv1, shape.conv2, shape.kernel)
        self.fc1 = nn.Linear(shape.flat, shape.hidden)
        self.fc2 = nn.Linear(shape.hidden, shape.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch [B, 1, 28, 28] (normalised inputs)."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        # (c, y, x) per sample: the order of desgd's fc1 columns
        x = torch.flatten(x, 1)
        logits: torch.Tensor = self.fc2(F.relu(self.fc1(x)))
        return logits


def build_model(name: str) -> CNN:
    """desgd's `--model NAME` (lenet or small) as a torch module (float32, on
    the CPU)."""
    try:
        return CNN(SHAPES[name])
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}: expected one of {', '.join(SHAPES)}"
        ) from None


def layout(module: nn.Module) -> list[dict[str, object]]:
    """[{"name", "shape"}] of `module.parameters()` in order: the `model` list
    of the live request, which the live server compares with its own layout of
    `--model`."""
    return [
        {"name": n, "shape": list(p.shape)}
        for n, p in module.named_parameters()
    ]
