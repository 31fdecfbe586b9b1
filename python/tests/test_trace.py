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
import struct
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
    KEYFRAME,
    ROUND,
    SAMPLE,
    SAMPLES,
    SIGNATURE,
    SRC,
    Record,
    json_edit,
    rewritten,
    text_edit,
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
        self.assertTrue(line.startswith("desgd-trace: "), line)
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

    def test_json_keys_twice_and_unpaired_surrogates(self) -> None:
        """FORMAT.md §4.1: a document with a key twice in one object is
        invalid, and a reader SHOULD reject it (readers that keep the first
        or the last occurrence read it differently): this one does, at any
        level, a null occurrence included. A string, value or key, with an
        unpaired surrogate escape MUST be rejected; a pair is one code
        point, and an escaped backslash before `ud800` is no escape."""

        def text(old: bytes, new: bytes) -> Callable[[Record], Record]:
            def change(t: bytes) -> bytes:
                self.assertEqual(t.count(old), 1)
                return t.replace(old, new)

            return text_edit(change)

        twice = "JSON has the key {} twice in one object (FORMAT.md §4.1)"
        lone = (
            "JSON has an unpaired surrogate escape in the string {}"
            " (FORMAT.md §4.1)"
        )
        cases: list[tuple[int, Callable[[Record], Record], str]] = [
            (
                ROUND,
                text(
                    b'{"aggregations":', b'{"hasVectors":true,"aggregations":'
                ),
                twice.format("'hasVectors'"),
            ),
            (
                ROUND,
                text(b'"gap":', b'"gap":null,"gap":'),
                twice.format("'gap'"),
            ),
            (
                HEADER,
                text(
                    b'"parameterCount":',
                    b'"parameterCount":1,"parameterCount":',
                ),
                twice.format("'parameterCount'"),
            ),
            (
                HEADER,
                json_edit(set_key(("program",), "desgd \ud800")),
                lone.format("'desgd \\ud800'"),
            ),
            (
                ROUND,
                json_edit(
                    set_key(("aggregations", 0, "metrics", "\udc00"), 1)
                ),
                lone.format("'\\udc00'"),
            ),
            (
                ROUND,
                json_edit(set_key(("later",), {"\ud800x": None})),
                lone.format("'\\ud800x'"),
            ),
            (
                ROUND,
                json_edit(set_key(("later",), [1, ["a", "\udc00\ud83d"]])),
                lone.format("'\\udc00\\ud83d'"),
            ),
        ]
        for kind, change, expected in cases:
            with self.subTest(expected=expected):
                at = 1 if kind == ROUND else None
                path = self.copy(kind, change, round=at)
                where = "round 1" if kind == ROUND else "header record"
                with self.assertRaises(TraceError) as e:
                    with Trace(path) as tr:
                        tr.round(1)
                self.assertEqual(str(e.exception), f"{where}: {expected}")
                self.refused([path, "--round", "1"], f"{where}: {expected}")
        path = self.copy(
            HEADER,
            json_edit(
                set_keys(
                    (("program",), "desgd \U0001f600"),  # "\ud83d\ude00"
                    (("backend",), "\\ud800"),  # "\\ud800": no escape
                )
            ),
        )
        with Trace(path) as tr:
            self.assertEqual(tr.header["program"], "desgd \U0001f600")
            self.assertEqual(tr.header["backend"], "\\ud800")
            self.assertEqual(tr.round(1)["round"], 1)

    def test_json_constants_that_are_not_json(self) -> None:
        """NaN, Infinity and -Infinity are not JSON (RFC 8259), though
        Python's json reads them: FORMAT.md §4.1 writes a non-finite number
        as the string "nan", "inf" or "-inf", and a document that does not
        parse is refused (§6 item 6)."""
        for constant in ("NaN", "Infinity", "-Infinity"):
            gap = f'"gap":{constant},"was":'.encode()

            def change(text: bytes, gap: bytes = gap) -> bytes:
                return text.replace(b'"gap":', gap, 1)

            with self.subTest(constant=constant):
                path = self.copy(ROUND, text_edit(change), round=1)
                self.refused(
                    [path, "--round", "1"],
                    f"round 1: JSON does not parse: {constant} is not JSON",
                )

    def test_null_is_absent(self) -> None:
        """FORMAT.md §4.1: an optional key whose value is null is read as
        absent; a required key that is null is missing (§6 item 6)."""
        original = Trace(SAMPLE)
        self.addCleanup(original.close)

        def unreferenced_refs(doc: Any) -> None:
            for e in doc["vectors"]:
                e.setdefault("ref", None)
                e.setdefault("scaleBits", None)

        path = self.copy(ROUND, json_edit(unreferenced_refs), round=0)
        with Trace(path) as tr:
            for v, w in zip(tr.round(0).vectors, original.round(0).vectors):
                self.assertEqual(v.tobytes(), w.tobytes())
        header = set_keys(
            (("checkpointInterval",), None),
            (("driftWindow",), None),
            (("fork",), None),
            (("numerics",), None),
        )
        path = self.copy(HEADER, json_edit(header))
        status, out, err = run_main([path, "--round", "1"])
        self.assertEqual((status, err), (0, ""))
        plain = rewritten(SAMPLE, self.root / "plain", HEADER, lambda r: r)
        _, expected, _ = run_main([str(plain), "--round", "1"])
        self.assertEqual(
            out.replace(path, "TRACE"), expected.replace(str(plain), "TRACE")
        )
        path = self.copy(
            ROUND,
            json_edit(
                set_key(("aggregations", 0, "stateAfter", "vectors"), None)
            ),
            round=1,
        )
        with Trace(path) as tr:
            after = tr.round(1)["aggregations"][0]["stateAfter"]
            self.assertEqual(after, {"scalars": {}})
        path = self.copy(
            CHECKPOINT,
            json_edit(set_key(("serverMomentum",), None)),
            source=CHECKPOINTS,
        )
        with Trace(path) as tr:
            self.assertIsNone(
                trace.checkpoint_state(tr.checkpoint(0))["serverMomentum"]
            )
        # a required key that is null is missing
        cases: list[tuple[int, tuple[Any, ...], str]] = [
            (ROUND, ("round",), "round 1: JSON lacks required key 'round'"),
            (ROUND, ("aggregations", 0, "stateBefore"), "'stateBefore'"),
            (ROUND, ("aggregations", 0, "stateAfter", "scalars"), "scalars"),
            (HEADER, ("config", "classesPerRound"), "'classesPerRound'"),
            (HEADER, ("config", "byzantineWorkers"), "'byzantineWorkers'"),
            (HEADER, ("config", "mode"), "'mode'"),
            (
                KEYFRAME,
                ("classMomenta",),
                "keyframe 0: JSON lacks required key",
            ),
            (
                KEYFRAME,
                ("attackStates",),
                "keyframe 0: JSON lacks required key",
            ),
        ]
        for kind, key, expected in cases:
            with self.subTest(key=key):
                at = {ROUND: 1, KEYFRAME: 0}.get(kind)
                path = self.copy(kind, json_edit(set_key(key, None)), at)
                if kind == KEYFRAME:  # which the command line does not read
                    with Trace(path) as tr, self.assertRaises(TraceError) as e:
                        tr.keyframe(0)
                    self.assertIn(expected, str(e.exception))
                    self.assertIn(repr(key[0]), str(e.exception))
                else:
                    option = ["--round", "1"] if kind == ROUND else []
                    self.refused([path] + option, expected)

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

    def test_reference_chains_of_at_most_8_links(self) -> None:
        """FORMAT.md §4.1, §6 item 7: a chain of references (a vector, its
        ref, that one's ref, ...) of 8 links reads; one of 9 is refused,
        naming the round and the vector."""

        def chain(links: int) -> Callable[[Any], None]:
            def change(doc: Any) -> None:
                table = doc["vectors"]
                self.assertNotIn("ref", table[0])
                n = len(table)
                for k in range(links):  # entry n + k: k + 1 links
                    ref = n + k - 1 if k else 0
                    count = table[0]["count"]
                    table.append({"offset": 0, "count": count, "ref": ref})

            return change

        path = self.copy(ROUND, json_edit(chain(8)), round=0)
        with Trace(path) as tr:
            self.assertEqual(len(tr.round(0).vectors), 6 + 8)
        path = self.copy(ROUND, json_edit(chain(9)), round=0)
        with Trace(path) as tr, self.assertRaises(TraceError) as e:
            tr.round(0)
        self.assertEqual(
            str(e.exception),
            "round 0: vector 14's chain of references is longer than 8"
            " links (FORMAT.md §6 item 7)",
        )
        self.refused([path, "--round", "0"], "round 0: vector 14's chain")
        status, _, err = run_main([path, "--round", "1"])
        self.assertEqual((status, err), (0, ""))  # the other rounds read

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
            f"desgd-trace: round 0: the zstd frame declares {size} bytes,"
            " more memory than this process can have",
        )

    def test_record_types_newer_than_the_file(self) -> None:
        """FORMAT.md §2, §3.2, §6 item 2: a signature record (1.1) in a 1.0
        file, a state checkpoint (1.2) in a 1.0 or 1.1 file, contradicts the
        file's own version: the whole file is refused, found by a scan or
        by the index. The records of the file's own version open."""
        signed = SAMPLES / "v1.1-desgd-cclip-ipm-small-3r-signed.trace"
        _, with_signatures = trace_files.records(signed)
        signature = next(r for r in with_signatures if r.kind == SIGNATURE)
        checkpoint = Record(CHECKPOINT, 0, -1, b"")
        cases = [
            (SAMPLE, 2, signature, "signature", 6, "1.0", "1.1"),
            (SAMPLE, 1, checkpoint, "checkpoint", 7, "1.0", "1.2"),
            (signed, 1, checkpoint, "checkpoint", 7, "1.1", "1.2"),
        ]
        for source, at, extra, name, kind, version, since in cases:
            head, recs = trace_files.records(source)
            for index in (False, True):
                with self.subTest(source=source.name, name=name, index=index):
                    path = self.root / "newer.trace"
                    path.write_bytes(
                        trace_files.chained(
                            head, recs[:at] + [extra] + recs[at:], index
                        )
                    )
                    expected = (
                        f"{path}: record {at} is a {name} record (type"
                        f" {kind}), which a file of format {version} cannot"
                        f" hold: {name} records are format {since} and later"
                        " (FORMAT.md §6 item 2)"
                    )
                    with self.assertRaises(TraceError) as e:
                        Trace(path)
                    self.assertEqual(str(e.exception), expected)
                    status, out, err = run_main([str(path)])
                    self.assertEqual(
                        (status, out, err),
                        (2, "", f"desgd-trace: {expected}\n"),
                    )
        # the same records in files of the versions that have them
        head, recs = trace_files.records(CHECKPOINTS)
        path = self.root / "own.trace"
        path.write_bytes(
            trace_files.chained(head, recs[:2] + [signature] + recs[2:], True)
        )
        with Trace(path) as tr:
            self.assertTrue(tr.finished)
            self.assertEqual(sorted(tr.checkpoints), [0, 2])
            self.assertEqual(tr.records[2][0], SIGNATURE)

    def damaged_from(
        self, path: Path, at: int, records: list[Record], expected: str
    ) -> None:
        """The trace at `path` (its records `records`, with or without an
        index) is damaged at record `at`: it opens with the records before
        it, as a scan finds them (an index that lists the damage is not
        used); walking the chain stops there, naming the record and
        `expected`, and so does --verify (exit status 1)."""
        with Trace(path) as tr:
            self.assertEqual(
                [r[:2] for r in tr.records],
                [(r.kind, r.round) for r in records[:at]],
            )
            self.assertFalse(tr.finished)
            ok, msg, _ = tr.verify_chain()
        self.assertFalse(ok)
        self.assertTrue(msg.startswith(f"record {at} at offset "), msg)
        self.assertIn(expected, msg)
        status, out, err = run_main([str(path), "--verify"])
        self.assertEqual((status, err), (1, ""))
        self.assertIn(f"chain BROKEN: {msg}; last digest", out)

    def test_record_types_the_file_cannot_hold(self) -> None:
        """FORMAT.md §3.2, §6 item 2: type 0 is reserved and never written,
        and a type this reader does not know (format 1.6 has types 1...7) in
        a file of 1.6 or earlier is damage; so is a second header record.
        The records before it are the file's content. In a file of a later
        minor version, a record of an unknown type is skipped: a link of the
        chain like any record, with round -1."""
        head, recs = trace_files.records(SAMPLE)
        recs[0] = recs[0].edited(set_key(("formatVersion",), [1, 7]))
        later = self.root / "later.trace"
        later.write_bytes(
            trace_files.chained(
                head[:12] + struct.pack("<H", 7) + head[14:], recs, True
            )
        )
        own = (
            SAMPLES / "v1.6-live-flower-own-model-trmean-alie-3r-signed.trace"
        )
        header = recs[0]
        cases = [
            (
                SAMPLE,
                Record(0, 0, -1, b""),
                "record type 0, which is reserved",
            ),
            (
                SAMPLE,
                Record(8, 0, -1, b""),
                "unknown record type 8 in a file of format 1.0: only",
            ),
            (
                own,
                Record(255, 1, -1, b"x"),
                "unknown record type 255 in a file of format 1.6: only",
            ),
            (SAMPLE, header, "a second header record"),
            (later, Record(0, 0, -1, b""), "record type 0, which is"),
            (later, Record(8, 0, 2, b""), "round 2, but every record"),
        ]
        for source, extra, expected in cases:
            head, recs = trace_files.records(source)
            at = 1 + next(i for i, r in enumerate(recs) if r.kind == ROUND)
            recs = recs[:at] + [extra] + recs[at:]
            for index in (False, True):
                with self.subTest(
                    source=source.name, kind=extra.kind, index=index
                ):
                    path = self.root / "damaged.trace"
                    path.write_bytes(trace_files.chained(head, recs, index))
                    self.damaged_from(path, at, recs, expected)
        # a later minor version's record of a type this reader does not know
        head, recs = trace_files.records(later)
        recs = recs[:3] + [Record(8, 1, -1, b"later")] + recs[3:]
        for index in (False, True):
            with self.subTest(later=True, index=index):
                path = self.root / "skipped.trace"
                path.write_bytes(trace_files.chained(head, recs, index))
                with Trace(path) as tr:
                    self.assertEqual(tr.finished, index)
                    self.assertEqual(tr.round_count, 3)
                    self.assertEqual(tr.records[3][:2], (8, -1))
                    self.assertEqual(tr.round(2)["round"], 2)
                    self.assertTrue(tr.verify_chain()[0])

    def test_the_version_it_implements(self) -> None:
        """MINOR, up to which a record type the reader does not know is
        damage (FORMAT.md §3.2), is the version FORMAT.md states as current:
        a new minor version fails here until this reader follows it."""
        document = trace_files.ROOT / "traces" / "FORMAT.md"
        title = document.read_text(encoding="utf-8").splitlines()[0]
        self.assertEqual(
            title,
            f"# The desgd trace format, version {trace.MAJOR}.{trace.MINOR}",
        )

    def test_record_rounds(self) -> None:
        """FORMAT.md §3.4, §6 item 2: a keyframe's round is at least the
        first round and at most the next round; every other record but a
        round has round -1. A record header that says otherwise is damage,
        whatever the index says (it agrees here): the records before it are
        the file's content. A header record that says otherwise refuses the
        file."""
        signed = SAMPLES / "v1.1-desgd-cclip-ipm-small-3r-signed.trace"
        fork = SAMPLES / "v1.3-fork-at1-geomed-small.trace"
        # the trace, the position of the record, the round its header says
        cases = [
            (SAMPLE, 5, 4, "a keyframe of round 4, expected a round in 0...3"),
            (SAMPLE, 1, -1, "a keyframe of round -1, expected a round in 0"),
            (fork, 2, 0, "a keyframe of round 0, expected a round in 1...1"),
            (signed, 2, 0, "round 0, but every record other than rounds"),
            (CHECKPOINTS, 5, 2, "round 2, but every record other than"),
        ]
        for source, at, rnd, expected in cases:
            head, recs = trace_files.records(source)
            recs[at] = replace(recs[at], round=rnd)
            for index in (False, True):
                with self.subTest(source=source.name, at=at, index=index):
                    path = self.root / "damaged.trace"
                    path.write_bytes(trace_files.chained(head, recs, index))
                    self.damaged_from(path, at, recs, expected)
        head, recs = trace_files.records(SAMPLE)
        recs[0] = replace(recs[0], round=0)
        path = self.root / "header.trace"
        path.write_bytes(trace_files.chained(head, recs, True))
        with self.assertRaises(TraceError) as e:
            Trace(path)
        self.assertEqual(
            str(e.exception),
            "record 0 at offset 16: round 0, but every record other than"
            " rounds and keyframes has round -1 (FORMAT.md §3.4)",
        )
        self.refused([str(path)], str(e.exception))

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
            (
                [str(text)],
                f"desgd-trace: {text}: not a desgd trace (bad magic)",
            ),
            (
                [str(missing)],
                f"desgd-trace: {missing}: No such file or directory",
            ),
            ([str(fifo)], f"desgd-trace: {fifo} is not a regular file"),
            ([str(signed), "--trust", str(fifo)], f"{fifo} is not a regular"),
            (
                [str(signed), "--trust", str(text)],
                f"desgd-trace: {text} is not an Ed25519 public key",
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
        # many checkpoints: the count and the first and last few, one line
        self.assertEqual(
            trace._checkpoint_rounds(list(range(0, 100_000, 10))),
            "10000, before rounds 0, 10, 20, 30, ..., 99980, 99990",
        )
        self.assertEqual(
            trace._checkpoint_rounds([0, 2]), "them before rounds 0, 2"
        )
        self.assertEqual(trace._checkpoint_rounds([]), "none")
        status, out, err = run_main([str(SAMPLE), "--round", "x"])
        self.assertEqual((status, out), (2, ""))
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertEqual(
            err,
            "desgd-trace: argument --round: invalid int value: 'x' (see"
            " --help)\n",
        )


# A string a hostile file holds: a newline that forges a report line, an ESC
# sequence that hides what follows on a terminal, a U+202E that reverses it.
EVIL = "a\nforged line\x1b[8mhidden\u202eb"
EVIL_SHOWN = "a\\u000aforged line\\u001b[8mhidden\\u202eb"


def set_keys(*edits: tuple[tuple[Any, ...], object]) -> Callable[[Any], None]:
    """An edit that sets several JSON values (set_key each)."""

    def change(doc: Any) -> None:
        for path, value in edits:
            set_key(path, value)(doc)

    return change


def read_aloud(path: str, *options: str) -> subprocess.CompletedProcess[str]:
    """trace.py run as a file, as a user runs it: the output a terminal
    would get."""
    return subprocess.run(
        [sys.executable, str(trace_files.READER), path] + list(options),
        capture_output=True,
        text=True,
        timeout=120,
    )


class EscapingTests(unittest.TestCase):
    """Every string from a file reaches the terminal escaped, as desgd's
    DisplayText.escaped writes it (FORMAT.md §6, docs/bad-input.md):
    controls, format characters, separators other than the space,
    surrogates, private-use and unassigned code points as \\uXXXX
    (\\u{XXXXX} above U+FFFF); other text, any script, as it is."""

    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)

    def tearDown(self) -> None:
        self.dir.cleanup()

    def assertPrintable(self, text: str) -> None:
        for line in text.splitlines():
            self.assertTrue(line.isprintable(), repr(line))

    def test_the_rule(self) -> None:
        cases = {
            "": "",
            "desgd 0.6.0 cclip:tau=10": "desgd 0.6.0 cclip:tau=10",
            "é 日本 😀 x̄ …": "é 日本 😀 x̄ …",  # any script, marks, emoji
            EVIL: EVIL_SHOWN,
            "\t\r\x00\x7f\x85": "\\u0009\\u000d\\u0000\\u007f\\u0085",
            "\u00a0\u2028\u2029\u3000": "\\u00a0\\u2028\\u2029\\u3000",
            "\u200b\u2066\ufeff": "\\u200b\\u2066\\ufeff",  # format
            "\ue000\U000f0000": "\\ue000\\u{f0000}",  # private use
            "\U000e0001\U0001d173": "\\u{e0001}\\u{1d173}",  # format
            "\u0378\U0010ffff": "\\u0378\\u{10ffff}",  # unassigned
            "\ud800": "\\ud800",  # a lone surrogate (JSON "\\ud800")
            "\\u001b": "\\u001b",  # already escaped: unchanged
        }
        for text, shown in cases.items():
            with self.subTest(text=text):
                self.assertEqual(trace.escaped(text), shown)

    def test_the_summary_and_a_round(self) -> None:
        header = set_keys(
            (("program",), EVIL),
            (("aggregator",), EVIL),
            (("attack",), EVIL),
            (("recording",), EVIL),
            (("numerics",), [EVIL, {EVIL: EVIL}]),
            (("dataset", "kind"), EVIL),
            (("model", "architecture"), EVIL),
            (("config", "mode"), EVIL),
            (("config", "seed"), EVIL),
            (("config", "rounds"), EVIL),
        )
        path = rewritten(
            SAMPLE, self.root / "header.trace", HEADER, json_edit(header)
        )
        body = set_keys(
            (("classes",), [EVIL]),
            (("evaluation",), {"accuracy": EVIL}),
            (("aggregations", 0, "class"), EVIL),
            (("aggregations", 0, "senders", 0, "worker"), EVIL),
            (("aggregations", 0, "metrics", EVIL), EVIL),
        )
        path = rewritten(
            path, self.root / "hostile.trace", ROUND, json_edit(body), 1
        )
        done = read_aloud(str(path), "--round", "1")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertPrintable(done.stdout)
        lines = done.stdout.splitlines()
        self.assertEqual(len(lines), 9, done.stdout)
        self.assertIn(f"format 1.0, {EVIL_SHOWN}, numerics", lines[0])
        self.assertIn(f"'{EVIL_SHOWN}': '{EVIL_SHOWN}'", lines[0])
        self.assertIn(f"mode {EVIL_SHOWN}, model {EVIL_SHOWN} (d", lines[1])
        self.assertIn(f"recording {EVIL_SHOWN}", lines[2])
        self.assertIn(f"round 1: classes ['{EVIL_SHOWN}']", lines[4])
        self.assertIn(f"senders [{EVIL_SHOWN} 3 7 10* 11*]", lines[5])
        self.assertIn(f"'{EVIL_SHOWN}': '{EVIL_SHOWN}'}}", lines[6])

    def test_a_fork_s_parent_and_changes(self) -> None:
        fork = trace_files.SAMPLES / "v1.3-fork-at1-geomed-small.trace"
        header = set_keys(
            (("fork", "parentFile"), EVIL),
            (("fork", "changes", 0, "option"), EVIL),
        )
        path = rewritten(
            fork, self.root / "fork.trace", HEADER, json_edit(header)
        )
        done = read_aloud(str(path))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertPrintable(done.stdout)
        self.assertIn(f"fork of {EVIL_SHOWN} at round 1", done.stdout)
        self.assertIn(f"; {EVIL_SHOWN} cclip -> geomed)", done.stdout)

    def test_error_messages_quote_the_file_escaped(self) -> None:
        path = rewritten(
            SAMPLE,
            self.root / "value.trace",
            ROUND,
            json_edit(set_key(("vectors", 3, "scaleBits"), EVIL)),
            0,
        )
        done = read_aloud(str(path), "--round", "0")
        self.assertEqual((done.returncode, done.stdout), (2, ""))
        self.assertEqual(
            done.stderr,
            f"desgd-trace: round 0: vectors[3].scaleBits is '{EVIL_SHOWN}',"
            " expected an integer in 0...4294967295\n",
        )
        with Trace(path) as tr, self.assertRaises(TraceValueError) as e:
            tr.round(0)
        self.assertIn(f"'{EVIL_SHOWN}'", str(e.exception))
        self.assertEqual(e.exception.value, EVIL)  # the value as read

    def test_a_file_s_name_is_escaped(self) -> None:
        """The file's name is the audited party's too (FORMAT.md §6)."""
        named = self.root / f"{EVIL}.trace"
        named.write_bytes(b"not a trace")
        shown = f"{self.root}/{EVIL_SHOWN}.trace"
        done = read_aloud(str(named))
        self.assertEqual((done.returncode, done.stdout), (2, ""))
        self.assertEqual(
            done.stderr,
            f"desgd-trace: {shown}: not a desgd trace (bad magic)\n",
        )
        for refused in (named.with_suffix(".missing"), self.root / "fifo"):
            if refused.name == "fifo":
                refused = self.root / f"{EVIL}.fifo"
                os.mkfifo(refused)
            done = read_aloud(str(SAMPLE), "--trust", str(refused))
            self.assertEqual((done.returncode, done.stdout), (2, ""))
            self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
            self.assertIn(f"{self.root}/{EVIL_SHOWN}.", done.stderr)
        copy = self.root / f"{EVIL}.copy.trace"
        copy.write_bytes(SAMPLE.read_bytes())
        done = read_aloud(str(copy), "--checkpoint", "1")
        self.assertEqual((done.returncode, done.stdout), (2, ""))
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        done = read_aloud(str(copy))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertPrintable(done.stdout)
        self.assertTrue(
            done.stdout.startswith(
                f"{self.root}/{EVIL_SHOWN}.copy.trace: format 1.0,"
            ),
            done.stdout,
        )


