"""ctypes bindings to libDesgdLive.so: desgd's own server step behind a Python
object.

The live server is desgd-record's simulation with the clients taken out: the
aggregation rules, the server-side attacks, the server step of Algorithm 1 and
the trace writer are desgd's Swift code, so a federation run by another engine
(Flower) is aggregated and recorded exactly as a simulated one, and
desgd-audit / desgd-replay read its trace like any other. The contract is
docs/federation.md ("The C ABI"); every function returns a status (0 ok, 2 bad
input, 1 failure) and a one-line message, which `DesgdError` carries.

Vectors cross the boundary without copies: the library reads the float32
buffers of the numpy arrays in place (they must stay alive for the duration of
the call, which `round` guarantees by holding them).
"""

from __future__ import annotations

import ctypes
import json
import os
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DesgdError",
    "Evaluate",
    "LiveServer",
    "Message",
    "engine",
    "find_library",
    "library_version",
]

BUILD_HINT = "swift build -c release --product DesgdLive"
LIBRARY_NAME = "libDesgdLive.so"
ERROR_CAPACITY = 4096


class DesgdError(RuntimeError):
    """A non-zero status of the live library: 2 for bad input, 1 for a failure
    (I/O, internal)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"desgd live: {message} (status {status})")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Message:
    """One client message of a round: worker `worker`'s momentum for class
    `class_index` (-1 in the SGD baseline), a flat float32 vector in desgd's
    layout, and the worker's Ed25519 signature of
    `desgd.signing.message_payload(...)`."""

    worker: int
    class_index: int
    vector: np.ndarray
    signature: bytes


def find_library() -> Path:
    """`$DESGD_LIBRARY`, else `.build/release/libDesgdLive.so` in the nearest
    ancestor that has one of this file (the checkout, when the package is
    installed editable or run from source), then of the current directory (a
    regular install, used from the checkout)."""
    env = os.environ.get("DESGD_LIBRARY")
    if env:
        p = Path(env)
        if not p.is_file():
            raise FileNotFoundError(
                f"DESGD_LIBRARY={env} is not a file; build it with"
                f" `{BUILD_HINT}`"
            )
        return p
    here = Path(__file__).resolve()
    for parent in [*here.parents, *(Path.cwd() / "x").parents]:
        candidate = parent / ".build" / "release" / LIBRARY_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{LIBRARY_NAME} not found: build it in the desgd checkout with"
        f" `{BUILD_HINT}` or set DESGD_LIBRARY to its path"
    )


_I64 = ctypes.c_int64
_I32 = ctypes.c_int32
_P = ctypes.c_void_p
_CHARP = ctypes.c_char_p
_lib_cache: dict[str, ctypes.CDLL] = {}
# desgd_live_round's evaluation callback: (parameters, count, accuracy out,
# loss out, context) -> 0 when done.
_EVALUATE = ctypes.CFUNCTYPE(
    _I32,
    ctypes.POINTER(ctypes.c_float),
    _I64,
    ctypes.POINTER(ctypes.c_double),
    ctypes.POINTER(ctypes.c_double),
    _P,
)

Evaluate = Callable[[np.ndarray], tuple[float, float]]
"""The caller's evaluation on the clients' own model: x_{t+1} (a float32 copy)
-> (accuracy, loss)."""


def _load(path: Path | None = None) -> ctypes.CDLL:
    """Loads the library once per path and declares every function's signature
    (so a wrong argument type is a Python error, not undefined behaviour)."""
    p = str(path or find_library())
    if p in _lib_cache:
        return _lib_cache[p]
    lib = ctypes.CDLL(p)
    lib.desgd_live_version.restype = _CHARP
    lib.desgd_live_version.argtypes = []
    lib.desgd_live_open.restype = _I32
    lib.desgd_live_open.argtypes = [_CHARP, ctypes.POINTER(_P), _P, _I64]
    lib.desgd_live_open_clients.restype = _I32
    lib.desgd_live_open_clients.argtypes = [
        _CHARP,
        _P,
        _I64,
        ctypes.POINTER(_P),
        _P,
        _I64,
    ]
    lib.desgd_live_describe.restype = _I32
    lib.desgd_live_describe.argtypes = [
        _P,
        _P,
        _I64,
        ctypes.POINTER(_I64),
        _P,
        _I64,
    ]
    lib.desgd_live_initial_parameters.restype = _I32
    lib.desgd_live_initial_parameters.argtypes = [_P, _P, _I64, _P, _I64]
    lib.desgd_live_classes.restype = _I32
    lib.desgd_live_classes.argtypes = [
        _P,
        _I64,
        _P,
        _I64,
        ctypes.POINTER(_I64),
        _P,
        _I64,
    ]
    lib.desgd_live_round.restype = _I32
    lib.desgd_live_round.argtypes = [
        _P,
        _I64,
        _I64,
        _P,
        _P,
        _P,
        _P,
        _P,
        _I64,
        ctypes.POINTER(ctypes.c_double),
        ctypes.POINTER(ctypes.c_double),
        ctypes.POINTER(_I32),
        _EVALUATE,
        _P,
        _P,
        _I64,
    ]
    lib.desgd_live_close.restype = _I32
    lib.desgd_live_close.argtypes = [_P, _P, _I64, _P, _I64]
    _lib_cache[p] = lib
    return lib


def library_version(path: Path | None = None) -> str:
    """The library's version string, e.g. "desgd 0.15.0"."""
    version: bytes = _load(path).desgd_live_version()  # restype c_char_p
    return version.decode()


