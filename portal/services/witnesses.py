"""Witnesses cosign the portal's checkpoints (C2SP tlog-witness / tlog-cosignature).

The portal cannot vouch for itself: an insider who truncates or rewrites the log, even holding
the signing key, can make the portal sign the result. A witness (``python -m audit_archive
witness serve``, run on another machine) remembers the last head it cosigned and cosigns a new
one only with a consistency proof from it, so such a head gets a refusal, not a cosignature.

``PORTAL_WITNESSES``: comma-separated ``URL KEY`` pairs (KEY = the witness's verifier key,
``name+keyid+base64``); ``PORTAL_WITNESS_QUORUM``: how many must cosign (default 1).

- Every new checkpoint is submitted before it is stored (``checkpoint_hook``); a refusal means
  the head contradicts what a witness cosigned: nothing is stored, the refusal is recorded
  (``audit_witness_events``), logged, shown to admins, and ``audit checkpoint`` exits non-zero.
- A witness that is down never blocks: the checkpoint is stored, and ``resend_pending`` sends
  the newest checkpoint again to each witness that has not cosigned it (``audit checkpoint``,
  and every automatic checkpoint attempt).
- Cosignatures are stored as rows (``audit_cosignatures``) and as files
  ``PORTAL_CHECKPOINT_DIR/cosignatures/checkpoint-N.txt`` (the signed checkpoint plus every
  cosignature line it has), and go into exports' ``checkpoint.txt``.
"""
from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import func, insert, select

from audit_archive import merkle
from audit_archive.checkpoint import CheckpointError
from audit_archive.cosignature import WitnessKey, parse_witness_key
from audit_archive.ledger import leaf_hashes
from audit_archive.note import Checkpoint, NoteError, split_note
from audit_archive.schema import audit_checkpoints, audit_cosignatures, audit_witness_events
from portal.extensions import db

TIMEOUT_SECONDS = 5


class WitnessConfigError(ValueError):
    """PORTAL_WITNESSES / PORTAL_WITNESS_QUORUM cannot be used; the message says why."""


class WitnessRefused(CheckpointError):
    """A witness refused the head: it cosigned a longer or another history. Nothing was signed."""


