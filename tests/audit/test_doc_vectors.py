"""The test vectors printed in docs/audit-format.md are recomputed here, so doc and code cannot drift.

Regenerate after an intentional format change with:
    .venv/bin/python -m tests.audit.test_doc_vectors
and paste the output into the ```json test-vectors block of the doc.
"""

import base64
import hashlib
import json
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit_archive import canonical, entry, merkle, note
from audit_archive.canonical import CheckpointRef

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-format.md"


def compute() -> dict:
    record = {"roster_id": "42", "date": "2026-11-30", "rows": [{"patient_id": "A", "status": "present", "fee": "60.00"}]}
    salt = bytes(range(32))
    line = {"patient_id": "A", "status": "present", "minutes": 180}
    commitment = canonical.commit_line(line, salt)
    def entries(build, chain):
        e1 = build(
            seq=1, kind="roster", subject={"program_id": "7", "roster_id": "42"}, actor="user:3",
            occurred_at="2026-11-30T15:04:05Z", record_hash=canonical.record_sha256(record),
            line_commitments=[commitment], doc_sha256=hashlib.sha256(b"%PDF-1.7 example").hexdigest(),
            doc_size=16, prev_hash=None, checkpoint=None, origin="portal.example.org/audit")
        l1 = merkle.leaf_hash(e1)
        e2 = build(
            seq=2, kind="note", subject={"note_id": "9"}, actor="user:3", occurred_at="2026-11-30T16:00:00Z",
            record_hash=canonical.record_sha256({"note_id": "9"}), line_commitments=[],
            doc_sha256=hashlib.sha256(b"%PDF-1.7 second").hexdigest(), doc_size=15, prev_hash=chain(e1),
            checkpoint=CheckpointRef("portal.example.org/audit", 1, merkle.root_hash([l1]).hex()),
            origin="portal.example.org/audit")
        return e1, l1, e2, merkle.leaf_hash(e2)

    e1, l1, e2, l2 = entries(canonical.build_entry, lambda e: merkle.leaf_hash(e).hex())
    v1e1, _, v1e2, _ = entries(canonical.build_entry_v1, lambda e: hashlib.sha256(e).hexdigest())
    signer = note.Signer("portal.example.org/audit", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    ck1 = note.sign_checkpoint(note.Checkpoint("portal.example.org/audit", 1, merkle.root_hash([l1])), signer)
    root2 = merkle.root_hash([l1, l2])
    return {
        "record": record,
        "record_canonical": canonical.canonical_bytes(record).decode(),
        "record_sha256": canonical.record_sha256(record),
        "line": line, "line_salt_hex": salt.hex(),
        "line_canonical": canonical.line_bytes(line).decode(),
        "line_commitment": commitment,
        "entry1_bytes": e1.decode(), "entry1_hash": entry.chain_hash(e1), "entry1_leaf_hash": l1.hex(),
        "entry2_bytes": e2.decode(), "entry2_hash": entry.chain_hash(e2), "entry2_leaf_hash": l2.hex(),
        "tree2_root": root2.hex(), "tree2_root_base64": base64.b64encode(root2).decode(),
        "inclusion_proof_entry1_size2": [p.hex() for p in merkle.inclusion_proof([l1, l2], 0)],
        "signing_key_seed_hex": "00" * 32,
        "verifier_key": signer.verifier.text(),
        "checkpoint1_signed": ck1,
        "v1_entry1_bytes": v1e1.decode(), "v1_entry1_hash": entry.chain_hash(v1e1),
        "v1_entry2_bytes": v1e2.decode(), "v1_entry2_hash": entry.chain_hash(v1e2),
    }


def doc_vectors() -> dict:
    m = re.search(r"```json test-vectors\n(.*?)\n```", DOC.read_text(), re.S)
    assert m, "docs/audit-format.md lacks a ```json test-vectors block"
    return json.loads(m.group(1))


def test_doc_vectors_match_code():
    assert doc_vectors() == compute()


def test_doc_vectors_verify_independently():
    v = doc_vectors()
    vk = note.parse_verifier(v["verifier_key"])
    ck = note.open_checkpoint(v["checkpoint1_signed"], vk)
    assert ck.size == 1 and ck.root.hex() == v["entry1_leaf_hash"]
    e1, e2 = v["entry1_bytes"].encode(), v["entry2_bytes"].encode()
    assert entry.parse_entry(e1)["line_commitments"] == [v["line_commitment"]]
    # v2: the chain hash is the leaf hash, and entry 2 names it as prev in its header
    assert v["entry1_hash"] == hashlib.sha256(b"\0" + e1).hexdigest() == v["entry1_leaf_hash"]
    assert e2.startswith(b"iop-audit-entry/v2 seq=000000000002 prev=" + v["entry1_hash"].encode() + b" ckpt=000000000001:")
    # v1 (first format): chain hash = SHA-256 of the bytes, prev_hash in the JSON
    v1e1, v1e2 = v["v1_entry1_bytes"].encode(), v["v1_entry2_bytes"].encode()
    assert v["v1_entry1_hash"] == hashlib.sha256(v1e1).hexdigest()
    assert json.loads(v1e2)["prev_hash"] == v["v1_entry1_hash"] and json.loads(v1e2)["v"] == 1
    assert merkle.verify_inclusion(merkle.leaf_hash(e1), 0, 2, [bytes.fromhex(h) for h in v["inclusion_proof_entry1_size2"]],
                                   bytes.fromhex(v["tree2_root"]))


if __name__ == "__main__":
    print(json.dumps(compute(), indent=2, ensure_ascii=False))
