#!/usr/bin/env python3
"""Reader for desgd trace files (format 1.x), written from traces/FORMAT.md
alone.

    from desgd.trace import Trace, messages, honest_mask, aggregate
    tr = Trace("run.trace")
    r = tr.round(5)  # the round's JSON dict (a Body: dict + .vectors)
    X = messages(r, aggregation=0)  # senders x d float32
    x = tr.parameters_at(5)  # model at the start of round 5, float32
    # the run's complete state before round 250 (1.2)
    st = checkpoint_state(tr.checkpoint(250))

    # §3.6: signed whole by that key? (needs cryptography)
    ok, msg = verify_signatures(tr, "lab.key.pub")

CLI: python3 -m desgd.trace TRACE [--round T] [--checkpoint T] [--verify]
     [--trust KEY.pub]
     (installed: desgd-trace TRACE ...; without installing the package:
     python3 python/src/desgd/trace.py TRACE ...)
     Exits 1 when --trust or --verify fails, 2 on bad usage or a file it
     cannot read or refuses (one line on standard error starting
     `desgd-trace: `, docs/bad-input.md).
Needs only the standard library, zstandard and numpy; verifying signatures also
needs cryptography (Debian: python3-cryptography). It imports nothing else from
the desgd package, so that it also runs as a lone file.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import re
import reprlib
import stat
import struct
import sys
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict

if __name__ == "__main__" and not __package__:
    # Run as a file: its directory heads sys.path, where this very file would
    # shadow the standard library's `trace` module for anything imported below.
    # Drop that directory.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [
        p for p in sys.path if os.path.abspath(p or os.curdir) != _here
    ]

import numpy as np
import zstandard

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from numpy.typing import NDArray

    # A decoded vector of the trace (§4.2): little-endian float32.
    Float32Array = NDArray[np.float32]

MAGIC = bytes.fromhex("8A4445534744 0D0A1A0A")  # §2
RECORD_MAGIC = b"DSGR"  # §3.1
# §3.2 (6: 1.1; 7: 1.2)
HEADER, KEYFRAME, ROUND, INDEX, FOOTER, SIGNATURE, CHECKPOINT = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
MAJOR = 1
# The minor version this reader implements (FORMAT.md 1.6): a record of a type
# it does not know is damage in a file of this minor version or an earlier
# one, and skipped only in a later one's (§3.2)
MINOR = 6
# §3.2, §10: the record types of a later minor version than 1.0, by name and
# the first minor version whose files may hold them
SINCE_MINOR = {SIGNATURE: ("signature", 1), CHECKPOINT: ("checkpoint", 2)}
# §4.1, §6 item 7: the longest chain of vector references a reader follows
MAX_REFERENCE_LINKS = 8
REC = struct.Struct("<4sBBHQqQ32s")  # record header, 64 bytes
LIMIT32 = 1 << 32


class TraceError(ValueError):
    """A trace the format says to reject (§6); the message names the record or
    round."""


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def escaped(text: str) -> str:
    """`text`, a string from a file (a trace's strings, its name, a message
    quoting them), made safe to show: every control, format, separator
    (every space but U+0020), surrogate, private-use or unassigned code
    point written as `\\u001b` (`\\u{e0001}` above U+FFFF); printable text
    in any script kept. desgd's DisplayText.escaped, the same rule (FORMAT.md
    §6: a newline could forge a line, an ESC hide one, a U+202E reverse
    one). str.isprintable is false for exactly those general categories (Cc,
    Cf, Cs, Co, Cn, Zl, Zp, Zs but the space)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _code(c) for c in text)


def _code(c: str) -> str:
    n = ord(c)
    return f"\\u{n:04x}" if n <= 0xFFFF else f"\\u{{{n:x}}}"


def _name_of(path: str | os.PathLike[str]) -> str:
    """A file's name as messages show it, escaped: the file's name is the
    audited party's too."""
    return escaped(os.fsdecode(path))


def _quote(text: str) -> str:
    """A string inside a shown value, quoted as repr quotes it (the same
    characters for printable text) and escaped()."""
    q = '"' if "'" in text and '"' not in text else "'"
    return q + escaped(text.replace("\\", "\\\\").replace(q, "\\" + q)) + q


_DEPTH = 16  # deeper JSON is shown as [...] or {...}


def _display(value: object, depth: int = 0) -> str:
    """A JSON value from a file as output shows it: str() of it (a string
    itself, lists and dicts with their strings quoted), every string
    escaped(), nesting beyond a few levels cut."""
    if isinstance(value, str):
        return _quote(value) if depth else escaped(value)
    if isinstance(value, list):
        if depth >= _DEPTH:
            return "[...]"
        return "[" + ", ".join(_display(x, depth + 1) for x in value) + "]"
    if isinstance(value, dict):
        if depth >= _DEPTH:
            return "{...}"
        return (
            "{"
            + ", ".join(
                f"{_display(k, depth + 1)}: {_display(x, depth + 1)}"
                for k, x in value.items()
            )
            + "}"
        )
    return escaped(repr(value))


class _Shown(reprlib.Repr):
    """reprlib's short repr with strings quoted and escaped()."""

    def repr_str(self, x: str, level: int) -> str:
        cut = len(x) > self.maxstring
        return _quote(x[: self.maxstring] + ("…" if cut else ""))


_SHOWN = _Shown()
_SHOWN.maxstring = _SHOWN.maxother = 60


def _shown(value: object) -> str:
    """A value read from a file as a message shows it: on one line, every
    string in it escaped(), cut to a few dozen characters (a hostile file
    chooses it)."""
    return escaped(_SHOWN.repr(value))


class TraceValueError(TraceError):
    """A JSON value of another type or range than the format gives (§6 item
    6): `key` of the record `where` holds `value`, not `expected`."""

    def __init__(
        self, where: str, key: str, value: object, expected: str
    ) -> None:
        super().__init__(where, key, value, expected)
        self.where, self.key, self.value = where, key, value
        self.expected = expected

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        return (
            f"{place}{self.key} is {_shown(self.value)}, expected"
            f" {self.expected}"
        )


class NothingToAverage(TraceError):
    """An aggregation of the round `where` without the rows a mean needs
    (`missing`: "message" or "honest sender"); §5.3 requires |S| >= 1."""

    def __init__(self, where: str, aggregation: int, missing: str) -> None:
        super().__init__(where, aggregation, missing)
        self.where, self.aggregation = where, aggregation
        self.missing = missing

    def __str__(self) -> str:
        return (
            f"{self.where}: aggregation {self.aggregation} has no"
            f" {self.missing}, so nothing to average (FORMAT.md §5.3: at"
            " least one honest sender)"
        )


