"""What a one-patient extract states, taken from the verified line wherever the line holds it.

``extract_facts`` is pure: it gets the patient's line (already checked against its chain entry's
line commitments, ``portal.services.archive_index.verified_line``), the parsed entry, and what
the portal's own tables say, and returns the facts to print, each marked as covered by the
archive proof (from the line or the entry) or not (from the portal's editable records, used
only when neither holds the fact, e.g. for documents archived before lines carried it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from portal.documents.render import plain

NOT_COVERED = "from the portal's records (not covered by the archive proof)"
SIGNATURE_NOT_COVERED = "signature image " + NOT_COVERED

# Line keys never printed as facts: ids, machine forms of values printed in local form, and
# keys already printed under a label of their own.
_HIDDEN = {"patient_id", "payer_key", "arrival", "departure", "signed_at", "modality",
           "name", "mrn", "facilitator_name", "facilitator_credential"}


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    covered: bool  # True: from the verified line or the chain entry


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def extract_facts(line: Mapping[str, Any], entry: Mapping[str, Any], *,
                  records: Mapping[str, Any]) -> list[Fact]:
    """The facts of one patient's extract, in print order.

    ``line``: the verified line; ``entry``: its parsed chain entry; ``records``: the portal's
    values used when neither holds a fact (keys ``patient``, ``mrn``, ``dos``, ``cohort``,
    ``facilitator``, ``facilitator_npi``, ``modality``, ``place_of_service``; absent or None
    when unknown, e.g. no roster session)."""
    subject = entry.get("subject") or {}
    facts: list[Fact] = []
    used: set[str] = set()

    def add(label: str, keys: tuple[str, ...], *, subject_key: str | None = None,
            record_key: str | None = None, blank: str | None = None) -> None:
        used.update(keys)
        for k in keys:
            if _present(line.get(k)):
                facts.append(Fact(label, plain(line[k]), True))
                return
        if any(k in line for k in keys):  # the line holds the fact, and it is empty
            if blank:
                facts.append(Fact(label, blank, True))
            return
        if subject_key and _present(subject.get(subject_key)):
            facts.append(Fact(label, str(subject[subject_key]), True))
        elif record_key and _present(records.get(record_key)):
            facts.append(Fact(label, str(records[record_key]), False))

    name = line.get("name") if _present(line.get("name")) else None
    mrn = line.get("mrn") if _present(line.get("mrn")) else None
    if name and mrn:
        facts.append(Fact("Patient", f"{name} · MRN {mrn}", True))
    else:
        facts.append(Fact("Patient", f"{name or records.get('patient')} · MRN {mrn or records.get('mrn')}",
                          False))
    add("Date of service", ("dos",), subject_key="dos", record_key="dos")
    add("Group", ("cohort",), subject_key="cohort", record_key="cohort")
    if _present(line.get("facilitator_name")):
        who = line["facilitator_name"] + (f", {line['facilitator_credential']}"
                                          if _present(line.get("facilitator_credential")) else "")
        facts.append(Fact("Facilitator", who, True))
    elif _present(records.get("facilitator")):
        facts.append(Fact("Facilitator", str(records["facilitator"]), False))
    add("Facilitator NPI", ("facilitator_npi",), record_key="facilitator_npi", blank="none recorded")
    add("Modality", ("modality_label",), record_key="modality")
    add("Place of service", ("place_of_service", "pos"), record_key="place_of_service")
    if _present(line.get("status_label")):
        add("Attendance", ("status_label", "status"))
    add("Arrival", ("arrival_local",))
    add("Departure", ("departure_local",))
    add("Minutes attended", ("minutes_attended",))
    add("Signed at", ("signed_at_local",))
    add("Signature SHA-256", ("signature_sha256",))
    for key in sorted(line):
        if key in used or key in _HIDDEN or not _present(line[key]):
            continue
        facts.append(Fact(key.replace("_", " ").capitalize(), plain(line[key]), True))
    return facts
