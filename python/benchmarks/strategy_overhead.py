"""Server time per round: DesgdStrategy.aggregate_train against Flower's FedAvg
and FedTrimmedAvg.

    python python/benchmarks/strategy_overhead.py [--rounds 5] [--honest 20]
        [--byzantine 4]

The same synthesized replies (random float32 momenta at lenet scale,
d = 431 080) go to the three strategies' aggregate_train. DeSGD's cost includes
what Flower's do not do: signature checks, desgd's TrMean per class, the
class-momentum buffer and the update (eq. 13–16), the server-side attack (ALIE
here: its Byzantine messages are computed in Swift) and the trace; Flower's
strategies average (or trim) all messages once. Recording "full" against
"decisions" (no vectors in round records) bounds the recorder's share. Prints
seconds per round and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp.strategy import FedAvg, FedTrimmedAvg
from flwr.supercore.task_identity import TaskIdentity

from desgd import signing
from desgd.flower.strategy import DesgdStrategy, Registration, momentum_key
from desgd.live import LiveServer, engine
from desgd.models import build_model, layout

TaskIdentity.run_id = 1
TaskIdentity.node_id = 1
TaskIdentity.task_id = 1


def reply(node: int, content: RecordDict) -> Message:
    """A reply as the ServerApp receives it: from node `node`."""
    ask = Message(
        RecordDict(), dst_node_id=node, message_type=MessageType.TRAIN
    )
    TaskIdentity.node_id = node  # the reply's source is the process's node
    out = Message(content, reply_to=ask)
    TaskIdentity.node_id = 1
    return out


def open_live(
    directory: Path,
    record: str,
    keys: list,
    rounds: int,
    honest: int,
    byzantine: int,
) -> LiveServer:
    options = [
        "--model",
        "lenet",
        "--honest",
        str(honest),
        "--byzantine",
        str(byzantine),
        "--agg",
        "trmean",
        "--attack",
        "alie",
        "--rounds",
        str(rounds + 1),
        "--eval-every",
        str(10 * rounds + 10),
    ]
    request = {
        "trace": str(directory / f"{record}.trace"),
        "options": options,
        "record": record,
        "keyframeEvery": 1000,
        "engine": engine(
            "benchmark",
            "0",
            torch.__version__,
            "synthetic replies",
            layout(build_model("lenet")),
            [
                {
                    "worker": w,
                    "node": str(100 + w),
                    "publicKey": signing.public_key_hex(k),
                }
                for w, k in enumerate(keys)
            ],
        ),
    }
    return LiveServer.open(request)


def desgd_rounds(
    live: LiveServer, keys: list, rounds: int, rng: np.random.Generator
) -> tuple[list[float], dict, int]:
    regs = [
        Registration(100 + w, w, "honest", signing.public_key_hex(k))
        for w, k in enumerate(keys)
    ]
    strategy = DesgdStrategy(live, regs, "lenet")
    d = live.parameter_count
    tag = live.description["runTag"]
    seconds = []
    sent = 0
    for t in range(rounds):
        replies = []
        classes = live.classes(t)
        for r in regs:
            send = strategy.sends(r.worker, classes)
            vectors = {
                c: rng.standard_normal(d, dtype=np.float32) * np.float32(1e-3)
                for c in send
            }
            sent += len(vectors)
            sigs = [
                signing.sign_message(keys[r.worker], tag, t, c, r.worker, v)
                for c, v in vectors.items()
            ]
            content = RecordDict(
                {
                    "momenta": ArrayRecord(
                        {momentum_key(c): Array(v) for c, v in vectors.items()}
                    ),
                    "desgd": ConfigRecord(
                        {
                            "worker": r.worker,
                            "classes": send,
                            "signatures": sigs,
                        }
                    ),
                }
            )
            replies.append(reply(r.node_id, content))
        start = time.perf_counter()
        strategy.aggregate_train(t + 1, replies)
        seconds.append(time.perf_counter() - start)
    return seconds, live.close(), sent // rounds


def flower_rounds(
    strategy: FedAvg, nodes: int, rounds: int, d: int, rng: np.random.Generator
) -> list[float]:
    seconds = []
    for t in range(rounds):
        replies = [
            reply(
                100 + w,
                RecordDict(
                    {
                        "arrays": ArrayRecord(
                            {
                                "x": Array(
                                    rng.standard_normal(d, dtype=np.float32)
                                    * np.float32(1e-3)
                                )
                            }
                        ),
                        "metrics": MetricRecord({"num-examples": 50}),
                    }
                ),
            )
            for w in range(nodes)
        ]
        start = time.perf_counter()
        strategy.aggregate_train(t + 1, replies)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--honest", type=int, default=20)
    p.add_argument("--byzantine", type=int, default=4)
    a = p.parse_args()
    rng = np.random.default_rng(1)
    keys = [signing.generate_key() for _ in range(a.honest)]
    d = sum(p.numel() for p in build_model("lenet").parameters())
    nodes = a.honest + a.byzantine
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for record in ("full", "decisions"):
            live = open_live(
                Path(tmp), record, keys, a.rounds, a.honest, a.byzantine
            )
            results[f"DesgdStrategy ({record})"], closed, per_round = (
                desgd_rounds(live, keys, a.rounds, rng)
            )
            print(f"  live close ({record}): {closed}", file=sys.stderr)
    results["FedAvg"] = flower_rounds(FedAvg(), nodes, a.rounds, d, rng)
    results["FedTrimmedAvg (beta 0.2)"] = flower_rounds(
        FedTrimmedAvg(beta=0.2), nodes, a.rounds, d, rng
    )
    base = statistics.median(results["FedAvg"])
    print(
        f"server seconds per round, d = {d}, {a.honest} honest + {a.byzantine}"
        f" Byzantine, {a.rounds} rounds (median). DeSGD: one class per round,"
        f" {per_round} client messages (its holders) + {a.byzantine} ALIE"
        " messages computed by the server, signatures checked; FedAvg,"
        f" FedTrimmedAvg: {nodes} messages"
    )
    for name, s in results.items():
        m = statistics.median(s)
        print(f"  {name:28s} {m:8.4f} s   x{m / base:6.2f} of FedAvg")
    full, dec = (
        statistics.median(results[f"DesgdStrategy ({r})"])
        for r in ("full", "decisions")
    )
    print(
        "  recorder's share (full - decisions) / full:"
        f" {(full - dec) / full:.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
