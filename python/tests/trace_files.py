"""Hostile copies of the committed sample traces, for the tests of the Python
reader (desgd.trace) and checker (desgd.check_trace): a record's JSON or
payload changed, every digest after it recomputed, so that the damage is what
a reader meets past the digest chain (FORMAT.md §6: anyone who changes a file
can recompute the chain)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "traces" / "samples"
SAMPLE = SAMPLES / "v1.0-desgd-cclip-ipm-small-3r.trace"  # rounds 0..<3
CHECKPOINTS = (
    SAMPLES / "v1.2-desgd-cclip-ipm-small-3r-portable-checkpoints.trace"
)
SRC = ROOT / "python" / "src"
READER = SRC / "desgd" / "trace.py"
CHECKER = SRC / "desgd" / "check_trace.py"

REC = struct.Struct("<4sBBHQqQ32s")
HEADER, KEYFRAME, ROUND, INDEX, FOOTER, SIGNATURE, CHECKPOINT = range(1, 8)


@dataclass(frozen=True)
class Record:
    """One record of a trace: its header fields and its payload as stored."""

    kind: int
    encoding: int
    round: int
    payload: bytes

    def body(self) -> tuple[dict[str, Any], bytes]:
        """The JSON document and the vector section."""
        text, section = self.json_text()
        doc: dict[str, Any] = json.loads(text)
        return doc, section

    def json_text(self) -> tuple[bytes, bytes]:
        """The JSON document as it is written and the vector section."""
        p = self.payload
        if self.encoding == 1:
            p = zstandard.ZstdDecompressor().decompress(p)
        n = struct.unpack_from("<I", p)[0]
        return p[4 : 4 + n], p[4 + n :]

    def with_body(self, doc: object, section: bytes) -> Record:
        """This record holding `doc` and `section`, uncompressed."""
        return self.with_json_text(json.dumps(doc).encode(), section)

    def with_json_text(self, text: bytes, section: bytes) -> Record:
        body = struct.pack("<I", len(text)) + text + section
        return replace(self, encoding=0, payload=body)

    def edited(self, change: Callable[[dict[str, Any]], None]) -> Record:
        """This record with `change` applied to its JSON document."""
        doc, section = self.body()
        change(doc)
        return self.with_body(doc, section)


def records(path: Path) -> tuple[bytes, list[Record]]:
    """The file signature and the records of a trace."""
    data = path.read_bytes()
    out, off = [], 16
    while off + 64 <= len(data):
        _, kind, enc, _, _, rnd, length, _ = REC.unpack_from(data, off)
        out.append(Record(kind, enc, rnd, data[off + 64 : off + 64 + length]))
        off += 96 + length
    return data[:16], out


def chained(
    signature: bytes, recs: list[Record], index: bool = False
) -> bytes:
    """The file of these records, sequence numbers and digests recomputed; an
    index and footer are dropped (the reader then scans), and with `index`
    written anew after the others (FORMAT.md §3.4, §3.5)."""
    out = bytearray(signature)
    prev = hashlib.sha256(signature).digest()
    kept = [r for r in recs if r.kind not in (INDEX, FOOTER)]
    entries = bytearray()

    def append(seq: int, r: Record) -> None:
        nonlocal prev
        h = REC.pack(
            b"DSGR",
            r.kind,
            r.encoding,
            0,
            seq,
            r.round,
            len(r.payload),
            prev,
        )
        entries.extend(
            struct.pack(
                "<B7xqQQ", r.kind, r.round, len(out), 96 + len(r.payload)
            )
        )
        prev = hashlib.sha256(h + r.payload).digest()
        out.extend(h + r.payload + prev)

    for seq, r in enumerate(kept):
        append(seq, r)
    if index:
        n, at = len(kept), len(out)
        rounds = sum(r.kind == ROUND for r in kept)
        append(n, Record(INDEX, 0, -1, bytes(entries)))
        append(
            n + 1,
            Record(FOOTER, 0, -1, struct.pack("<QQQII", at, n, rounds, 0, 0)),
        )
    return bytes(out)


def rewritten(
    path: Path,
    target: Path,
    kind: int,
    change: Callable[[Record], Record],
    round: int | None = None,  # noqa: A002
) -> Path:
    """A copy of `path` at `target` whose first record of type `kind` (and
    round `round`, if given) is `change`d; returns `target`."""
    signature, recs = records(path)
    i = next(
        i
        for i, r in enumerate(recs)
        if r.kind == kind and (round is None or r.round == round)
    )
    recs[i] = change(recs[i])
    target.write_bytes(chained(signature, recs))
    return target


def json_edit(
    change: Callable[[dict[str, Any]], None],
) -> Callable[[Record], Record]:
    """A record change that edits the JSON document."""
    return lambda r: r.edited(change)


def text_edit(change: Callable[[bytes], bytes]) -> Callable[[Record], Record]:
    """A record change that edits the JSON document's text (what json_edit
    cannot write: a key twice, an escape as it stands)."""

    def edit(r: Record) -> Record:
        text, section = r.json_text()
        return r.with_json_text(change(text), section)

    return edit


def run_with_ascii_output(
    script: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`script` run by this interpreter with an ASCII-only standard output
    and error (PYTHONIOENCODING=ascii), as a terminal that cannot show
    non-ASCII text would give it."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        encoding="ascii",
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
