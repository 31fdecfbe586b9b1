"""A live run on the clients' own model and data: a torch module desgd does not
know (a two-layer perceptron), a three-class data set of the clients' own
(Gaussian blobs drawn here), the classes each client holds as the clients
declare them, x_0 from torch's initialisation and the evaluation by the caller
in torch. desgd aggregates, steps and records; the trace then passes
`desgd-replay --verify`, `desgd-audit` and desgd.check_trace like a run on
desgd's own model. Needs libDesgdLive.so and the command-line tools beside it
(`swift build -c release`); in CI (CI=true) their absence fails.
"""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from torch import nn  # noqa: F401 (annotations)
from torch.nn import functional as F

from desgd import signing
from desgd.live import DesgdError, LiveServer, Message, engine
from desgd.models import layout
from desgd.torch_client import (
    ClassMomentumClient,
    Group,
    flatten_parameters,
    load_flat_parameters,
)

import blobs_task
from blobs_task import CLASSES, HOLDINGS, blobs

from live_support import LIBRARY, needs_library

OPTIONS = [
    "--honest",
    str(len(HOLDINGS)),
    "--byzantine",
    "1",
    "--agg",
    "trmean",
    "--attack",
    "alie",
    "--rounds",
    "30",
    "--eval-every",
    "10",
    "--seed",
    "5",
    "--batch",
    "16",
    "--lr",
    "0.5",
    "--threads",
    "1",
]


def perceptron() -> nn.Module:
    return blobs_task.model()


