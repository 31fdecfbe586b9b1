"""Ed25519 keys and the signed client-message payload of the live server
(docs/federation.md, traces/FORMAT.md §5.3.1).

Every message a client sends is signed with the client's own key, and the live
server verifies it before the message reaches the aggregation rule: the trace
then proves which node sent which momentum, so a Byzantine node cannot put
words in an honest node's mouth, and the server cannot claim an honest node
sent what it did not. The payload binds the signature to one run (its `runTag`,
the digest of the trace's header record), one round, one class and one worker,
and to the vector through its SHA-256.

Client keys are PKCS#8 PEM files of the raw 32-byte Ed25519 private key; public
keys travel as 64 lowercase hex digits. The optional server key (which signs
the trace itself) is written in OpenSSH's format, the one `desgd-key generate`
writes and desgd-record reads.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import (
        PrivateKeyTypes,
    )

PAYLOAD_DOMAIN = b"desgd-client-message-v1\x00"
SIGNATURE_SIZE = 64

__all__ = [
    "PAYLOAD_DOMAIN",
    "SIGNATURE_SIZE",
    "generate_key",
    "load_private_key",
    "message_payload",
    "public_key_from_hex",
    "public_key_hex",
    "save_private_key",
    "sign_message",
    "verify_message",
    "write_openssh_key",
]


def vector_digest(vector: np.ndarray) -> bytes:
    """SHA-256 of the vector as little-endian float32 bytes (what the payload
    commits to)."""
    v = np.ascontiguousarray(vector, dtype="<f4")
    if v.ndim != 1:
        raise ValueError(
            f"a message vector is one-dimensional, not of shape {v.shape}"
        )
    return hashlib.sha256(v.data.cast("B")).digest()


def message_payload(
    run_tag: str,
    round: int,  # noqa: A002 (the spec's name)
    class_index: int,
    worker: int,
    vector: np.ndarray,
) -> bytes:
    """The bytes a client signs for one message:

    b"desgd-client-message-v1\\x00" || runTag (32 bytes) || int64le(round) ||
    int64le(class) || int64le(worker) || SHA-256(vector as float32
    little-endian).

    `class_index` is -1 in the SGD baseline (one message per worker).
    """
    tag = bytes.fromhex(run_tag)
    if len(tag) != 32:
        raise ValueError(
            f"runTag must be 64 hex digits, got {len(run_tag)} characters"
        )
    return (
        PAYLOAD_DOMAIN
        + tag
        + struct.pack("<qqq", round, class_index, worker)
        + vector_digest(vector)
    )


def sign_message(
    private_key: Ed25519PrivateKey,
    run_tag: str,
    round: int,  # noqa: A002
    class_index: int,
    worker: int,
    vector: np.ndarray,
) -> bytes:
    """The 64-byte Ed25519 signature of `message_payload(...)` by
    `private_key`."""
    return private_key.sign(
        message_payload(run_tag, round, class_index, worker, vector)
    )


def verify_message(
    public_key: Ed25519PublicKey,
    signature: bytes,
    run_tag: str,
    round: int,  # noqa: A002
    class_index: int,
    worker: int,
    vector: np.ndarray,
) -> bool:
    """Whether `signature` is `public_key`'s signature of the message (the
    server checks it too)."""
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(
            signature,
            message_payload(run_tag, round, class_index, worker, vector),
        )
    except InvalidSignature:
        return False
    return True


def generate_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key from the operating system's random
    source."""
    return Ed25519PrivateKey.generate()


def _write_private(path: Path, data: bytes) -> None:
    """Writes a private key readable by its owner only, refusing to overwrite
    an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def save_private_key(
    key: Ed25519PrivateKey, path: str | os.PathLike[str]
) -> Path:
    """Writes `key` as an unencrypted PKCS#8 PEM file (mode 0600) and
    `<path>.pub` with its hex.

    Returns the path of the public file.
    """
    p = Path(path)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(p, pem)
    pub = p.with_name(p.name + ".pub")
    pub.write_text(public_key_hex(key) + "\n")
    return pub


def write_openssh_key(
    key: Ed25519PrivateKey,
    path: str | os.PathLike[str],
    comment: str = "desgd",
) -> Path:
    """Writes `key` in OpenSSH's format (what `desgd-key generate` writes: the
    trace-signing key).

    Returns the path of the public line file `<path>.pub` (`ssh-ed25519
    <base64> comment`), which `desgd-audit --trust` and `python -m desgd.trace
    --trust` accept.
    """
    p = Path(path)
    text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _write_private(p, text)
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    pub = p.with_name(p.name + ".pub")
    pub.write_text(line.decode() + f" {comment}\n")
    return pub


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Reads a PKCS#8 PEM (or OpenSSH) Ed25519 private key; anything else is a
    ValueError."""
    data = Path(path).read_bytes()
    key: PrivateKeyTypes
    if b"OPENSSH PRIVATE KEY" in data:
        key = serialization.load_ssh_private_key(data, password=None)
    else:
        key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(
            f"{path}: not an Ed25519 private key ({type(key).__name__})"
        )
    return key


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key as 64 lowercase hex digits (the form
    `engine.nodes` carries)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ).hex()


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    """The public key of 64 hex digits (as `public_key_hex` writes them)."""
    raw = bytes.fromhex(text.strip())
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)
