"""The ClientApp: one DeSGD worker (honest, or Byzantine under a client-side
attack) in torch.

Node config (flower-supernode --node-config): `partition-id=i` is the worker
index (honest workers 0..n-1, then the Byzantine ones),
`key=/path/worker-i.key` its Ed25519 key (PKCS#8 PEM), `role=honest|byzantine`
what the operator started it as (the server checks it against the run),
`state-dir=/abs/dir` where it keeps its momenta between runs (optional; without
it a stopped run cannot be resumed).

- query ("registration"): answers with the worker index, role and public key;
  the ServerApp opens the live server with these keys, which then accepts only
  messages they sign.
- train: computes the round's momenta (desgd.torch_client: Algorithm 1's client
  half, EMA convention of docs/design.md §2), applies the client-side attack if
  Byzantine, signs every momentum with the payload of desgd.signing and
  replies. The momenta persist in `context.state` between rounds: the
  deployment engine starts a new process for every message, so nothing else
  survives a round.

What the clients must keep. The class momenta of the honest workers (and a
Byzantine worker's own, under a client-side attack) are half of a run's state,
and the trace does not hold them: the server records the messages it received,
not the momenta the clients carry on. `context.state` lives only as long as the
Flower run, so after every round the worker also writes its momenta to
`STATE-DIR/worker-<w>.npz` (atomically: a temporary file, then os.replace) with
the run tag, the round t they are after and the worker index; the file it
replaces, if it held round t−1, becomes `worker-<w>.previous.npz`, because a
run stopped after the clients computed round t but before the server recorded
it resumes at round t and needs the momenta after t−1. A train message for
round t takes the momenta after round t−1 of the same run tag, from
`context.state` or else from those files; at t = 0 it starts from zero;
otherwise it replies with an error and the server stops. It never restarts
momenta from zero in the middle of a run: the trace would then claim a run that
did not happen (docs/federation.md, "Stopping and resuming"). Recomputing a
round gives the same momenta (the mini-batches are keyed by seed, worker, round
and class; desgd.torch_client), so a resumed run sends the messages the
uninterrupted one would have.

Honest data: the sample indices desgd's partition gives this worker (sent by
the server). Byzantine data: the whole training set, with true labels, or
flipped (y ↦ 9 − y) under labelflip, where the momentum of class c is computed
on the samples of true class 9 − c labelled c; signflip sends −scale·m.

With a task in the run config (`task = "my_app.task"`, desgd.flower.task) the
model and the data are the task's: the worker registers the classes its own
data holds, and trains the task's model on it.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.common.constant import ErrorCode

from desgd import signing
from desgd.flower.records import (
    MISSING,
    RecordError,
    array,
    integer,
    integers,
    number,
    text,
)
from desgd.flower.strategy import momentum_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
    )

__all__ = [
    "MissingMomenta",
    "WorkerMomenta",
    "app",
    "load_state_file",
    "momenta_for_round",
    "save_state",
    "state_files",
]

app = ClientApp()

# context.state: ArrayRecord, class index (str) → momentum
STATE_KEY = "desgd-momenta"
# context.state: ConfigRecord, the run tag, round and worker of STATE_KEY
STATE_OF_KEY = "desgd-momenta-of"
STATE_FORMAT = "desgd-client-momenta-v1"


class MissingMomenta(RuntimeError):
    """The worker cannot continue the run: it does not hold its momenta after
    the round before."""


@dataclass(frozen=True)
class WorkerMomenta:
    """A worker's class momenta after round `round` of the run tagged `run_tag`
    (class −1: the SGD baseline's single momentum)."""

    run_tag: str
    round: int
    worker: int
    momenta: dict[int, np.ndarray]


def state_files(directory: Path, worker: int) -> tuple[Path, Path]:
    """The worker's state file and the one it replaced (`worker-<w>.npz`,
    `worker-<w>.previous.npz`)."""
    return (
        directory / f"worker-{worker}.npz",
        directory / f"worker-{worker}.previous.npz",
    )


def load_state_file(path: Path, arrays: bool = True) -> WorkerMomenta:
    """A state file written by `save_state` (only its run tag, round and worker
    when `arrays` is false). Raises ValueError when the file is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != STATE_FORMAT:
                raise ValueError(
                    f"{path}: format {str(z['format'])!r}, expected"
                    f" {STATE_FORMAT}"
                )
            classes = [int(c) for c in z["classes"]]
            momenta = (
                {
                    c: np.array(z[f"momentum_{c}"], dtype=np.float32)
                    for c in classes
                }
                if arrays
                else {}
            )
            return WorkerMomenta(
                str(z["run_tag"]), int(z["round"]), int(z["worker"]), momenta
            )
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise ValueError(
            f"{path} is not a readable desgd client state file: {e}"
        ) from None


def _holds(
    path: Path, run_tag: str, round: int, worker: int  # noqa: A002
) -> bool:
    if not path.is_file():
        return False
    try:
        m = load_state_file(path, arrays=False)
    except ValueError:
        return False
    return (m.run_tag, m.round, m.worker) == (run_tag, round, worker)


def save_state(directory: Path, state: WorkerMomenta) -> Path:
    """Writes the momenta after round t to `worker-<w>.npz`, atomically (a
    temporary file in the same directory, flushed to disk, then os.replace).
    The file it replaces becomes `worker-<w>.previous.npz` when it holds round
    t−1 of the same run, so that the momenta after t−1 survive until the server
    has recorded round t. Returns the state file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    current, previous = state_files(directory, state.worker)
    classes = sorted(state.momenta)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(STATE_FORMAT),
        "run_tag": np.array(state.run_tag),
        "round": np.array(state.round),
        "worker": np.array(state.worker),
        "classes": np.array(classes, dtype=np.int64),
        **{
            f"momentum_{c}": np.asarray(state.momenta[c], dtype=np.float32)
            for c in classes
        },
    }
    fd, temporary = tempfile.mkstemp(
        prefix=f".worker-{state.worker}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            # ignore: numpy's stub gives savez a keyword allow_pickle (a
            # bool), which a key of **arrays could name; these never do
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        # Two renames, the new file written already: a process killed between
        # them leaves round t−1's momenta in `previous` and no `current`, which
        # momenta_for_round reads as it should.
        if _holds(current, state.run_tag, state.round - 1, state.worker):
            os.replace(current, previous)
        os.replace(temporary, current)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)  # the rename itself survives a crash
    finally:
        os.close(directory_fd)
    return current