@needs_library
class OwnModelTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.trace = str(Path(self.dir.name) / "own.trace")
        self.keys = [signing.generate_key() for _ in HOLDINGS]
        self.module = perceptron()
        nodes = [
            {
                "worker": w,
                "node": str(100 + w),
                "publicKey": signing.public_key_hex(k),
            }
            for w, k in enumerate(self.keys)
        ]
        self.request = {
            "trace": self.trace,
            "options": OPTIONS,
            "keyframeEvery": 2,
            "engine": engine(
                "test",
                "0",
                torch.__version__,
                "three Gaussian blobs in 4 dimensions",
                layout(self.module),
                nodes,
            ),
            "clients": {"classes": CLASSES, "holdings": HOLDINGS},
        }
        self.test_x, self.test_y = blobs(100, seed=99)

    def tearDown(self) -> None:
        self.dir.cleanup()

    def evaluate(self, x: np.ndarray) -> tuple[float, float]:
        """The caller's evaluation of x_{t+1} on its own test set:
        (accuracy, loss)."""
        load_flat_parameters(self.module, x)
        with torch.no_grad():
            logits = self.module(self.test_x)
            loss = F.cross_entropy(logits, self.test_y).item()
            accuracy = (logits.argmax(1) == self.test_y).float().mean().item()
        return accuracy, loss

    def clients(self, live: LiveServer) -> list[ClassMomentumClient]:
        d = live.description
        out = []
        for w, held in enumerate(HOLDINGS):
            x, y = blobs_task.client_data(w, len(HOLDINGS))
            groups = {c: Group(x[y == c], y[y == c]) for c in held}
            out.append(
                ClassMomentumClient(
                    module=perceptron(),
                    groups=groups,
                    batch=int(d["batch"]),
                    beta=float(d["beta"]),
                    weight_decay=float(d["weightDecay"]),
                    seed=int(d["seed"]),
                    worker=w,
                )
            )
        return out

    def run_rounds(self, live: LiveServer) -> list[tuple[float, float]]:
        clients = self.clients(live)
        x = live.parameters()
        evaluations = []
        for t in range(live.rounds):
            classes = live.classes(t)
            messages = []
            for w, client in enumerate(clients):
                sent = client.step(
                    t, x, [c for c in classes if c in HOLDINGS[w]]
                )
                for c, v in sent.items():
                    messages.append(
                        Message(
                            w,
                            c,
                            v,
                            signing.sign_message(
                                self.keys[w], live.run_tag, t, c, w, v
                            ),
                        )
                    )
            x, evaluation = live.round(t, messages, evaluate=self.evaluate)
            if evaluation is not None:
                evaluations.append(evaluation)
        return evaluations

    def tool(self, name: str) -> str:
        assert LIBRARY is not None
        return str(LIBRARY.parent / name)

    def test_run_records_verifies_and_audits(self) -> None:
        x0 = flatten_parameters(self.module)
        with LiveServer.open(self.request, initial_parameters=x0) as live:
            self.assertTrue(live.external)
            self.assertEqual(live.parameter_count, 4 * 8 + 8 + 8 * 3 + 3)
            np.testing.assert_array_equal(live.parameters(), x0)
            self.assertIsNone(live.description.get("partition"))
            evaluations = self.run_rounds(live)
        self.assertEqual(len(evaluations), 3)
        # the blobs separate: training works
        self.assertGreater(evaluations[-1][0], 0.6, evaluations)
        verify = subprocess.run(
            [self.tool("desgd-replay"), self.trace, "--verify"],
            capture_output=True,
            text=True,
        )
        self.assertEqual(verify.returncode, 0, verify.stderr)
        self.assertIn("verified 30 rounds", verify.stdout)
        audit = subprocess.run(
            [self.tool("desgd-audit"), self.trace],
            capture_output=True,
            text=True,
        )
        self.assertEqual(audit.returncode, 0, audit.stderr)
        self.assertIn(
            "90 client messages verified against 4 registered keys",
            audit.stdout,
        )
        self.assertIn("external (67 parameters)", audit.stdout)
        check = subprocess.run(
            [sys.executable, "-m", "desgd.check_trace", self.trace],
            capture_output=True,
            text=True,
        )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_evaluation_failure_undoes_the_round(self) -> None:
        with LiveServer.open(
            self.request, initial_parameters=flatten_parameters(self.module)
        ) as live:
            clients = self.clients(live)
            x = live.parameters()
            for t in range(10):
                classes = live.classes(t)
                messages = [
                    Message(
                        w,
                        c,
                        v,
                        signing.sign_message(
                            self.keys[w], live.run_tag, t, c, w, v
                        ),
                    )
                    for w, client in enumerate(clients)
                    for c, v in client.step(
                        t, x, [c for c in classes if c in HOLDINGS[w]]
                    ).items()
                ]
                if t < 9:
                    x, _ = live.round(t, messages, evaluate=self.evaluate)
                    continue

                def broken(_: np.ndarray) -> tuple[float, float]:
                    raise ValueError("no test set")

                with self.assertRaises(ValueError):
                    live.round(t, messages, evaluate=broken)
                with self.assertRaises(DesgdError):
                    # an evaluation round needs the evaluation
                    live.round(t, messages)
                np.testing.assert_array_equal(live.parameters(), x)
                x, evaluation = live.round(t, messages, evaluate=self.evaluate)
                self.assertIsNotNone(evaluation)

    def test_setup_must_hold_together(self) -> None:
        x0 = flatten_parameters(self.module)
        with self.assertRaises(DesgdError):
            LiveServer.open(self.request)  # clients without x_0
        bad = dict(
            self.request,
            clients={"classes": CLASSES, "holdings": [[0], [0], [0, 1], [1]]},
        )
        with self.assertRaisesRegex(
            DesgdError, "class 2 is held by no honest worker"
        ):
            LiveServer.open(bad, initial_parameters=x0)
        with self.assertRaisesRegex(DesgdError, "must agree"):
            LiveServer.open(self.request, initial_parameters=x0[:-1])
        model = dict(self.request, options=OPTIONS + ["--model", "small"])
        with self.assertRaisesRegex(DesgdError, "--model"):
            LiveServer.open(model, initial_parameters=x0)


if __name__ == "__main__":
    unittest.main()
