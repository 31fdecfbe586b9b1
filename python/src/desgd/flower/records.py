"""What the keys of desgd's ConfigRecords hold, said to the type checker.

flwr types every ConfigRecord value alike (ConfigRecordValues: an int, float,
str, bytes or bool, or a list of one of them). Each key that desgd's ServerApp
and ClientApp exchange holds one kind, and these functions name it. They
return the value itself (typing.cast: nothing is converted or checked at run
time), so int(), float() or a loop over the value accept or refuse it exactly
as they would without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from flwr.app.typing import (
        ConfigRecordValues,
        ConfigScalar,
        ConfigScalarList,
    )

__all__ = ["byte_strings", "scalar", "scalars"]


def scalar(value: ConfigRecordValues) -> ConfigScalar:
    """A key that holds one value ("worker", "round", "beta", "runTag"...)."""
    return cast("ConfigScalar", value)


def scalars(value: ConfigRecordValues) -> ConfigScalarList:
    """A key that holds a list ("send", "holdings", "classes"...)."""
    return cast("ConfigScalarList", value)


def byte_strings(value: ConfigRecordValues) -> list[bytes]:
    """A key that holds a list of byte strings (a reply's "signatures")."""
    return cast("list[bytes]", value)
