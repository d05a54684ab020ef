"""``python -m audit_archive verify PATH [--key KEY_OR_FILE] [--since CHECKPOINT_FILE]
[--witness-key KEY_OR_FILE ...]`` and ``python -m audit_archive witness serve|pubkey ...``

Exit status 0 only when every check passes; 1 when any fails; 2 for usage errors (a PATH that
is not an export directory or zip, an unreadable or unusable --key or --since), each reported
on one line.  Imports only stdlib + cryptography.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import zipfile
from pathlib import Path

from .note import NoteError, parse_verifier
from .offline import verify_export

PROG = "python -m audit_archive"


class UsageError(Exception):
    """A command-line argument cannot be used; the message says which and why."""


def _kind(value: str) -> str | None:
    """What ``value`` names: ``"dir"``, ``"file"`` (anything else that exists) or None (nothing
    we can see).  Never raises: a key text is not a path, and may not even be a valid one."""
    try:
        return "dir" if stat.S_ISDIR(os.stat(value).st_mode) else "file"
    except (OSError, ValueError):
        return None


def _read_text(option: str, value: str, what: str) -> str:
    if _kind(value) == "dir":
        raise UsageError(f"{option} {value}: is a directory, not {what}")
    try:
        return Path(value).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{option} {value}: is not UTF-8 text, so not {what}") from None
    except OSError as exc:
        raise UsageError(f"{option} {value}: cannot read it ({exc.strerror or exc})") from None


def _key_arg(value: str | None) -> str | None:
    """``--key``: the verifier key text, or the path of a file holding it."""
    if value is None:
        return None
    is_file = _kind(value) is not None
    text = (_read_text("--key", value, "a key file") if is_file else value).strip()
    try:
        parse_verifier(text)
    except NoteError as exc:
        if is_file:
            raise UsageError(f"--key {value}: the file does not hold a verifier key (name+keyid+base64): {exc}") from None
        raise UsageError(f"--key {value!r}: neither an existing file nor a verifier key (name+keyid+base64): {exc}") from None
    return text


def _since_arg(value: str | None) -> str | None:
    if value is None:
        return None
    if _kind(value) is None:
        raise UsageError(f"--since {value}: no such file")
    return _read_text("--since", value, "a checkpoint file")


def _check_path(value: str) -> None:
    kind = _kind(value)
    if kind is None:
        raise UsageError(f"no such export: {value}")
    if kind == "file":
        try:
            with open(value, "rb") as f:
                is_zip = zipfile.is_zipfile(f)
        except OSError as exc:
            raise UsageError(f"{value}: cannot read it ({exc.strerror or exc})") from None
        if not is_zip:
            raise UsageError(f"{value}: not an export (neither a directory nor a zip file)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="verify an audit export directory or zip")
    v.add_argument("path")
    v.add_argument("--key", help="verifier key text (name+keyid+base64) or a file holding it")
    v.add_argument("--since", help="file with an older signed checkpoint to check consistency against")
    v.add_argument("--witness-key", action="append", default=[], metavar="KEY_OR_FILE",
                   help="a witness's key (name+keyid+base64, type 0x04) or a file holding it; "
                        "the export's checkpoint must carry a valid cosignature by each one given")
    w = sub.add_parser("witness", help="run a C2SP tlog-witness (not part of the bundled verifier)")
    wsub = w.add_subparsers(dest="wcmd", required=True)
    ws = wsub.add_parser("serve", help="serve POST /add-checkpoint")
    ws.add_argument("--state", required=True, help="folder for the witness's state (one file per log)")
    ws.add_argument("--key", required=True, help="the witness's signing key file (created with --name)")
    ws.add_argument("--name", help="key name when creating the key, e.g. witness.example.org/w1")
    ws.add_argument("--log", action="append", default=[], required=True,
                    help="verifier key of a log to witness (or a file with one per line)")
    ws.add_argument("--host", default="127.0.0.1")
    ws.add_argument("--port", type=int, default=5901)
    wp = wsub.add_parser("pubkey", help="print the witness's verifier key (creating the key with --name)")
    wp.add_argument("--key", required=True)
    wp.add_argument("--name")
    args = ap.parse_args(argv)
    if args.cmd == "witness":
        return _witness(args)
    try:
        _check_path(args.path)
        key = _key_arg(args.key)
        since = _since_arg(args.since)
        witness_keys = [_witness_key_arg(k) for k in args.witness_key]
    except UsageError as exc:
        print(f"{PROG} verify: error: {exc}", file=sys.stderr)
        return 2
    rep = verify_export(args.path, key=key, since=since, witness_keys=witness_keys)
    print(_printable(rep.text()))
    return 0 if rep.ok else 1


def _witness_key_arg(value: str) -> str:
    from .cosignature import parse_witness_key

    is_file = _kind(value) is not None
    text = (_read_text("--witness-key", value, "a witness key file") if is_file else value).strip()
    try:
        parse_witness_key(text)
    except NoteError as exc:
        raise UsageError(f"--witness-key {value!r}: not a witness key (name+keyid+base64): {exc}") from None
    return text


def _witness(args) -> int:
    # Imported here: the witness is not among the modules an export's verifier carries.
    from .cosignature import load_or_create_cosigner
    from .witness import Witness, WitnessState, load_log_keys, make_server

    try:
        cosigner = load_or_create_cosigner(args.key, args.name)
    except (NoteError, OSError) as exc:
        print(f"{PROG} witness: error: {exc}", file=sys.stderr)
        return 2
    if args.wcmd == "pubkey":
        print(cosigner.key.text())
        return 0
    try:
        logs = load_log_keys(args.log)
    except (NoteError, OSError) as exc:
        print(f"{PROG} witness: error: --log: {exc}", file=sys.stderr)
        return 2
    server = make_server(Witness(cosigner, logs, WitnessState(args.state)), args.host, args.port)
    print(f"witness {cosigner.key.text()} serving http://{args.host}:{server.server_port}/add-checkpoint "
          f"for {', '.join(v.name for v in logs)}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _printable(text: str) -> str:
    """``text`` as the terminal can show it: a file name the export holds may be in any script
    (or, from a zip, anything), and an ASCII-only stdout must not turn a FAIL into a traceback."""
    enc = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(enc, "backslashreplace").decode(enc, "replace")
    except LookupError:
        return text.encode("ascii", "backslashreplace").decode("ascii")


if __name__ == "__main__":
    sys.exit(main())
