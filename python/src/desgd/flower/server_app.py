"""The ServerApp: registers the SuperNodes, opens desgd's live server, runs
DesgdStrategy, closes the trace.

Run config (pyproject's [tool.flwr.app.config], or `flwr run --run-config`):
  options        desgd-record's simulation options, one string ("--model small
                 --agg trmean ...")
  trace          where the trace is written (absolute path; the SuperLink's
                 machine)
  overwrite      replace an existing trace (default false: refuse)
  resume         continue the run recorded in `trace` after its last complete
                 round R (default false): the live server rebuilds its state
                 from the trace, the rounds R..<rounds run as Flower rounds
                 1..rounds−R, and the clients bring their momenta of round R−1
                 from their state files (client_app.py; docs/federation.md)
  record         full | decisions | ... (desgd-record's --record),
                 keyframe-every N
  server-key     OpenSSH Ed25519 key that signs the trace ("" = unsigned)
  summary        a JSON file for the federation's own summary ("" = none):
                 registrations, per-round times, evaluations, the live server's
                 close summary
  nodes-timeout, round-timeout
                 seconds to wait for the SuperNodes to connect / for a round's
                 replies
  task           the clients' own model and data: a task module
                 (desgd.flower.task; "" = desgd's CNN on Fashion-MNIST);
                 options then leave out --model, --data and --partition

The trace is closed in every case (footer and final signature after the
completed rounds), so a federation that fails at round 7 leaves an auditable
record of rounds 0–6.
"""

from __future__ import annotations

import json
import os
import time
from logging import ERROR, INFO
from pathlib import Path
from collections.abc import Callable
from typing import Any

import flwr
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    RecordDict,
)
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log

from desgd.flower.options import parse_options, split_options
from desgd.flower.records import RecordError, integer, integers, text
from desgd.flower.strategy import (
    DesgdStrategy,
    FederationError,
    Registration,
    one_line,
)
from desgd.live import LiveServer, engine

__all__ = ["app", "register_nodes", "task_request", "wait_for_nodes"]

app = ServerApp()


