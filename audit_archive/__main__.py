"""``python -m audit_archive verify PATH [--key KEY_OR_FILE] [--since CHECKPOINT_FILE]``

Exit status 0 only when every check passes; 1 when any fails; 2 for usage errors.
Imports only stdlib + cryptography.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .offline import verify_export


def _key_arg(value: str | None) -> str | None:
    if value is None:
        return None
    p = Path(value)
    return p.read_text().strip() if p.is_file() else value.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m audit_archive")
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="verify an audit export directory or zip")
    v.add_argument("path")
    v.add_argument("--key", help="verifier key text (name+keyid+base64) or a file holding it")
    v.add_argument("--since", help="file with an older signed checkpoint to check consistency against")
    args = ap.parse_args(argv)
    if not Path(args.path).exists():
        print(f"no such export: {args.path}", file=sys.stderr)
        return 2
    since = Path(args.since).read_text() if args.since else None
    rep = verify_export(args.path, key=_key_arg(args.key), since=since)
    print(rep.text())
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