@dataclass(frozen=True)
class Witness:
    url: str
    key: WitnessKey

    @property
    def name(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class Outcome:
    witness: Witness
    status: str  # cosigned | refused | unreachable
    message: str
    line: str | None = None
    timestamp: int | None = None
    http_status: int | None = None


def configured() -> tuple[list[Witness], int]:
    """``(witnesses, quorum)`` from the config; WitnessConfigError naming the problem."""
    raw = str(current_app.config.get("PORTAL_WITNESSES") or "").strip()
    witnesses = []
    for item in filter(None, (p.strip() for p in raw.replace("\n", ",").split(","))):
        parts = item.split()
        if len(parts) != 2 or not parts[0].startswith(("http://", "https://")):
            raise WitnessConfigError(f"PORTAL_WITNESSES: {item!r} is not 'URL KEY' (URL http(s)://..., "
                                     f"KEY the witness's name+keyid+base64)")
        try:
            key = parse_witness_key(parts[1])
        except NoteError as exc:
            raise WitnessConfigError(f"PORTAL_WITNESSES: the key of {parts[0]} is unusable: {exc}") from None
        witnesses.append(Witness(parts[0].rstrip("/"), key))
    if len({w.name for w in witnesses}) != len(witnesses):
        raise WitnessConfigError("PORTAL_WITNESSES names the same witness twice")
    q = str(current_app.config.get("PORTAL_WITNESS_QUORUM") or "").strip()
    if not q:
        return witnesses, (1 if witnesses else 0)
    if not q.isdigit() or not (1 <= int(q) <= len(witnesses)):
        raise WitnessConfigError(f"PORTAL_WITNESS_QUORUM must be a whole number from 1 to the number "
                                 f"of witnesses ({len(witnesses)}), got {q!r}")
    return witnesses, int(q)


def _post(url: str, body: bytes):
    req = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST",
                                 headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def submit_one(w: Witness, note: str, ck: Checkpoint, tree, old: int) -> Outcome:
    """Ask ``w`` to cosign ``note``, proving consistency from ``old`` (the size we believe it
    cosigned last). A 409 naming a smaller size is retried once from that size (the portal's
    record was behind); a larger size, or the same size with another root, is a refusal."""
    body_text, _sigs = split_note(note)
    for attempt in range(2):
        proof = tree.consistency_proof(old, ck.size) if 0 < old <= ck.size else []
        body = (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
                + "\n" + note).encode()
        try:
            status, headers, data = _post(w.url, body)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return Outcome(w, "unreachable", f"witness {w.name} at {w.url} is unreachable ({reason})")
        reason = (headers.get("X-Witness-Reason") if headers else None) or ""
        if status == 200:
            text = data.decode("utf-8", "replace")
            for line in text.split("\n"):
                if line.startswith(f"\u2014 {w.name} "):
                    try:
                        cs = w.key.verify(body_text, line)
                    except NoteError:
                        continue
                    return Outcome(w, "cosigned", "cosigned", cs.line, cs.timestamp, 200)
            return Outcome(w, "refused", f"witness {w.name} answered without a valid cosignature by its "
                                         f"key (is PORTAL_WITNESSES's key for it right?)", http_status=200)
        if status == 409 and headers and headers.get("Content-Type", "").startswith("text/x.tlog.size"):
            try:
                theirs = int(data.decode().strip())
            except ValueError:
                theirs = None
            if attempt == 0 and theirs is not None and theirs != old and theirs <= ck.size:
                old = theirs
                continue
            if theirs is not None and theirs > ck.size:
                return Outcome(w, "refused", f"witness {w.name} refused: it has cosigned {theirs} entries "
                                             f"but this head has only {ck.size} (the log was truncated or "
                                             f"rolled back)", http_status=409)
            return Outcome(w, "refused", f"witness {w.name} refused: {reason or 'it cosigned another root at size ' + str(theirs)} "
                                         f"(history rewritten?)", http_status=409)
        if status >= 500:
            return Outcome(w, "unreachable", f"witness {w.name} failed (HTTP {status}); will retry",
                           http_status=status)
        return Outcome(w, "refused", f"witness {w.name} refused (HTTP {status}): "
                                     f"{reason or data.decode('utf-8', 'replace').strip()[:200]}", http_status=status)
    return Outcome(w, "refused", f"witness {w.name} keeps answering with another size", http_status=409)


def last_cosigned_sizes(conn) -> dict[str, int]:
    return {name: size for name, size in conn.execute(
        select(audit_cosignatures.c.witness, func.max(audit_cosignatures.c.tree_size))
        .group_by(audit_cosignatures.c.witness))}


def submit_all(witnesses: list[Witness], note: str, ck: Checkpoint, tree, conn) -> list[Outcome]:
    known = last_cosigned_sizes(conn)
    return [submit_one(w, note, ck, tree, min(known.get(w.name, 0), ck.size)) for w in witnesses]


def _cosignature_file(size: int) -> Path:
    return Path(current_app.config["PORTAL_CHECKPOINT_DIR"]) / "cosignatures" / f"checkpoint-{size}.txt"


def store_outcomes(conn, checkpoint_id: int, note: str, ck: Checkpoint, outcomes: list[Outcome]) -> None:
    """Cosignatures as rows and the cosigned checkpoint file; refusals and failures as events."""
    for o in outcomes:
        if o.status == "cosigned":
            conn.execute(insert(audit_cosignatures).values(
                checkpoint_id=checkpoint_id, origin=ck.origin, tree_size=ck.size, root_hash=ck.root.hex(),
                witness=o.witness.name, key_id=o.witness.key.key_id.hex(), timestamp=o.timestamp, line=o.line))
        else:
            conn.execute(insert(audit_witness_events).values(
                checkpoint_id=checkpoint_id, witness=o.witness.name, outcome=o.status,
                status_code=o.http_status, message=o.message))
    lines = [r.line for r in conn.execute(select(audit_cosignatures.c.line)
                                          .where(audit_cosignatures.c.checkpoint_id == checkpoint_id)
                                          .order_by(audit_cosignatures.c.id))]
    if lines:
        path = _cosignature_file(ck.size)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(note + "".join(lines))
        os.replace(tmp, path)


def cosigned_note(checkpoint_id: int, note: str) -> str:
    """The signed checkpoint with every stored cosignature line appended (for exports)."""
    lines = db.session.scalars(select(audit_cosignatures.c.line)
                               .where(audit_cosignatures.c.checkpoint_id == checkpoint_id)
                               .order_by(audit_cosignatures.c.id)).all()
    return note + "".join(lines)


def record_refusals(checkpoint_id: int | None, outcomes: list[Outcome]) -> None:
    """A refused head is never stored; its refusals are (own transaction), and logged."""
    for o in outcomes:
        if o.status != "cosigned":
            current_app.logger.error("witness alarm: %s", o.message) if o.status == "refused" else \
                current_app.logger.warning("witness: %s", o.message)
    db.session.rollback()
    for o in outcomes:
        if o.status != "cosigned":
            db.session.execute(insert(audit_witness_events).values(
                checkpoint_id=checkpoint_id or 0, witness=o.witness.name, outcome=o.status,
                status_code=o.http_status, message=o.message))
    db.session.commit()


def refusal_error(outcomes: list[Outcome]) -> WitnessRefused | None:
    refused = [o.message for o in outcomes if o.status == "refused"]
    if not refused:
        return None
    return WitnessRefused("; ".join(refused) + ". Nothing was signed. Run `flask --app portal audit verify` "
                          "and compare with the witness's state: the log may have been truncated or rewritten.")


def resend_pending(witnesses: list[Witness]) -> list[Outcome]:
    """Send the newest checkpoint to each witness that has not cosigned it; store outcomes."""
    conn = db.session.connection()
    row = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.tree_size.desc(),
                                                          audit_checkpoints.c.id.desc()).limit(1)).mappings().first()
    if row is None or not witnesses:
        return []
    have = set(conn.execute(select(audit_cosignatures.c.witness)
                            .where(audit_cosignatures.c.checkpoint_id == row["id"])).scalars())
    todo = [w for w in witnesses if w.name not in have]
    if not todo:
        return []
    from audit_archive.note import parse_checkpoint_text

    ck = parse_checkpoint_text(split_note(row["note"])[0])
    tree = merkle.Tree(leaf_hashes(conn, ck.size))
    outcomes = submit_all(todo, row["note"], ck, tree, conn)
    store_outcomes(conn, row["id"], row["note"], ck, outcomes)
    db.session.commit()
    for o in outcomes:
        if o.status == "refused":
            current_app.logger.error("witness alarm: %s", o.message)
    return outcomes


