"""The ClientApp: one DeSGD worker (honest, or Byzantine under a client-side attack) in torch.

Node config (flower-supernode --node-config): `partition-id=i` is the worker index (honest workers
0..n-1, then the Byzantine ones), `key=/path/worker-i.key` its Ed25519 key (PKCS#8 PEM),
`role=honest|byzantine` what the operator started it as (the server checks it against the run).

- query ("registration"): answers with the worker index, role and public key; the ServerApp opens
  the live server with these keys, which then accepts only messages they sign.
- train: computes the round's momenta (desgd.torch_client: Algorithm 1's client half, EMA convention
  of docs/design.md §2), applies the client-side attack if Byzantine, signs every momentum with the
  payload of desgd.signing and replies. The momenta persist in `context.state` between rounds: the
  deployment engine starts a new process for every message, so nothing else survives a round.

Honest data: the sample indices desgd's partition gives this worker (sent by the server). Byzantine
data: the whole training set, with true labels, or flipped (y ↦ 9 − y) under labelflip, where the
momentum of class c is computed on the samples of true class 9 − c labelled c; signflip sends
−scale·m.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from desgd import signing
from desgd.flower.strategy import momentum_key

__all__ = ["app"]

app = ClientApp()

STATE_KEY = "desgd-momenta"


def _worker(context: Context) -> int:
    try:
        return int(context.node_config["partition-id"])
    except (KeyError, ValueError):
        raise ValueError("the SuperNode needs --node-config 'partition-id=<worker index> key=<key file>'") from None


def _key(context: Context) -> signing.Ed25519PrivateKey:
    path = context.node_config.get("key")
    if not path:
        raise ValueError(f"worker {_worker(context)}: no key=<file> in the SuperNode's --node-config")
    return signing.load_private_key(str(path))


@app.query()
def register(msg: Message, context: Context) -> Message:
    """Registration: who this node is and the key its messages will be signed with. (torch's version
    comes from the package metadata: importing torch would cost seconds per node for nothing.)"""
    from importlib.metadata import version

    record = ConfigRecord({"worker": _worker(context), "role": str(context.node_config.get("role", "honest")),
                           "publicKey": signing.public_key_hex(_key(context)), "torch": version("torch")})
    return Message(RecordDict({"registration": record}), reply_to=msg)


def _groups(cfg: ConfigRecord, send: list[int]) -> tuple[dict[int, Any], list[int] | None]:
    """The worker's sample groups and which of them to update this round (None: all of them)."""
    import torch

    from desgd.data import normalize, read_split
    from desgd.torch_client import BASELINE_GROUP, Group

    images, labels = read_split("train")
    mean, std = float(cfg["mean"]), float(cfg["std"])
    classes = int(cfg["classes-total"])
    sgd = str(cfg["mode"]) == "sgd"

    def group(indices: np.ndarray, targets: np.ndarray) -> Group:
        return Group(normalize(images[indices], mean, std), torch.from_numpy(targets.astype(np.int64)))

    if str(cfg["role"]) == "honest":
        held = [int(c) for c in cfg["partition-classes"]]
        counts = [int(n) for n in cfg["partition-counts"]]
        flat = np.asarray(cfg["partition-indices"], dtype=np.int64)
        parts = dict(zip(held, np.split(flat, np.cumsum(counts)[:-1])))
        if sgd:
            allidx = np.sort(np.concatenate(list(parts.values())))
            return {BASELINE_GROUP: group(allidx, labels[allidx])}, None
        return {c: group(idx, labels[idx]) for c, idx in parts.items()}, None
    flipped = str(cfg["byzantine-labels"]) == "flipped"
    if sgd:
        allidx = np.arange(labels.size)
        y = (classes - 1 - labels) if flipped else labels
        return {BASELINE_GROUP: group(allidx, y)}, None
    out = {}
    for c in send:
        source = classes - 1 - c if flipped else c
        idx = np.flatnonzero(labels == source)
        out[c] = group(idx, np.full(idx.size, c))
    return out, send  # a Byzantine worker computes only the classes it sends (desgd's own momenta)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Round t: update the momenta at x_t, send those of S_t (signed)."""
    import torch

    from desgd.models import build_model
    from desgd.torch_client import ClassMomentumClient

    started = time.perf_counter()
    torch.set_num_threads(1)  # many clients share few cores: one thread each avoids oversubscription
    cfg = msg.content.config_records["config"]
    worker = _worker(context)
    if int(cfg["worker"]) != worker:
        raise ValueError(f"this node is worker {worker}, the server addressed worker {cfg['worker']}")
    t = int(cfg["round"])
    send = [int(c) for c in cfg["send"]]
    x = msg.content.array_records["arrays"]["x"].numpy()
    groups, update = _groups(cfg, send)
    state = context.state.array_records.get(STATE_KEY)
    momenta = {int(k): a.numpy() for k, a in state.items()} if state is not None else {}
    client = ClassMomentumClient(build_model(str(cfg["model"])), groups, batch=int(cfg["batch"]),
                                 beta=float(cfg["beta"]), weight_decay=float(cfg["weightDecay"]),
                                 seed=int(cfg["seed"]), worker=worker, momenta=momenta)
    sent = client.step(t, x, send, update=update)
    context.state[STATE_KEY] = ArrayRecord({str(k): Array(v) for k, v in client.momenta.items()})
    scale = float(cfg.get("signflip-scale", 0.0)) if str(cfg["role"]) == "byzantine" else 0.0
    key = _key(context)
    arrays: dict[str, Array] = {}
    signatures: list[bytes] = []
    for c in send:
        v = sent[c] if scale == 0.0 else (np.float32(-scale) * sent[c]).astype(np.float32)
        arrays[momentum_key(c)] = Array(v)
        signatures.append(signing.sign_message(key, str(cfg["runTag"]), t, c, worker, v))
    meta = ConfigRecord({"worker": worker, "classes": send, "signatures": signatures})
    seconds = time.perf_counter() - started
    content = RecordDict({"momenta": ArrayRecord(arrays), "desgd": meta,
                          "metrics": MetricRecord({"client-seconds": seconds, "groups": len(groups)})})
    return Message(content, reply_to=msg)
