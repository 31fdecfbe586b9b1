"""The clients' own model and data through desgd's Flower apps, in-process: a
task module (blobs_task: a perceptron on three Gaussian blobs), the real
ClientApp answering the registration query with the classes its data holds and
training the task's model, DesgdStrategy carrying the rounds, and the real live
server (libDesgdLive.so) aggregating, stepping, evaluating with the task's test
set and recording. The trace then verifies with `desgd-replay --verify`. Needs
the library and the command-line tools beside it; in CI (CI=true) their absence
fails.
"""

import subprocess
import tempfile
import unittest
from pathlib import Path
from typing import Any

from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    RecordDict,
)
from flwr.supercore.task_identity import TaskIdentity

from desgd import signing
from desgd.flower.client_app import app as client_app
from desgd.flower.records import integer, integers, text
from desgd.flower.server_app import task_request
from desgd.flower.strategy import DesgdStrategy, Registration
from desgd.live import LiveServer

from live_support import LIBRARY, needs_library

TaskIdentity.run_id = 1  # what the SuperNode sets in a ClientApp process
TaskIdentity.node_id = 1
TaskIdentity.task_id = 1

ROLES = ["honest", "honest", "honest", "honest", "byzantine"]
OPTIONS = [
    "--honest",
    "4",
    "--byzantine",
    "1",
    "--agg",
    "cclip",
    "--attack",
    "labelflip",
    "--rounds",
    "6",
    "--eval-every",
    "3",
    "--batch",
    "8",
    "--lr",
    "0.5",
    "--threads",
    "1",
]


@needs_library
class TaskRoundTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.contexts: dict[int, Context] = {}
        for w, role in enumerate(ROLES):
            path = Path(self.dir.name) / f"w{w}.key"
            signing.save_private_key(signing.generate_key(), path)
            self.contexts[100 + w] = Context(
                run_id=1,
                node_id=100 + w,
                state=RecordDict(),
                run_config={"task": "blobs_task"},
                node_config={
                    "partition-id": w,
                    "num-partitions": len(ROLES),
                    "key": str(path),
                    "role": role,
                },
            )

    def tearDown(self) -> None:
        self.dir.cleanup()

    def register(self) -> list[Registration]:
        out = []
        for node, context in self.contexts.items():
            query = Message(
                RecordDict(
                    {"config": ConfigRecord({"kind": "desgd-registration"})}
                ),
                dst_node_id=node,
                message_type=MessageType.QUERY,
                group_id="registration",
            )
            r = client_app(query, context).content.config_records[
                "registration"
            ]
            out.append(
                Registration(
                    node,
                    integer(r, "worker"),
                    text(r, "role"),
                    text(r, "publicKey"),
                    holdings=tuple(integers(r, "holdings", [])),
                )
            )
        return out

    def test_task_federation_in_process(self) -> None:
        registrations = self.register()
        self.assertEqual(
            [r.holdings for r in registrations],
            [(0, 1), (1, 2), (0, 2), (0, 1, 2), ()],
        )
        trace = str(Path(self.dir.name) / "task.trace")
        request: dict[str, Any] = {
            "trace": trace,
            "options": OPTIONS,
            "keyframeEvery": 3,
        }
        initial, evaluate = task_request(request, "blobs_task", registrations)
        self.assertEqual(
            request["clients"]["holdings"], [[0, 1], [1, 2], [0, 2], [0, 1, 2]]
        )
        with LiveServer.open(request, initial_parameters=initial) as live:
            self.assertTrue(live.external)
            strategy = DesgdStrategy(
                live, registrations, "", task="blobs_task", evaluate=evaluate
            )
            x = ArrayRecord({"x": Array(live.parameters())})
            for server_round in range(1, live.rounds + 1):
                sent = strategy.configure_train(
                    server_round, x, ConfigRecord(), None
                )
                replies = [
                    client_app(m, self.contexts[m.metadata.dst_node_id])
                    for m in sent
                ]
                after, metrics = strategy.aggregate_train(
                    server_round, replies
                )
                assert after is not None and metrics is not None
                x = after
        self.assertEqual(sorted(strategy.evaluations), [2, 5])
        self.assertEqual(len(strategy.timings), 6)
        assert LIBRARY is not None
        verify = subprocess.run(
            [str(LIBRARY.parent / "desgd-replay"), trace, "--verify"],
            capture_output=True,
            text=True,
        )
        self.assertEqual(verify.returncode, 0, verify.stderr)
        audit = subprocess.run(
            [str(LIBRARY.parent / "desgd-audit"), trace],
            capture_output=True,
            text=True,
        )
        self.assertEqual(audit.returncode, 0, audit.stderr)
        self.assertIn("three Gaussian blobs", audit.stdout)
        self.assertIn("verified against 5 registered keys", audit.stdout)


if __name__ == "__main__":
    unittest.main()
