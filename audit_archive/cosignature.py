"""C2SP tlog-cosignature v1 (Ed25519): a witness's timestamped statement that a checkpoint is
the largest consistent tree head it has seen for that log.  Stdlib + ``cryptography`` only
(the standalone verifier bundled in exports imports it).

Source: https://c2sp.org/tlog-cosignature ("Ed25519 signed message"):
- key ID = SHA-256(name || "\\n" || 0x04 || 32-byte public key)[:4]
- signed message = "cosignature/v1\\n" "time <POSIX seconds>\\n" + the checkpoint's note body
  (origin, size, root and any extension lines, each ending in "\\n"; no signature lines)
- signature line = "\u2014 <name> base64(key ID || u64 big-endian timestamp || 64-byte signature)\\n"
- verifier key text = name + "+" + hex(key ID) + "+" + base64(0x04 || public key)
- signer key file  = "PRIVATE+KEY+" + name + "+" + hex(key ID) + "+" + base64(0x04 || seed)
"""
from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .note import (
    SIG_PREFIX,
    NoteError,
    _valid_name,
    create_key_file,
    parse_private_key_text,
    parse_public_key_text,
    private_key_text,
    typed_key_id,
)

ALG_COSIGNATURE_V1 = 0x04
HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2 ** 63 - 1


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    return typed_key_id(name, ALG_COSIGNATURE_V1, public_key)


def signed_message(body: str, timestamp: int) -> bytes:
    """What a v1 cosignature signs for the checkpoint note ``body`` (ending in "\\n")."""
    return HEADER + f"time {timestamp}\n".encode() + body.encode()


@dataclass(frozen=True)
class Cosignature:
    name: str
    key_id: bytes
    timestamp: int
    line: str  # the whole signature line, with its final newline


@dataclass(frozen=True)
class WitnessKey:
    """A witness's public key (what a portal, a verifier and an auditor configure)."""

    name: str
    key_id: bytes
    public_key: bytes

    def text(self) -> str:
        raw = bytes([ALG_COSIGNATURE_V1]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode()}"

    def verify(self, body: str, line: str) -> Cosignature:
        """The cosignature ``line`` by this key over checkpoint ``body``; NoteError if it is not
        this key's line, malformed, or the signature does not verify."""
        text = line if line.endswith("\n") else line + "\n"
        if not text.startswith(SIG_PREFIX):
            raise NoteError(f"not a signature line: {line[:40]!r}")
        try:
            name, b64 = text[len(SIG_PREFIX):-1].split(" ")
            raw = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError(f"malformed cosignature line {line[:60]!r}") from None
        if name != self.name or raw[:4] != self.key_id:
            raise NoteError(f"cosignature is not by witness {self.name}+{self.key_id.hex()}")
        if len(raw) != 4 + 8 + 64:
            raise NoteError(f"cosignature by {self.name} is {len(raw)} bytes, not 76")
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        if timestamp > MAX_TIMESTAMP:
            raise NoteError(f"cosignature by {self.name} has an impossible timestamp")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(raw[12:], signed_message(body, timestamp))
        except (InvalidSignature, ValueError):
            raise NoteError(f"invalid cosignature by {self.name}+{self.key_id.hex()}") from None
        return Cosignature(name, self.key_id, timestamp, text)

    def find(self, note: str) -> Cosignature:
        """This witness's valid cosignature among the signature lines of a signed checkpoint
        ``note`` (the log's own line and other keys' lines are skipped); NoteError if none."""
        i = note.rfind("\n\n")
        if i < 0:
            raise NoteError("not a signed note: no blank line before signatures")
        body, sigs = note[: i + 1], note[i + 2:]
        prefix = f"{SIG_PREFIX}{self.name} "
        problem = None
        for line in sigs.split("\n"):
            if line.startswith(prefix):
                try:
                    return self.verify(body, line)
                except NoteError as exc:
                    problem = exc
        raise problem or NoteError(f"checkpoint carries no cosignature by witness {self.name}")


def parse_witness_key(text: str) -> WitnessKey:
    """``name+hexid+base64(0x04||pub)``; NoteError if malformed or the ID does not match.
    The base64 may contain "+": split on the first two "+" only."""
    return WitnessKey(*parse_public_key_text(text, ALG_COSIGNATURE_V1, "witness key",
                                             "Ed25519 cosignature/v1"))


@dataclass(frozen=True)
class Cosigner:
    """A witness's private key."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def key(self) -> WitnessKey:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pub = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return WitnessKey(self.name, cosigner_key_id(self.name, pub), pub)

    def cosign(self, body: str, timestamp: int) -> str:
        """The signature line (ending in "\\n") cosigning checkpoint note ``body``."""
        sig = self.private_key.sign(signed_message(body, timestamp))
        raw = self.key.key_id + struct.pack(">Q", timestamp) + sig
        return f"{SIG_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"

    def text(self) -> str:
        return private_key_text(self.name, ALG_COSIGNATURE_V1, self.key.key_id, self.private_key)


def parse_cosigner(text: str) -> Cosigner:
    name, hid, private_key = parse_private_key_text(text, ALG_COSIGNATURE_V1, "witness signing key",
                                                    "Ed25519 cosignature/v1")
    c = Cosigner(name, private_key)
    if c.key.key_id.hex() != hid:
        raise NoteError("witness signing key ID does not match")
    return c


def load_or_create_cosigner(path: str | os.PathLike, name: str | None) -> Cosigner:
    """The witness key at ``path``; created (0600, O_EXCL) when missing and ``name`` is given."""
    p = Path(path)
    if not p.exists():
        if not name or not _valid_name(name):
            raise NoteError(f"no witness key at {p}; give a valid --name to create one")
        create_key_file(p, Cosigner(name, Ed25519PrivateKey.generate()).text())
    c = parse_cosigner(p.read_text())
    if name and c.name != name:
        raise NoteError(f"witness key at {p} is named {c.name!r}, not {name!r}")
    return c
