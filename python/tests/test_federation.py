"""A real local Flower federation (SuperLink, SuperNodes, `flwr run`) through
desgd.flower.run_local.

Needs libDesgdLive.so (skipped, saying so, when it is not built; in CI,
CI=true, a failure), flwr 1.42 and torch in this interpreter's environment, and
Fashion-MNIST. About 1.5 minutes on 2 cores: the deployment engine polls every
3 s and starts a process per message (~13 s a round).

- 3 honest SuperNodes, a server-side attack (ALIE: desgd computes the Byzantine
  messages), TrMean, the small model, 3 rounds: exit 0, a finished trace that
  desgd.check_trace accepts, whose header records the Flower engine and the
  three registered nodes, and no process left behind;
- a run the live server refuses after registration (too few holders per class
  for TrMean): exit 1 with one line naming the reason, although `flwr run`
  itself exits 0.
"""

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from live_support import CHECKER, LIBRARY, needs_library


def run_local(
    *args: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desgd.flower.run_local", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, DESGD_LIBRARY=str(LIBRARY)),
    )


def children_of_run_dir(run_dir: Path) -> list[str]:
    """Processes still running whose command line names the run directory
    (keys, FLWR_HOME)."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        line
        for line in out.splitlines()
        if str(run_dir) in line and "ps -eo" not in line
    ]


@needs_library
class FederationTests(unittest.TestCase):
    def test_three_nodes_server_side_attack(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            trace = Path(d) / "run.trace"
            run_dir = Path(d) / "run"
            r = run_local(
                "--out",
                str(trace),
                "--run-dir",
                str(run_dir),
                "--timeout",
                "300",
                "--sign",
                "--options",
                "--model small --honest 3 --byzantine 1 --agg trmean --attack"
                " alie --partition iid --rounds 3 --eval-every 3",
            )
            self.assertEqual(
                r.returncode, 0, r.stderr[-2000:] + r.stdout[-3000:]
            )
            self.assertIn("desgd federation finished: 3 rounds", r.stdout)
            self.assertEqual(children_of_run_dir(run_dir), [])
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
            self.assertIn("whole file", check.stdout)
            from desgd.trace import Trace

            with Trace(str(trace)) as tr:
                self.assertTrue(tr.finished)
                self.assertEqual(tr.round_count, 3)
                engine = tr.header["engine"]
                self.assertEqual(engine["name"], "flower")
                self.assertEqual(
                    [n["worker"] for n in engine["nodes"]], [0, 1, 2]
                )
                self.assertIn("evaluation", tr.round(2))

    def test_refused_run_is_a_failure(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            run_dir = Path(d) / "run"
            r = run_local(
                "--out",
                str(Path(d) / "bad.trace"),
                "--run-dir",
                str(run_dir),
                "--timeout",
                "200",
                "--options",
                "--model small --honest 3 --byzantine 1 --agg trmean --attack"
                " alie --partition label-skew:k=3 --rounds 2",
            )
            self.assertEqual(r.returncode, 1, r.stdout[-3000:])
            last = r.stderr.strip().splitlines()[-1]
            self.assertTrue(
                last.startswith(
                    "desgd federation failed: the run ended finished:failed"
                ),
                last,
            )
            self.assertIn("held by no worker", last)
            self.assertEqual(children_of_run_dir(run_dir), [])


if __name__ == "__main__":
    unittest.main()