def recent_alarms(limit: int = 5) -> list:
    """Refusals for admins to see, newest first."""
    return db.session.execute(select(audit_witness_events).where(audit_witness_events.c.outcome == "refused")
                              .order_by(audit_witness_events.c.id.desc()).limit(limit)).mappings().all()


@dataclass
class CosignatureCheck:
    """What ``check_cosignatures`` found, for `audit verify`."""

    heads: list  # (label, size, root) for verify_ledger's extra_heads
    failures: list
    warnings: list
    newest_line: str | None = None  # "cosigned by 2 of quorum 2 witnesses (a, b)"


def check_cosignatures(conn, newest_size: int | None, warn_after_hours: float, now) -> CosignatureCheck:
    """Verify every stored cosignature (rows and files) with the configured witness keys;
    return the heads they vouch for (verify checks each against the ledger: a head the quorum
    cosigned that the ledger contradicts fails), the OK line's witness part, and warnings for
    checkpoints older than ``warn_after_hours`` still short of the quorum."""
    from datetime import timedelta, timezone

    from audit_archive.note import parse_checkpoint_text

    out = CosignatureCheck([], [], [])
    try:
        witnesses, quorum = configured()
    except WitnessConfigError as exc:
        out.failures.append(str(exc))
        return out
    keys = {w.name: w.key for w in witnesses}
    verified: dict[int, set] = {}  # tree size -> witnesses with a valid cosignature on the ledger's head

    def check(label: str, body: str, line: str, witness: str, size: int, root: bytes):
        key = keys.get(witness)
        if key is None:
            out.warnings.append(f"{label}: by {witness}, a witness not in PORTAL_WITNESSES (not checked)")
            return
        try:
            cs = key.verify(body, line)
        except NoteError as exc:
            out.failures.append(f"{label}: {exc}")
            return
        from datetime import datetime

        when = datetime.fromtimestamp(cs.timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        out.heads.append((f"{label} (cosigned by {witness} at {when})", size, root))
        verified.setdefault(size, set()).add(witness)

    rows = conn.execute(select(audit_cosignatures).order_by(audit_cosignatures.c.id)).mappings().all()
    for r in rows:
        try:
            root = bytes.fromhex(r["root_hash"])
        except (TypeError, ValueError):
            out.failures.append(f"cosignature row {r['id']}: root column is not hex")
            continue
        body = f"{r['origin']}\n{r['tree_size']}\n{base64.b64encode(root).decode()}\n"
        check(f"cosignature row {r['id']} of size {r['tree_size']}", body, r["line"], r["witness"],
              r["tree_size"], root)
    folder = Path(current_app.config["PORTAL_CHECKPOINT_DIR"]) / "cosignatures"
    if folder.is_dir():
        for path in sorted(folder.glob("checkpoint-*.txt")):
            try:
                text = path.read_text(encoding="utf-8")
                body, sigs = split_note(text)
                ck = parse_checkpoint_text(body)
            except (OSError, UnicodeDecodeError, NoteError) as exc:
                out.failures.append(f"cosignature file {path.name}: unreadable ({exc})")
                continue
            if path.name != f"checkpoint-{ck.size}.txt":
                out.failures.append(f"cosignature file {path.name}: holds size {ck.size}, not the size its name says")
            for line in sigs.split("\n"):
                name = line[2:].split(" ", 1)[0] if line.startswith("\u2014 ") else None
                if name and name != ck.origin:
                    check(f"cosignature file {path.name}", body, line, name, ck.size, ck.root)
    cps = conn.execute(select(audit_checkpoints.c.tree_size, audit_checkpoints.c.created_at)
                       .order_by(audit_checkpoints.c.tree_size)).all()
    if witnesses and newest_size is not None:
        names = sorted(verified.get(newest_size, ()))
        out.newest_line = (f"cosigned by {len(names)} of quorum {quorum} witnesses"
                           + (f" ({', '.join(names)})" if names else ""))
        quorate = [size for size, ws in verified.items() if len(ws) >= quorum]
        best = max(quorate, default=0)
        for size, created in cps:
            if not isinstance(size, int) or size <= best or len(verified.get(size, ())) >= quorum:
                continue
            if created is not None and not isinstance(created, str):
                created = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
                if now - created > timedelta(hours=warn_after_hours):
                    out.warnings.append(
                        f"checkpoint size {size} (signed {created:%Y-%m-%d %H:%M} UTC) has "
                        f"{len(verified.get(size, ()))} of {quorum} witness cosignatures and no later "
                        f"checkpoint has its quorum: are the witnesses down? run `audit checkpoint`")
    return out