def _state_dir(context: Context) -> Path | None:
    value = context.node_config.get("state-dir")
    if not value:
        return None
    path = Path(str(value))
    if not path.is_absolute():
        raise ValueError(
            f"worker {_worker(context)}: state-dir={value} must be an absolute"
            " path"
        )
    return path


def momenta_for_round(
    context: Context, run_tag: str, t: int, worker: int
) -> dict[int, np.ndarray]:
    """The momenta round t starts from: zero (empty) at t = 0; else those after
    round t−1 of this run, from `context.state` (the same Flower run) or the
    state files (a resumed one). Raises MissingMomenta, naming what it found,
    when neither holds them."""
    if t == 0:
        return {}
    of = context.state.config_records.get(STATE_OF_KEY)
    held = context.state.array_records.get(STATE_KEY)
    if (
        of is not None
        and held is not None
        and (
            text(of, "runTag"),
            integer(of, "round"),
            integer(of, "worker"),
        )
        == (run_tag, t - 1, worker)
    ):
        return {int(k): a.numpy() for k, a in held.items()}
    directory = _state_dir(context)
    if directory is None:
        raise MissingMomenta(
            f"worker {worker} has no momenta after round {t - 1} of this run"
            " (none in its context and no state-dir in its node config): it"
            " cannot continue this run"
        )
    found: list[str] = []
    for path in state_files(directory, worker):
        if not path.is_file():
            continue
        try:
            m = load_state_file(path, arrays=False)
        except ValueError as e:
            found.append(str(e))
            continue
        if (m.run_tag, m.round, m.worker) == (run_tag, t - 1, worker):
            return load_state_file(path).momenta
        if m.run_tag != run_tag:
            found.append(
                f"state file {path} holds another run's momenta (run tag"
                f" {m.run_tag[:16]}…)"
            )
        elif m.worker != worker:
            found.append(
                f"state file {path} holds worker {m.worker}'s momenta"
            )
        else:
            found.append(f"state file {path} holds round {m.round}")
    why = (
        "; ".join(found)
        if found
        else f"no state file worker-{worker}.npz in {directory}"
    )
    raise MissingMomenta(
        f"worker {worker} has no momenta after round {t - 1} of this run"
        f" ({why}): it cannot continue this run"
    )


