"""C2SP signed notes and tlog checkpoints with Ed25519 keys.  Stdlib + ``cryptography`` only.

Sources: C2SP signed-note (https://c2sp.org/signed-note) and tlog-checkpoint
(https://c2sp.org/tlog-checkpoint), which follow Go's golang.org/x/mod/sumdb/note.

- key ID   = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]
- signature line = "\u2014 " + name + " " + base64(key ID || 64-byte Ed25519 signature) + "\n"
- the signature covers the note text including its final newline
- verifier key text = name + "+" + hex(key ID) + "+" + base64(0x01 || public key)
- signer key text   = "PRIVATE+KEY+" + name + "+" + hex(key ID) + "+" + base64(0x01 || seed)
- checkpoint text   = origin "\n" decimal size "\n" base64(root hash) "\n" [extension lines]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # em dash + space


class NoteError(ValueError):
    """Malformed key, note or checkpoint, or a signature that does not verify."""


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def typed_key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """4-byte key ID per C2SP signed-note: SHA-256(name || 0x0A || type || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def key_id(name: str, public_key: bytes) -> bytes:
    """4-byte key ID per C2SP signed-note for an Ed25519 key."""
    return typed_key_id(name, ALG_ED25519, public_key)


def parse_public_key_text(text: str, alg: int, what: str, kind: str) -> tuple[str, bytes, bytes]:
    """``name+hexid+base64(type||pub)`` as (name, key ID, 32-byte public key), for note verifier
    keys (type 0x01) and witness cosignature keys (type 0x04) alike. NoteError names ``what``
    (e.g. "verifier key") and ``kind`` (the key type in words) when the text is malformed or the
    ID does not match. The base64 may contain "+": split on the first two "+" only."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"{what} must be name+keyid+base64key")
    name, hid, b64 = parts
    if not _valid_name(name):
        raise NoteError(f"invalid {what} name {name!r}")
    try:
        kid = bytes.fromhex(hid)
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise NoteError(f"{what} is not hex/base64: {exc}") from None
    if len(kid) != 4 or len(raw) != 33 or raw[0] != alg:
        raise NoteError(f"{what} is not an {kind} (type 0x{alg:02x}) key with a 4-byte ID")
    if typed_key_id(name, alg, raw[1:]) != kid:
        raise NoteError(f"{what} ID does not match its name and public key")
    return name, kid, raw[1:]


def parse_private_key_text(text: str, alg: int, what: str, kind: str) -> tuple[str, str, Ed25519PrivateKey]:
    """``PRIVATE+KEY+name+hexid+base64(type||seed)`` as (name, hex key ID, private key); the
    caller checks the ID against the key's public half."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError(f"{what} must be PRIVATE+KEY+name+keyid+base64key")
    name, hid, b64 = parts[2:]
    try:
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error):
        raise NoteError(f"{what} is not base64") from None
    if len(raw) != 33 or raw[0] != alg:
        raise NoteError(f"{what} is not an {kind} key")
    return name, hid, Ed25519PrivateKey.from_private_bytes(raw[1:])


