"""DesgdStrategy: Flower's FedAvg with desgd's server step in place of the
weighted average.

Flower 1.42's Message-API strategies split a round into `configure_train` (what
each node is sent) and `aggregate_train` (the replies to the next model). DeSGD
(Algorithm 1) needs both replaced:

- configure_train sends every registered node x_t and the round's class set S_t
  (the server's draw, eq. 6–7), plus what that worker needs to compute its
  momenta: its classes and sample indices (honest), or its data rule
  (Byzantine, under a client-side attack). Every honest node gets a message
  every round, even when it holds no class of S_t, because it updates all its
  class momenta every round and sends only those in S_t.
- aggregate_train turns the replies into signed `desgd.live.Message`s and calls
  `LiveServer.round`: desgd's robust aggregation per class (eq. 13), its
  server-side attack if any, the class-momentum buffer (eq. 14–15) and the
  update (eq. 16) run in Swift, and the round is recorded in the trace.

A missing reply, an error reply, or a node claiming another worker's index
stops the run: the live server needs exactly the round's messages, and a
silently smaller round would change the robustness setting (f out of n) that
the trace claims.

Rounds: Flower numbers a strategy's rounds 1, 2, ... from wherever it starts;
desgd's rounds are the run's, 0..<rounds. A run resumed at round R
(docs/federation.md, "Stopping and resuming") executes live rounds R..<rounds
as Flower rounds 1..rounds−R, so live round t = R + server_round − 1
(`live_round`, `server_round`); with R = 0 it is the usual
t = server_round − 1.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from logging import INFO
from typing import Any, Protocol

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.supercore import log

from desgd.flower.records import (
    RecordError,
    array,
    byte_strings,
    integer,
    integers,
)
from desgd.live import Evaluate
from desgd.live import Message as LiveMessage

__all__ = [
    "DesgdStrategy",
    "FederationError",
    "LiveRun",
    "Registration",
    "momentum_key",
    "one_line",
]

PARAMETERS_KEY = "x"


class FederationError(RuntimeError):
    """The federation did not deliver a round the live server can take (missing
    or bad replies)."""


def one_line(text: str | None, limit: int = 1000) -> str:
    """Text a node sent (an error reply's reason), as one line of at most
    about `limit` characters: control and other unprintable characters
    escaped (a newline shows as \\n)."""
    shown = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in str(text)[:limit]
    )
    return shown if len(str(text)) <= limit else f"{shown}..."


def momentum_key(class_index: int) -> str:
    """The ArrayRecord key of a momentum: "class-c", or "all" for the SGD
    baseline's (class -1)."""
    return "all" if class_index < 0 else f"class-{class_index}"


class LiveRun(Protocol):
    """What DesgdStrategy uses of the live server: a `desgd.live.LiveServer`,
    or a stand-in that describes a run (the tests' DescribedRun)."""

    @property
    def description(self) -> dict[str, Any]:
        """The run as desgd resolved it (`LiveServer.describe()`)."""
        ...

    @property
    def external(self) -> bool:
        """Whether the run is on the clients' own model and data."""
        ...

    def classes(self, t: int, /) -> list[int]:
        """S_t, the classes of round t."""
        ...

    def round(
        self,
        t: int,
        messages: list[LiveMessage],
        /,
        evaluate: Evaluate | None = None,
    ) -> tuple[np.ndarray, tuple[float, float] | None]:
        """Aggregates and records round t: x_{t+1} and, on evaluation rounds,
        (accuracy, loss)."""
        ...


@dataclass(frozen=True)
class Registration:
    """A node's answer to the registration query: its worker index, role and
    message-signing key."""

    node_id: int
    worker: int
    role: str
    public_key: str
    torch: str = ""
    holdings: tuple[
        int, ...
    ] = ()  # the classes its own data holds (a task's run; desgd.flower.task)


@dataclass
class RoundTiming:
    """Seconds of one round as the ServerApp sees them."""

    round: int
    # configure_train to the end of aggregate_train: the clients' round trip
    # included
    wall: float
    decode: float  # replies to live messages
    # LiveServer.round: aggregation, server step, evaluation, recording
    live: float
    messages: int


class DesgdStrategy(FedAvg):
    """Sends x_t and S_t; aggregates with desgd's live server (see the module's
    docstring)."""

    def __init__(
        self,
        live: LiveRun,
        registrations: list[Registration],
        model: str,
        first_round: int = 0,
        task: str = "",
        evaluate: Evaluate | None = None,
    ) -> None:
        """`first_round` is R, the live round of Flower's round 1: 0 for a new
        run, `live.next_round` for a resumed one (the strategy then runs
        `live.rounds - R` Flower rounds). On the clients' own model and data,
        `task` names their task module (desgd.flower.task) and `evaluate` is
        the server's evaluation of x_{t+1}, (accuracy, loss)."""
        n = len(registrations)
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=n,
            min_evaluate_nodes=0,
            min_available_nodes=n,
            arrayrecord_key="arrays",
            configrecord_key="config",
        )
        self.live = live
        self.first_round = int(first_round)
        if not 0 <= self.first_round <= int(live.description["rounds"]):
            raise ValueError(
                f"first round {first_round} outside"
                f" 0...{live.description['rounds']}"
            )
        self.registrations = list(registrations)
        self.model = model
        self.task = task
        self.evaluate = evaluate
        if live.external and evaluate is None:
            raise ValueError(
                "a run on the clients' own model needs the server's evaluate"
            )
        self.timings: list[RoundTiming] = []
        self.evaluations: dict[int, tuple[float, float]] = {}
        d = live.description
        self.mode: str = d["mode"]
        self.honest: int = int(d["honest"])
        self.by_node = {r.node_id: r for r in self.registrations}
        self.by_worker = {r.worker: r for r in self.registrations}
        self._static = {
            r.worker: self._static_config(r) for r in self.registrations
        }
        self._round_started = time.perf_counter()

    # ---- rounds -------------------------------------------------------------

    @property
    def flower_rounds(self) -> int:
        """How many Flower rounds `start` must run: the live rounds
        R..<rounds."""
        return int(self.live.description["rounds"]) - self.first_round

    def live_round(self, server_round: int) -> int:
        """desgd's round t of Flower's round `server_round` (1-based):
        t = R + server_round − 1."""
        if server_round < 1:
            raise ValueError(
                f"Flower round {server_round}: Flower's rounds start at 1"
            )
        return self.first_round + server_round - 1

    def server_round(self, t: int) -> int:
        """Flower's round of desgd's round t (the inverse of `live_round`)."""
        if t < self.first_round:
            raise ValueError(
                f"round {t} precedes this run's first round {self.first_round}"
            )
        return t - self.first_round + 1

    # ---- configure ----------------------------------------------------------

    def _static_config(self, r: Registration) -> dict[str, Any]:
        """What a worker is told every round besides the round itself: the
        run's hyper-parameters, the data normalisation, and its data (honest:
        its classes and sample indices from desgd's partition; Byzantine: the
        label rule and sign-flip scale of the attack)."""
        d = self.live.description
        cfg: dict[str, Any] = {
            "worker": r.worker,
            "role": r.role,
            "mode": self.mode,
            "model": self.model,
            "runTag": d["runTag"],
            "batch": int(d["batch"]),
            "beta": float(d["beta"]),
            "weightDecay": float(d["weightDecay"]),
            "seed": int(d["seed"]),
            "classes-total": int(d["classes"]),
        }
        if not self.live.external:
            norm = d["normalization"]
            cfg["mean"], cfg["std"] = float(norm["mean"]), float(norm["std"])
        else:
            cfg["task"] = self.task
            cfg["workers"] = len(self.registrations)
        if r.worker < self.honest:
            holdings = [int(c) for c in d["holdings"][r.worker]]
            cfg["holdings"] = holdings
            if not self.live.external:
                per_class = d["partition"][r.worker]
                cfg["partition-classes"] = holdings
                cfg["partition-counts"] = [len(per_class[c]) for c in holdings]
                cfg["partition-indices"] = [
                    int(i) for c in holdings for i in per_class[c]
                ]
        else:
            cfg["byzantine-labels"] = str(d.get("byzantineLabels") or "true")
            scale = d.get("signflipScale")
            cfg["signflip-scale"] = float(scale) if scale is not None else 0.0
        return cfg

    def sends(self, worker: int, classes: list[int]) -> list[int]:
        """The classes worker `worker` sends in a round with class set
        `classes` (S_t): its held ones (honest), all of S_t (Byzantine), or
        [-1] in the SGD baseline."""
        if self.mode == "sgd":
            return [-1]
        if worker < self.honest:
            held = set(self._static[worker]["holdings"])
            return [c for c in classes if c in held]
        return list(classes)

    def configure_train(
        self,
        server_round: int,
        arrays: ArrayRecord,
        config: ConfigRecord,
        grid: Grid | None,
    ) -> Iterable[Message]:
        """One message per registered node (not a sample: every worker takes
        part in every round); the grid is not consulted (None will do)."""
        t = self.live_round(server_round)
        self._round_started = time.perf_counter()
        classes = self.live.classes(t)
        messages = []
        for r in sorted(self.registrations, key=lambda r: r.worker):
            cfg = ConfigRecord(
                {
                    **self._static[r.worker],
                    "round": t,
                    "classes": classes,
                    "send": self.sends(r.worker, classes),
                    "server-round": server_round,
                }
            )
            content = RecordDict(
                {self.arrayrecord_key: arrays, self.configrecord_key: cfg}
            )
            messages.append(
                Message(
                    content=content,
                    dst_node_id=r.node_id,
                    message_type=MessageType.TRAIN,
                    group_id=str(server_round),
                )
            )
        log(
            INFO,
            "desgd: round %d, S_t = %s, %d nodes",
            t,
            classes,
            len(messages),
        )
        return messages

    # ---- aggregate ----------------------------------------------------------

    def decode(self, t: int, replies: list[Message]) -> list[LiveMessage]:
        """The signed messages of round t from the nodes' replies, checked
        against the registrations: every node answered once, without error, as
        the worker it registered, with the momenta asked."""
        classes = self.live.classes(t)
        seen: dict[int, Message] = {}
        for reply in replies:
            node = reply.metadata.src_node_id
            r = self.by_node.get(node)
            if r is None:
                raise FederationError(
                    f"round {t}: a reply from node {node}, which did not"
                    " register"
                )
            if reply.has_error():
                raise FederationError(
                    f"round {t}: worker {r.worker} (node {node}) failed:"
                    f" {one_line(reply.error.reason)}"
                )
            if r.worker in seen:
                raise FederationError(
                    f"round {t}: two replies from worker {r.worker}"
                )
            seen[r.worker] = reply
        missing = sorted(set(self.by_worker) - set(seen))
        if missing:
            raise FederationError(
                f"round {t}: no reply from workers {missing} within the"
                " round's timeout"
            )
        out: list[LiveMessage] = []
        for worker in sorted(seen):
            try:
                out += self._decode_reply(t, worker, seen[worker], classes)
            except RecordError as e:
                raise FederationError(
                    f"round {t}: worker {worker}'s reply is malformed: {e}"
                ) from None
        return out

    def _decode_reply(
        self, t: int, worker: int, reply: Message, classes: list[int]
    ) -> list[LiveMessage]:
        """Worker `worker`'s messages of round t from its reply; a
        RecordError when a key holds another kind of value."""
        content = reply.content
        meta = content.config_records.get("desgd")
        momenta = content.array_records.get("momenta", ArrayRecord())
        if meta is None:
            raise FederationError(
                f"round {t}: worker {worker}'s reply has no 'desgd' config"
                " record"
            )
        if integer(meta, "worker") != worker:
            raise FederationError(
                f"round {t}: node {self.by_worker[worker].node_id}"
                f" registered as worker {worker} but replies as worker"
                f" {meta['worker']!s}"
            )
        sent = integers(meta, "classes", [])
        want = self.sends(worker, classes)
        if sorted(sent) != sorted(want):
            raise FederationError(
                f"round {t}: worker {worker} sent classes {sent}, expected"
                f" {want}"
            )
        signatures = byte_strings(meta, "signatures", [])
        if len(signatures) != len(sent):
            raise FederationError(
                f"round {t}: worker {worker} sent {len(sent)} momenta and "
                f"{len(signatures)} signatures"
            )
        out: list[LiveMessage] = []
        for c, sig in zip(sent, signatures):
            key = momentum_key(c)
            if key not in momenta:
                raise FederationError(
                    f"round {t}: worker {worker}'s reply lacks array"
                    f" '{key}'"
                )
            vector = array(momenta, key)
            if vector.dtype != np.float32 or vector.ndim != 1:
                raise FederationError(
                    f"round {t}: worker {worker}'s '{key}' is"
                    f" {vector.dtype} of shape {vector.shape}, not a flat"
                    " float32 vector"
                )
            out.append(
                LiveMessage(
                    worker=worker,
                    class_index=c,
                    vector=vector,
                    signature=bytes(sig),
                )
            )
        return out

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """x_{t+1} from desgd's live server; metrics: the evaluation on
        evaluation rounds, and timings."""
        t = self.live_round(server_round)
        start = time.perf_counter()
        messages = self.decode(t, list(replies))
        decoded = time.perf_counter()
        parameters, evaluation = self.live.round(
            t, messages, evaluate=self.evaluate
        )
        done = time.perf_counter()
        self.timings.append(
            RoundTiming(
                round=t,
                wall=done - self._round_started,
                decode=decoded - start,
                live=done - decoded,
                messages=len(messages),
            )
        )
        metrics = MetricRecord(
            {"messages": len(messages), "server-seconds": done - start}
        )
        if evaluation is not None:
            accuracy, loss = evaluation
            self.evaluations[t] = evaluation
            metrics["accuracy"] = accuracy
            metrics["loss"] = loss
            log(
                INFO,
                "desgd: after round %d accuracy %.4f, loss %.4f",
                t,
                accuracy,
                loss,
            )
        return ArrayRecord({PARAMETERS_KEY: Array(parameters)}), metrics

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """No federated evaluation: the live server evaluates x_{t+1} on the
        test set itself."""
        return None
