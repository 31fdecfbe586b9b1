"""The client half of Algorithm 1: flat vectors, the EMA momentum recurrence,
mini-batches."""

import unittest

import numpy as np
import torch
from torch.nn import functional as F

from desgd.models import build_model
from desgd.torch_client import (
    ClassMomentumClient,
    Group,
    batch_generator,
    flatten_parameters,
    load_flat_parameters,
    sample_batch,
)


def groups(
    seed: int = 0, per_class: int = 30, classes: tuple[int, ...] = (1, 4)
) -> dict[int, Group]:
    g = torch.Generator().manual_seed(seed)
    return {
        c: Group(
            torch.randn(per_class, 1, 28, 28, generator=g),
            torch.full((per_class,), c),
        )
        for c in classes
    }


def gradient(p: torch.Tensor) -> torch.Tensor:
    """p's gradient, which backward() has set."""
    assert p.grad is not None
    return p.grad


class FlatVectorTests(unittest.TestCase):
    def test_round_trip_and_order(self) -> None:
        m = build_model("small")
        flat = flatten_parameters(m)
        self.assertEqual(flat.dtype, np.float32)
        self.assertEqual(flat.size, 19_670)
        self.assertTrue(
            np.array_equal(
                flat[:150], m.conv1.weight.detach().numpy().reshape(-1)
            )
        )
        self.assertTrue(
            np.array_equal(flat[-10:], m.fc2.bias.detach().numpy())
        )
        other = (
            np.random.default_rng(3)
            .standard_normal(flat.size)
            .astype(np.float32)
        )
        load_flat_parameters(m, other)
        self.assertTrue(np.array_equal(flatten_parameters(m), other))
        with self.assertRaises(ValueError):
            load_flat_parameters(m, other[:-1])


class BatchTests(unittest.TestCase):
    def test_distinct_when_enough_with_replacement_otherwise(self) -> None:
        b = sample_batch(100, 50, batch_generator(1, 2, 3, 4))
        self.assertEqual(len(set(b.tolist())), 50)
        self.assertTrue(
            torch.equal(b, sample_batch(100, 50, batch_generator(1, 2, 3, 4)))
        )
        self.assertFalse(
            torch.equal(b, sample_batch(100, 50, batch_generator(1, 2, 4, 4)))
        )
        small = sample_batch(7, 50, batch_generator(1, 2, 3, 4))
        self.assertEqual(small.numel(), 50)
        self.assertTrue(int(small.max()) < 7)


class MomentumTests(unittest.TestCase):
    def test_recurrence_matches_a_direct_computation(self) -> None:
        """m ← β·m + (1−β)(g + wd·x) for every held class, every round; only
        S_t ∩ held is returned."""
        torch.manual_seed(0)
        model = build_model("small")
        data = groups()
        client = ClassMomentumClient(
            model, data, batch=8, beta=0.9, weight_decay=5e-4, seed=1, worker=3
        )
        x0 = flatten_parameters(model)
        sent = client.step(0, x0, [4])
        self.assertEqual(list(sent), [4])
        self.assertEqual(set(client.momenta), {1, 4})
        # by hand, class 1 at round 0 then round 1
        ref = build_model("small")
        expected: dict[int, np.ndarray] = {}
        for t, x in ((0, x0), (1, x0 * 0.5)):
            if t == 1:
                client.step(1, x, [1, 4])
            for c in (1, 4):
                load_flat_parameters(ref, x)
                ref.zero_grad()
                pos = sample_batch(30, 8, batch_generator(1, 3, t, c))
                F.cross_entropy(
                    ref(data[c].images[pos]), data[c].labels[pos]
                ).backward()
                g = (
                    torch.cat(
                        [gradient(p).reshape(-1) for p in ref.parameters()]
                    ).numpy()
                    + np.float32(5e-4) * x
                )
                expected[c] = 0.9 * expected.get(c, 0) + 0.1 * g
        for c in (1, 4):
            np.testing.assert_allclose(
                client.momenta[c], expected[c], rtol=2e-4, atol=1e-7
            )
        self.assertGreater(
            float(np.linalg.norm(client.momenta[1] - client.momenta[4])), 0
        )

    def test_unheld_class_is_an_error(self) -> None:
        client = ClassMomentumClient(
            build_model("small"),
            groups(),
            batch=4,
            beta=0.9,
            weight_decay=0,
            seed=1,
            worker=0,
        )
        with self.assertRaises(KeyError):
            client.step(0, flatten_parameters(client.module), [2])

    def test_training_on_momenta_reduces_the_loss(self) -> None:
        """A few server steps x ← x − η·m on one client's momenta lower its
        loss: the gradients point the right way (a sign or layout error would
        raise it)."""
        torch.manual_seed(1)
        model = build_model("small")
        data = groups(seed=2, per_class=40, classes=(0, 1, 2))
        client = ClassMomentumClient(
            model, data, batch=20, beta=0.5, weight_decay=0, seed=2, worker=0
        )
        x = flatten_parameters(model)
        images = torch.cat([g.images for g in data.values()])
        labels = torch.cat([g.labels for g in data.values()])

        def loss(v: np.ndarray) -> float:
            load_flat_parameters(model, v)
            with torch.no_grad():
                return float(F.cross_entropy(model(images), labels))

        before = loss(x)
        for t in range(15):
            m = client.step(t, x, [0, 1, 2])
            x = x - np.float32(0.1) * sum(m.values()) / 3
        self.assertLess(loss(x), 0.8 * before)


if __name__ == "__main__":
    unittest.main()