def private_key_text(name: str, alg: int, kid: bytes, private_key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"PRIVATE+KEY+{name}+{kid.hex()}+{base64.b64encode(bytes([alg]) + seed).decode()}"


def create_key_file(path: Path, text: str) -> None:
    """Write a new private key file (mode 0600) unless one exists: O_EXCL, so when two processes
    start at once the second reads the first one's key instead of replacing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: bytes

    def text(self) -> str:
        """The printable verifier key: ``name+hex(keyid)+base64(0x01||pub)``."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False


def parse_verifier(text: str) -> Verifier:
    """Parse a verifier key ``name+hexid+base64``.  Raises NoteError if malformed or the ID mismatches."""
    return Verifier(*parse_public_key_text(text, ALG_ED25519, "verifier key", "Ed25519"))


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def verifier(self) -> Verifier:
        pub = self.public_key
        return Verifier(self.name, key_id(self.name, pub), pub)

    def text(self) -> str:
        return private_key_text(self.name, ALG_ED25519, key_id(self.name, self.public_key), self.private_key)


def parse_signer(text: str) -> Signer:
    """Parse ``PRIVATE+KEY+name+hexid+base64(0x01||seed)``; checks the key ID."""
    name, hid, private_key = parse_private_key_text(text, ALG_ED25519, "signer key", "Ed25519")
    signer = Signer(name, private_key)
    if signer.verifier.key_id.hex() != hid:
        raise NoteError("signer key ID does not match")
    return signer


def load_or_create_signer(path: str | os.PathLike, name: str) -> Signer:
    """Load the signing key at ``path``, creating it (mode 0600, O_EXCL) on first use.

    Raises NoteError if the existing key's name differs from ``name`` (the log origin).
    """
    p = Path(path)
    if not p.exists():
        if not _valid_name(name):
            raise NoteError(f"invalid key name {name!r}")
        create_key_file(p, Signer(name, Ed25519PrivateKey.generate()).text())
    signer = parse_signer(p.read_text())
    if signer.name != name:
        raise NoteError(f"key at {p} is for {signer.name!r}, not {name!r}")
    return signer


def sign_note(text: str, signer: Signer) -> str:
    """Return the signed note: text, blank line, one signature line.  ``text`` must end in one newline."""
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("note text must end with a newline and contain no blank line")
    msg = text.encode()
    sig = signer.private_key.sign(msg)
    kid = key_id(signer.name, signer.public_key)
    return text + "\n" + SIG_PREFIX + signer.name + " " + base64.b64encode(kid + sig).decode() + "\n"


def open_note(note: str, verifier: Verifier) -> str:
    """Verify a signed note against ``verifier``; return the signed text.

    The first signature line with the verifier's name and key ID decides (as Go note.Open);
    lines from other keys are ignored.  Raises NoteError if malformed, unsigned by this key,
    or the signature is invalid.
    """
    i = note.rfind("\n\n")
    if i < 0:
        raise NoteError("not a signed note: no blank line before signatures")
    text, sigs = note[: i + 1], note[i + 2:]
    if not sigs.endswith("\n"):
        raise NoteError("signature block must end with a newline")
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        try:
            name, b64 = line[len(SIG_PREFIX):].split(" ")
            raw = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError(f"malformed signature line {line!r}") from None
        if len(raw) < 5:
            raise NoteError("signature too short")
        if name == verifier.name and raw[:4] == verifier.key_id:
            if not verifier.verify(text.encode(), raw[4:]):
                raise NoteError(f"invalid signature by {name}+{raw[:4].hex()}")
            return text
    raise NoteError(f"note is not signed by {verifier.name}+{verifier.key_id.hex()}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        body = f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
        return body + "".join(e + "\n" for e in self.extensions)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse the (already verified) body of a checkpoint.  Raises NoteError if malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("checkpoint must have origin, size and root hash lines")
    origin, size_s, root_b64 = lines[:3]
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise NoteError(f"checkpoint size {size_s!r} is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error:
        raise NoteError("checkpoint root hash is not base64") from None
    if len(root) != 32:
        raise NoteError("checkpoint root hash is not 32 bytes")
    return Checkpoint(origin, int(size_s), root, tuple(lines[3:-1]))


def split_note(note: str) -> tuple[str, str]:
    """(text, signature block) without verifying anything."""
    i = note.rfind("\n\n")
    if i < 0:
        raise NoteError("not a signed note")
    return note[: i + 1], note[i + 2:]


def open_checkpoint(note: str, verifier: Verifier | None) -> Checkpoint:
    """Verify (if ``verifier`` given) and parse a signed checkpoint.

    Raises NoteError on a bad signature or if the origin line differs from the key name.
    """
    if verifier is None:
        text, _ = split_note(note)
        return parse_checkpoint_text(text)
    ck = parse_checkpoint_text(open_note(note, verifier))
    if ck.origin != verifier.name:
        raise NoteError(f"checkpoint origin {ck.origin!r} differs from key name {verifier.name!r}")
    return ck


def sign_checkpoint(ck: Checkpoint, signer: Signer) -> str:
    """Signed C2SP checkpoint text for ``ck``."""
    return sign_note(ck.text(), signer)
