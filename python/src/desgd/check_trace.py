#!/usr/bin/env python3
"""Check the trace reader (desgd.trace) against a finished trace:

    python3 -m desgd.check_trace TRACE [--trust KEY.pub]
    python3 python/src/desgd/check_trace.py TRACE [--trust KEY.pub]
        (package not installed)

1. the digest chain verifies;
2. parameters_at(t) rebuilt from keyframe 0 plus the model diffs equals every
   later keyframe bit for bit;
3. ||aggregate - honest mean|| recomputed in float64 (the honest mean in
   float32 as FORMAT.md §5.3 defines it) matches the recorded metrics.gap
   (a NaN, which §5.3 records for non-finite messages, only a NaN; an
   infinity only itself, or +inf where float32 sums overflow, §11.2);
4. copies cut inside a round record open (by scanning) with exactly the
   complete rounds;
5. a flipped byte in a round payload raises a TraceError naming that round;
6. every state checkpoint (format 1.2) reads, and its model and class-momentum
   buffer equal the keyframe of the same round bit for bit;
7. with --trust KEY.pub: the key signed the whole trace (FORMAT.md §3.6,
   verified strictly with the cryptography package).
Exits 1 on the first failed check, 2 on bad usage or a file it cannot check (a
missing file, a FIFO, a damaged or crafted trace, a bad key), with one line on
standard error naming the file and the problem. Rounds recorded without vectors
are skipped in 2 and 3.
"""

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence

import numpy as np

if not __package__:
    # Run as a file: import the reader from the package's source tree
    # (python/src), not from this file's directory, where desgd/trace.py would
    # shadow the standard library's `trace`.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [
        p for p in sys.path if os.path.abspath(p or os.curdir) != _here
    ]
    sys.path.insert(0, os.path.dirname(_here))
from desgd.trace import (  # noqa: E402
    OneLineParser,
    Trace,
    TraceError,
    aggregate,
    checkpoint_state,
    escaped,
    honest_mean,
    metric,
    problem,
    read_public_key,
    robust_output,
    verify_signatures,
)

GAP_RTOL = 1e-6
# FORMAT.md §11.2: the recorded gap sums squares in binary32 within blocks,
# which overflow to +inf once they reach the binary32 range; the float64
# recomputation is then finite and at least this (room left for rounding)
GAP_OVERFLOW = math.sqrt(float(np.finfo(np.float32).max)) * (1 - 1e-4)


def check(cond: object, what: str) -> None:
    # escaped() as a net: what quotes a file is escaped where it is written,
    # and escaping escaped text changes nothing
    print(f"  {'ok  ' if cond else 'FAIL'} {escaped(what)}")
    if not cond:
        sys.exit(1)


def run_checks(path: str, trust: str | None = None) -> None:
    """Checks 1-7 on the trace at `path`: prints each, exits 1 at the first
    that fails; a file it cannot check raises TraceError or OSError."""
    with Trace(path) as tr:
        _checks(tr, path, trust)


