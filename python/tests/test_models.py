"""desgd's models in torch have desgd's layout
(Sources/DesgdNumerics/Model/CNNArchitecture.swift).

The stronger check, the torch loss equal to desgd's on one batch at the same
flat parameters, needs libDesgdLive.so (it evaluates with desgd's own pass):
see test_live.py, which runs when the library is built.
"""

import unittest

import torch

from desgd.models import SHAPES, build_model, layout

EXPECTED = {
    "lenet": [
        ("conv1.weight", (20, 1, 5, 5)),
        ("conv1.bias", (20,)),
        ("conv2.weight", (50, 20, 5, 5)),
        ("conv2.bias", (50,)),
        ("fc1.weight", (500, 800)),
        ("fc1.bias", (500,)),
        ("fc2.weight", (10, 500)),
        ("fc2.bias", (10,)),
    ],
    "small": [
        ("conv1.weight", (6, 1, 5, 5)),
        ("conv1.bias", (6,)),
        ("conv2.weight", (16, 6, 5, 5)),
        ("conv2.bias", (16,)),
        ("fc1.weight", (64, 256)),
        ("fc1.bias", (64,)),
        ("fc2.weight", (10, 64)),
        ("fc2.bias", (10,)),
    ],
}
# desgd's documented counts (CNNArchitecture.swift): 431 080 and 19 670.
COUNTS = {"lenet": 431_080, "small": 19_670}


class ModelLayoutTests(unittest.TestCase):
    def test_names_shapes_and_order(self) -> None:
        for name, want in EXPECTED.items():
            got = [
                (n, tuple(p.shape))
                for n, p in build_model(name).named_parameters()
            ]
            self.assertEqual(got, want, name)

    def test_parameter_counts(self) -> None:
        for name, count in COUNTS.items():
            self.assertEqual(
                sum(p.numel() for p in build_model(name).parameters()),
                count,
                name,
            )
            self.assertEqual(
                SHAPES[name].flat * SHAPES[name].hidden + SHAPES[name].hidden,
                build_model(name).fc1.weight.numel()
                + build_model(name).fc1.bias.numel(),
            )

    def test_layout_is_the_live_request_form(self) -> None:
        self.assertEqual(
            layout(build_model("small"))[4],
            {"name": "fc1.weight", "shape": [64, 256]},
        )

    def test_forward_shape_and_channels_first_flatten(self) -> None:
        """fc1's column j reads pool2[c][y][x] with j = (c·4 + y)·4 + x: a unit
        input in one pooled position must reach exactly fc1.weight[:, j]."""
        m = build_model("small")
        self.assertEqual(tuple(m(torch.zeros(3, 1, 28, 28)).shape), (3, 10))
        pooled = torch.zeros(1, 16, 4, 4)
        pooled[0, 5, 2, 3] = 1.0
        with torch.no_grad():
            hidden = m.fc1(torch.flatten(pooled, 1))
            self.assertTrue(
                torch.allclose(
                    hidden[0],
                    m.fc1.weight[:, (5 * 4 + 2) * 4 + 3] + m.fc1.bias,
                )
            )

    def test_unknown_model(self) -> None:
        with self.assertRaises(ValueError):
            build_model("resnet")


if __name__ == "__main__":
    unittest.main()
