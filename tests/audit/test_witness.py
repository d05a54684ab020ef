"""The witness (C2SP tlog-witness / tlog-cosignature) in audit_archive: cosigns only consistent
growth, refuses rollbacks and rewrites (even by the log's key holder), keeps its state across a
restart, and its cosignatures verify (timestamped, over the checkpoint body)."""

from __future__ import annotations

import base64
import threading
import urllib.error
import urllib.request

import pytest

from audit_archive import merkle
from audit_archive.cosignature import load_or_create_cosigner, parse_witness_key, signed_message
from audit_archive.note import Checkpoint, NoteError, load_or_create_signer, sign_checkpoint, split_note
from audit_archive.witness import Witness, WitnessState, make_server

ORIGIN = "portal.example.org/audit"


def _leaves(n, tag=b"e"):
    return [merkle.leaf_hash(tag + str(i).encode()) for i in range(n)]


@pytest.fixture
def log(tmp_path):
    return load_or_create_signer(tmp_path / "log.key", ORIGIN)


@pytest.fixture
def witness(tmp_path, log):
    cosigner = load_or_create_cosigner(tmp_path / "w.key", "witness.example/w1")
    return Witness(cosigner, [log.verifier], WitnessState(tmp_path / "state"), clock=lambda: 1_764_000_000)


def _request(log, leaves, old, known_leaves=None, signer=None):
    tree = merkle.Tree(leaves)
    note = sign_checkpoint(Checkpoint(ORIGIN, len(leaves), tree.root()), signer or log)
    proof = tree.consistency_proof(old, len(leaves)) if 0 < old <= len(leaves) else []
    return (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n" + note).encode(), note


def _refusal(witness, body):
    from audit_archive.witness import Refusal
    with pytest.raises(Refusal) as exc:
        witness.add_checkpoint(body)
    return exc.value


def test_cosigns_growth_with_a_valid_timestamped_cosignature(witness, log):
    leaves = _leaves(5)
    body, note = _request(log, leaves[:3], 0)
    line = witness.add_checkpoint(body)
    key = parse_witness_key(witness.cosigner.key.text())
    cs = key.verify(split_note(note)[0], line)
    assert cs.timestamp == 1_764_000_000 and line.startswith("\u2014 witness.example/w1 ")
    body, note = _request(log, leaves, 3)
    assert key.find(note + witness.add_checkpoint(body)).timestamp == 1_764_000_000
    # The signed message is the spec's: header, time line, checkpoint body.
    assert signed_message("a\n1\nr\n", 7) == b"cosignature/v1\ntime 7\na\n1\nr\n"


def test_refuses_rollback_fork_and_bad_proofs(witness, log, tmp_path):
    leaves = _leaves(6)
    witness.add_checkpoint(_request(log, leaves, 0)[0])
    r = _refusal(witness, _request(log, leaves[:4], 0)[0])  # truncated: old size is not ours
    assert r.status == 409 and r.body == "6\n" and r.content_type == "text/x.tlog.size"
    r = _refusal(witness, _request(log, leaves[:4], 6)[0])  # old > size
    assert r.status == 400
    rewritten = leaves[:2] + _leaves(4, b"x")
    r = _refusal(witness, _request(log, rewritten, 6)[0])  # same size, another root: the key holder re-signed
    assert r.status == 409 and "rollback or fork" in r.reason
    grown = rewritten + _leaves(2, b"y")
    r = _refusal(witness, _request(log, grown, 6)[0])  # a proof from our size that does not verify
    assert r.status == 422
    other = load_or_create_signer(tmp_path / "other.key", ORIGIN)
    assert _refusal(witness, _request(log, leaves + _leaves(1, b"z"), 6, signer=other)[0]).status == 403
    foreign = load_or_create_signer(tmp_path / "foreign.key", "elsewhere.example/log")
    tree = merkle.Tree(leaves)
    note = sign_checkpoint(Checkpoint("elsewhere.example/log", 6, tree.root()), foreign)
    assert _refusal(witness, f"old 0\n\n{note}".encode()).status == 404
    for bad in (b"hello", b"old 01\n\nx", b"old 1\n!!!\n\nx", "old 0\n".encode() + b"\xff\n\n"):
        assert _refusal(witness, bad).status == 400


def test_state_survives_a_restart_and_is_replaced_atomically(tmp_path, log):
    cosigner = load_or_create_cosigner(tmp_path / "w.key", "witness.example/w1")
    leaves = _leaves(4)
    Witness(cosigner, [log.verifier], WitnessState(tmp_path / "state")).add_checkpoint(_request(log, leaves, 0)[0])
    again = Witness(cosigner, [log.verifier], WitnessState(tmp_path / "state"))
    assert _refusal(again, _request(log, leaves[:2], 0)[0]).body == "4\n"
    assert not list((tmp_path / "state").glob("*.tmp"))


def test_concurrent_requests_never_roll_back(witness, log):
    """The spec's race: check and persist are one step, so the state only grows."""
    leaves = _leaves(40)
    witness.add_checkpoint(_request(log, leaves[:1], 0)[0])
    results = []

    def go(n):
        try:
            results.append(witness.add_checkpoint(_request(log, leaves[:n], 1)[0]))
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(2, 40)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    cosigned = [r for r in results if isinstance(r, str)]
    assert len(cosigned) == 1  # only the first from size 1 matches the state
    assert witness.state.get(ORIGIN).size >= 2


def test_http_server_round_trip(witness, log):
    server = make_server(witness, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/add-checkpoint"
        body, note = _request(log, _leaves(3), 0)
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5) as resp:
            line = resp.read().decode()
        assert parse_witness_key(witness.cosigner.key.text()).find(note + line)
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(urllib.request.Request(url, data=_request(log, _leaves(2), 0)[0], method="POST"), timeout=5)
        assert exc.value.code == 409 and exc.value.read() == b"3\n"
        assert exc.value.headers["Content-Type"] == "text/x.tlog.size"
        assert "3" in exc.value.headers["X-Witness-Reason"]
    finally:
        server.shutdown()
        server.server_close()


def test_witness_key_text_round_trips_and_rejects_log_keys(tmp_path, log):
    key = load_or_create_cosigner(tmp_path / "w.key", "w.example/a").key
    assert parse_witness_key(key.text()) == key
    with pytest.raises(NoteError):
        parse_witness_key(log.verifier.text())  # a type 0x01 log key is not a witness key


@pytest.mark.parametrize("mangle, message", [
    (lambda t: t.replace("PRIVATE+KEY+", "PUBLIC+KEY+"), r"must be PRIVATE\+KEY\+name"),
    (lambda t: t.rsplit("+", 1)[0] + "+not*base64", "is not base64"),
    (lambda t: t.replace("example.org/", "example.net/"), "ID does not match"),
])
@pytest.mark.parametrize("kind", ["log", "witness"])
def test_a_damaged_private_key_file_is_named_not_a_crash(tmp_path, kind, mangle, message):
    """Log signing keys and witness keys share one reader: a damaged file answers NoteError
    naming what is wrong (a bad base64 used to escape as binascii.Error for the log key)."""
    path = tmp_path / "key"
    if kind == "log":
        load_or_create_signer(path, "example.org/log")
        reload = lambda: load_or_create_signer(path, "example.org/log")  # noqa: E731
    else:
        load_or_create_cosigner(path, "example.org/w1")
        reload = lambda: load_or_create_cosigner(path, None)  # noqa: E731
    path.write_text(mangle(path.read_text().strip()) + "\n")
    with pytest.raises(NoteError, match=message):
        reload()