def _is_integer(value: object, lo: int, hi: int) -> bool:
    """Whether a JSON value is an integer in lo...hi (true and false are
    not: bool is an int in Python)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and lo <= value <= hi
    )


def _integer(
    value: object,
    where: str,
    key: str,
    lo: int = INT64_MIN,
    hi: int = INT64_MAX,
) -> int:
    """`value`, a JSON integer in lo...hi (§6 item 6: an int fits 64 bits);
    else a TraceValueError naming the record and the key."""
    if not _is_integer(value, lo, hi):
        raise TraceValueError(where, key, value, f"an integer in {lo}...{hi}")
    assert isinstance(value, int)
    return value


class Body(dict[str, Any]):
    """A record's JSON document; `vectors` holds its decoded vector section
    (float32 arrays)."""

    vectors: Sequence[Float32Array] = ()
    where: str  # the record, as messages name it ("round 5")

    def vec(self, index: object, what: str = "vector") -> Float32Array:
        if not _is_integer(index, 0, len(self.vectors) - 1):
            raise TraceError(
                f"{self.where}: {what} index {_shown(index)} outside the"
                " vector table"
            )
        assert isinstance(index, int)
        return self.vectors[index]


def _name(kind: int, rnd: int, seq: int) -> str:
    return (
        f"round {rnd}"
        if kind == ROUND
        else {
            HEADER: "header record",
            KEYFRAME: f"keyframe {rnd}",
            SIGNATURE: f"signature record {seq}",
            CHECKPOINT: f"checkpoint record {seq}",
        }.get(kind, f"record {seq}")
    )


def _decode_vectors(
    table: object, section: bytes | memoryview, where: str, limit: int
) -> list[Float32Array]:
    """§4.2: undo the byte planes, then add back the prediction (ref, scaled),
    for every entry of `table`; at most `limit` bytes of vectors in all (the
    body limit: entries may overlap, a valid body's do not)."""
    if not isinstance(table, list):
        raise TraceValueError(where, "vectors", table, "a list")
    try:
        with np.errstate(all="ignore"):  # IEEE results, no warnings
            return _decoded(table, section, where, limit)
    except MemoryError:
        raise TraceError(
            f"{where}: its {len(table)} vectors need more memory than this"
            " process can have"
        ) from None


def _decoded(
    table: list[Any], section: bytes | memoryview, where: str, limit: int
) -> list[Float32Array]:
    out: list[Float32Array] = []
    links: list[int] = []  # the length of each entry's chain of references
    total = 0
    for k, e in enumerate(table):
        if not isinstance(e, dict):
            raise TraceValueError(
                where, f"vectors[{k}]", e, "an object {offset, count, ...}"
            )
        off = _integer(e.get("offset"), where, f"vectors[{k}].offset", 0)
        n = _integer(e.get("count"), where, f"vectors[{k}].count", 0)
        if off + 4 * n > len(section):
            raise TraceError(
                f"{where}: vector {k} (offset {off}, count {n}) lies outside"
                " the vector section"
            )
        total += 4 * n
        if total > limit:
            raise TraceError(
                f"{where}: its vectors decode to more than {limit} bytes, the"
                " body limit (FORMAT.md §6 item 5)"
            )
        planes = np.frombuffer(section, np.uint8, 4 * n, off).reshape(4, n)
        w = np.ascontiguousarray(planes.T).view("<u4").reshape(n)
        if "ref" in e:
            x = e["ref"]
            if not _is_integer(x, 0, k - 1) or table[x]["count"] != n:
                raise TraceValueError(
                    where,
                    f"vectors[{k}].ref",
                    x,
                    f"the index of an earlier entry of count {n}",
                )
            links.append(links[x] + 1)
            if links[k] > MAX_REFERENCE_LINKS:
                raise TraceError(
                    f"{where}: vector {k}'s chain of references is longer"
                    f" than {MAX_REFERENCE_LINKS} links (FORMAT.md §6 item 7)"
                )
            p = out[x]
            if "scaleBits" in e:
                bits = _integer(
                    e["scaleBits"],
                    where,
                    f"vectors[{k}].scaleBits",
                    0,
                    0xFFFFFFFF,
                )
                s = np.array([bits], dtype="<u4").view("<f4")[0]
                if not np.isfinite(s) or s == 0:
                    raise TraceError(f"{where}: vector {k} has the scale {s}")
                p = (s * p).astype("<f4")  # one binary32 multiply per element
            z = w.astype(np.uint32)
            w = (
                (z >> np.uint32(1)) ^ (np.uint32(0) - (z & np.uint32(1)))
            ) + p.view(
                "<u4"
            )  # unzigzag, mod 2**32
        elif "scaleBits" in e:
            raise TraceError(f"{where}: vector {k} has a scale but no ref")
        else:
            links.append(0)
        out.append(w.view("<f4"))
    return out


class _InvalidJSON(Exception):
    """JSON that Python's json reads but FORMAT.md §4.1 makes invalid (a key
    twice in one object, an unpaired surrogate escape, NaN or Infinity); the
    message says which."""


# A surrogate code point: what an unpaired surrogate escape ("\ud800")
# decodes to (json.loads accepts one; a pair decodes to one code point above
# U+FFFF, and UTF-8 cannot encode a surrogate, so nothing else does)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _surrogate_problem(text: str) -> _InvalidJSON:
    return _InvalidJSON(
        "JSON has an unpaired surrogate escape in the string"
        f" {_shown(text)} (FORMAT.md §4.1)"
    )


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """One JSON object as this reader reads it (json.loads's
    object_pairs_hook). A key twice is refused: FORMAT.md §4.1 makes such a
    document invalid and says a reader SHOULD reject it (readers that keep
    the first occurrence or the last read it differently). A member whose
    value is null is dropped: an optional key that is null is read as absent
    (§4.1), and a required one is then missing, which §6 item 6 refuses. (In
    a dictionary of names, a state's scalars or vectors, a null value is
    thus a name absent, where desgd's reader refuses it as a value of another
    type.)"""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _InvalidJSON(
                    f"JSON has the key {_shown(key)} twice in one object"
                    " (FORMAT.md §4.1)"
                )
            seen.add(key)
    for key, value in pairs:
        if value is None:
            if _lone_surrogate(key):  # checked here: it leaves the document
                raise _surrogate_problem(key)
            del out[key]
    return out


def _not_json(constant: str) -> float:
    """json.loads's parse_constant: NaN, Infinity and -Infinity, which
    Python's json reads but RFC 8259 does not have, are refused."""
    raise _InvalidJSON(
        f"JSON does not parse: {constant} is not JSON (a non-finite number"
        ' is the string "nan", "inf" or "-inf", FORMAT.md §4.1)'
    )


def _check_strings(doc: object) -> None:
    """Refuse a parsed JSON value holding a string, a value or a key, with an
    unpaired surrogate escape, which FORMAT.md §4.1 says a reader MUST
    reject. One pass over the value, iterative (no recursion on file
    content)."""
    todo = [doc]
    while todo:
        x = todo.pop()
        if isinstance(x, str):
            if _lone_surrogate(x):
                raise _surrogate_problem(x)
        elif isinstance(x, dict):
            todo.extend(x)
            todo.extend(x.values())
        elif isinstance(x, list):
            todo.extend(x)


def _parse_body(
    body: bytes, where: str, required: tuple[str, ...], limit: int
) -> Body:
    """§4: u32 JSON length, JSON, vector section (decoded to at most `limit`
    bytes)."""
    if len(body) < 4 or struct.unpack_from("<I", body)[0] > len(body) - 4:
        raise TraceError(f"{where}: JSON length larger than the body")
    j = struct.unpack_from("<I", body)[0]
    text = body[4 : 4 + j]
    try:
        doc = json.loads(
            text.decode("utf-8"),
            object_pairs_hook=_json_object,
            parse_constant=_not_json,
        )
        if b"\\u" in text:  # only a \u escape can make a surrogate
            _check_strings(doc)
    except _InvalidJSON as e:
        raise TraceError(f"{where}: {e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise TraceError(
            f"{where}: JSON does not parse: {escaped(str(e))}"
        ) from None
    except RecursionError:
        raise TraceError(
            f"{where}: JSON does not parse: nested too deep for this reader"
        ) from None
    if not isinstance(doc, dict):
        raise TraceError(f"{where}: JSON is not an object")
    for key in ("vectors",) + required:
        if key not in doc:
            raise TraceError(f"{where}: JSON lacks required key {key!r}")
    b = Body(doc)
    b.where = where
    b.vectors = _decode_vectors(
        doc["vectors"], memoryview(body)[4 + j :], where, limit
    )
    return b


# ---- helpers on decoded round bodies (§5.3) ---------------------------------


def messages(rnd: Body, aggregation: int = 0) -> Float32Array:
    """The messages of one aggregation, as a float32 array (senders x d)."""
    with _keys(rnd):
        rows = rnd["aggregations"][aggregation]["messages"]
        if not rows:
            raise NothingToAverage(rnd.where, aggregation, "message")
        return np.stack([rnd.vec(i, "message") for i in rows])


def honest_mask(rnd: Body, aggregation: int = 0) -> NDArray[np.bool_]:
    """True for the rows of messages() sent by honest workers."""
    with _keys(rnd):
        senders = rnd["aggregations"][aggregation]["senders"]
        flags = [s["byzantine"] for s in senders]
    for k, b in enumerate(flags):
        if not isinstance(b, bool):
            raise TraceValueError(
                rnd.where,
                f"aggregations[{aggregation}].senders[{k}].byzantine",
                b,
                "true or false",
            )
    return np.array([not b for b in flags], bool)


def honest_mean(rnd: Body, aggregation: int = 0) -> Float32Array:
    """The honest mean x̄_S of one aggregation as FORMAT.md §5.3 defines it
    (float32, d): starting from 0, a ← fma(w, x_i, a) for each honest row in
    row order, w = 1/|S| rounded to float32. The product of two float32 values
    is exact in float64, so each step is float64 arithmetic rounded to float32
    (it can differ from a true fused multiply-add by one ulp in rare double
    roundings). A mean taken in float64 instead differs from the recorded
    metrics by about 1e-6 relative when the gap is small against the mean."""
    X = messages(rnd, aggregation)[honest_mask(rnd, aggregation)]
    if not len(X):
        raise NothingToAverage(rnd.where, aggregation, "honest sender")
    w = np.float64(np.float32(1.0 / len(X)))
    a = np.zeros(X.shape[1], np.float32)
    with np.errstate(all="ignore"):  # non-finite messages: IEEE results
        for row in X:
            a = (w * row.astype(np.float64) + a.astype(np.float64)).astype(
                np.float32
            )
    return a


def aggregate(
    rnd: Body, aggregation: int | dict[str, Any] = 0
) -> Float32Array:
    """The aggregate m̂ of one aggregation (float32, d); `aggregation` is an
    index or the dict."""
    with _keys(rnd):
        a = (
            rnd["aggregations"][aggregation]
            if isinstance(aggregation, int)
            else aggregation
        )
        return rnd.vec(a["aggregate"], "aggregate")


def model_diff(rnd: Body) -> Float32Array:
    """Δx_t, the model difference applied in the round (float32, d)."""
    with _keys(rnd):
        return rnd.vec(rnd["modelDiff"], "modelDiff")


def metric(rnd: Body, aggregation: int, key: str) -> float:
    """A recorded metric of one aggregation (§5.3: `gap`, `lambda`, ...) as a
    float; TraceError if it is absent or not a number."""
    with _keys(rnd):
        value = rnd["aggregations"][aggregation]["metrics"][key]
    what = f"aggregations[{aggregation}].metrics.{key}"
    x = num(value, rnd.where, what)
    if not isinstance(x, float):
        raise TraceValueError(rnd.where, what, value, _A_NUMBER)
    return x


class State(TypedDict):
    """An aggregator's or attack's state (§5.2) with its vectors decoded; the
    scalars are the record's JSON as read."""

    scalars: dict[str, Any]
    vectors: dict[str, Float32Array]


# §5.5: one group's drift state. "class" is a keyword, hence the functional
# form; the JSON numbers are as read (Any), the norms through num().
_DriftGroupCommon = TypedDict(
    "_DriftGroupCommon",
    {
        "class": Any,
        "count": Any,
        "sumOfNorms": "float | Any",
        "cumulativeSum": "NDArray[np.float64]",
    },
)


class DriftGroup(_DriftGroupCommon, total=False):
    """One group's drift state: `recentSum` and `recentNorms` (format 1.4,
    "exponential"), or `window` and `windowNorms` (1.1-1.3, "window")."""

    recentSum: Float32Array
    recentNorms: float | Any
    window: list[Float32Array]
    windowNorms: list[float | Any]


class Drift(TypedDict):
    """The drift state of a checkpoint (§5.5), binary64 sums decoded."""

    rounds: Any
    differenceNorms: float | Any
    differenceSum: NDArray[np.float64]
    shadowSum: NDArray[np.float64]
    shadowClassMomenta: list[Float32Array]
    shadowServerMomentum: Float32Array | None
    groups: list[DriftGroup]


class CheckpointState(TypedDict):
    """What checkpoint_state returns: the vectors decoded and checked, the
    other JSON values as read (momentum rows: worker, class, vector)."""

    round: int  # the checkpoint's round, checked against the record table
    parameters: Float32Array
    classMomenta: list[Float32Array]
    serverMomentum: Float32Array | None
    honestMomenta: list[tuple[Any, Any, Float32Array]]
    byzantineMomenta: list[tuple[Any, Any, Float32Array]]
    aggregatorStates: list[State]
    attackStates: list[State]
    drift: Drift | None


def state(body: Body, st: dict[str, Any], key: str = "state") -> State:
    """A state {"scalars", "vectors"} with its vector indices resolved to
    arrays; `key` names it in errors."""
    if not isinstance(st, dict):
        raise TraceValueError(body.where, key, st, "an object")
    if "scalars" not in st:  # required; vectors is absent without vectors
        raise TraceError(
            f"{body.where}: JSON lacks required key '{escaped(key)}.scalars'"
        )
    scalars, vectors = st["scalars"], st.get("vectors", {})
    for part, value in (("scalars", scalars), ("vectors", vectors)):
        if not isinstance(value, dict):
            raise TraceValueError(
                body.where, f"{key}.{part}", value, "an object"
            )
    return {
        "scalars": dict(scalars),
        "vectors": {
            k: body.vec(i, "state vector") for k, i in vectors.items()
        },
    }


def _wide(body: Body, w: dict[str, Any]) -> NDArray[np.float64]:
    """§5.5: a binary64 vector stored as its high and low 32-bit words."""
    hi, lo = body.vec(w["high"], "wide vector").view("<u4"), body.vec(
        w["low"], "wide vector"
    ).view("<u4")
    return (
        (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
    ).view("<f8")


def checkpoint_state(cp: Body) -> CheckpointState:
    """A state checkpoint (§5.5) as numpy arrays: the model, the buffers, every
    momentum (rows as (worker, class, float32 array)), the carried states, and
    the drift state (binary64 sums)."""
    with _keys(cp):

        def rows(key: str) -> list[tuple[Any, Any, Float32Array]]:
            return [
                (r["worker"], r["class"], cp.vec(r["vector"], "momentum"))
                for r in cp[key]
            ]

        out: CheckpointState = {
            "round": cp["round"],
            "parameters": cp.vec(cp["parameters"], "parameters"),
            "classMomenta": [
                cp.vec(i, "class momentum") for i in cp["classMomenta"]
            ],
            "serverMomentum": (
                cp.vec(cp["serverMomentum"])
                if "serverMomentum" in cp
                else None
            ),
            "honestMomenta": rows("honestMomenta"),
            "byzantineMomenta": rows("byzantineMomenta"),
            "aggregatorStates": [
                state(cp, s, f"aggregatorStates[{i}]")
                for i, s in enumerate(cp["aggregatorStates"])
            ],
            "attackStates": [
                state(cp, s, f"attackStates[{i}]")
                for i, s in enumerate(cp["attackStates"])
            ],
            "drift": None,
        }
        if "drift" in cp:
            d = cp["drift"]
            out["drift"] = {
                "rounds": d["rounds"],
                "differenceNorms": num(
                    d["differenceNorms"], cp.where, "drift.differenceNorms"
                ),
                "differenceSum": _wide(cp, d["differenceSum"]),
                "shadowSum": _wide(cp, d["shadowSum"]),
                "shadowClassMomenta": [
                    cp.vec(i) for i in d["shadowClassMomenta"]
                ],
                "shadowServerMomentum": (
                    cp.vec(d["shadowServerMomentum"])
                    if "shadowServerMomentum" in d
                    else None
                ),
                "groups": [
                    _drift_group(cp, g, f"drift.groups[{i}]")
                    for i, g in enumerate(d["groups"])
                ],
            }
    return out


def _drift_group(cp: Body, g: dict[str, Any], key: str) -> DriftGroup:
    """§5.5: one group's drift state; its recent sum is a window of terms
    (formats 1.1-1.3, and a header `driftRecent` of "window") or the
    exponentially weighted R_k, N_k (1.4, "exponential")."""
    out: DriftGroup = {
        "class": g["class"],
        "count": g["count"],
        "sumOfNorms": num(g["sumOfNorms"], cp.where, f"{key}.sumOfNorms"),
        "cumulativeSum": _wide(cp, g["cumulativeSum"]),
    }
    if "recentSum" in g:
        out["recentSum"] = cp.vec(g["recentSum"], "recent sum")
        out["recentNorms"] = num(
            g["recentNorms"], cp.where, f"{key}.recentNorms"
        )
    else:
        out["window"] = [cp.vec(i, "window term") for i in g["window"]]
        out["windowNorms"] = [
            num(x, cp.where, f"{key}.windowNorms") for x in g["windowNorms"]
        ]
    return out


@contextlib.contextmanager
def _keys(body: Body) -> Iterator[None]:
    """Turn a missing or mistyped JSON key inside the block into a TraceError
    naming the record."""
    try:
        yield
    except (KeyError, TypeError, AttributeError) as e:
        raise TraceError(
            f"{body.where}: missing or malformed JSON key ({type(e).__name__}:"
            f" {escaped(str(e))})"
        ) from None


_NON_FINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}
_A_NUMBER = 'a number, or "inf", "-inf" or "nan" (FORMAT.md §4.1)'


def num(x: Any, where: str = "", key: str = "a number") -> float | Any:
    """A JSON number as a float, with the strings "inf", "-inf", "nan" of §4.1
    turned into floats; other values (true, false, null, ...) as they are. Any
    other string, or an integer beyond the floats, is a TraceValueError naming
    `key` of the record `where`."""
    if isinstance(x, str):
        if x not in _NON_FINITE:
            raise TraceValueError(where, key, x, _A_NUMBER)
        return _NON_FINITE[x]
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        try:
            return float(x)
        except OverflowError:
            raise TraceValueError(where, key, x, _A_NUMBER) from None
    return x


# ---- the file ---------------------------------------------------------------


def _open_regular(path: str | os.PathLike[str], what: str) -> int:
    """A read-only descriptor of a regular file. Opened with O_NONBLOCK (a FIFO
    without a writer would block open) and refused at once unless fstat says it
    is a regular file."""
    fd = os.open(
        path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TraceError(
                f"{_name_of(path)} is not a regular file (a FIFO, device or"
                " directory):"
                f" give the path of a {what}"
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _RecordHeader(TypedDict):
    """A record header as _record_header reads and checks it (§3.1)."""

    type: int
    encoding: int
    seq: int
    round: int
    length: int
    prev: bytes  # the previous record's digest
    raw: bytes  # the 64 bytes of the header
    offset: int
    end: int  # the offset after the record's digest
    where: str  # how messages name the record


class Trace:
    """An open trace: header, record table, and positioned reads of rounds and
    keyframes."""

    path: str | os.PathLike[str]
    size: int
    version: tuple[int, int]
    header: Body
    d: int  # the parameter count
    max_body: int
    max_checkpoint_body: int
    fork: dict[str, Any] | None
    first_round: int
    # (index offset, entries, rounds, flags, reserved) of a valid footer
    footer: tuple[int, int, int, int, int] | None
    records: list[tuple[int, int, int, int]]
    finished: bool
    stopped: bool
    rounds: list[int]
    keyframes: dict[int, int]
    checkpoints: dict[int, int]
    round_count: int

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._f = os.fdopen(_open_regular(path, "trace"), "rb")
        try:
            self._open()
        except BaseException:
            self._f.close()  # a refused file is closed at once
            raise

    def _open(self) -> None:
        """The signature, the header and the record table (§7)."""
        name = _name_of(self.path)
        self.size = os.fstat(self._f.fileno()).st_size
        sig = self._read(0, 16) if self.size >= 16 else b""
        if len(sig) < 16 or sig[:10] != MAGIC:
            raise TraceError(f"{name}: not a desgd trace (bad magic)")
        self.version = struct.unpack_from("<HH", sig, 10)
        if self.version[0] != MAJOR:
            raise TraceError(
                f"{name}: unknown major version {self.version[0]}"
            )
        hdr = self._record_header(16, 0, None)
        if hdr is None:
            raise TraceError(f"{name}: header record incomplete")
        if hdr["type"] != HEADER:
            raise TraceError("record 0: not a header record")
        self.header = h = self._body(
            hdr,
            ("formatVersion", "model", "groups", "config", "keyframeInterval"),
        )
        where = "header record"
        with _keys(h):
            self.d = _integer(
                h["model"]["parameterCount"],
                where,
                "model.parameterCount",
                0,
            )
            groups = h["groups"]
            s = max(
                (
                    len(g["honestWorkers"]) + len(g["byzantineWorkers"])
                    for g in groups
                ),
                default=1,
            )
            c = h["config"]
            k = max(
                1,
                _integer(
                    c["classesPerRound"],
                    where,
                    "config.classesPerRound",
                ),
            )
            self.max_body = min(
                LIMIT32,
                (1 << 26)
                + 4 * self.d * (3 * s * k + 10 + 3 * len(groups) + 8),
            )  # §6.5
            honest = sum(len(g["honestWorkers"]) for g in groups)
            byz = _integer(
                c["byzantineWorkers"],
                where,
                "config.byzantineWorkers",
                0,
            ) * (10 if c["mode"] == "desgd" else 1)
            w = _integer(h.get("driftWindow", 0), where, "driftWindow", 0)
            self.max_checkpoint_body = min(
                LIMIT32,
                (1 << 26)
                + 4 * self.d * (honest + byz + 20 + len(groups) * (w + 8) + 8),
            )
            # §5.1.1 (1.3): a fork records rounds from its `at` on.
            self.fork = h.get("fork")
            self.first_round = 0
            if self.fork is not None:
                f = self.fork
                if self.version < (1, 3):
                    raise TraceError(
                        "header record: fork in a file of format"
                        f" {self.version[0]}.{self.version[1]}"
                    )
                pd = f["parentDigest"]
                if (
                    not isinstance(pd, str)
                    or len(pd) != 64
                    or any(ch not in "0123456789abcdef" for ch in pd)
                ):
                    raise TraceError(
                        "header record: fork.parentDigest is not 64 lowercase"
                        " hex digits"
                    )
                rounds = _integer(c.get("rounds"), where, "config.rounds", 1)
                at = _integer(f["at"], where, "fork.at", 0, rounds - 1)
                if not isinstance(f.get("changes"), list) or not isinstance(
                    f.get("parentFile"), str
                ):
                    raise TraceError(
                        "header record: fork.changes or fork.parentFile is"
                        " malformed"
                    )
                self.first_round = at
        self.footer = None
        # [(type, round, offset, size)]
        self.records = self._from_index(hdr) or self._scan(hdr)
        # §3.2, §6 item 2: a record of a type introduced after the file's
        # minor version contradicts the file itself (not a later writer's
        # addition): the whole file is refused.
        for k, (kind, _, _, _) in enumerate(self.records):
            what, since = SINCE_MINOR.get(kind, ("", 0))
            if since > self.version[1]:
                raise TraceError(
                    f"{name}: record {k} is a {what} record (type {kind}),"
                    f" which a file of format {MAJOR}.{self.version[1]}"
                    f" cannot hold: {what} records are format"
                    f" {MAJOR}.{since} and later (FORMAT.md §6 item 2)"
                )
        self.finished = self.footer is not None
        self.stopped = bool(self.footer and self.footer[3] & 1)
        # entry of round first_round + k
        self.rounds = [i for i, r in enumerate(self.records) if r[0] == ROUND]
        self.keyframes = {
            r[1]: i for i, r in enumerate(self.records) if r[0] == KEYFRAME
        }
        # §5.5: a checkpoint's round is the first round plus the number of
        # round records before it (its header says -1).
        self.checkpoints = {}
        next_round = self.first_round
        for i, r in enumerate(self.records):
            if r[0] == CHECKPOINT:
                self.checkpoints[next_round] = i
            next_round += r[0] == ROUND
        self.round_count = len(self.rounds)
        if (
            self.fork is not None
            and len(self.records) > 1
            and self.records[1][0] != CHECKPOINT
        ):
            raise TraceError(
                "record 1: a fork must begin with the state checkpoint of"
                f" round {self.first_round}"
            )

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, off: int, n: int) -> bytes:
        self._f.seek(off)
        return self._f.read(n)

    def _record_header(
        self, off: int, seq: int, expect_round: int | None
    ) -> _RecordHeader | None:
        """Read and check (§6 items 2-3) the record header at `off`; None if
        the record is incomplete."""
        if off + 64 > self.size:
            return None
        raw = self._read(off, 64)
        magic, kind, enc, res, sq, rnd, length, prev = REC.unpack(raw)
        where = _name(kind, rnd, seq)
        if magic != RECORD_MAGIC or enc not in (0, 1) or res or sq != seq:
            raise TraceError(
                f"{where} at offset {off}: bad record header (magic {magic!r},"
                f" encoding {enc}, reserved {res}, sequence {sq}, expected"
                f" {seq})"
            )
        problem = self._misplaced(kind, rnd, seq, expect_round)
        if problem is not None:
            raise TraceError(f"record {seq} at offset {off}: {problem}")
        if length > LIMIT32:
            raise TraceError(f"{where}: payload length {length} exceeds 2^32")
        if off + 64 + length + 32 > self.size:
            return None
        return dict(
            type=kind,
            encoding=enc,
            seq=seq,
            round=rnd,
            length=length,
            prev=prev,
            raw=raw,
            offset=off,
            end=off + 96 + length,
            where=where,
        )

    def _misplaced(
        self, kind: int, rnd: int, seq: int, next_round: int | None
    ) -> str | None:
        """Why record `seq`, of type `kind` and round `rnd` (its header's or
        its index entry's), is damage (FORMAT.md §3.2, §3.4, §6 item 2), or
        None. `next_round`, when known (a scan, the index, the chain's walk),
        is the round the next round record must have: a round record's
        round, and a keyframe's at most, from the first round on; the other
        records have round -1."""
        if kind == 0:
            return (
                "record type 0, which is reserved and never written"
                " (FORMAT.md §3.2)"
            )
        if kind > CHECKPOINT and self.version[1] <= MINOR:
            return (
                f"unknown record type {kind} in a file of format"
                f" {MAJOR}.{self.version[1]}: only a file of a later minor"
                f" version than {MAJOR}.{MINOR} may hold types this reader"
                " does not know (FORMAT.md §3.2)"
            )
        if kind == HEADER and seq != 0:
            return "a second header record (FORMAT.md §3.2)"
        if kind == ROUND:
            if next_round is not None and rnd != next_round:
                return f"round {rnd}, expected round {next_round}"
        elif kind == KEYFRAME:
            if next_round is not None and not (
                self.first_round <= rnd <= next_round
            ):
                return (
                    f"a keyframe of round {rnd}, expected a round in"
                    f" {self.first_round}...{next_round} (FORMAT.md §3.4)"
                )
        elif rnd != -1:
            return (
                f"round {rnd}, but every record other than rounds and"
                " keyframes has round -1 (FORMAT.md §3.4)"
            )
        return None

    def _payload(self, h: _RecordHeader) -> bytes:
        """The record's payload, its digest checked (§3.1)."""
        data = self._read(h["offset"] + 64, h["length"] + 32)
        payload, digest = data[:-32], data[-32:]
        if hashlib.sha256(h["raw"] + payload).digest() != digest:
            raise TraceError(f"{h['where']}: digest mismatch")
        return payload

    def _body(self, h: _RecordHeader, required: tuple[str, ...]) -> Body:
        payload, where = self._payload(h), h["where"]
        limit = (  # §6.5
            (1 << 28)
            if h["type"] == HEADER
            else (
                self.max_checkpoint_body
                if h["type"] == CHECKPOINT
                else self.max_body
            )
        )
        if h["encoding"] == 1:
            try:
                size = zstandard.frame_content_size(payload)
            except zstandard.ZstdError as e:
                raise TraceError(f"{where}: not a zstd frame: {e}") from None
            if size < 0:
                raise TraceError(
                    f"{where}: the zstd frame does not declare its content"
                    " size"
                )
            if size > limit:
                raise TraceError(
                    f"{where}: the zstd frame declares {size} bytes, above the"
                    f" limit {limit}"
                )
            dobj = zstandard.ZstdDecompressor().decompressobj()
            try:
                body = dobj.decompress(payload)
            except zstandard.ZstdError as e:
                raise TraceError(f"{where}: zstd: {e}") from None
            except MemoryError:
                raise TraceError(
                    f"{where}: the zstd frame declares {size} bytes, more"
                    " memory than this process can have"
                ) from None
            if not dobj.eof or dobj.unused_data or len(body) != size:
                raise TraceError(
                    f"{where}: payload is not exactly one zstd frame of {size}"
                    " bytes"
                )
        else:
            body = payload
        return _parse_body(body, where, required, limit)

    def _from_index(
        self, hdr: _RecordHeader
    ) -> list[tuple[int, int, int, int]] | None:
        """§7.2: the record table from a valid footer and index, or None."""
        try:
            if self.size < 16 + 96 + 96 + 128:
                return None
            raw = self._read(self.size - 128, 64)
            seq = REC.unpack(raw)[4]
            foot = self._record_header(self.size - 128, seq, None)
            if (
                not foot
                or foot["type"] != FOOTER
                or foot["length"] != 32
                or foot["end"] != self.size
            ):
                return None
            footer = struct.unpack("<QQQII", self._payload(foot))
            ioff, n = footer[0], footer[1]
            if seq != n + 1 or ioff < 16 or ioff >= self.size:
                return None
            idx = self._record_header(ioff, n, None)
            if (
                not idx
                or idx["type"] != INDEX
                or idx["length"] != 32 * n
                or idx["end"] != self.size - 128
            ):
                return None
            payload = self._payload(idx)
            table: list[tuple[int, int, int, int]] = []
            pos, next_round = 16, self.first_round
            for k in range(n):
                kind, rnd, off, size = struct.unpack_from(
                    "<B7xqQQ", payload, 32 * k
                )
                if (
                    off != pos
                    or size < 96
                    or self._misplaced(kind, rnd, k, next_round) is not None
                ):
                    return None
                next_round += kind == ROUND
                table.append((kind, rnd, off, size))
                pos += size
            if (
                pos != ioff
                or table[0] != (HEADER, -1, 16, hdr["end"] - 16)
                or footer[2] != next_round - self.first_round
            ):
                return None
            self.footer = footer
            return table
        except TraceError:
            return None

    def _scan(self, hdr: _RecordHeader) -> list[tuple[int, int, int, int]]:
        """§7.3: walk the record headers after the header record; stop at the
        first bad or cut one."""
        off = hdr["end"]
        table, seq, next_round = (
            [(HEADER, -1, 16, off - 16)],
            1,
            self.first_round,
        )
        while True:
            try:
                h = self._record_header(off, seq, next_round)
            except TraceError:
                break
            if h is None:
                break
            table.append((h["type"], h["round"], off, h["end"] - off))
            next_round += h["type"] == ROUND
            off, seq = h["end"], seq + 1
        return table

    def _load(
        self,
        entry_index: int,
        required: tuple[str, ...],
        content_round: int | None = None,
    ) -> Body:
        kind, rnd, off, size = self.records[entry_index]
        h = self._record_header(
            off, entry_index, rnd if kind == ROUND else None
        )
        if (
            h is None
            or h["type"] != kind
            or h["round"] != rnd
            or h["end"] - off != size
        ):
            raise TraceError(
                f"{_name(kind, rnd, entry_index)}: record does not match the"
                " record table"
            )
        b = self._body(h, required)
        if content_round is not None:
            rnd = content_round
        if _integer(b["round"], b.where, "round") != rnd:
            raise TraceError(
                f"{h['where']}: JSON round {b['round']} differs from the"
                " record header"
            )
        return b

    def _check_d(self, b: Body, vec: Float32Array, what: str) -> None:
        if vec.shape[0] != self.d:
            raise TraceError(
                f"{b.where}: {what} has {vec.shape[0]} values, expected d ="
                f" {self.d}"
            )

    def round(self, t: int) -> Body:
        """The JSON dict of round t (a Body), its vector references checked
        (§6.7)."""
        if not self.first_round <= t < self.first_round + self.round_count:
            raise IndexError(
                f"round {t} not in the trace (rounds"
                f" {self.first_round}..<{self.first_round + self.round_count})"
            )
        b = self._load(
            self.rounds[t - self.first_round],
            ("round", "hasVectors", "classes", "aggregations"),
        )
        with _keys(b):
            for k, a in enumerate(b["aggregations"]):
                for name in ("stateBefore", "stateAfter"):
                    state(b, a[name], f"aggregations[{k}].{name}")
                if not b["hasVectors"]:
                    continue
                if len(a["messages"]) != len(a["senders"]):
                    raise TraceError(
                        f"{b.where}: {len(a['messages'])} messages for"
                        f" {len(a['senders'])} senders"
                    )
                for i in a["messages"]:
                    self._check_d(b, b.vec(i, "message"), "a message")
                self._check_d(b, aggregate(b, a), "the aggregate")
            if b["hasVectors"]:
                self._check_d(b, model_diff(b), "the model diff")
        return b

    def keyframe(self, t: int) -> Body:
        """The keyframe record preceding round t (a Body); KeyError if there is
        none."""
        b = self._load(
            self.keyframes[t],
            (
                "round",
                "parameters",
                "classMomenta",
                "aggregatorStates",
                "attackStates",
            ),
        )
        self._check_d(
            b, b.vec(b["parameters"], "parameters"), "the parameters"
        )
        with _keys(b):
            for i in b["classMomenta"] + (
                [b["serverMomentum"]] if "serverMomentum" in b else []
            ):
                self._check_d(b, b.vec(i, "momentum"), "a momentum")
            for name in ("aggregatorStates", "attackStates"):
                for i, st in enumerate(b[name]):
                    state(b, st, f"{name}[{i}]")
        return b

    def checkpoint(self, t: int) -> Body:
        """The state checkpoint preceding round t (a Body, §5.5); KeyError if
        there is none."""
        b = self._load(
            self.checkpoints[t],
            (
                "round",
                "parameters",
                "classMomenta",
                "honestMomenta",
                "byzantineMomenta",
                "aggregatorStates",
                "attackStates",
            ),
            content_round=t,
        )
        with _keys(b):
            h = self.header
            interval = _integer(
                h.get("checkpointInterval", 0),
                "header record",
                "checkpointInterval",
                0,
            )
            if (interval < 1 or t % interval) and not (
                self.fork is not None and t == self.first_round
            ):
                raise TraceError(
                    f"{b.where}: a checkpoint before round {t}, but"
                    f" checkpointInterval is {interval}"
                )
            if len(b["aggregatorStates"]) != len(h["groups"]) or len(
                b["attackStates"]
            ) != len(h["groups"]):
                raise TraceError(f"{b.where}: not one state per group")
            st = checkpoint_state(b)
            vectors = (
                [st["parameters"]]
                + st["classMomenta"]
                + [
                    v
                    for _, _, v in st["honestMomenta"] + st["byzantineMomenta"]
                ]
            )
            if st["drift"]:
                vectors += st["drift"]["shadowClassMomenta"] + [
                    w
                    for g in st["drift"]["groups"]
                    for w in g.get("window", []) + [g.get("recentSum")]
                    if w is not None
                ]
            for v in vectors:
                self._check_d(b, v, "a checkpoint vector")
        return b

    def parameters_at(self, t: int, start: int | None = None) -> Float32Array:
        """x_t: keyframe `start` (default: the last at or before t) plus the
        model diffs, in float32 (§5.2)."""
        start = (
            max(k for k in self.keyframes if k <= t)
            if start is None
            else start
        )
        kf = self.keyframe(start)
        x = kf.vec(kf["parameters"]).copy()
        for s in range(start, t):
            r = self.round(s)
            if not r["hasVectors"]:
                raise TraceError(
                    f"round {s}: recorded without vectors, no model diff"
                )
            x += model_diff(r)  # float32 + float32, round-to-nearest
        return x

    def verify_chain(self) -> tuple[bool, str, str]:
        """Walk every record (§3.3), its header checked as a scan checks it
        (§6 items 2-3). Returns (ok, message, last digest hex)."""
        prev, off, seq = hashlib.sha256(self._read(0, 16)).digest(), 16, 0
        next_round = self.first_round
        while off < self.size:
            try:
                h = self._record_header(off, seq, next_round)
                if h is None:
                    return (
                        True,
                        (
                            f"{seq} records verified; {self.size - off}"
                            " trailing bytes of an incomplete record"
                        ),
                        prev.hex(),
                    )
                if h["prev"] != prev:
                    return (
                        False,
                        (
                            f"{h['where']}: previous digest does not match"
                            f" record {seq - 1}"
                        ),
                        prev.hex(),
                    )
                self._payload(h)
            except TraceError as e:
                return False, str(e), prev.hex()
            prev = self._read(h["end"] - 32, 32)
            off, seq = h["end"], seq + 1
            next_round += h["type"] == ROUND
        return True, f"{seq} records verified", prev.hex()


# ---- signatures (§3.6) ------------------------------------------------------

P25519 = 2**255 - 19
D25519 = -121665 * pow(121666, P25519 - 2, P25519) % P25519
L25519 = 2**252 + 27742317777372353535851937790883648493
# The encodings, sign bit cleared, of the 8 points of small order and their
# non-canonical forms (y = 0, 1, the two order-8 y, p - 1, p, p + 1), as
# libsodium's has_small_order lists them.
SMALL_ORDER = {
    bytes.fromhex(h)
    for h in (
        "00" * 32,
        "01" + "00" * 31,
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ec" + "ff" * 30 + "7f",
        "ed" + "ff" * 30 + "7f",
        "ee" + "ff" * 30 + "7f",
    )
}
SIGNATURE_DOMAIN = b"desgd-trace-signature-v1"


def key_problem(raw: bytes) -> str | None:
    """Why the 32 bytes are not a valid key (FORMAT.md §3.6, RFC 8032 §5.1.3),
    or None."""
    if len(raw) != 32:
        return f"not 32 bytes ({len(raw)})"
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    u, v = (y * y - 1) % P25519, (D25519 * y * y + 1) % P25519
    if (
        y >= P25519
        or pow(u * v % P25519, (P25519 - 1) // 2, P25519) not in (0, 1)
        or (u == 0 and raw[31] & 0x80)
    ):
        return "not a point of the curve (RFC 8032 §5.1.3 decoding fails)"
    if raw[:31] + bytes([raw[31] & 0x7F]) in SMALL_ORDER:
        return "a point of small order, which would verify forged signatures"
    return None


def signature_is_strict(sig: bytes) -> bool:
    """R canonical and not of small order, S < L (FORMAT.md §3.6)."""
    r, s = sig[:32], sig[32:]
    return (
        len(sig) == 64
        and int.from_bytes(r, "little") & ((1 << 255) - 1) < P25519
        and r[:31] + bytes([r[31] & 0x7F]) not in SMALL_ORDER
        and int.from_bytes(s, "little") < L25519
    )


def ssh_blob(raw: bytes) -> bytes:
    """The SSH wire-format public key (RFC 8709): string "ssh-ed25519", string
    key."""
    return (
        struct.pack(">I", 11)
        + b"ssh-ed25519"
        + struct.pack(">I", len(raw))
        + raw
    )


def fingerprint(raw: bytes) -> str:
    """OpenSSH's fingerprint: SHA256: and the unpadded base64 of SHA-256 of the
    wire blob."""
    return "SHA256:" + base64.b64encode(
        hashlib.sha256(ssh_blob(raw)).digest()
    ).decode().rstrip("=")


def read_public_key(path: str | os.PathLike[str]) -> bytes:
    """The 32 bytes of a public key file: `ssh-ed25519 <base64> [comment]` or
    `desgd-ed25519 <base64>`."""
    fd = _open_regular(path, "public key file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(4097)
    if len(data) > 4096:
        raise TraceError(
            f"{_name_of(path)} is larger than 4096 bytes: not a public key"
        )
    fields = data.decode("utf-8", "replace").strip().split(" ")
    raw = None
    try:
        if fields[0] == "ssh-ed25519" and len(fields) >= 2:
            blob = base64.b64decode(fields[1], validate=True)
            if len(blob) == 51 and blob[:19] == ssh_blob(b"\0" * 32)[:19]:
                raw = blob[19:]
        elif fields[0] == "desgd-ed25519" and len(fields) == 2:
            raw = base64.b64decode(fields[1], validate=True)
    except ValueError:
        raw = None
    if raw is None or len(raw) != 32:
        raise TraceError(
            f"{_name_of(path)} is not an Ed25519 public key: expected one"
            " line"
            " `ssh-ed25519 <base64> [comment]`"
        )
    problem = key_problem(raw)
    if problem:
        raise TraceError(
            f"{_name_of(path)}: not a valid Ed25519 public key: {problem}"
        )
    return raw


def verify_signatures(
    tr: Trace, public_key_path: str | os.PathLike[str]
) -> tuple[bool, str]:
    """Whether `public_key_path`'s key signed the whole trace (FORMAT.md §3.6:
    a final signature covering every record, every signature valid, no other
    signer), strictly (small-order keys and R, non-canonical R, S >= L
    refused). Returns (ok, message)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PublicKey,
    )

    trusted = read_public_key(public_key_path)
    # (type, round, offset, size, previous digest, payload): the payload of
    # the signature, index and footer records, b"" for the others
    recs: list[tuple[int, int, int, int, bytes, bytes]] = []
    prev, off, seq = hashlib.sha256(tr._read(0, 16)).digest(), 16, 0
    while off < tr.size:
        h = tr._record_header(off, seq, None)
        if h is None:
            return (
                False,
                (
                    f"{tr.size - off} trailing bytes after record {seq - 1}:"
                    " not signed"
                ),
            )
        if h["prev"] != prev:
            return False, f"the digest chain breaks at {h['where']}"
        payload = tr._payload(h)
        kept = payload if h["type"] in (SIGNATURE, INDEX, FOOTER) else b""
        recs.append(
            (h["type"], h["round"], off, h["end"] - off, h["prev"], kept)
        )
        prev, off, seq = tr._read(h["end"] - 32, 32), h["end"], seq + 1
    rounds, final = 0, None
    for i, (kind, _, _, _, previous, p) in enumerate(recs):
        if kind == ROUND:
            rounds += 1
        if kind != SIGNATURE:
            continue
        what = f"signature record {i}"
        if final is not None:
            return (
                False,
                f"{what} follows the final signature (record {final})",
            )
        if len(p) != 152:
            return False, f"{what}: payload of {len(p)} bytes, not 152"
        alg, sk, res, flags, n_rounds, n_records = struct.unpack_from(
            "<BBHIQQ", p
        )
        key, digest, sig = p[24:56], p[56:88], p[88:152]
        if (
            alg != 1
            or sk not in (1, 2)
            or res
            or flags & ~1
            or (sk == 1 and flags)
        ):
            return (
                False,
                (
                    f"{what} is malformed (algorithm {alg}, kind {sk},"
                    f" reserved {res}, flags {flags})"
                ),
            )
        problem = key_problem(key)
        if problem:
            return False, f"{what}: its public key is {problem}"
        if key != trusted:
            return (
                False,
                (
                    f"{what} is signed by {fingerprint(key)}, not by the"
                    f" trusted key {fingerprint(trusted)}"
                ),
            )
        if digest != previous:
            return (
                False,
                f"{what} signs a digest that is not the previous record's",
            )
        if not signature_is_strict(sig):
            return (
                False,
                (
                    f"{what}: R or S is not strict (small-order or"
                    " non-canonical R, or S >= L)"
                ),
            )
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(
                sig, SIGNATURE_DOMAIN + p[:88]
            )
        except InvalidSignature:
            return False, f"{what}: the Ed25519 signature does not verify"
        if n_records != i or n_rounds != rounds:
            return (
                False,
                (
                    f"{what} says {n_records} records and {n_rounds} rounds"
                    f" precede it; {i} and {rounds} do"
                ),
            )
        if sk == 2:
            final = (i, flags & 1, n_rounds)
    if final is None:
        signed = any(r[0] == SIGNATURE for r in recs)
        return False, (
            "no final signature covers the file"
            if signed
            else "the trace is unsigned"
        )
    s, stopped, n_rounds = final
    tail = recs[s + 1 :]
    if tail:
        if [r[0] for r in tail] != [INDEX, FOOTER] or len(tail[1][5]) != 32:
            return (
                False,
                (
                    f"{len(tail)} records after the final signature are not an"
                    " index and a footer"
                ),
            )
        index_off, entries, f_rounds, f_flags, f_res = struct.unpack(
            "<QQQII", tail[1][5]
        )
        if (
            index_off != tail[0][2]
            or entries != s + 1
            or f_rounds != n_rounds
            or f_flags != stopped
            or f_res
        ):
            return (
                False,
                "the footer does not say what the final signature says",
            )
        want = b"".join(
            struct.pack("<B7xqQQ", k, r, o, z)
            for k, r, o, z, _, _ in recs[: s + 1]
        )
        if tail[0][5] != want:
            return (
                False,
                (
                    "the index does not describe the records the final"
                    " signature covers"
                ),
            )
    return (
        True,
        f"signed by {fingerprint(trusted)}, whole file ({n_rounds} rounds)",
    )


# ---- command line -----------------------------------------------------------


# The command's name, which starts the line it writes on bad input
# (docs/bad-input.md): the script pyproject.toml installs, however this file
# is run (python -m desgd.trace, python3 python/src/desgd/trace.py).
PROG = "desgd-trace"


def robust_output() -> None:
    """Make standard output and standard error write what their encoding
    cannot (printable text in any script, which escaped() keeps, to an ASCII
    terminal or under PYTHONIOENCODING=ascii) backslash-escaped instead of
    raising UnicodeEncodeError: never a traceback (docs/bad-input.md). What
    they can encode is written as before. Streams other than text files (a
    test's StringIO) are left as they are."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on standard error,
    naming --help, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _summary(tr: Trace) -> None:
    """The summary; every value from the file shown through _display."""
    h, c, D = tr.header, tr.header["config"], _display
    print(
        f"{_name_of(tr.path)}: format {tr.version[0]}.{tr.version[1]},"
        f" {D(h.get('program'))}, numerics {D(h.get('numerics', 1))}"
    )
    print(
        f"  mode {D(c.get('mode'))}, model"
        f" {D(h['model'].get('architecture'))} (d = {tr.d}), data"
        f" {D(h.get('dataset', {}).get('kind'))},"
        f" {D(c.get('honestWorkers'))} honest +"
        f" {D(c.get('byzantineWorkers'))} Byzantine, seed {D(c.get('seed'))}"
    )
    print(
        f"  aggregator {D(h.get('aggregator'))}, attack"
        f" {D(h.get('attack'))}, recording {D(h.get('recording'))}"
    )
    how = "index" if tr.finished else "scan (no valid footer/index)"
    state_ = (
        "finished"
        if tr.finished and not tr.stopped
        else "stopped early" if tr.stopped else "incomplete"
    )
    if tr.fork is not None:
        ch = (
            ", ".join(
                f"{D(x.get('option'))} {D(x.get('parent'))} ->"
                f" {D(x.get('fork'))}"
                for x in tr.fork["changes"]
            )
            or "nothing changed"
        )
        print(
            f"  fork of {D(tr.fork['parentFile'])} at round"
            f" {tr.first_round}"
            f" (parent digest {tr.fork['parentDigest'][:16]}...; {ch})"
        )
    print(
        f"  rounds {tr.first_round}..<{tr.first_round + tr.round_count} of"
        f" {D(c.get('rounds'))} ({state_}), keyframes at"
        f" {sorted(tr.keyframes)},"
        f" {len(tr.records)} records via {how}"
    )
    if tr.checkpoints:
        print(f"  state checkpoints before rounds {sorted(tr.checkpoints)}")
    sigs = [r for r in tr.records if r[0] == SIGNATURE]
    if sigs:
        # §3.6: the key is bytes 24-55 of the payload; Ed25519 itself needs a
        # library outside the standard one, so this reader names the signers
        # and leaves verification to desgd-audit.
        keys = {
            tr._read(off + 64 + 24, 32)
            for _, _, off, size in sigs
            if size == 96 + 152
        }
        fps = ", ".join(sorted(fingerprint(k) for k in keys))
        print(
            f"  {len(sigs)} signature records by {fps} (verify them with"
            " --trust KEY.pub)"
        )


def _show_round(r: Body, t: int) -> None:
    """The round; every value from the file shown through _display."""
    D = _display
    print(
        f"round {t}: classes {D(r['classes'])}, hasVectors"
        f" {D(r['hasVectors'])}"
        + (f", evaluation {D(r['evaluation'])}" if "evaluation" in r else "")
    )
    for k, a in enumerate(r["aggregations"]):
        snd = " ".join(
            f"{D(s['worker'])}{'*' if s['byzantine'] else ''}"
            for s in a["senders"]
        )
        print(
            f"  aggregation {k}: class {D(a['class'])}, senders [{snd}] (*"
            " Byzantine)"
        )
        print(f"    metrics {D(a.get('metrics'))}")
        if r["hasVectors"]:
            X = messages(r, k)
            mean = honest_mean(r, k).astype(np.float64)
            gap = np.linalg.norm(aggregate(r, k).astype(np.float64) - mean)
            print(
                f"    messages {X.shape[0]} x {X.shape[1]} float32, honest"
                f" mean norm {np.linalg.norm(mean):.9g}"
            )
            recorded = num(
                a["metrics"].get("gap"),
                r.where,
                f"aggregations[{k}].metrics.gap",
            )
            print(f"    gap recomputed {gap:.9g}, recorded {D(recorded)}")


def _show_checkpoint(st: CheckpointState, t: int) -> None:
    def norm(v: Float32Array) -> float:
        return float(np.linalg.norm(v.astype(np.float64)))

    print(
        f"checkpoint before round {t}: model norm"
        f" {norm(st['parameters']):.9g}, {len(st['honestMomenta'])} honest and"
        f" {len(st['byzantineMomenta'])} Byzantine momenta,"
        f" {len(st['classMomenta'])} buffer entries"
    )
    for w, c, v in st["honestMomenta"][:5]:
        print(
            f"  worker {_display(w)}, class {_display(c)}: momentum norm"
            f" {norm(v):.9g}"
        )
    if st["drift"]:
        print(
            f"  drift over {_display(st['drift']['rounds'])} rounds,"
            f" {len(st['drift']['groups'])} groups"
        )


def main(argv: Sequence[str] | None = None) -> int:
    robust_output()
    p = OneLineParser(
        prog=PROG, description="Summarise, inspect and verify a desgd trace."
    )
    p.add_argument("trace")
    p.add_argument("--round", type=int, metavar="T", help="show round T")
    p.add_argument(
        "--checkpoint",
        type=int,
        metavar="T",
        help="show the state checkpoint before round T",
    )
    p.add_argument(
        "--verify", action="store_true", help="verify the whole digest chain"
    )
    p.add_argument(
        "--trust",
        metavar="KEY.pub",
        help="exit 1 unless this key signed the whole trace (§3.6)",
    )
    a = p.parse_args(argv)
    try:
        if a.trust is not None:
            read_public_key(a.trust)  # a bad key is named before anything
        with Trace(a.trace) as tr, np.errstate(all="ignore"):
            return _run(tr, a)
    except (TraceError, IndexError, OSError) as e:
        print(f"{p.prog}: {problem(e)}", file=sys.stderr)
        return 2


def _checkpoint_rounds(rounds: list[int], shown: int = 6) -> str:
    """The rounds a trace has checkpoints before, for an error line: all of
    them up to `shown`, else the first and last few and the count, so that
    a file with many checkpoints cannot make the line long."""
    if not rounds:
        return "none"
    if len(rounds) <= shown:
        return "them before rounds " + ", ".join(map(str, rounds))
    head = ", ".join(map(str, rounds[: shown - 2]))
    tail = ", ".join(map(str, rounds[-2:]))
    return f"{len(rounds)}, before rounds {head}, ..., {tail}"


def _run(tr: Trace, a: argparse.Namespace) -> int:
    """What main does with an open trace: the round and checkpoint asked for
    are read before anything is printed, so that a file that lacks them or
    whose record is refused leaves nothing on standard output."""
    r = None if a.round is None else tr.round(a.round)
    st = None
    if a.checkpoint is not None:
        if a.checkpoint not in tr.checkpoints:
            raise TraceError(
                f"{_name_of(a.trace)}: no state checkpoint before round"
                f" {a.checkpoint} (the trace has"
                f" {_checkpoint_rounds(sorted(tr.checkpoints))})"
            )
        st = checkpoint_state(tr.checkpoint(a.checkpoint))
    with _keys(tr.header):
        _summary(tr)
    if r is not None:
        with _keys(r):
            _show_round(r, a.round)
    if st is not None:
        _show_checkpoint(st, a.checkpoint)
    if a.trust is not None:
        ok, msg = verify_signatures(tr, a.trust)
        print(f"signatures {'OK' if ok else 'NOT TRUSTED'}: {msg}")
        if not ok:
            return 1
    if a.verify:
        ok, msg, last = tr.verify_chain()
        print(f"chain {'OK' if ok else 'BROKEN'}: {msg}; last digest {last}")
        return 0 if ok else 1
    return 0


def problem(
    e: TraceError | IndexError | OSError,
    path: str | os.PathLike[str] | None = None,
) -> str:
    """The error as the one line a command prints after its name, escaped
    (what a message quotes is escaped where it is written; escaped() again
    is a net, and changes nothing in escaped text). It names a file once: an
    OSError's own file (which need not be `path`: a temporary copy, a key),
    else `path` when given and the message does not start with it."""
    name = None if path is None else _name_of(path)
    if isinstance(e, OSError) and e.strerror:
        if isinstance(e.filename, (str, bytes, os.PathLike)):
            name = _name_of(os.fsdecode(e.filename))
        cause = escaped(e.strerror)
        return cause if name is None else f"{name}: {cause}"
    text = escaped(str(e))
    return text if name is None or text.startswith(name) else f"{name}: {text}"


if __name__ == "__main__":
    sys.exit(main())