def _worker(context: Context) -> int:
    try:
        return int(context.node_config["partition-id"])
    except (KeyError, ValueError):
        raise ValueError(
            "the SuperNode needs --node-config 'partition-id=<worker index>"
            " key=<key file>'"
        ) from None


def _key(context: Context) -> Ed25519PrivateKey:
    path = context.node_config.get("key")
    if not path:
        raise ValueError(
            f"worker {_worker(context)}: no key=<file> in the SuperNode's"
            " --node-config"
        )
    return signing.load_private_key(str(path))


@app.query()
def register(msg: Message, context: Context) -> Message:
    """Registration: who this node is and the key its messages will be signed
    with. (torch's version comes from the package metadata: importing torch
    would cost seconds per node for nothing.)"""
    from importlib.metadata import version

    role = str(context.node_config.get("role", "honest"))
    record = ConfigRecord(
        {
            "worker": _worker(context),
            "role": role,
            "publicKey": signing.public_key_hex(_key(context)),
            "torch": version("torch"),
        }
    )
    task_name = str(context.run_config.get("task", ""))
    if task_name and role == "honest":
        from desgd.flower.task import holdings, load_task

        workers = (
            int(context.node_config.get("num-partitions", 0))
            or _worker(context) + 1
        )
        _, labels = load_task(task_name).client_data(_worker(context), workers)
        record["holdings"] = holdings(labels)
    return Message(RecordDict({"registration": record}), reply_to=msg)


def _task_groups(
    cfg: ConfigRecord, worker: int, send: list[int]
) -> tuple[dict[int, Any], list[int] | None]:
    """The worker's groups on the task's own data (desgd.flower.task): per held
    class (honest), the whole data (the SGD baseline), or per sent class with
    true or flipped labels (Byzantine)."""
    import torch

    from desgd.flower.task import load_task
    from desgd.torch_client import BASELINE_GROUP, Group

    task = load_task(text(cfg, "task"))
    inputs, labels = task.client_data(worker, integer(cfg, "workers"))
    inputs = torch.as_tensor(inputs)
    role = text(cfg, "role")
    if role == "byzantine" and text(cfg, "byzantine-labels") == "flipped":
        labels = task.classes - 1 - labels
    if text(cfg, "mode") == "sgd":
        return {BASELINE_GROUP: Group(inputs, labels)}, None
    wanted = integers(cfg, "holdings") if role == "honest" else send
    groups = {}
    for c in wanted:
        mask = labels == c
        if not bool(mask.any()):
            raise ValueError(
                f"worker {worker}'s data holds no sample labelled {c}"
            )
        groups[c] = Group(inputs[mask], labels[mask])
    return groups, None if role == "honest" else send


