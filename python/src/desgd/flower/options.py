"""What the launcher and the ServerApp must know of desgd-record's options
before the live server opens.

The live server resolves the options itself (same parser, same defaults, in
Swift) and checks the registered clients and the model layout against them;
this module only reads the few options that decide how many SuperNodes to start
and which torch model the clients build, with desgd's defaults
(SimulationConfig: 20 honest, 4 Byzantine, attack none; model small under the
quick preset, lenet under --preset paper). When it guesses wrong, opening the
live server fails with a message naming the difference, so a mismatch cannot go
unnoticed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = [
    "CLIENT_SIDE_ATTACKS",
    "FederationShape",
    "option",
    "parse_options",
    "split_options",
]

# Attacks whose Byzantine workers compute and send their own messages (the
# spec's clientSideAttack).
CLIENT_SIDE_ATTACKS = frozenset({"none", "signflip", "labelflip"})


def split_options(text: str) -> list[str]:
    """A run-config options string ("--model lenet --agg trmean") as an
    argument list."""
    return shlex.split(text)


def option(args: list[str], name: str) -> str | None:
    """The value of the last `--name V` or `--name=V` in `args` (the last one
    wins, as in desgd's parser)."""
    value = None
    for i, a in enumerate(args):
        if a == name:
            if i + 1 >= len(args):
                raise ValueError(f"option {name} needs a value")
            value = args[i + 1]
        elif a.startswith(name + "="):
            value = a[len(name) + 1 :]
    return value


@dataclass(frozen=True)
class FederationShape:
    """Workers and model of a run as far as starting the federation needs."""

    honest: int
    byzantine: int
    attack: str
    model: str

    @property
    def client_side_attack(self) -> bool:
        """Whether the Byzantine workers are clients (they then need SuperNodes
        of their own)."""
        return self.byzantine > 0 and self.attack in CLIENT_SIDE_ATTACKS

    @property
    def nodes(self) -> int:
        """SuperNodes to start: the honest workers, plus the Byzantine ones
        under a client-side attack."""
        return self.honest + (self.byzantine if self.client_side_attack else 0)

    def role(self, worker: int) -> str:
        return "honest" if worker < self.honest else "byzantine"


def parse_options(args: list[str]) -> FederationShape:
    """Reads --preset, --honest, --byzantine, --attack, --model; refuses
    --synthetic (the clients train on Fashion-MNIST, so the server must
    partition and evaluate the same data)."""
    if option(args, "--synthetic") is not None or "--synthetic" in args:
        raise ValueError(
            "--synthetic cannot be federated: the clients train on"
            " Fashion-MNIST"
        )
    preset = option(args, "--preset") or "quick"
    if preset not in ("quick", "paper"):
        raise ValueError(f"--preset {preset}: expected quick or paper")
    honest = int(option(args, "--honest") or 20)
    byzantine = int(option(args, "--byzantine") or 4)
    attack = (option(args, "--attack") or "none").split(":", 1)[0]
    model = option(args, "--model") or (
        "lenet" if preset == "paper" else "small"
    )
    if honest < 1 or byzantine < 0:
        raise ValueError(
            f"--honest {honest} --byzantine {byzantine}: need at least one"
            " honest worker"
        )
    return FederationShape(
        honest=honest, byzantine=byzantine, attack=attack, model=model
    )