def _checks(tr: Trace, path: str, trust: str | None) -> None:
    first = tr.first_round  # 0, or a fork's first round (format 1.3)
    span = range(first, first + tr.round_count)
    print(
        f"{escaped(path)}: rounds {first}..<{first + tr.round_count},"
        f" keyframes {sorted(tr.keyframes)}, finished {tr.finished}"
    )

    print("1. digest chain")
    ok, msg, last = tr.verify_chain()
    check(ok and "trailing" not in msg, f"{msg}; last digest {last}")

    print(f"2. keyframe {first} + model diffs == stored keyframes")
    has = {t: tr.round(t)["hasVectors"] for t in span}
    for t in sorted(k for k in tr.keyframes if k > first):
        # the earliest keyframe from which every model diff up to t is recorded
        # (the first for a full recording)
        start = min(
            (
                s
                for s in tr.keyframes
                if s < t and all(has[u] for u in range(s, t))
            ),
            default=None,
        )
        if start is None:
            bare = max(
                (s for s in range(first, t) if not has[s]), default=None
            )
            if bare is None:
                raise TraceError(
                    f"keyframe {t}: no keyframe before it to rebuild it from"
                )
            print(
                f"  skip round {t}: round {bare} is recorded without vectors"
                " (no model diff)"
            )
            continue
        rebuilt = tr.parameters_at(t, start=start)
        kf = tr.keyframe(t)
        stored = kf.vec(kf["parameters"])
        check(
            np.array_equal(rebuilt.view(np.uint32), stored.view(np.uint32)),
            f"round {t}: keyframe {start} + {t - start} diffs, {rebuilt.size}"
            " parameters identical bit for bit",
        )

    print("3. recomputed gap vs metrics.gap")
    worst, n = 0.0, 0
    for t in span:
        r = tr.round(t)
        if not r["hasVectors"]:
            continue
        for k, _ in enumerate(r["aggregations"]):
            gap = float(
                np.linalg.norm(
                    aggregate(r, k).astype(np.float64)
                    - honest_mean(r, k).astype(np.float64)
                )
            )
            rec = metric(r, k, "gap")
            n += 1
            if math.isfinite(gap) and math.isfinite(rec):
                worst = max(worst, abs(gap - rec) / max(abs(rec), 1e-30))
            elif not _same_non_finite(gap, rec):
                # a NaN compares false: its difference would pass
                check(
                    False,
                    f"round {t}, aggregation {k}: the gap recomputed {gap!r},"
                    f" recorded {rec!r} (a NaN matches only a NaN, an"
                    " infinity only itself or float32 sums that overflow)",
                )
    check(
        worst <= GAP_RTOL,
        f"{n} aggregations, max relative difference {worst:.3g} (tolerance"
        f" {GAP_RTOL})",
    )

    check(tr.round_count > 0, "the trace has rounds to damage")
    with open(path, "rb") as source:
        data = source.read()
    t = first + tr.round_count // 2
    _, _, off, size = tr.records[tr.rounds[t - first]]
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "damaged.trace")

        print(
            f"4. truncated inside round {t} (record at offset {off}, {size}"
            " bytes)"
        )
        for cut in (off + 30, off + size // 2, off + size - 1):
            _write(copy, data[:cut])
            with Trace(copy) as cut_tr:
                readable = all(
                    cut_tr.round(s)["round"] == s
                    for s in range(first, first + cut_tr.round_count)
                )
                ok, msg, _ = cut_tr.verify_chain()
                check(
                    cut_tr.round_count == t - first
                    and not cut_tr.finished
                    and readable
                    and ok,
                    f"cut at byte {cut}: {cut_tr.round_count} complete rounds,"
                    f" scanned, rounds readable; chain: {msg}",
                )

        print(f"5. one byte flipped in the payload of round {t}")
        bad = bytearray(data)
        bad[off + 64 + (size - 96) // 2] ^= 0x01
        _write(copy, bytes(bad))
        with Trace(copy) as bad_tr:
            try:
                bad_tr.round(t)
                check(False, "round read without error")
            except TraceError as e:
                check(
                    f"round {t}" in str(e),
                    f"round({t}) raised TraceError: {e}",
                )
            others = [
                s for s in range(first, first + bad_tr.round_count) if s != t
            ]
            for s in others:
                bad_tr.round(s)
            check(
                True,
                f"the other {len(others)} rounds still read (index intact:"
                f" {bad_tr.finished})",
            )
            ok, msg, _ = bad_tr.verify_chain()
            check(not ok and f"round {t}" in msg, f"verify_chain: {msg}")

    print(f"6. state checkpoints before rounds {sorted(tr.checkpoints)}")

    def bits(v: np.ndarray) -> np.ndarray:
        return v.view(np.uint32)

    for t in sorted(tr.checkpoints):
        st = checkpoint_state(tr.checkpoint(t))
        if t in tr.keyframes:
            kf = tr.keyframe(t)
            same = np.array_equal(
                bits(st["parameters"]), bits(kf.vec(kf["parameters"]))
            ) and all(
                np.array_equal(bits(a), bits(kf.vec(i)))
                for a, i in zip(st["classMomenta"], kf.get("classMomenta", []))
            )
            check(same, f"checkpoint {t}: model and buffer equal keyframe {t}")
        check(
            all(v.shape == (tr.d,) for _, _, v in st["honestMomenta"]),
            f"checkpoint {t}: {len(st['honestMomenta'])} honest momenta of d"
            " values",
        )
    if trust is not None:
        print(f"7. signatures by {escaped(trust)}")
        ok, msg = verify_signatures(tr, trust)
        check(ok, msg)
    print("all checks passed")


def _write(path: str, data: bytes) -> None:
    """Write a damaged copy; its OSError names it (one from a write or a
    close names no file, and main would blame the trace)."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        if e.filename is None:
            e.filename = path
        raise


def _same_non_finite(gap: float, rec: float) -> bool:
    """Whether a recomputed gap and a recorded one, one of them NaN or
    infinite, agree: NaN and NaN (FORMAT.md §5.3: the gap of non-finite
    messages), the same infinity, or a recorded +inf where the recorder's
    binary32 sums of squares overflow (§11.2)."""
    if math.isnan(gap) or math.isnan(rec):
        return math.isnan(gap) and math.isnan(rec)
    return gap == rec or (rec == math.inf and gap >= GAP_OVERFLOW)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: 0 when every check passes, 1 at the first that fails
    (printed), 2 on bad usage or a file it cannot check (one line on standard
    error)."""
    robust_output()
    p = OneLineParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("trace", help="the trace to check")
    p.add_argument(
        "--trust",
        metavar="KEY.pub",
        help="also check that this key signed the whole trace (check 7)",
    )
    a = p.parse_args(argv)
    if a.trust is not None:
        try:
            read_public_key(a.trust)  # a bad key is named before any check
        except (TraceError, OSError) as e:
            print(f"{p.prog}: {problem(e, a.trust)}", file=sys.stderr)
            return 2
    try:
        with np.errstate(all="ignore"):  # non-finite vectors: IEEE results
            run_checks(a.trace, a.trust)
    except (TraceError, OSError) as e:
        print(f"{p.prog}: {problem(e, a.trace)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