def _groups(
    cfg: ConfigRecord, send: list[int]
) -> tuple[dict[int, Any], list[int] | None]:
    """The worker's sample groups and which of them to update this round (None:
    all of them)."""
    import torch

    from desgd.data import normalize, read_split
    from desgd.torch_client import BASELINE_GROUP, Group

    images, labels = read_split("train")
    mean, std = number(cfg, "mean"), number(cfg, "std")
    classes = integer(cfg, "classes-total")
    sgd = text(cfg, "mode") == "sgd"

    def group(indices: np.ndarray, targets: np.ndarray) -> Group:
        return Group(
            normalize(images[indices], mean, std),
            torch.from_numpy(targets.astype(np.int64)),
        )

    if text(cfg, "role") == "honest":
        held = integers(cfg, "partition-classes")
        counts = integers(cfg, "partition-counts")
        flat = np.asarray(integers(cfg, "partition-indices"), dtype=np.int64)
        if (
            len(counts) != len(held)
            or min(counts, default=0) < 0
            or sum(counts) != flat.size
        ):
            raise RecordError(
                "partition-counts",
                counts,
                f"one count per partition class ({len(held)}), adding up to"
                f" the {flat.size} partition indices",
            )
        if flat.size and not 0 <= flat.min() <= flat.max() < labels.size:
            raise RecordError(
                "partition-indices",
                flat.tolist(),
                f"sample indices in 0...{labels.size - 1}",
            )
        parts = dict(zip(held, np.split(flat, np.cumsum(counts)[:-1])))
        if sgd:
            allidx = np.sort(np.concatenate(list(parts.values())))
            return {BASELINE_GROUP: group(allidx, labels[allidx])}, None
        return {c: group(idx, labels[idx]) for c, idx in parts.items()}, None
    flipped = text(cfg, "byzantine-labels") == "flipped"
    if sgd:
        allidx = np.arange(labels.size)
        y = (classes - 1 - labels) if flipped else labels
        return {BASELINE_GROUP: group(allidx, y)}, None
    out = {}
    for c in send:
        source = classes - 1 - c if flipped else c
        idx = np.flatnonzero(labels == source)
        out[c] = group(idx, np.full(idx.size, c))
    # a Byzantine worker computes only the classes it sends (desgd's own
    # momenta)
    return out, send


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Round t: update the momenta at x_t, send those of S_t (signed). A
    worker without its momenta after round t−1, or a message whose keys are
    missing or hold another kind of value than the server sends, is answered
    with an error reply saying so (the server then stops the run)."""
    worker = _worker(context)
    try:
        return _train(msg, context, worker)
    except MissingMomenta as e:
        reason = str(e)
    except RecordError as e:
        reason = (
            f"worker {worker}: the server's train message is malformed: {e}"
        )
    return Message(
        Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason),
        reply_to=msg,
    )


def _train(msg: Message, context: Context, worker: int) -> Message:
    import torch

    from desgd.models import build_model
    from desgd.torch_client import ClassMomentumClient

    started = time.perf_counter()
    # many clients share few cores: one thread each avoids oversubscription
    torch.set_num_threads(1)
    cfg = msg.content.config_records.get("config")
    if cfg is None:
        raise RecordError("config", MISSING, "the round's config record")
    if integer(cfg, "worker") != worker:
        raise ValueError(
            f"this node is worker {worker}, the server addressed worker"
            f" {cfg['worker']!s}"
        )
    t = integer(cfg, "round")
    run_tag = text(cfg, "runTag")
    momenta = momenta_for_round(context, run_tag, t, worker)
    send = integers(cfg, "send")
    x = array(msg.content.array_records.get("arrays", ArrayRecord()), "x")
    if text(cfg, "task", ""):
        from desgd.flower.task import load_task

        groups, update = _task_groups(cfg, worker, send)
        module = load_task(text(cfg, "task")).model()
    else:
        groups, update = _groups(cfg, send)
        module = build_model(text(cfg, "model"))
    client = ClassMomentumClient(
        module,
        groups,
        batch=integer(cfg, "batch"),
        beta=number(cfg, "beta"),
        weight_decay=number(cfg, "weightDecay"),
        seed=integer(cfg, "seed"),
        worker=worker,
        momenta=momenta,
    )
    sent = client.step(t, x, send, update=update)
    context.state[STATE_KEY] = ArrayRecord(
        {str(k): Array(v) for k, v in client.momenta.items()}
    )
    context.state[STATE_OF_KEY] = ConfigRecord(
        {"runTag": run_tag, "round": t, "worker": worker}
    )
    directory = _state_dir(context)
    # before replying: a recorded round's momenta are always on disk
    if directory is not None:
        save_state(
            directory, WorkerMomenta(run_tag, t, worker, client.momenta)
        )
    scale = (
        number(cfg, "signflip-scale", 0.0)
        if text(cfg, "role") == "byzantine"
        else 0.0
    )
    key = _key(context)
    arrays: dict[str, Array] = {}
    signatures: list[bytes] = []
    for c in send:
        v = (
            sent[c]
            if scale == 0.0
            else (np.float32(-scale) * sent[c]).astype(np.float32)
        )
        arrays[momentum_key(c)] = Array(v)
        signatures.append(signing.sign_message(key, run_tag, t, c, worker, v))
    meta = ConfigRecord(
        {"worker": worker, "classes": send, "signatures": signatures}
    )
    seconds = time.perf_counter() - started
    content = RecordDict(
        {
            "momenta": ArrayRecord(arrays),
            "desgd": meta,
            "metrics": MetricRecord(
                {"client-seconds": seconds, "groups": len(groups)}
            ),
        }
    )
    return Message(content, reply_to=msg)
