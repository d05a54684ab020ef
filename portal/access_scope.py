"""Which patients' records a user may see (42 CFR Part 2 minimum necessary; pure, no Flask).

Clinic staff see the whole program. An auditor is scoped to one payer: they see only that
payer's members, and a document naming anyone else (a group roster) is never handed over whole;
they get the member's own extract of it instead (source: 42 CFR 2.13(a) and 2.32, disclosures
limited to the information necessary; HIPAA minimum necessary, 45 CFR 164.502(b)).
"""
from __future__ import annotations

from typing import Iterable


def sees_all_patients(role: str, payer_scope: int | None) -> bool:
    """True for clinic roles, and for an auditor with no payer scope (e.g. a state reviewer
    given the whole program by written agreement)."""
    return role != "auditor" or payer_scope is None


def may_see_patient(role: str, payer_scope: int | None, patient_payer_id: int) -> bool:
    """May this user see the records of a patient whose payer is ``patient_payer_id``?"""
    return sees_all_patients(role, payer_scope) or patient_payer_id == payer_scope


def may_download_whole(role: str, payer_scope: int | None,
                       document_patient_payers: Iterable[int]) -> bool:
    """May this user download a whole archived document concerning patients with these payers?
    A document about several patients goes whole to a scoped auditor only when every patient on
    it is in their scope (e.g. never a mixed-payer group roster)."""
    if sees_all_patients(role, payer_scope):
        return True
    payers = list(document_patient_payers)
    return bool(payers) and all(p == payer_scope for p in payers)


def facilitator_may_see(user_id: int, group_facilitator_ids: Iterable[int]) -> bool:
    """A facilitator sees the records of patients in the groups they run (their cohorts, or a
    session they cover), not the whole program: minimum necessary for running a group."""
    return user_id in set(group_facilitator_ids)
