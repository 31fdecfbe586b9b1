"""What the launcher reads of desgd-record's options (desgd's defaults: 20 + 4
workers, attack none, small under the quick preset, lenet under paper), and the
app's default options."""

import unittest
from pathlib import Path

from desgd.flower.options import parse_options, split_options
from desgd.flower.run_local import app_options, default_app


class OptionTests(unittest.TestCase):
    def test_defaults(self) -> None:
        s = parse_options([])
        self.assertEqual(
            (s.honest, s.byzantine, s.attack, s.model),
            (20, 4, "none", "small"),
        )
        # attack none: the Byzantine clients behave honestly
        self.assertTrue(s.client_side_attack)
        self.assertEqual(s.nodes, 24)
        self.assertEqual(parse_options(["--preset", "paper"]).model, "lenet")

    def test_server_side_attack_needs_only_honest_nodes(self) -> None:
        s = parse_options(
            split_options(
                "--honest 3 --byzantine=1 --attack alie:z=1.5 --model lenet"
            )
        )
        self.assertEqual(
            (s.honest, s.byzantine, s.attack, s.model, s.nodes),
            (3, 1, "alie", "lenet", 3),
        )
        self.assertEqual(
            [s.role(w) for w in range(4)], ["honest"] * 3 + ["byzantine"]
        )

    def test_client_side_attacks(self) -> None:
        for attack in ("signflip", "labelflip", "none"):
            self.assertEqual(
                parse_options(
                    ["--honest", "5", "--byzantine", "2", "--attack", attack]
                ).nodes,
                7,
            )
        self.assertEqual(
            parse_options(
                ["--honest", "5", "--byzantine", "0", "--attack", "signflip"]
            ).nodes,
            5,
        )

    def test_refusals(self) -> None:
        for bad in (
            ["--synthetic", "600"],
            ["--preset", "huge"],
            ["--honest", "0"],
            ["--model"],
        ):
            with self.assertRaises(ValueError, msg=str(bad)):
                parse_options(bad)

    def test_example_app_options(self) -> None:
        app = default_app()
        self.assertEqual(
            app,
            Path(__file__).resolve().parents[2] / "examples" / "flower-desgd",
        )
        s = parse_options(split_options(app_options(app)))
        self.assertEqual(
            (s.honest, s.byzantine, s.attack, s.model, s.nodes),
            (10, 2, "alie", "lenet", 10),
        )


if __name__ == "__main__":
    unittest.main()
