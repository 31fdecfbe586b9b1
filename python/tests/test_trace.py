"""The Python reader (desgd.trace) against hostile traces: copies of the
committed samples with their JSON edited or their payload replaced, the digest
chain recomputed (trace_files). Every one is a TraceError naming the record,
and on the command line one line on standard error and exit status 2
(docs/bad-input.md), never a traceback; sizes the file claims are checked
before they are allocated.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
import unittest
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import zstandard

from desgd import trace
from desgd.trace import NothingToAverage, Trace, TraceError, TraceValueError

import trace_files
from trace_files import (
    CHECKPOINT,
    CHECKPOINTS,
    HEADER,
    ROUND,
    SAMPLE,
    SAMPLES,
    SRC,
    Record,
    json_edit,
    rewritten,
)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """desgd.trace's command line in this process: status, stdout, stderr
    (a traceback escapes as the exception)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = trace.main(argv)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def set_key(path: tuple[Any, ...], value: object) -> Callable[[Any], None]:
    """An edit that sets the JSON value at `path` (keys and list indices)."""

    def change(doc: Any) -> None:
        for k in path[:-1]:
            doc = doc[k]
        doc[path[-1]] = value

    return change


class HostileTraceTests(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)

    def tearDown(self) -> None:
        self.dir.cleanup()

    def copy(
        self,
        kind: int,
        change: Callable[[Record], Record],
        round: int | None = None,  # noqa: A002
        source: Path = SAMPLE,
    ) -> str:
        return str(
            rewritten(source, self.root / "hostile.trace", kind, change, round)
        )

    def refused(self, argv: list[str], *expected: str) -> str:
        """The command line answers `argv` with exit status 2 and one line on
        standard error containing each of `expected`; returns that line."""
        status, _, err = run_main(argv)
        self.assertEqual(status, 2, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        line = err.strip()
        self.assertTrue(line.startswith("error: "), line)
        for text in expected:
            self.assertIn(text, line)
        return line

    def test_the_unchanged_copy_reads(self) -> None:
        path = self.copy(ROUND, lambda r: r, round=0)
        status, out, err = run_main([path, "--round", "0", "--verify"])
        self.assertEqual((status, err), (0, ""))
        self.assertIn("chain OK", out)

    def test_vector_entries_refuse_booleans(self) -> None:
        """JSON true is not the integer 1 (bool is an int in Python): an
        offset, count, ref or scaleBits of true or false is refused, as
        Body.vec refuses a boolean index."""
        for key, value in [
            ((0, "offset"), True),
            ((1, "count"), True),
            ((1, "ref"), False),
            ((2, "ref"), True),
            ((3, "scaleBits"), True),
        ]:
            with self.subTest(key=key, value=value):
                path = self.copy(
                    ROUND,
                    json_edit(set_key(("vectors",) + key, value)),
                    round=0,
                )
                with (
                    Trace(path) as tr,
                    self.assertRaises(TraceValueError) as e,
                ):
                    tr.round(0)
                self.assertIn(
                    f"round 0: vectors[{key[0]}].{key[1]} is {value!r},"
                    " expected ",
                    str(e.exception),
                )
                self.assertEqual(e.exception.value, value)

    def test_integers_elsewhere_refuse_booleans_and_strings(self) -> None:
        path = self.copy(
            HEADER,
            json_edit(set_key(("model", "parameterCount"), True)),
        )
        with self.assertRaises(TraceValueError) as e:
            Trace(path)
        self.assertEqual(
            str(e.exception),
            "header record: model.parameterCount is True, expected an"
            " integer in 0...9223372036854775807",
        )
        path = self.copy(ROUND, json_edit(set_key(("round",), True)), 1)
        self.refused([path, "--round", "1"], "round 1: round is True")
        path = self.copy(
            ROUND, json_edit(set_key(("vectors", 3, "scaleBits"), "1e9")), 0
        )
        self.refused(
            [path, "--round", "0"], "round 0: vectors[3].scaleBits is '1e9'"
        )
        path = self.copy(
            ROUND,
            json_edit(set_key(("vectors", 3, "scaleBits"), 1 << 40)),
            0,
        )
        self.refused([path, "--round", "0"], "0...4294967295")
        path = self.copy(
            ROUND,
            json_edit(set_key(("aggregations", 0, "metrics", "gap"), True)),
            0,
        )
        with Trace(path) as tr, self.assertRaises(TraceValueError) as e:
            trace.metric(tr.round(0), 0, "gap")
        self.assertTrue(
            str(e.exception).startswith(
                "round 0: aggregations[0].metrics.gap is True, expected a"
                " number"
            ),
            str(e.exception),
        )

    def test_no_honest_sender_nothing_to_average(self) -> None:
        def byzantine(doc: Any) -> None:
            for s in doc["aggregations"][0]["senders"]:
                s["byzantine"] = True

        path = self.copy(ROUND, json_edit(byzantine), round=1)
        with Trace(path) as tr, self.assertRaises(NothingToAverage) as e:
            trace.honest_mean(tr.round(1), 0)
        self.assertEqual(
            (e.exception.where, e.exception.aggregation), ("round 1", 0)
        )
        self.refused(
            [path, "--round", "1"],
            "round 1: aggregation 0 has no honest sender",
        )

        def silent(doc: Any) -> None:
            a = doc["aggregations"][0]
            a["messages"], a["senders"] = [], []

        path = self.copy(ROUND, json_edit(silent), round=1)
        self.refused(
            [path, "--round", "1"], "round 1: aggregation 0 has no message"
        )

    def test_malformed_json_values_are_one_line(self) -> None:
        """Values of another type where the reader computes with them: one
        line naming the round, exit status 1."""
        cases: list[tuple[tuple[Any, ...], object, str]] = [
            (("aggregations", 0, "metrics", "gap"), "x", "metrics.gap"),
            (("aggregations", 0, "metrics", "gap"), 1 << 1100, "gap"),
            (("aggregations", 0, "metrics"), True, "round 1"),
            (("aggregations", 0, "senders", 1), True, "round 1"),
            (("aggregations", 0, "senders", 1, "byzantine"), "no", "'no'"),
            (("aggregations", 0, "stateAfter", "scalars"), "x", "scalars"),
            (("aggregations", 0, "stateAfter", "vectors"), [1], "vectors"),
            (("vectors", 1), [], "vectors[1]"),
        ]
        for key, value, expected in cases:
            with self.subTest(key=key, value=value):
                path = self.copy(ROUND, json_edit(set_key(key, value)), 1)
                self.refused([path, "--round", "1"], "round 1", expected)

    def test_deep_json_is_refused(self) -> None:
        """JSON nested deeper than the decoder's recursion limit."""
        deep = b"[" * 100_000 + b"]" * 100_000
        path = self.copy(ROUND, lambda r: r.with_json_text(deep, b""), 1)
        self.refused(
            [path, "--round", "1"], "round 1: JSON does not parse", "deep"
        )

    def test_damaged_zstd_frames(self) -> None:
        """A frame whose bytes are damaged, cut, or not a frame at all,
        under a recomputed digest."""
        changes: list[tuple[str, Callable[[bytes], bytes]]] = [
            ("flipped", lambda p: p[:200] + bytes([p[200] ^ 0x40]) + p[201:]),
            ("cut", lambda p: p[: len(p) // 2]),
            ("not zstd", lambda p: b"\0" * 64),
        ]
        for name, change in changes:

            def damaged(
                r: Record, c: Callable[[bytes], bytes] = change
            ) -> Record:
                return replace(r, payload=c(r.payload))

            with self.subTest(name):
                path = self.copy(ROUND, damaged, round=2)
                self.refused([path, "--round", "2"], "round 2")
                status, out, err = run_main([path, "--round", "1"])
                self.assertEqual((status, err), (0, ""))

    def test_vectors_decode_within_the_body_limit(self) -> None:
        """Entries that overlap would decode far more than the body: the
        reader refuses to decode more than the body limit (§6 item 5)."""

        def overlapping(doc: Any) -> None:
            doc["vectors"] = [{"count": 19_670, "offset": 0}] * 2_000

        path = self.copy(ROUND, json_edit(overlapping), round=1)
        with (
            Trace(path) as tr,
            self.assertRaisesRegex(
                TraceError,
                r"round 1: its vectors decode to more than \d+ bytes",
            ),
        ):
            tr.round(1)

    def test_memory_a_size_claim_cannot_have(self) -> None:
        """A header claiming d = 2^28 lets a round's zstd frame declare 3 GB;
        under a 1.5 GB address-space limit that is one line, not a
        MemoryError."""
        size = 3 << 30

        def header(doc: Any) -> None:
            doc["model"]["parameterCount"] = 1 << 28

        def bomb(r: Record) -> Record:
            obj = zstandard.ZstdCompressor(level=1).compressobj(size=size)
            chunk, parts = bytes(1 << 24), []
            for _ in range(size // len(chunk)):
                parts.append(obj.compress(chunk))
            return replace(
                r, encoding=1, payload=b"".join(parts) + obj.flush()
            )

        claim = rewritten(
            SAMPLE, self.root / "claim.trace", HEADER, json_edit(header)
        )
        path = self.copy(ROUND, bomb, round=0, source=claim)

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000,) * 2)

        done = subprocess.run(
            [sys.executable, "-m", "desgd.trace", path, "--round", "0"],
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=limit,
            env={
                **os.environ,
                "PYTHONPATH": str(SRC),
                "OPENBLAS_NUM_THREADS": "1",
            },
        )
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertEqual(
            done.stderr.strip(),
            f"error: round 0: the zstd frame declares {size} bytes, more"
            " memory than this process can have",
        )

    def test_many_checkpoint_records_open_at_once(self) -> None:
        """100 000 empty checkpoint records (96 bytes each) open in linear
        time (quadratic took a minute)."""
        signature, recs = trace_files.records(CHECKPOINTS)
        empty = Record(CHECKPOINT, 0, -1, b"")
        path = self.root / "many.trace"
        path.write_bytes(
            trace_files.chained(signature, recs[:1] + [empty] * 100_000)
        )
        started = time.monotonic()
        with Trace(path) as tr:
            self.assertEqual(len(tr.records), 100_001)
            self.assertEqual(len(tr.checkpoints), 1)
        self.assertLess(time.monotonic() - started, 10)

    def test_a_refused_file_is_closed(self) -> None:
        path = self.copy(
            HEADER, json_edit(set_key(("model", "parameterCount"), -1))
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with self.assertRaises(TraceError):
                Trace(path)
            gc.collect()
        self.assertEqual(
            [str(w.message) for w in caught if w.category is ResourceWarning],
            [],
        )

    def test_files_it_cannot_read_exit_2(self) -> None:
        """A file the reader cannot read or refuses, and a value that the
        file does not have (a round, a checkpoint), are bad input: exit
        status 2, one line on standard error, nothing on standard output
        (docs/bad-input.md). A check it was asked to make that fails
        (--trust, --verify) stays exit status 1."""
        text = self.root / "notes.txt"
        text.write_text("not a trace\n")
        fifo = self.root / "fifo"
        os.mkfifo(fifo)
        missing = self.root / "missing.trace"
        signed = SAMPLES / "v1.1-desgd-cclip-ipm-small-3r-signed.trace"
        key = SAMPLES / "v1.1-sample.key.pub"
        cases: list[tuple[list[str], str]] = [
            ([str(text)], f"error: {text}: not a desgd trace (bad magic)"),
            ([str(missing)], f"error: {missing}: No such file or directory"),
            ([str(fifo)], f"error: {fifo} is not a regular file"),
            ([str(signed), "--trust", str(fifo)], f"{fifo} is not a regular"),
            (
                [str(signed), "--trust", str(text)],
                f"error: {text} is not an Ed25519 public key",
            ),
            ([str(SAMPLE), "--round", "7"], "round 7 not in the trace"),
            ([str(SAMPLE), "--checkpoint", "2"], "no state checkpoint"),
        ]
        for argv, expected in cases:
            with self.subTest(argv=argv):
                status, out, err = run_main(argv)
                self.assertEqual((status, out), (2, ""), err)
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertIn(expected, err)
        status, out, err = run_main([str(SAMPLE), "--trust", str(key)])
        self.assertEqual((status, err), (1, ""))
        self.assertIn("signatures NOT TRUSTED: the trace is unsigned", out)

    def test_command_line_values(self) -> None:
        """A checkpoint that is not in the trace is named, not a bare key; a
        value that does not parse is one line and exit status 2."""
        self.refused(
            [str(SAMPLE), "--checkpoint", "2"],
            "no state checkpoint before round 2",
        )
        self.refused([str(SAMPLE), "--round", "7"], "round 7 not in the trace")
        status, out, err = run_main([str(SAMPLE), "--round", "x"])
        self.assertEqual((status, out), (2, ""))
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(
            err.endswith(
                ": argument --round: invalid int value: 'x' (see --help)\n"
            ),
            err,
        )


if __name__ == "__main__":
    unittest.main()
