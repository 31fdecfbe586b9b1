"""What the tests of the live server share: the library (None when it is not
built, and then in CI, CI=true, an error), the trace checker, and the small
run that the Flower tests describe without the library.
"""

import hashlib
import os
import unittest
from pathlib import Path
from typing import Any

import numpy as np

from desgd.data import read_split
from desgd.live import Evaluate, Message, find_library

CI = os.environ.get("CI") == "true"
CHECKER = (
    Path(__file__).resolve().parents[1] / "src" / "desgd" / "check_trace.py"
)
NOT_BUILT = (
    "libDesgdLive.so is not built (swift build -c release --product"
    " DesgdLive)"
)
D_SMALL = 19_670  # parameters of desgd's small model


def _library() -> Path | None:
    try:
        return find_library()
    except FileNotFoundError:
        if CI:
            raise
        return None


LIBRARY = _library()
needs_library = unittest.skipIf(LIBRARY is None, NOT_BUILT)


class DescribedRun:
    """A LiveServer's description (what `LiveServer.describe()` returns)
    without the library: 2 honest workers holding classes 0–2 and 3–5 (the
    first 12 + c training images of class c), 1 Byzantine sign-flipper (a
    client-side attack: it keeps momenta of its own), TrMean, the small model.
    Subclasses give the class draw, `classes(t)`; it aggregates nothing
    (`round` raises)."""

    external = False  # desgd's own model and data

    def __init__(
        self, mode: str = "desgd", rounds: int = 3, tag: bytes = b"run"
    ) -> None:
        _, labels = read_split("train")
        by_class = [
            np.flatnonzero(labels == c)[: 12 + c].tolist() for c in range(10)
        ]
        holdings = [[0, 1, 2], [3, 4, 5]]
        self.description: dict[str, Any] = {
            "parameterCount": D_SMALL,
            "classes": 10,
            "honest": 2,
            "byzantine": 1,
            "mode": mode,
            "rounds": rounds,
            "batch": 8,
            "beta": 0.9,
            "weightDecay": 0.0005,
            "seed": 1,
            "aggregator": "trmean",
            "attack": "signflip",
            "clientSideAttack": True,
            "byzantineLabels": "true",
            "signflipScale": 2.0,
            "holdings": holdings,
            "partition": [
                [by_class[c] if c in h else [] for c in range(10)]
                for h in holdings
            ],
            "normalization": {"mean": 0.28604, "std": 0.35302},
            "runTag": hashlib.sha256(tag).hexdigest(),
            "model": [],
        }

    def classes(self, t: int) -> list[int]:
        raise NotImplementedError

    def round(
        self,
        t: int,
        messages: list[Message],
        evaluate: Evaluate | None = None,
    ) -> tuple[np.ndarray, tuple[float, float] | None]:
        raise NotImplementedError("a described run has no live server")