def wait_for_nodes(grid: Grid, count: int, timeout: float) -> list[int]:
    """The ids of `count` connected nodes, waiting at most `timeout` seconds
    (Flower's own sampling waits forever)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= count:
            return nodes
        if time.monotonic() > deadline:
            raise FederationError(
                f"{len(nodes)} of {count} SuperNodes connected within"
                f" {timeout:.0f} s"
            )
        time.sleep(1)


def register_nodes(
    grid: Grid, nodes: list[int], timeout: float
) -> list[Registration]:
    """Asks every node who it is (a query message); each answers its worker
    index, role and key."""
    messages = [
        Message(
            RecordDict(
                {"config": ConfigRecord({"kind": "desgd-registration"})}
            ),
            dst_node_id=n,
            message_type=MessageType.QUERY,
            group_id="registration",
        )
        for n in nodes
    ]
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    out: list[Registration] = []
    for reply in replies:
        node = reply.metadata.src_node_id
        if reply.has_error():
            raise FederationError(
                f"registration: node {node} failed:"
                f" {one_line(reply.error.reason)}"
            )
        r = reply.content.config_records.get("registration")
        if r is None:
            raise FederationError(
                f"registration: node {node}'s answer has no 'registration'"
                " config record"
            )
        try:
            out.append(
                Registration(
                    node_id=node,
                    worker=integer(r, "worker"),
                    role=text(r, "role"),
                    public_key=text(r, "publicKey"),
                    torch=text(r, "torch", ""),
                    holdings=tuple(integers(r, "holdings", [])),
                )
            )
        except RecordError as e:
            raise FederationError(
                f"registration: node {node}'s answer is malformed: {e}"
            ) from None
    answered = {r.node_id for r in out}
    if answered != set(nodes):
        raise FederationError(
            "registration: no answer from nodes"
            f" {sorted(set(nodes) - answered)} within {timeout:.0f} s"
        )
    return sorted(out, key=lambda r: r.worker)


def task_request(
    request: dict[str, Any], task_name: str, registrations: list[Registration]
) -> tuple[Any, Callable[[Any], tuple[float, float]]]:
    """Completes a live request for the clients' own model and data
    (desgd.flower.task): the clients' declared classes and holdings, the engine
    with the task's model layout and data; returns x_0 (the task's model's
    parameters) and the server's evaluation of x_{t+1} on the task's test
    set."""
    import torch

    from desgd.flower.task import evaluate as task_evaluation
    from desgd.flower.task import load_task
    from desgd.models import layout
    from desgd.torch_client import flatten_parameters

    task = load_task(task_name)
    module = task.model()
    holdings = [list(r.holdings) for r in registrations if r.role == "honest"]
    if any(not h for h in holdings):
        raise FederationError(
            "an honest worker registered no classes: is the task in the run"
            " config of every SuperNode's app?"
        )
    request["clients"] = {"classes": task.classes, "holdings": holdings}
    nodes = [
        {"worker": r.worker, "node": str(r.node_id), "publicKey": r.public_key}
        for r in registrations
    ]
    request["engine"] = engine(
        "flower",
        flwr.__version__,
        torch.__version__,
        f"{task.data} (task {task_name})",
        layout(module),
        nodes,
    )

    def evaluate(x: Any) -> tuple[float, float]:
        return task_evaluation(task, x)

    return flatten_parameters(module), evaluate


def _check_registrations(
    registrations: list[Registration], expected: int, role: Any
) -> None:
    workers = [r.worker for r in registrations]
    if workers != list(range(expected)):
        raise FederationError(
            f"the SuperNodes are workers {workers}, expected 0..{expected - 1}"
            " once each (--node-config partition-id)"
        )
    for r in registrations:
        if r.role != role(r.worker):
            raise FederationError(
                f"worker {r.worker} was started as {r.role}, the run makes it"
                f" {role(r.worker)}"
            )


def _config(context: Context, key: str, default: Any) -> Any:
    return context.run_config.get(key, default)


def _flag(value: Any, key: str) -> bool:
    """A boolean run-config value (TOML true/false; "true"/"false" from a
    --run-config string)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(
        f"run config '{key}' must be true or false, got {value!r}"
    )


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Registration, the live server, the rounds; the trace is closed and the
    summary written whatever happens (the summary's `failure` is what the
    launcher reports)."""
    summary: dict[str, Any] = {}
    summary_path = str(_config(context, "summary", ""))
    started = time.perf_counter()
    try:
        _run(grid, context, summary)
    except BaseException as e:
        summary["failure"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        summary.setdefault("failure", None)
        summary["seconds"] = time.perf_counter() - started
        if summary_path:
            Path(summary_path).write_text(json.dumps(summary, indent=1) + "\n")


def _run(grid: Grid, context: Context, summary: dict[str, Any]) -> None:
    options = split_options(str(_config(context, "options", "")))
    shape = parse_options(options)
    trace = str(_config(context, "trace", ""))
    if not trace or not os.path.isabs(trace):
        raise ValueError(
            f"run config 'trace' must be an absolute path, got {trace!r}"
        )
    resume = _flag(_config(context, "resume", False), "resume")
    overwrite = _flag(_config(context, "overwrite", False), "overwrite")
    if resume and overwrite:
        raise ValueError(
            "run config: resume and overwrite exclude each other (a resumed"
            " run continues its trace)"
        )
    if resume and not os.path.isfile(trace):
        raise FederationError(f"resume: there is no trace {trace} to continue")
    nodes_timeout = float(_config(context, "nodes-timeout", 120))
    round_timeout = float(_config(context, "round-timeout", 600))
    started = time.perf_counter()

    nodes = wait_for_nodes(grid, shape.nodes, nodes_timeout)
    if len(nodes) != shape.nodes:
        raise FederationError(
            f"{len(nodes)} SuperNodes connected, the run needs {shape.nodes}"
        )
    registrations = register_nodes(grid, nodes, nodes_timeout)
    _check_registrations(registrations, shape.nodes, shape.role)
    registered = time.perf_counter()
    summary["registrations"] = [r.__dict__ for r in registrations]
    summary["registrationSeconds"] = registered - started
    log(
        INFO,
        "desgd: %d workers registered in %.1f s",
        len(registrations),
        registered - started,
    )

    import torch

    from desgd.models import build_model, layout

    task_name = str(_config(context, "task", ""))
    request: dict[str, Any] = {
        "trace": trace,
        "overwrite": overwrite,
        "options": options,
        "record": str(_config(context, "record", "full")),
        "keyframeEvery": int(_config(context, "keyframe-every", 100)),
    }
    initial = None
    evaluate: Callable[[Any], tuple[float, float]] | None = None
    if task_name:
        initial, evaluate = task_request(request, task_name, registrations)
    else:
        request["engine"] = engine(
            "flower",
            flwr.__version__,
            torch.__version__,
            "Fashion-MNIST (Debian dataset-fashion-mnist) on every SuperNode;"
            " honest clients train on desgd's partition indices, Byzantine"
            " clients on the whole training set",
            layout(build_model(shape.model)),
            [
                {
                    "worker": r.worker,
                    "node": str(r.node_id),
                    "publicKey": r.public_key,
                }
                for r in registrations
            ],
        )
    server_key = str(_config(context, "server-key", ""))
    if server_key:
        request["signingKey"] = server_key
    if resume:
        request["resume"] = True
    live = LiveServer.open(request, initial_parameters=initial)
    strategy = None
    failure: BaseException | None = None
    try:
        d = live.description
        summary["describe"] = {k: v for k, v in d.items() if k != "partition"}
        if (
            d["byzantine"] > 0
            and bool(d.get("clientSideAttack")) != shape.client_side_attack
        ):
            raise FederationError(
                f"the attack {d['attack']} is"
                f" {'client' if d.get('clientSideAttack') else 'server'}-side,"
                " the launcher assumed otherwise"
            )
        first = live.next_round if resume else 0
        if not resume and live.next_round != 0:
            raise FederationError(
                f"the live server starts a new run at round {live.next_round},"
                " not 0"
            )
        summary["firstRound"] = first
        if resume:
            log(
                INFO,
                "desgd: resuming at round %d of %d (trace %s, run tag %s…)",
                first,
                live.rounds,
                trace,
                live.run_tag[:16],
            )
        strategy = DesgdStrategy(
            live,
            registrations,
            shape.model,
            first_round=first,
            task=task_name,
            evaluate=evaluate,
        )
        # x_0, or x_R when resumed
        x = ArrayRecord({"x": Array(live.parameters())})
        if strategy.flower_rounds == 0:
            log(
                INFO,
                "desgd: the trace already holds all %d rounds: nothing to run",
                live.rounds,
            )
        else:
            strategy.start(
                grid=grid,
                initial_arrays=x,
                num_rounds=strategy.flower_rounds,
                timeout=round_timeout,
            )
    except BaseException as e:
        failure = e
        raise
    finally:
        if strategy is not None:
            summary["rounds"] = [t.__dict__ for t in strategy.timings]
            summary["evaluations"] = {
                str(t): {"accuracy": a, "loss": l}
                for t, (a, l) in strategy.evaluations.items()
            }
        try:
            closed = live.close()
        except Exception as e:  # noqa: BLE001 (reported, and raised when
            # nothing else failed)
            log(ERROR, "desgd: closing the trace failed: %s", e)
            if failure is None:
                raise
            closed = {"error": str(e)}
        summary["close"] = closed
        log(INFO, "desgd: trace %s closed: %s", trace, json.dumps(closed))
