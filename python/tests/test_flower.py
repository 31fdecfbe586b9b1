"""The Flower halves without a SuperLink: DesgdStrategy's messages go through
the real ClientApp in-process, and its replies decode into signed live
messages.

The live server itself is replaced by a description (what
`LiveServer.describe()` returns) and a class schedule: `LiveServer.round` is
not called here (test_live.py does, with the library). Needs Fashion-MNIST
(Debian's dataset-fashion-mnist), as the clients read it.
"""

import tempfile
import unittest
from pathlib import Path

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from desgd import signing
from desgd.flower.client_app import app as client_app
from desgd.flower.strategy import DesgdStrategy, FederationError, Registration

import live_support

TaskIdentity.run_id = 1  # what the SuperNode sets in a ClientApp process
TaskIdentity.node_id = 1
TaskIdentity.task_id = 1


class DescribedRun(live_support.DescribedRun):
    """The small run for 3 rounds: class (t + 1) % 10 is drawn in round t
    (none for the SGD baseline)."""

    def classes(self, t: int) -> list[int]:
        return [] if self.description["mode"] == "sgd" else [(t + 1) % 10]


class FlowerRoundTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.keys = []
        self.contexts = {}
        self.registrations = []
        for w, role in enumerate(["honest", "honest", "byzantine"]):
            key = signing.generate_key()
            path = Path(self.dir.name) / f"w{w}.key"
            signing.save_private_key(key, path)
            self.keys.append(key)
            node = 100 + w
            self.contexts[node] = Context(
                run_id=1,
                node_id=node,
                state=RecordDict(),
                run_config={},
                node_config={
                    "partition-id": w,
                    "key": str(path),
                    "role": role,
                },
            )
            self.registrations.append(
                Registration(node, w, role, signing.public_key_hex(key))
            )

    def tearDown(self) -> None:
        self.dir.cleanup()

    def round(
        self, strategy: DesgdStrategy, t: int, x: np.ndarray
    ) -> list[Message]:
        from flwr.app import Array, ArrayRecord, ConfigRecord

        sent = strategy.configure_train(
            t + 1, ArrayRecord({"x": Array(x)}), ConfigRecord(), None
        )
        return [
            client_app(m, self.contexts[m.metadata.dst_node_id]) for m in sent
        ]

    def test_desgd_round_trip_signed_and_stateful(self) -> None:
        live = DescribedRun()
        strategy = DesgdStrategy(live, self.registrations, "small")
        x = np.random.default_rng(0).standard_normal(
            live_support.D_SMALL
        ).astype(np.float32) * np.float32(0.05)
        # S_0 = [1]: worker 0 and the Byzantine send
        replies = self.round(strategy, 0, x)
        self.assertEqual(
            [r.metadata.src_node_id for r in replies], [100, 101, 102]
        )
        messages = strategy.decode(0, replies)
        self.assertEqual(
            [(m.worker, m.class_index) for m in messages], [(0, 1), (2, 1)]
        )
        tag = live.description["runTag"]
        for m in messages:
            self.assertTrue(
                signing.verify_message(
                    self.keys[m.worker].public_key(),
                    m.signature,
                    tag,
                    0,
                    m.class_index,
                    m.worker,
                    m.vector,
                )
            )
            self.assertFalse(
                signing.verify_message(
                    self.keys[m.worker].public_key(),
                    m.signature,
                    tag,
                    1,
                    m.class_index,
                    m.worker,
                    m.vector,
                )
            )
        # worker 1 sent nothing but updated its three momenta (Algorithm 1:
        # every held class, every round)
        state = self.contexts[101].state.array_records["desgd-momenta"]
        self.assertEqual(sorted(state.keys()), ["3", "4", "5"])
        # the Byzantine worker sends -2·m of its own momentum
        byz = (
            self.contexts[102]
            .state.array_records["desgd-momenta"]["1"]
            .numpy()
        )
        np.testing.assert_array_equal(
            messages[1].vector, np.float32(-2.0) * byz
        )
        first = (
            self.contexts[100]
            .state.array_records["desgd-momenta"]["2"]
            .numpy()
        )
        # S_1 = [2]: the state carried over
        replies = self.round(strategy, 1, x)
        messages = strategy.decode(1, replies)
        self.assertEqual(
            [(m.worker, m.class_index) for m in messages], [(0, 2), (2, 2)]
        )
        second = messages[0].vector
        self.assertGreater(
            float(np.linalg.norm(second)), float(np.linalg.norm(first))
        )  # 0.1·g, then 0.19·g-ish
        self.assertFalse(np.array_equal(first, second))

    def test_sgd_baseline_sends_one_message_per_worker(self) -> None:
        strategy = DesgdStrategy(
            DescribedRun("sgd"), self.registrations, "small"
        )
        replies = self.round(strategy, 0, np.zeros(19_670, np.float32))
        self.assertEqual(
            [(m.worker, m.class_index) for m in strategy.decode(0, replies)],
            [(0, -1), (1, -1), (2, -1)],
        )

    def test_missing_and_impostor_replies_stop_the_round(self) -> None:
        strategy = DesgdStrategy(DescribedRun(), self.registrations, "small")
        replies = self.round(strategy, 0, np.zeros(19_670, np.float32))
        with self.assertRaisesRegex(
            FederationError, r"no reply from workers \[1\]"
        ):
            strategy.decode(0, [replies[0], replies[2]])
        with self.assertRaisesRegex(FederationError, "two replies"):
            strategy.decode(0, replies + [replies[0]])
        impostor = self.registrations[:1] + [
            Registration(101, 2, "honest", ""),
            Registration(102, 1, "byzantine", ""),
        ]
        strategy = DesgdStrategy(DescribedRun(), impostor, "small")
        with self.assertRaisesRegex(FederationError, "replies as worker"):
            strategy.decode(0, replies)


if __name__ == "__main__":
    unittest.main()
