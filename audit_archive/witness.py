"""A transparency-log witness (C2SP tlog-witness, https://c2sp.org/tlog-witness), framework-free:
stdlib ``http.server`` + ``cryptography``.

    python -m audit_archive witness serve --state DIR --key KEYFILE --log LOG_KEY [--log ...]
                                          [--host 127.0.0.1] [--port 5901]

For each log it trusts (``--log``: the log's verifier key, whose name is the log's origin) it
keeps the last size and root it cosigned, and cosigns a new checkpoint only when the request
proves (RFC 9162 consistency proof) that it extends that state. So a log that is truncated,
rolled back or rewritten, even by someone holding the log's signing key, gets a refusal instead
of a cosignature, and every cosignature carries the time it was made.

``POST /add-checkpoint`` (tlog-witness): body = ``old <size>\\n``, up to 63 base64 proof lines,
an empty line, then the signed checkpoint. Answers: 200 + cosignature line; 400 malformed or
old > size; 403 no trusted signature; 404 unknown origin; 409 old size is not the witness's
(body: its size, ``text/x.tlog.size``) or same size with another root; 422 proof does not
verify. Refusals carry a one-line reason in the ``X-Witness-Reason`` header (the body of a 409
is fixed by the spec).

State: one file per origin in ``--state``, replaced atomically (write temp, fsync, rename, fsync
the folder) under a lock held across check-and-persist, so a crash leaves the old state or the
new, never a torn one, and two requests can never roll the state back (the race in the spec).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import merkle
from .cosignature import Cosigner
from .note import NoteError, Verifier, open_checkpoint, parse_verifier, split_note

MAX_BODY = 64 * 1024
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class Refusal(Exception):
    """The witness does not cosign; ``status`` is the HTTP answer, ``reason`` a sentence."""

    def __init__(self, status: int, reason: str, body: str | None = None,
                 content_type: str = "text/plain; charset=utf-8"):
        super().__init__(reason)
        self.status, self.reason, self.body, self.content_type = status, reason, body, content_type


@dataclass(frozen=True)
class State:
    size: int
    root: bytes


class WitnessState:
    """Per-origin (size, root) on disk, atomically replaced."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def _path(self, origin: str) -> Path:
        return self.dir / (hashlib.sha256(origin.encode()).hexdigest()[:32] + ".json")

    def get(self, origin: str) -> State:
        p = self._path(origin)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            return State(0, merkle.EMPTY_ROOT)
        if data.get("origin") != origin:
            raise RuntimeError(f"witness state file {p} names another origin")
        return State(int(data["size"]), base64.b64decode(data["root"]))

    def put(self, origin: str, state: State) -> None:
        p = self._path(origin)
        tmp = p.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"origin": origin, "size": state.size,
                       "root": base64.b64encode(state.root).decode()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    """``(old size, proof hashes, signed checkpoint note)``; Refusal(400) when malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "request is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise Refusal(400, "request has no empty line before the checkpoint")
    lines = head.split("\n")
    old = lines[0]
    if not old.startswith("old ") or not old[4:].isdigit() or (old[4:] != "0" and old[4:].startswith("0")):
        raise Refusal(400, "first line must be 'old <size>' (decimal, no leading zeroes)")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise Refusal(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        try:
            h = base64.b64decode(line, validate=True)
        except (ValueError, binascii.Error):
            raise Refusal(400, "a consistency proof line is not base64") from None
        if len(h) != 32:
            raise Refusal(400, "a consistency proof hash is not 32 bytes")
        proof.append(h)
    return int(old[4:]), proof, note


class Witness:
    """The checks and the state; ``add_checkpoint`` is the whole protocol, HTTP aside."""

    def __init__(self, cosigner: Cosigner, logs: list[Verifier], state: WitnessState, clock=time.time):
        self.cosigner, self.state, self.clock = cosigner, state, clock
        self.logs: dict[str, list[Verifier]] = {}
        for v in logs:
            self.logs.setdefault(v.name, []).append(v)

    def add_checkpoint(self, body: bytes) -> str:
        old, proof, note = parse_request(body)
        try:
            text, _sigs = split_note(note)
            origin = text.split("\n", 1)[0]
        except NoteError as exc:
            raise Refusal(400, f"not a signed checkpoint: {exc}") from None
        keys = self.logs.get(origin)
        if not keys:
            raise Refusal(404, f"unknown log origin {origin!r}")
        ck = None
        for key in keys:  # signatures from unknown keys are ignored
            try:
                ck = open_checkpoint(note, key)
                break
            except NoteError:
                continue
        if ck is None:
            raise Refusal(403, f"no signature on the checkpoint verifies with a trusted key of {origin}")
        if old > ck.size:
            raise Refusal(400, f"old size {old} is larger than the checkpoint size {ck.size}")
        if old == 0 and proof:
            raise Refusal(400, "the consistency proof must be empty when the old size is 0")
        with self.state.lock:  # check and persist atomically
            last = self.state.get(origin)
            if old != last.size:
                raise Refusal(409, f"old size {old} is not the size this witness last cosigned "
                                   f"({last.size})", body=f"{last.size}\n", content_type=SIZE_CONTENT_TYPE)
            if old == ck.size:
                if ck.root != last.root:
                    raise Refusal(409, f"refusing a rollback or fork: this witness cosigned size {last.size} "
                                       f"with another root", body=f"{last.size}\n",
                                  content_type=SIZE_CONTENT_TYPE)
            elif old and not merkle.verify_consistency(old, ck.size, last.root, ck.root, proof):
                raise Refusal(422, f"the consistency proof from size {old} to {ck.size} does not verify: "
                                   f"the log is not an append-only extension of what this witness cosigned")
            self.state.put(origin, State(ck.size, ck.root))
        return self.cosigner.cosign(text, int(self.clock()))


def _handler(witness: Witness):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "iop-audit-witness/1"

        def log_message(self, fmt, *args):  # one line per request on stderr, no bodies
            super().log_message(fmt, *args)

        def _send(self, status: int, body: str, content_type: str, reason: str | None = None):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if reason:
                self.send_header("X-Witness-Reason", reason.encode("ascii", "replace").decode())
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if self.path.rstrip("/") != "/add-checkpoint":
                return self._send(404, "not found\n", "text/plain; charset=utf-8")
            try:
                n = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._send(411, "Content-Length required\n", "text/plain; charset=utf-8")
            if not 0 < n <= MAX_BODY:
                return self._send(413, "request too large\n", "text/plain; charset=utf-8")
            body = self.rfile.read(n)
            try:
                line = witness.add_checkpoint(body)
            except Refusal as r:
                self.log_message("refused (%d): %s", r.status, r.reason)
                return self._send(r.status, r.body if r.body is not None else r.reason + "\n",
                                  r.content_type, r.reason)
            self._send(200, line, "text/plain; charset=utf-8")

        def do_GET(self):
            if self.path.rstrip("/") == "/key":  # convenience: the witness's verifier key
                return self._send(200, witness.cosigner.key.text() + "\n", "text/plain; charset=utf-8")
            self._send(404, "not found\n", "text/plain; charset=utf-8")

    return Handler


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _handler(witness))
    server.daemon_threads = True
    return server


def load_log_keys(values: list[str]) -> list[Verifier]:
    """``--log`` values: a log verifier key, or a file holding one per line."""
    out = []
    for v in values:
        p = Path(v)
        texts = [t for t in p.read_text().split("\n") if t.strip()] if p.is_file() else [v]
        out += [parse_verifier(t) for t in texts]
    return out
