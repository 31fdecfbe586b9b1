"""The signed client-message payload of traces/FORMAT.md §5.3.1, byte for byte,
and key files."""

import hashlib
import struct
import tempfile
import unittest
from pathlib import Path

import numpy as np

from desgd import signing


class PayloadTests(unittest.TestCase):
    def test_payload_layout(self) -> None:
        tag = "ab" * 32
        v = np.arange(5, dtype=np.float32)
        p = signing.message_payload(tag, 7, 3, 2, v)
        want = (
            b"desgd-client-message-v1\x00"
            + bytes.fromhex(tag)
            + struct.pack("<qqq", 7, 3, 2)
            + hashlib.sha256(v.astype("<f4").tobytes()).digest()
        )
        self.assertEqual(p, want)
        self.assertEqual(len(p), 24 + 32 + 24 + 32)

    def test_baseline_class_is_minus_one(self) -> None:
        p = signing.message_payload(
            "00" * 32, 0, -1, 0, np.zeros(3, np.float32)
        )
        self.assertEqual(p[56 + 8 : 56 + 16], b"\xff" * 8)

    def test_vector_dtype_is_float32(self) -> None:
        """A float64 vector is hashed as the float32 values the server
        receives."""
        v = np.array([0.1, 0.2], dtype=np.float64)
        self.assertEqual(
            signing.message_payload("00" * 32, 1, 1, 1, v),
            signing.message_payload("00" * 32, 1, 1, 1, v.astype(np.float32)),
        )

    def test_bad_run_tag(self) -> None:
        with self.assertRaises(ValueError):
            signing.message_payload("abcd", 0, 0, 0, np.zeros(1, np.float32))


class KeyTests(unittest.TestCase):
    def test_sign_verify_and_files(self) -> None:
        key = signing.generate_key()
        v = np.random.default_rng(1).standard_normal(100).astype(np.float32)
        tag = hashlib.sha256(b"run").hexdigest()
        sig = signing.sign_message(key, tag, 4, 2, 1, v)
        self.assertEqual(len(sig), 64)
        pub = signing.public_key_from_hex(signing.public_key_hex(key))
        self.assertTrue(signing.verify_message(pub, sig, tag, 4, 2, 1, v))
        # another worker
        self.assertFalse(signing.verify_message(pub, sig, tag, 4, 2, 0, v))
        v[0] += 1
        # another vector
        self.assertFalse(signing.verify_message(pub, sig, tag, 4, 2, 1, v))
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "client.key"
            pub_path = signing.save_private_key(key, path)
            self.assertEqual(path.stat().st_mode & 0o777, 0o600)
            self.assertIn(b"BEGIN PRIVATE KEY", path.read_bytes())
            self.assertEqual(
                pub_path.read_text().strip(), signing.public_key_hex(key)
            )
            again = signing.load_private_key(path)
            self.assertEqual(
                signing.public_key_hex(again), signing.public_key_hex(key)
            )
            with self.assertRaises(FileExistsError):
                signing.save_private_key(key, path)
            ssh = Path(d) / "server.key"
            line = signing.write_openssh_key(key, ssh).read_text()
            self.assertTrue(line.startswith("ssh-ed25519 "))
            self.assertEqual(
                signing.public_key_hex(signing.load_private_key(ssh)),
                signing.public_key_hex(key),
            )

    def test_openssh_public_line_verifies_with_the_trace_reader(self) -> None:
        """The server key's .pub line is what desgd.trace's --trust reads
        (OpenSSH wire format)."""
        from desgd.trace import read_public_key

        key = signing.generate_key()
        with tempfile.TemporaryDirectory() as d:
            pub = signing.write_openssh_key(key, Path(d) / "s.key")
            self.assertEqual(
                read_public_key(str(pub)).hex(), signing.public_key_hex(key)
            )


if __name__ == "__main__":
    unittest.main()