def engine(
    name: str,
    version: str,
    torch_version: str,
    data: str,
    model: list[dict[str, Any]],
    nodes: list[dict[str, Any]],
) -> dict[str, Any]:
    """The request's `engine`: the framework, the clients' training library,
    their data and model, and the registered nodes ({"worker", "node",
    "publicKey"}); the training library as "torch <version>"."""
    return {
        "name": name,
        "version": version,
        "training": f"torch {torch_version}",
        "data": data,
        "model": model,
        "nodes": nodes,
    }


def _addr(a: np.ndarray) -> int:
    return a.ctypes.data


class LiveServer:
    """One live run: open it with a request (docs/federation.md, "The C ABI"),
    then for each round t ask `classes(t)`, collect the clients' signed
    messages and call `round(t, messages)`; `close()` finishes the trace.

    Use it as a context manager so that the trace is closed (footer, final
    signature) even when the federation fails midway: a closed trace of the
    completed rounds is still a valid, auditable trace.

    Resuming: a request with `"resume": true` names an existing live trace of
    the same `options` and the same registered public keys; the library
    rebuilds the server's state from it and continues after its last complete
    round, `next_round` (R). The rounds are then R, R+1, ... < rounds,
    `parameters()` is x_R, and `close()` writes the continued trace into the
    same path (the original stays intact until then). The clients' momenta are
    not in the trace: they must come from the clients (desgd.flower's client
    state files).

    The clients' own model and data (docs/federation.md, "Your own model and
    data"): a request with `"clients": {"classes": C, "holdings": [[classes of
    worker 0], ...]}` and `initial_parameters`, x_0 as the clients' framework
    initialised it (e.g. `desgd.torch_client.flatten_parameters(module)`); the
    engine's `model` names its tensors (`desgd.models.layout(module)`). desgd
    then never computes with the model: each evaluation round's `round` needs
    `evaluate`, the caller's evaluation of x_{t+1}.
    """

    def __init__(
        self,
        request: dict[str, Any],
        library: Path | None = None,
        initial_parameters: np.ndarray | None = None,
    ) -> None:
        if request.get("resume") and request.get("overwrite"):
            # a library that does not know `resume` would honour `overwrite`
            # and replace the run
            raise DesgdError(
                2,
                "resume and overwrite exclude each other: a resumed run"
                " continues its trace",
            )
        self._lib = _load(library)
        self._handle: int | None = None
        self._error = ctypes.create_string_buffer(ERROR_CAPACITY)
        handle = _P()
        if ("clients" in request) != (initial_parameters is not None):
            raise DesgdError(
                2,
                "the clients' own model needs both the request's clients and"
                " initial_parameters",
            )
        if initial_parameters is None:
            status = self._lib.desgd_live_open(
                json.dumps(request).encode(),
                ctypes.byref(handle),
                ctypes.addressof(self._error),
                ERROR_CAPACITY,
            )
        else:
            x0 = np.ascontiguousarray(
                initial_parameters, dtype=np.float32
            ).reshape(-1)
            status = self._lib.desgd_live_open_clients(
                json.dumps(request).encode(),
                _addr(x0),
                x0.size,
                ctypes.byref(handle),
                ctypes.addressof(self._error),
                ERROR_CAPACITY,
            )
        self._check(status)
        if not handle.value:
            raise DesgdError(
                1, "desgd_live_open returned status 0 but no handle"
            )
        self._handle = handle.value
        self.description: dict[str, Any] = self.describe()
        self.parameter_count = int(self.description["parameterCount"])
        self.resumed = bool(request.get("resume", False))
        if self.resumed and "nextRound" not in self.description:
            self.close()
            raise DesgdError(
                2,
                f"{find_library() if library is None else library} does not"
                " resume runs (its description has no nextRound): rebuild it",
            )

    @classmethod
    def open(
        cls,
        request: dict[str, Any],
        library: Path | None = None,
        initial_parameters: np.ndarray | None = None,
    ) -> LiveServer:
        """`LiveServer(request)`: opens the run (creates the trace and writes
        its header, or with `resume` reopens it after its last complete
        round)."""
        return cls(request, library, initial_parameters)

    @property
    def external(self) -> bool:
        """Whether the run is on the clients' own model and data (the caller
        evaluates)."""
        return bool(self.description.get("external", False))

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self.close()

    def _check(self, status: int) -> None:
        if status != 0:
            raise DesgdError(
                int(status),
                self._error.value.decode(errors="replace") or "(no message)",
            )

    def _live(self) -> int:
        if self._handle is None:
            raise DesgdError(2, "the live server is closed")
        return self._handle

    def describe(self) -> dict[str, Any]:
        """The run as desgd resolved it: d, classes, holdings, partition,
        runTag, model layout..."""
        handle = self._live()
        capacity = 1 << 16
        needed = _I64(0)
        for _ in range(3):
            buf = ctypes.create_string_buffer(capacity)
            status = self._lib.desgd_live_describe(
                handle,
                ctypes.addressof(buf),
                capacity,
                ctypes.byref(needed),
                ctypes.addressof(self._error),
                ERROR_CAPACITY,
            )
            if status == 2 and needed.value > capacity:
                capacity = int(needed.value) + 1
                continue
            self._check(status)
            description: dict[str, Any] = json.loads(buf.value.decode())
            return description
        raise DesgdError(
            1,
            f"describe kept asking for a larger buffer ({needed.value} bytes)",
        )

    @property
    def next_round(self) -> int:
        """R, the first round this run executes: 0 for a new run, the round
        after the trace's last complete one when resumed (describe's
        `nextRound`; a library without it only starts runs)."""
        return int(self.description.get("nextRound", 0))

    @property
    def rounds(self) -> int:
        """The run's number of rounds (all of them, resumed or not): rounds are
        next_round..<rounds."""
        return int(self.description["rounds"])

    @property
    def run_tag(self) -> str:
        """The run tag every client message is signed with (a resumed run keeps
        the original's)."""
        return str(self.description["runTag"])

    def parameters(self) -> np.ndarray:
        """x_R, the model the next round starts from: x_0 (desgd's
        initialisation) for a new run, the model after the trace's last
        complete round for a resumed one (float32, d values)."""
        return self.initial_parameters()

    def initial_parameters(self) -> np.ndarray:
        """The live server's current model: x_0 before the first round of a new
        run, x_R once resumed (float32, d values). `parameters()` is the same
        call under the name that fits a resumed run."""
        out = np.empty(self.parameter_count, dtype=np.float32)
        self._check(
            self._lib.desgd_live_initial_parameters(
                self._live(),
                _addr(out),
                out.size,
                ctypes.addressof(self._error),
                ERROR_CAPACITY,
            )
        )
        return out

    def classes(self, round: int) -> list[int]:  # noqa: A002 (the spec's name)
        """S_t, the classes sampled for round t (Algorithm 1); empty in the SGD
        baseline."""
        capacity = int(self.description.get("classes", 10)) or 1
        out = np.zeros(capacity, dtype=np.int64)
        count = _I64(0)
        self._check(
            self._lib.desgd_live_classes(
                self._live(),
                round,
                _addr(out),
                capacity,
                ctypes.byref(count),
                ctypes.addressof(self._error),
                ERROR_CAPACITY,
            )
        )
        if not 0 <= count.value <= capacity:
            raise DesgdError(
                1, f"classes: count {count.value} outside 0...{capacity}"
            )
        return [int(c) for c in out[: count.value]]

    def round(
        self,
        round: int,  # noqa: A002
        messages: list[Message],
        evaluate: Evaluate | None = None,
    ) -> tuple[np.ndarray, tuple[float, float] | None]:
        """Aggregates round t's messages (desgd's rule, attack and server step)
        and records the round.

        Returns x_{t+1} and, on evaluation rounds, (accuracy, loss) of x_{t+1}:
        desgd's evaluation on the test set, or on the clients' own model
        `evaluate(x_{t+1})`'s, which is then required (and recorded with the
        round). An exception in `evaluate` undoes the round and is raised here.
        """
        handle = self._live()
        d = self.parameter_count
        n = len(messages)
        vectors = []
        for m in messages:
            v = np.ascontiguousarray(m.vector, dtype=np.float32)
            if v.shape != (d,):
                raise DesgdError(
                    2,
                    f"worker {m.worker}, class {m.class_index}: vector of"
                    f" shape {v.shape}, expected ({d},)",
                )
            if len(m.signature) != 64:
                raise DesgdError(
                    2,
                    f"worker {m.worker}, class {m.class_index}: signature of "
                    f"{len(m.signature)} bytes, expected 64",
                )
            vectors.append(v)
        workers = np.array([m.worker for m in messages], dtype=np.int64)
        classes = np.array([m.class_index for m in messages], dtype=np.int64)
        pointers = (ctypes.c_void_p * max(n, 1))(*[_addr(v) for v in vectors])
        signatures = np.frombuffer(
            b"".join(m.signature for m in messages) or b"\0", dtype=np.uint8
        )
        out = np.empty(d, dtype=np.float32)
        accuracy, loss, evaluated = (
            ctypes.c_double(0),
            ctypes.c_double(0),
            _I32(0),
        )
        raised: list[BaseException] = []

        def callback(
            x: Any, count: int, accuracy_out: Any, loss_out: Any, _context: Any
        ) -> int:
            try:
                assert evaluate is not None
                model = np.ctypeslib.as_array(x, shape=(count,)).copy()
                a, loss_value = evaluate(model)
                accuracy_out[0], loss_out[0] = float(a), float(loss_value)
                return 0
            except BaseException as e:  # noqa: BLE001 (carried across the C
                # call and raised below)
                raised.append(e)
                return 1

        hook = _EVALUATE(callback) if evaluate is not None else _EVALUATE()
        status = self._lib.desgd_live_round(
            handle,
            round,
            n,
            _addr(workers),
            _addr(classes),
            ctypes.addressof(pointers),
            _addr(signatures),
            _addr(out),
            d,
            ctypes.byref(accuracy),
            ctypes.byref(loss),
            ctypes.byref(evaluated),
            hook,
            None,
            ctypes.addressof(self._error),
            ERROR_CAPACITY,
        )
        if raised:
            raise raised[0]
        self._check(status)
        del vectors, hook  # held until here: the library read them in place
        return out, ((accuracy.value, loss.value) if evaluated.value else None)

    def close(self) -> dict[str, Any]:
        """Writes the final keyframe, signature and footer and frees the run
        (even on failure)."""
        handle = self._live()
        self._handle = None  # the library frees the handle whatever the status
        capacity = 1 << 16
        buf = ctypes.create_string_buffer(capacity)
        self._check(
            self._lib.desgd_live_close(
                handle,
                ctypes.addressof(buf),
                capacity,
                ctypes.addressof(self._error),
                ERROR_CAPACITY,
            )
        )
        text = buf.value.decode()
        return json.loads(text) if text else {}
