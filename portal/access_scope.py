"""Which patients' records a user may see (42 CFR Part 2 minimum necessary; pure, no Flask).

Clinic staff see the whole program; facilitators the groups they run. An auditor sees only what
an active grant covers (``portal.auditors.rules``): a document naming anyone outside it (a group
roster) is never handed over whole; they get the patient's own extract of it instead (source:
42 CFR 2.13(a) and 2.32, disclosures limited to the information necessary; HIPAA minimum
necessary, 45 CFR 164.502(b)).
"""
from __future__ import annotations

from typing import Iterable

SCOPED_ROLES = frozenset({"auditor"})


def is_scoped(role: str) -> bool:
    """True for roles that see only what a grant covers (never the whole program)."""
    return role in SCOPED_ROLES


def may_download_whole(role: str, patients_covered: Iterable[bool]) -> bool:
    """May this user download a whole archived document whose patients are, one by one, in
    (True) or out of (False) their scope? Clinic roles: yes. A scoped user: only when every
    patient on it is covered (never a group roster naming someone else), and never a document
    about no patient (a claim export, a policy: program business, not a patient's record)."""
    if not is_scoped(role):
        return True
    covered = list(patients_covered)
    return bool(covered) and all(covered)


def facilitator_may_see(user_id: int, group_facilitator_ids: Iterable[int]) -> bool:
    """A facilitator sees the records of patients in the groups they run (their cohorts, or a
    session they cover), not the whole program: minimum necessary for running a group."""
    return user_id in set(group_facilitator_ids)
