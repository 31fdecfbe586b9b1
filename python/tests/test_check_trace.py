"""desgd.check_trace's command line, run as the Swift tests run it (the file,
not the installed package): --help, usage errors, and every file it cannot
check answered with exit status 2 and one line on standard error naming the
file; a good trace passes with its files closed."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import struct
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from desgd import check_trace

import trace_files
from trace_files import (
    CHECKER,
    KEYFRAME,
    ROUND,
    SAMPLE,
    SAMPLES,
    Record,
    json_edit,
)


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", str(CHECKER)]
        + list(args),
        capture_output=True,
        text=True,
        timeout=120,
    )


class CheckTraceCommandLineTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)

    def tearDown(self) -> None:
        self.dir.cleanup()

    def refused(
        self, args: list[str], *expected: str, checked: bool = False
    ) -> str:
        """Exit status 2, one line on standard error holding each of
        `expected`; nothing on standard output unless some checks ran
        (`checked`) before the problem came up."""
        done = check(*args)
        self.assertEqual(done.returncode, 2, done.stdout + done.stderr)
        if not checked:
            self.assertEqual(done.stdout, "")
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        line = done.stderr.strip()
        self.assertTrue(line.startswith("check_trace.py: "), line)
        for text in expected:
            self.assertIn(text, line)
        return line

    def test_help_and_usage(self) -> None:
        done = check("--help")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.startswith("usage: check_trace.py"))
        self.assertIn("--trust KEY.pub", done.stdout)
        self.assertEqual(done.stderr, "")
        self.refused([], "the following arguments are required: trace")
        self.refused([str(SAMPLE), "extra"], "unrecognized arguments")

    def test_a_good_trace_passes_with_its_files_closed(self) -> None:
        done = check(
            str(SAMPLES / "v1.1-desgd-cclip-ipm-small-3r-signed.trace"),
            "--trust",
            str(SAMPLES / "v1.1-sample.key.pub"),
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("all checks passed", done.stdout)
        self.assertIn("whole file", done.stdout)
        self.assertEqual(done.stderr, "")  # no ResourceWarning

    def test_files_it_cannot_check(self) -> None:
        text = self.root / "notes.txt"
        text.write_text("not a trace\n")
        self.refused([str(text)], f"{text}: not a desgd trace (bad magic)")
        missing = str(self.root / "missing.trace")
        self.refused([missing], f"{missing}: No such file or directory")
        fifo = self.root / "fifo"
        os.mkfifo(fifo)
        self.refused([str(fifo)], f"{fifo} is not a regular file")
        self.refused(
            [str(SAMPLE), "--trust", str(text)],
            f"{text} is not an Ed25519 public key",
        )

    def test_traces_the_reader_refuses(self) -> None:
        def byzantine(doc: Any) -> None:
            for s in doc["aggregations"][0]["senders"]:
                s["byzantine"] = True

        path = str(
            trace_files.rewritten(
                SAMPLE, self.root / "a.trace", ROUND, json_edit(byzantine), 1
            )
        )
        self.refused(
            [path],
            f"{path}: round 1: aggregation 0 has no honest sender",
            checked=True,
        )
        # keyframe 0 dropped: keyframe 3 has nothing to be rebuilt from
        signature, recs = trace_files.records(SAMPLE)
        path = str(self.root / "b.trace")
        kept = [r for r in recs if not (r.kind == KEYFRAME and r.round == 0)]
        Path(path).write_bytes(trace_files.chained(signature, kept))
        self.refused(
            [path],
            f"{path}: keyframe 3: no keyframe before it to rebuild",
            checked=True,
        )

    def test_gap_nan_or_infinite_on_either_side(self) -> None:
        """Check 3: FORMAT.md §5.3 records a NaN or infinite gap for
        non-finite messages, so a NaN matches a NaN and an infinity the same
        infinity, or +inf where the recorder's float32 sums of squares
        overflow (§11.2); a NaN or an infinity against anything else fails
        (a NaN comparison is false, and a difference of NaN passed the
        tolerance)."""

        def nan_aggregate(r: Record, word: bytes = b"\xff" * 4) -> Record:
            """Round 1's aggregate made NaN (every word 0xffffffff)."""
            doc, section = r.body()
            a = doc["aggregations"][0]
            i, e = a["aggregate"], doc["vectors"][a["aggregate"]]
            self.assertNotIn(i, a["messages"] + [doc["modelDiff"]])
            self.assertFalse(any(v.get("ref") == i for v in doc["vectors"]))
            e.pop("ref", None), e.pop("scaleBits", None)
            nan = bytearray(section)
            nan[e["offset"] : e["offset"] + 4 * e["count"]] = word * e["count"]
            return r.with_body(doc, bytes(nan))

        def huge_aggregate(r: Record) -> Record:
            """Round 1's aggregate 1e20 everywhere: finite, but its squares
            overflow float32."""
            return nan_aggregate(r, struct.pack("<f", 1e20))

        def recorded(gap: object) -> Callable[[Record], Record]:
            def change(doc: Any) -> None:
                doc["aggregations"][0]["metrics"]["gap"] = gap

            return json_edit(change)

        cases: list[tuple[str, Callable[[Record], Record], str]] = [
            ("recorded nan", recorded("nan"), "recomputed 0.2430"),
            ("recomputed nan", nan_aggregate, "recomputed nan, recorded"),
            ("recorded inf", recorded("inf"), "recorded inf"),
            ("recorded -inf", recorded("-inf"), "recorded -inf"),
        ]
        for name, change, expected in cases:
            with self.subTest(name):
                path = self.root / "gap.trace"
                trace_files.rewritten(SAMPLE, path, ROUND, change, 1)
                done = check(str(path))
                self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
                last = done.stdout.splitlines()[-1]
                self.assertTrue(
                    last.startswith("  FAIL round 1, aggregation 0: the gap"),
                    done.stdout,
                )
                self.assertIn(expected, last)
                self.assertIn("3. recomputed gap", done.stdout)
        # NaN recomputed and recorded, or a recorded +inf where float32 sums
        # overflow: check 3 holds, and so do the others
        for aggregate, gap in (
            (nan_aggregate, "nan"),
            (huge_aggregate, "inf"),
        ):
            with self.subTest(gap=gap):
                path = self.root / "both.trace"
                trace_files.rewritten(SAMPLE, path, ROUND, aggregate, 1)
                trace_files.rewritten(path, path, ROUND, recorded(gap), 1)
                done = check(str(path))
                self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
                self.assertIn(
                    "  ok   3 aggregations, max relative difference ",
                    done.stdout,
                )
                self.assertIn("all checks passed", done.stdout)

    def test_a_file_s_name_is_escaped(self) -> None:
        """The file's name is the audited party's (FORMAT.md §6): a newline
        in it forges no line, an ESC hides none (escaped as desgd.trace
        escapes every string from a file)."""
        evil = "a\nforged line\x1b[8mhidden\u202eb"
        shown = "a\\u000aforged line\\u001b[8mhidden\\u202eb"
        copy = self.root / f"{evil}.trace"
        copy.write_bytes(SAMPLE.read_bytes())
        done = check(str(copy))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        for line in done.stdout.splitlines():
            self.assertTrue(line.isprintable(), repr(line))
        self.assertTrue(
            done.stdout.startswith(f"{self.root}/{shown}.trace: rounds 0..<3"),
            done.stdout,
        )
        text = self.root / f"{evil}.txt"
        text.write_text("not a trace\n")
        line = self.refused([str(text)], "not a desgd trace (bad magic)")
        self.assertEqual(
            line,
            f"check_trace.py: {self.root}/{shown}.txt: not a desgd trace"
            " (bad magic)",
        )
        line = self.refused([str(SAMPLE), "--trust", str(text)])
        self.assertEqual(
            line,
            f"check_trace.py: {self.root}/{shown}.txt is not an Ed25519"
            " public key: expected one line `ssh-ed25519 <base64>"
            " [comment]`",
        )
        missing = f"{self.root}/{shown}.missing"
        self.refused(
            [str(self.root / f"{evil}.missing")],
            f"check_trace.py: {missing}: No such file or directory",
        )

    def test_an_ascii_standard_output(self) -> None:
        """Printable non-ASCII text (a file's name) on a standard output or
        error that cannot encode it is written backslash-escaped, never a
        traceback."""
        copy = self.root / "\u00e9.trace"
        copy.write_bytes(SAMPLE.read_bytes())
        done = trace_files.run_with_ascii_output(CHECKER, str(copy))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stderr, "")
        self.assertTrue(
            done.stdout.startswith(f"{self.root}/\\xe9.trace: rounds 0..<3"),
            done.stdout,
        )
        self.assertIn("all checks passed", done.stdout)
        done = trace_files.run_with_ascii_output(
            CHECKER, str(self.root / "\u00e9.txt")
        )
        self.assertEqual((done.returncode, done.stdout), (2, ""))
        self.assertEqual(
            done.stderr,
            f"check_trace.py: {self.root}/\\xe9.txt: No such file or"
            " directory\n",
        )

    def test_an_error_names_the_file_that_failed(self) -> None:
        """An OSError from a file other than the trace (check 4's temporary
        copy, its directory) names that file, escaped, not the trace; a
        failed write, whose OSError names no file, names the copy."""
        evil = "tmp\n\x1b[8m\u202e"
        shown = "tmp\\u000a\\u001b[8m\\u202e"
        full = self.root / evil
        full.mkdir()
        # the copy is written to /dev/full: ENOSPC, from write or close
        (full / "damaged.trace").symlink_to("/dev/full")

        @contextlib.contextmanager
        def on_a_full_disk() -> Iterator[str]:
            yield str(full)

        denied = PermissionError(errno.EACCES, "Permission denied", str(full))
        cases: list[tuple[Callable[..., Any], str]] = [
            (
                mock.Mock(side_effect=denied),
                f"{self.root}/{shown}: Permission denied",
            ),
            (
                on_a_full_disk,
                f"{self.root}/{shown}/damaged.trace: No space left on device",
            ),
        ]
        for directory, expected in cases:
            with self.subTest(expected=expected):
                out, err = io.StringIO(), io.StringIO()
                with (
                    mock.patch.object(
                        tempfile, "TemporaryDirectory", directory
                    ),
                    contextlib.redirect_stdout(out),
                    contextlib.redirect_stderr(err),
                ):
                    status = check_trace.main([str(SAMPLE)])
                self.assertEqual(status, 2, err.getvalue())
                self.assertIn("3. recomputed gap", out.getvalue())
                self.assertEqual(len(err.getvalue().splitlines()), 1)
                _, line = err.getvalue().split(": ", 1)
                self.assertEqual(line, expected + "\n")


if __name__ == "__main__":
    unittest.main()
