"""Checked reading of the records desgd's ServerApp and ClientApp exchange.

flwr types every ConfigRecord value alike (an int, float, str, bytes or bool,
or a list of one of them), and a record comes from the network: a node's reply
to the server, or the server's message to a node. Each key desgd uses holds one
kind of value, and these accessors read it as that kind or raise RecordError
naming the key, what it held and what belongs there: never int() of a list, a
KeyError or a TypeError further on. The server turns a RecordError into a
FederationError naming the worker; a client into an error reply.

A bool is an int in Python; these accessors do not take true or false for a
number.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from flwr.app import ArrayRecord

__all__ = [
    "MISSING",
    "RecordError",
    "array",
    "byte_strings",
    "integer",
    "integers",
    "number",
    "text",
]

MISSING = object()  # what a RecordError holds for a key that is absent


class _Shown(reprlib.Repr):
    """Short one-line reprs of what a record held, computed on a bounded part
    of it (a reply may hold megabytes)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = 60

    def repr_bytes(self, x: bytes, level: int) -> str:
        cut = repr(x[: self.maxstring])
        return cut if len(x) <= self.maxstring else f"{cut}..."

    def repr_Array(self, x: Any, level: int) -> str:  # noqa: N802
        dtype = self.repr1(x.dtype, level - 1)
        shape = self.repr1(list(x.shape), level - 1)
        return f"Array(dtype={dtype}, shape={shape})"


_SHOWN = _Shown()


class RecordError(ValueError):
    """Key `key` of a record held `held` (MISSING: nothing), not `expected`;
    `detail`, when given, says why it could not be read."""

    def __init__(
        self, key: str, held: object, expected: str, detail: str = ""
    ) -> None:
        super().__init__(key, held, expected, detail)
        self.key, self.held, self.expected = key, held, expected
        self.detail = detail

    def __str__(self) -> str:
        if self.held is MISSING:
            return f"'{self.key}' is missing (expected {self.expected})"
        kind, shown = type(self.held).__name__, _SHOWN.repr(self.held)
        if not shown.startswith(f"{kind}("):
            shown = f"{kind} {shown}"
        why = f" ({self.detail})" if self.detail else ""
        return f"'{self.key}' holds {shown}{why}, expected {self.expected}"


def _value(
    record: Mapping[str, object], key: str, default: object, expected: str
) -> object:
    """The value of `key`, or `default` when absent (None: required)."""
    if key in record:
        return record[key]
    if default is None:
        raise RecordError(key, MISSING, expected)
    return default


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(
    record: Mapping[str, object], key: str, default: int | None = None
) -> int:
    """A key that holds one integer ("worker", "round", "batch"...);
    `default` when absent, if given."""
    expected = "an integer"
    value = _value(record, key, default, expected)
    if not _is_integer(value):
        raise RecordError(key, value, expected)
    assert isinstance(value, int)
    return value


def number(
    record: Mapping[str, object], key: str, default: float | None = None
) -> float:
    """A key that holds one number, integer or not ("beta", "mean"...), as a
    float."""
    expected = "a number"
    value = _value(record, key, default, expected)
    if not (_is_integer(value) or isinstance(value, float)):
        raise RecordError(key, value, expected)
    assert isinstance(value, (int, float))
    return float(value)


def text(
    record: Mapping[str, object], key: str, default: str | None = None
) -> str:
    """A key that holds one string ("runTag", "role", "mode"...)."""
    expected = "a string"
    value = _value(record, key, default, expected)
    if not isinstance(value, str):
        raise RecordError(key, value, expected)
    return value


def integers(
    record: Mapping[str, object],
    key: str,
    default: list[int] | None = None,
) -> list[int]:
    """A key that holds a list of integers ("send", "classes",
    "holdings"...)."""
    expected = "a list of integers"
    value = _value(record, key, default, expected)
    if not isinstance(value, list) or not all(map(_is_integer, value)):
        raise RecordError(key, value, expected)
    return list(value)


def byte_strings(
    record: Mapping[str, object],
    key: str,
    default: list[bytes] | None = None,
) -> list[bytes]:
    """A key that holds a list of byte strings (a reply's "signatures")."""
    expected = "a list of byte strings"
    value = _value(record, key, default, expected)
    if not isinstance(value, list) or not all(
        isinstance(b, bytes) for b in value
    ):
        raise RecordError(key, value, expected)
    return list(value)


def array(record: ArrayRecord, key: str) -> np.ndarray:
    """A key of an ArrayRecord as a NumPy array: a RecordError when it is
    absent or its bytes do not load (flwr's Array.numpy: np.load without
    pickles, whose header may claim any shape)."""
    if key not in record:
        raise RecordError(key, MISSING, "an array")
    held = record[key]
    try:
        return held.numpy()
    except (TypeError, ValueError, EOFError, MemoryError) as e:
        raise RecordError(
            key,
            held,
            "a NumPy array",
            # one line, bounded: numpy's message may quote the header
            " ".join(f"it does not load: {type(e).__name__}: {e}".split())[
                :300
            ],
        ) from None
