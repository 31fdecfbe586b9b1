"""Stopping and resuming a live federation run (docs/federation.md, "Stopping
and resuming").

A run's state is the server's (rebuilt by libDesgdLive.so from the trace,
traces/FORMAT.md) and the clients' class momenta, which the trace does not
hold: the ClientApp keeps them in a state file per worker after every round
(desgd.flower.client_app).

- ClientMomentaTests (no library): the state files, and a client asked for
  round t without its momenta after round t−1 of this run replies with an error
  naming the problem instead of restarting from zero; a client that continues
  from its file sends exactly the messages it would have sent.
- InProcessResumeTests (the library, with `resume`): DesgdStrategy, the real
  ClientApp in-process and LiveServer: 4 rounds stopped after 2 (the trace
  closed), resumed for rounds 2–3 by new clients that only have their state
  files, give a trace byte for byte identical to the uninterrupted run's.
- FederationResumeTests (the library, flwr, ~3 minutes): run_local stopped
  after round 1 as by Ctrl-C, then `--resume`: a 4-round trace that
  desgd.check_trace accepts, and no process left behind.

The library tests are skipped, saying why, when libDesgdLive.so is missing or
does not resume runs (its description has no `nextRound`); in CI (CI=true) that
is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    RecordDict,
)
from flwr.supercore.task_identity import TaskIdentity

from desgd import signing
from desgd.flower.client_app import app as client_app
from desgd.flower.client_app import load_state_file, state_files
from desgd.flower.strategy import DesgdStrategy, FederationError, Registration
from desgd.live import LiveServer, engine
from desgd.models import build_model, layout

import live_support
from live_support import CHECKER, CI, D_SMALL, LIBRARY, NOT_BUILT

TaskIdentity.run_id = 1  # what the SuperNode sets in a ClientApp process
TaskIdentity.node_id = 1
TaskIdentity.task_id = 1

_support: list[str | None] = []


def resume_unsupported() -> str | None:
    """None when the library resumes live runs; else why the library tests
    cannot run (computed once: a fresh live run is opened and its description
    asked for `nextRound`)."""
    if _support:
        return _support[0]
    reason: str | None = None
    if LIBRARY is None:
        reason = NOT_BUILT
    else:
        with tempfile.TemporaryDirectory() as d:
            key = signing.generate_key()
            request = {
                "trace": str(Path(d) / "probe.trace"),
                "options": [
                    "--model",
                    "small",
                    "--honest",
                    "1",
                    "--byzantine",
                    "0",
                    "--rounds",
                    "1",
                    "--partition",
                    "iid",
                ],
                "engine": engine(
                    "test",
                    "0",
                    torch.__version__,
                    "probe",
                    layout(build_model("small")),
                    [
                        {
                            "worker": 0,
                            "node": "1",
                            "publicKey": signing.public_key_hex(key),
                        }
                    ],
                ),
            }
            live = LiveServer.open(request)
            try:
                if "nextRound" not in live.description:
                    reason = (
                        f"{LIBRARY} does not resume live runs (its description"
                        " has no nextRound)"
                    )
            finally:
                live.close()
    if reason is not None and CI:
        raise AssertionError(f"CI=true: {reason}")
    _support.append(reason)
    return reason


class DescribedRun(live_support.DescribedRun):
    """The small run for 4 rounds, tagged `tag`."""

    def __init__(self, tag: bytes = b"run") -> None:
        super().__init__(rounds=4, tag=tag)

    def classes(self, t: int) -> list[int]:
        # classes of worker 0, so that worker 0 and the Byzantine send every
        # round
        return [t % 3]


class Workers:
    """Three workers' keys and per-node Flower contexts, with their state in
    `state_dir`."""

    ROLES = ["honest", "honest", "byzantine"]

    def __init__(self, directory: Path, state_dir: Path | None) -> None:
        self.directory = directory
        self.state_dir = state_dir
        self.keys = []
        for w in range(len(self.ROLES)):
            key = signing.generate_key()
            signing.save_private_key(key, directory / f"w{w}.key")
            self.keys.append(key)
        self.registrations = [
            Registration(
                100 + w, w, role, signing.public_key_hex(self.keys[w])
            )
            for w, role in enumerate(self.ROLES)
        ]
        self.restart()

    def restart(self, state_dir: Path | None = None) -> None:
        """New contexts (a new Flower run: `context.state` empty), state files
        in `state_dir`."""
        if state_dir is not None:
            self.state_dir = state_dir
        self.contexts: dict[int, Context] = {}
        for w, role in enumerate(self.ROLES):
            config: dict[str, Any] = {
                "partition-id": w,
                "key": str(self.directory / f"w{w}.key"),
                "role": role,
            }
            if self.state_dir is not None:
                config["state-dir"] = str(self.state_dir)
            self.contexts[100 + w] = Context(
                run_id=1,
                node_id=100 + w,
                state=RecordDict(),
                run_config={},
                node_config=config,
            )

    def round(
        self, strategy: DesgdStrategy, t: int, x: np.ndarray
    ) -> list[Message]:
        sent = strategy.configure_train(
            strategy.server_round(t),
            ArrayRecord({"x": Array(x)}),
            ConfigRecord(),
            None,
        )
        return [
            client_app(m, self.contexts[m.metadata.dst_node_id]) for m in sent
        ]


X = (np.random.default_rng(0).standard_normal(D_SMALL) * 0.05).astype(
    np.float32
)


class ClientMomentaTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)
        self.state = self.root / "state"
        self.workers = Workers(self.root, self.state)
        self.live = DescribedRun()
        self.strategy = DesgdStrategy(
            self.live, self.workers.registrations, "small"
        )

    def tearDown(self) -> None:
        self.dir.cleanup()

    def messages(self, t: int) -> list[tuple[int, int, bytes, bytes]]:
        replies = self.workers.round(self.strategy, t, X)
        return [
            (m.worker, m.class_index, m.vector.tobytes(), m.signature)
            for m in self.strategy.decode(t, replies)
        ]

    def test_state_files_after_every_round(self) -> None:
        self.messages(0)
        tag = self.live.description["runTag"]
        # the Byzantine one: the class it sent
        for w, held in [(0, [0, 1, 2]), (1, [3, 4, 5]), (2, [0])]:
            current, previous = state_files(self.state, w)
            m = load_state_file(current)
            self.assertEqual(
                (m.run_tag, m.round, m.worker, sorted(m.momenta)),
                (tag, 0, w, held),
            )
            self.assertFalse(previous.exists())
            ctx = self.workers.contexts[100 + w].state.array_records[
                "desgd-momenta"
            ]
            for c in held:
                np.testing.assert_array_equal(
                    m.momenta[c], ctx[str(c)].numpy()
                )
        self.messages(1)
        current, previous = state_files(self.state, 0)
        self.assertEqual(
            (load_state_file(current).round, load_state_file(previous).round),
            (1, 0),
        )
        self.assertEqual(
            [p.name for p in self.state.iterdir() if p.name.endswith(".tmp")],
            [],
        )

    def test_a_new_run_continues_from_the_state_files(self) -> None:
        """Rounds 0–2 in one Flower run against round 0, then rounds 1–2 by new
        contexts (a resumed run): the same momenta, hence the same messages and
        signatures."""
        uninterrupted = [self.messages(t) for t in range(3)]
        # the same workers (keys), another state dir
        self.workers.restart(self.root / "state-2")
        self.assertEqual(self.messages(0), uninterrupted[0])
        # a new Flower run: only the state files are left
        self.workers.restart()
        self.assertEqual(self.messages(1), uninterrupted[1])
        self.assertEqual(self.messages(2), uninterrupted[2])

    def test_stopped_while_the_clients_computed_a_round(self) -> None:
        """The clients finished round 1 but the server never recorded it: a run
        resumed at round 1 finds the momenta after round 0 in the previous
        state file, and recomputes round 1 identically."""
        self.messages(0)
        first = self.messages(1)
        self.workers.restart()
        self.assertEqual(self.messages(1), first)
        current, previous = state_files(self.state, 0)
        self.assertEqual(
            (load_state_file(current).round, load_state_file(previous).round),
            (1, 0),
        )
        self.workers.restart()
        # and again: round 0's momenta were kept
        self.assertEqual(self.messages(1), first)
        self.messages(2)
        self.assertEqual(
            (load_state_file(current).round, load_state_file(previous).round),
            (2, 1),
        )

    def refusal(self, t: int, worker: int = 0) -> str:
        replies = self.workers.round(self.strategy, t, X)
        reply = replies[worker]
        self.assertTrue(
            reply.has_error(), f"worker {worker} answered round {t}"
        )
        with self.assertRaises(FederationError) as e:
            self.strategy.decode(t, replies)
        reason = reply.error.reason
        assert reason is not None
        self.assertIn(reason, str(e.exception))
        self.assertNotIn("\n", reason)
        return reason

    def test_no_momenta_no_round(self) -> None:
        reason = self.refusal(1)
        self.assertEqual(
            reason,
            "worker 0 has no momenta after round 0 of this run (no state file"
            f" worker-0.npz in {self.state}): it cannot continue this run",
        )
        # nothing started from zero
        self.assertFalse(self.state.exists() and any(self.state.iterdir()))

    def test_momenta_of_another_round_are_refused(self) -> None:
        self.messages(0)
        self.workers.restart()
        reason = self.refusal(2)
        self.assertEqual(
            reason,
            "worker 0 has no momenta after round 1 of this run (state file"
            f" {self.state / 'worker-0.npz'} holds round 0): it cannot"
            " continue this run",
        )
        self.assertEqual(
            load_state_file(state_files(self.state, 0)[0]).round, 0
        )  # left as it was

    def test_momenta_of_another_run_are_refused(self) -> None:
        self.messages(0)
        self.workers.restart()
        self.live = DescribedRun(b"another run")
        self.strategy = DesgdStrategy(
            self.live, self.workers.registrations, "small"
        )
        reason = self.refusal(1)
        self.assertIn("holds another run's momenta (run tag ", reason)
        self.assertTrue(
            reason.endswith(": it cannot continue this run"), reason
        )
        # round 0 of the other run starts from zero
        self.assertEqual(self.messages(0)[0][0], 0)

    def test_without_a_state_dir_only_the_context_holds_them(self) -> None:
        self.workers.state_dir = None
        self.workers.restart()
        self.messages(0)
        self.messages(1)  # from context.state
        self.workers.restart()
        self.assertEqual(
            self.refusal(2),
            "worker 0 has no momenta after round 1 of this run (none in its"
            " context and no state-dir in its node config): it cannot continue"
            " this run",
        )

    def test_round_mapping(self) -> None:
        strategy = DesgdStrategy(
            self.live, self.workers.registrations, "small", first_round=3
        )
        self.assertEqual(
            (
                strategy.flower_rounds,
                strategy.live_round(1),
                strategy.server_round(3),
            ),
            (1, 3, 1),
        )
        self.assertEqual(self.strategy.live_round(1), 0)
        with self.assertRaises(ValueError):
            DesgdStrategy(
                self.live, self.workers.registrations, "small", first_round=5
            )
        with self.assertRaises(ValueError):
            strategy.server_round(2)


class ServerAppConfigTests(unittest.TestCase):
    """The ServerApp's run config `resume`, before any node or library is
    involved."""

    def run_config(self, **config: Any) -> str:
        from desgd.flower.server_app import _run

        context = Context(
            run_id=1,
            node_id=0,
            state=RecordDict(),
            node_config={},
            run_config={
                "options": "--model small --honest 2 --byzantine 0",
                **config,
            },
        )
        with self.assertRaises((FederationError, ValueError)) as e:
            # (refused before the grid is used)
            _run(None, context, {})  # type: ignore[arg-type]
        return str(e.exception)

    def test_resume_needs_the_trace(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            trace = str(Path(d) / "gone.trace")
            self.assertEqual(
                self.run_config(trace=trace, resume=True),
                f"resume: there is no trace {trace} to continue",
            )
            self.assertIn(
                "resume and overwrite exclude each other",
                self.run_config(trace=trace, resume=True, overwrite=True),
            )
            self.assertIn(
                "'resume' must be true or false",
                self.run_config(trace=trace, resume="yes"),
            )


OPTIONS = [
    "--model",
    "small",
    "--honest",
    "2",
    "--byzantine",
    "1",
    "--agg",
    "trmean",
    "--attack",
    "signflip",
    "--partition",
    "iid",
    "--rounds",
    "4",
    "--eval-every",
    "2",
    "--seed",
    "5",
    "--batch",
    "16",
]


class InProcessResumeTests(unittest.TestCase):
    """The live server, the strategy and the ClientApp in one process (no
    Flower transport)."""

    def setUp(self) -> None:
        reason = resume_unsupported()
        if reason is not None:
            self.skipTest(reason)
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)
        self.workers = Workers(self.root, self.root / "state")
        self.contexts: dict[int, Context] = {}
        self.run_tag = ""

    def tearDown(self) -> None:
        self.dir.cleanup()

    def request(
        self, trace: Path, nodes: list[Registration], resume: bool = False
    ) -> dict[str, Any]:
        r: dict[str, Any] = {
            "trace": str(trace),
            "options": OPTIONS,
            "record": "full",
            "keyframeEvery": 100,
            "engine": engine(
                "test",
                "0",
                torch.__version__,
                "unit test",
                layout(build_model("small")),
                [
                    {
                        "worker": n.worker,
                        "node": str(n.node_id),
                        "publicKey": n.public_key,
                    }
                    for n in nodes
                ],
            ),
        }
        if resume:
            r["resume"] = True
        return r

    def run_rounds(
        self,
        trace: Path,
        rounds: int | None,
        resume: bool = False,
        nodes: list[Registration] | None = None,
    ) -> tuple[int, int]:
        """Opens (or resumes) the run, executes `rounds` rounds (None: all that
        remain), closes it. Returns the first round executed and the number
        executed."""
        nodes = nodes or self.workers.registrations
        live = LiveServer.open(self.request(trace, nodes, resume))
        try:
            strategy = DesgdStrategy(
                live, nodes, "small", first_round=live.next_round
            )
            x = live.parameters()
            count = strategy.flower_rounds if rounds is None else rounds
            for s in range(1, count + 1):
                sent = strategy.configure_train(
                    s, ArrayRecord({"x": Array(x)}), ConfigRecord(), None
                )
                replies = [
                    client_app(m, self.contexts[m.metadata.dst_node_id])
                    for m in sent
                ]
                arrays, _ = strategy.aggregate_train(s, replies)
                assert arrays is not None
                x = arrays["x"].numpy()
            self.run_tag = live.run_tag
            return live.next_round, count
        finally:
            live.close()

    def use(self, nodes: list[Registration]) -> None:
        """Maps the nodes' ids to the workers' current contexts (node ids
        change when a run restarts)."""
        by_worker = {
            int(c.node_config["partition-id"]): c
            for c in self.workers.contexts.values()
        }
        self.contexts = {n.node_id: by_worker[n.worker] for n in nodes}

    def test_resumed_trace_is_the_uninterrupted_one(self) -> None:
        whole, cut = self.root / "whole.trace", self.root / "cut.trace"
        self.use(self.workers.registrations)
        self.workers.restart(self.root / "state-whole")
        self.assertEqual(self.run_rounds(whole, None), (0, 4))
        whole_tag = self.run_tag

        self.workers.restart(self.root / "state-cut")
        self.use(self.workers.registrations)
        self.assertEqual(self.run_rounds(cut, 2), (0, 2))
        from desgd.trace import Trace

        with Trace(str(cut)) as tr:
            self.assertTrue(tr.finished)
            self.assertEqual(tr.round_count, 2)
        stopped = cut.read_bytes()

        # a new start: new Flower contexts (only the state files are left) and
        # new node ids
        self.workers.restart()
        renumbered = [
            Registration(500 + r.worker, r.worker, r.role, r.public_key)
            for r in self.workers.registrations
        ]
        self.use(renumbered)
        with LiveServer.open(
            self.request(cut, renumbered, resume=True)
        ) as live:
            self.assertEqual((live.next_round, live.rounds), (2, 4))
            with Trace(str(cut)) as tr:  # unchanged until closed
                self.assertEqual(tr.round_count, 2)
            self.assertEqual(cut.read_bytes(), stopped)
            # the original run's tag (same header)
            self.assertEqual(live.run_tag, whole_tag)
        self.assertEqual(
            self.run_rounds(cut, None, resume=True, nodes=renumbered), (2, 2)
        )
        a, b = cut.read_bytes(), whole.read_bytes()
        differ = next(
            (i for i, (x, y) in enumerate(zip(a, b)) if x != y),
            min(len(a), len(b)),
        )
        self.assertTrue(
            a == b,
            f"the resumed trace ({len(a)} bytes) differs from the"
            f" uninterrupted one ({len(b)} bytes) from byte {differ}",
        )
        check = subprocess.run(
            [sys.executable, str(CHECKER), str(cut)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_resume_without_the_clients_momenta_records_nothing(self) -> None:
        cut = self.root / "cut.trace"
        self.use(self.workers.registrations)
        self.run_rounds(cut, 2)
        stopped = cut.read_bytes()
        # the clients lost their state files
        self.workers.restart(self.root / "empty-state")
        self.use(self.workers.registrations)
        with self.assertRaisesRegex(
            FederationError,
            r"round 2: worker 0 .* has no momenta after round 1 of this run",
        ):
            self.run_rounds(cut, None, resume=True)
        self.assertEqual(cut.read_bytes(), stopped)

    def test_resume_refuses_other_keys_and_a_missing_trace(self) -> None:
        from desgd.live import DesgdError

        cut = self.root / "cut.trace"
        self.use(self.workers.registrations)
        self.run_rounds(cut, 1)
        impostor = [
            Registration(
                r.node_id,
                r.worker,
                r.role,
                (
                    signing.public_key_hex(signing.generate_key())
                    if r.worker == 0
                    else r.public_key
                ),
            )
            for r in self.workers.registrations
        ]
        with self.assertRaises(DesgdError) as e:
            LiveServer.open(self.request(cut, impostor, resume=True))
        self.assertEqual(e.exception.status, 2)
        with self.assertRaises(DesgdError):
            LiveServer.open(
                self.request(
                    self.root / "none.trace",
                    self.workers.registrations,
                    resume=True,
                )
            )
        self.assertFalse((self.root / "none.trace").exists())


def run_local(
    *args: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    """run_local, with the Flower processes importing the desgd package this
    test imports (an absolute PYTHONPATH: they run in the run directory, where
    a relative one would find the installed package)."""
    import desgd

    source = str(Path(desgd.__file__).resolve().parents[1])
    path = os.pathsep.join(
        [
            source,
            *[
                p
                for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                if p
            ],
        ]
    )
    return subprocess.run(
        [sys.executable, "-m", "desgd.flower.run_local", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, DESGD_LIBRARY=str(LIBRARY), PYTHONPATH=path),
    )


def processes_naming(run_dir: Path) -> list[str]:
    out = subprocess.run(
        ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        line
        for line in out.splitlines()
        if str(run_dir) in line and "ps -eo" not in line
    ]


class FederationResumeTests(unittest.TestCase):
    """A real local federation (SuperLink, SuperNodes, `flwr run`), stopped and
    resumed."""

    def setUp(self) -> None:
        reason = resume_unsupported()
        if reason is not None:
            self.skipTest(reason)
        if (
            shutil.which(
                "flower-superlink", path=str(Path(sys.executable).parent)
            )
            is None
        ):
            if CI:
                self.fail(
                    "flwr is not installed in this interpreter's environment"
                )
            self.skipTest(
                "flwr is not installed in this interpreter's environment"
            )

    def test_stop_after_round_1_then_resume(self) -> None:
        options = (
            "--model small --honest 3 --byzantine 1 --agg trmean --attack alie"
            " --partition iid --rounds 4 --eval-every 2"
        )
        with tempfile.TemporaryDirectory() as d:
            trace, run_dir = Path(d) / "run.trace", Path(d) / "run"
            r = run_local(
                "--resume",
                "--out",
                str(trace),
                "--run-dir",
                str(run_dir),
                "--options",
                options,
            )
            self.assertEqual(r.returncode, 1, r.stdout[-2000:])
            self.assertIn(
                "there is no trace", r.stderr.strip().splitlines()[-1]
            )

            r = run_local(
                "--out",
                str(trace),
                "--run-dir",
                str(run_dir),
                "--timeout",
                "300",
                "--sign",
                "--stop-after",
                "1",
                "--options",
                options,
            )
            self.assertEqual(
                r.returncode, 130, r.stderr[-2000:] + r.stdout[-3000:]
            )
            self.assertIn("stopped after round 1 (--stop-after)", r.stderr)
            self.assertEqual(processes_naming(run_dir), [])
            from desgd.trace import Trace

            with Trace(str(trace)) as tr:
                # closed by the ServerApp on SIGTERM
                self.assertTrue(tr.finished)
                self.assertEqual(tr.round_count, 2)
            # round 2 may have been computed (or its file half replaced), not
            # recorded
            for w in range(3):
                held = [
                    load_state_file(f, arrays=False).round
                    for f in state_files(run_dir / "client-state", w)
                    if f.exists()
                ]
                self.assertIn(
                    1, held, f"worker {w}'s state files hold rounds {held}"
                )

            r = run_local(
                "--resume",
                "--out",
                str(trace),
                "--run-dir",
                str(run_dir),
                "--timeout",
                "300",
                "--sign",
                "--options",
                options,
            )
            self.assertEqual(
                r.returncode, 0, r.stderr[-2000:] + r.stdout[-3000:]
            )
            self.assertIn("desgd federation finished: 2 rounds", r.stdout)
            self.assertIn("(resumed at round 2)", r.stdout)
            self.assertIn("resuming at round 2", r.stdout)
            self.assertEqual(processes_naming(run_dir), [])
            self.assertTrue(
                (run_dir / "logs").is_dir() and (run_dir / "logs-2").is_dir()
            )
            check = subprocess.run(
                [
                    sys.executable,
                    str(CHECKER),
                    str(trace),
                    "--trust",
                    str(run_dir / "keys" / "server.key.pub"),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            with Trace(str(trace)) as tr:
                self.assertTrue(tr.finished)
                self.assertEqual(tr.round_count, 4)
                self.assertIn("evaluation", tr.round(3))


if __name__ == "__main__":
    unittest.main()