class OutputEncodingTests(unittest.TestCase):
    """Printable text in any script from a file is shown as it is
    (escaped() keeps it); on a standard output or error that cannot encode
    it (PYTHONIOENCODING=ascii, a terminal in another charset) it is
    written backslash-escaped, never a traceback."""

    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)

    def tearDown(self) -> None:
        self.dir.cleanup()

    def test_an_ascii_standard_output(self) -> None:
        path = rewritten(
            SAMPLE,
            self.root / "\u00e9.trace",
            HEADER,
            json_edit(set_key(("program",), "desgd \u00e9 \U0001f600")),
        )
        done = trace_files.run_with_ascii_output(trace_files.READER, str(path))
        self.assertEqual((done.returncode, done.stderr), (0, ""))
        self.assertTrue(
            done.stdout.startswith(
                f"{self.root}/\\xe9.trace: format 1.0, desgd \\xe9"
                " \\U0001f600, numerics 1\n"
            ),
            done.stdout,
        )
        named = self.root / "\u65e5.txt"
        named.write_text("not a trace\n")
        done = trace_files.run_with_ascii_output(
            trace_files.READER, str(named)
        )
        self.assertEqual((done.returncode, done.stdout), (2, ""))
        self.assertEqual(
            done.stderr,
            f"desgd-trace: {self.root}/\\u65e5.txt: not a desgd trace (bad"
            " magic)\n",
        )


if __name__ == "__main__":
    unittest.main()
