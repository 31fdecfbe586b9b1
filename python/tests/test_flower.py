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
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    RecordDict,
)
from flwr.app.typing import ConfigRecordValues
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from desgd import signing
from desgd.flower.client_app import app as client_app
from desgd.flower.server_app import register_nodes
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

    def sent(
        self, strategy: DesgdStrategy, t: int, x: np.ndarray
    ) -> list[Message]:
        return list(
            strategy.configure_train(
                t + 1, ArrayRecord({"x": Array(x)}), ConfigRecord(), None
            )
        )

    def answer(self, message: Message) -> Message:
        return client_app(message, self.contexts[message.metadata.dst_node_id])

    def round(
        self, strategy: DesgdStrategy, t: int, x: np.ndarray
    ) -> list[Message]:
        return [self.answer(m) for m in self.sent(strategy, t, x)]

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

    def test_malformed_replies_name_the_worker(self) -> None:
        """A reply key that is missing or holds another kind of value is a
        FederationError naming the worker, the key, what it held and what
        belongs there (not a TypeError or KeyError)."""
        strategy = DesgdStrategy(DescribedRun(), self.registrations, "small")
        replies = self.round(strategy, 0, np.zeros(19_670, np.float32))
        meta = replies[0].content.config_records["desgd"]
        cases: list[tuple[str, ConfigRecordValues | None, str]] = [
            (
                "signatures",
                "abc",
                "'signatures' holds str 'abc', expected a list of byte"
                " strings",
            ),
            ("worker", [0], r"'worker' holds list \[0\], expected an integer"),
            ("worker", True, "'worker' holds bool True, expected an integer"),
            ("worker", None, r"'worker' is missing \(expected an integer\)"),
            (
                "classes",
                [1.0],
                r"'classes' holds list \[1.0\], expected a list of integers",
            ),
        ]
        for key, value, message in cases:
            with self.subTest(key=key, value=value):
                good = meta[key]
                if value is None:
                    del meta[key]
                else:
                    meta[key] = value
                with self.assertRaisesRegex(
                    FederationError,
                    "^round 0: worker 0's reply is malformed: "
                    + message
                    + "$",
                ):
                    strategy.decode(0, replies)
                meta[key] = good
        self.assertEqual(len(strategy.decode(0, replies)), 2)
        momenta = replies[0].content.array_records["momenta"]
        momenta["class-1"] = Array(
            dtype="float32", shape=(3,), stype="numpy.ndarray", data=b"junk"
        )
        with self.assertRaisesRegex(
            FederationError,
            "^round 0: worker 0's reply is malformed: 'class-1' holds"
            r" Array\(dtype='float32', shape=\[3\]\) \(it does not load: ",
        ):
            strategy.decode(0, replies)

    def test_an_error_reason_is_one_line(self) -> None:
        strategy = DesgdStrategy(DescribedRun(), self.registrations, "small")
        sent = self.sent(strategy, 0, np.zeros(19_670, np.float32))
        replies = [self.answer(m) for m in sent]
        replies[1] = Message(
            Error(code=0, reason="first line\nsecond line\x1b[31m"),
            reply_to=sent[1],
        )
        with self.assertRaises(FederationError) as e:
            strategy.decode(0, replies)
        self.assertEqual(
            str(e.exception),
            "round 0: worker 1 (node 101) failed: first line\\nsecond"
            " line\\x1b[31m",
        )

    def test_malformed_requests_get_an_error_reply(self) -> None:
        """A train message whose config keys are missing or of another kind:
        the client replies with an error naming the key (the server then
        stops the run), not a TypeError or KeyError."""
        strategy = DesgdStrategy(DescribedRun(), self.registrations, "small")
        x = np.zeros(19_670, np.float32)
        cases: list[tuple[str, ConfigRecordValues | None, str]] = [
            ("round", [0], "'round' holds list [0], expected an integer"),
            ("runTag", None, "'runTag' is missing (expected a string)"),
            ("beta", [0.9], "'beta' holds list [0.9], expected a number"),
            (
                "partition-indices",
                ["7"],
                "'partition-indices' holds list ['7'], expected a list of"
                " integers",
            ),
            (
                "partition-indices",
                [10**9] * 29,
                "'partition-indices' holds list [1000000000, 1000000000,",
            ),
        ]
        for key, value, reason in cases:
            with self.subTest(key=key, value=value):
                message = self.sent(strategy, 0, x)[0]
                cfg = message.content.config_records["config"]
                if isinstance(value, list) and key == "partition-indices":
                    counts = cfg["partition-counts"]
                    assert isinstance(counts, list)
                    cfg["partition-counts"] = [len(value)] + [0] * (
                        len(counts) - 1
                    )
                if value is None:
                    del cfg[key]
                else:
                    cfg[key] = value
                reply = self.answer(message)
                self.assertTrue(reply.has_error())
                self.assertIn(
                    "worker 0: the server's train message is malformed: "
                    + reason,
                    reply.error.reason or "",
                )
                self.assertNotIn("\n", reply.error.reason or "")

    def test_malformed_registrations_stop_the_run(self) -> None:
        class AnsweringGrid:
            def __init__(self, registration: ConfigRecord) -> None:
                self.registration = registration

            def send_and_receive(
                self, messages: Iterable[Message], *, timeout: float
            ) -> list[Message]:
                return [
                    Message(
                        RecordDict({"registration": self.registration}),
                        reply_to=m,
                    )
                    for m in messages
                ]

        good: dict[str, ConfigRecordValues] = {
            "worker": 0,
            "role": "honest",
            "publicKey": "00" * 32,
        }
        self.assertEqual(
            register_nodes(
                cast(Grid, AnsweringGrid(ConfigRecord(good))), [100], 5
            )[0].worker,
            0,
        )
        bad: list[tuple[str, ConfigRecordValues, str]] = [
            ("worker", [0], "'worker' holds list [0], expected an integer"),
            ("publicKey", b"k", "'publicKey' holds bytes b'k', expected a"),
            ("holdings", ["1"], "'holdings' holds list ['1'], expected a"),
        ]
        for key, value, message in bad:
            with self.subTest(key=key):
                answer = ConfigRecord({**good, key: value})
                with self.assertRaises(FederationError) as e:
                    register_nodes(cast(Grid, AnsweringGrid(answer)), [100], 5)
                self.assertIn(
                    "registration: node 100's answer is malformed: " + message,
                    str(e.exception),
                )


if __name__ == "__main__":
    unittest.main()
