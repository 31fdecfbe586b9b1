"""The package type-checks: `mypy` run in python/ (its [tool.mypy] in
pyproject.toml: strict, src and tests) reports no error.

mypy comes with the `test` extra (`pip install -e './python[test]'`); without
it the test is skipped, saying why; in CI (CI=true) that is a failure instead.
"""

import importlib.util
import subprocess
import sys
import tomllib
import unittest
from pathlib import Path

from live_support import CI

PACKAGE = Path(__file__).resolve().parents[1]
NO_MYPY = (
    "mypy is not installed in this Python (the test extra: pip install -e"
    " './python[test]')"
)
HAS_MYPY = importlib.util.find_spec("mypy") is not None
SHOWN = 20  # the errors a failure lists


class TypingTests(unittest.TestCase):
    @unittest.skipIf(not HAS_MYPY and not CI, NO_MYPY)
    def test_mypy_strict_reports_no_error(self) -> None:
        if not HAS_MYPY:
            self.fail(f"CI=true: {NO_MYPY}")
        done = subprocess.run(
            [sys.executable, "-m", "mypy"],
            cwd=PACKAGE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode == 0:
            return
        lines = done.stdout.splitlines()
        errors = [line for line in lines if ": error: " in line]
        # the first errors and mypy's count ("Found 3 errors in 2 files"),
        # or, if it listed none, the end of what it said
        shown = (
            errors[:SHOWN] + lines[-1:] if errors else lines[-SHOWN:]
        ) + done.stderr.splitlines()[-SHOWN:]
        self.fail(
            f"mypy --strict (in {PACKAGE}) exited with status"
            f" {done.returncode}:\n" + "\n".join(shown)
        )

    def test_mypy_checks_the_oldest_python_the_package_allows(self) -> None:
        """mypy's python_version is requires-python's lower bound (3.11: the
        [flower] extra's flwr 1.42 needs it, run_local imports tomllib)."""
        with open(PACKAGE / "pyproject.toml", "rb") as f:
            project = tomllib.load(f)
        self.assertEqual(
            project["project"]["requires-python"],
            ">=" + project["tool"]["mypy"]["python_version"],
        )


if __name__ == "__main__":
    unittest.main()
