"""Benchmark: derive claim lines for a synthetic program year.

``make_synthetic(n_patients, days)`` returns the positional arguments of
``portal.rules.claim_lines.derive_claim_lines`` as a tuple:
``(program, patients, sessions, attendance, authorizations, rulebook)``.

Shape: cohorts of 12 patients meet Monday/Wednesday/Friday in two 90-minute groups
(09:00-10:30 and 10:45-12:15 America/Chicago), so 300 patients over 365 days give about
93,600 attendance rows. About 5% of rows are absences and 2% are unsigned; each patient has a
rolling 28-day authorization of 12 units; payers rotate over the four shipped payer files.

Run: ``.venv/bin/python bench/claim_lines.py [n_patients] [days]``.
"""
from __future__ import annotations

import random
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.rules.claim_lines import derive_claim_lines  # noqa: E402
from portal.rules.facts import (  # noqa: E402
    AttendanceFact,
    AuthorizationFact,
    PatientFact,
    ProgramFact,
    SessionFact,
)
from portal.rules.payer_rules import load_all  # noqa: E402

PAYERS = ("sunrise_medicaid_mco", "blueriver_ppo", "keystone_commercial_hmo", "self_pay")
COHORT_SIZE = 12
GROUPS = (((9, 0), (10, 30)), ((10, 45), (12, 15)))
MEETING_WEEKDAYS = (0, 2, 4)  # Mon, Wed, Fri


def make_synthetic(n_patients: int = 300, days: int = 365, first_dos: date = date(2026, 1, 5),
                   seed: int = 20261130):
    """Synthetic facts; deterministic for a given ``seed``."""
    rnd = random.Random(seed)
    tz = ZoneInfo("America/Chicago")
    program = ProgramFact(billing_npi="1999999984", time_zone="America/Chicago",
                          name="Synthetic IOP", tax_id="123456789", address_line="1 Main St",
                          city="Springfield", state="IL", postal_code="62701")
    patients = [
        PatientFact(patient_id=i, mrn=f"{200000 + i}", display_name=f"Patient {i}",
                    payer_key=PAYERS[i % len(PAYERS)], member_id=f"M{i:06d}",
                    diagnoses=("F10.20", "F12.20"), admit_date=first_dos)
        for i in range(n_patients)
    ]
    cohorts = [patients[i:i + COHORT_SIZE] for i in range(0, n_patients, COHORT_SIZE)]
    sessions: list[SessionFact] = []
    attendance: list[AttendanceFact] = []
    sid = 0
    for day in range(days):
        dos = first_dos + timedelta(days=day)
        if dos.weekday() not in MEETING_WEEKDAYS:
            continue
        for c, members in enumerate(cohorts):
            for g, ((sh, sm), (eh, em)) in enumerate(GROUPS):
                sid += 1
                start = datetime(dos.year, dos.month, dos.day, sh, sm, tzinfo=tz)
                end = datetime(dos.year, dos.month, dos.day, eh, em, tzinfo=tz)
                sessions.append(SessionFact(
                    session_id=sid, cohort_name=f"Cohort {c} group {g + 1}", dos=dos,
                    scheduled_start=start, scheduled_end=end, actual_start=start, actual_end=end,
                    facilitator_id=c % 5, facilitator_name=f"Clinician {c % 5}",
                    facilitator_credential="LCSW", facilitator_npi=f"10000000{c % 5:02d}",
                    roster_closed=True, archive_seq=sid))
                for p in members:
                    r = rnd.random()
                    status = "absent" if r < 0.05 else "present"
                    attendance.append(AttendanceFact(sid, p.patient_id, status,
                                                     signed=rnd.random() >= 0.02))
    authorizations = []
    for p in patients:
        start = first_dos
        n = 0
        while start < first_dos + timedelta(days=days):
            n += 1
            authorizations.append(AuthorizationFact(p.patient_id, f"A{p.patient_id}-{n}", start,
                                                    start + timedelta(days=27), 12, "H0015"))
            start += timedelta(days=28)
    return program, patients, sessions, attendance, authorizations, load_all()


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 300
    days = int(argv[2]) if len(argv) > 2 else 365
    facts = make_synthetic(n, days)
    print(f"{n} patients, {days} days: {len(facts[2])} sessions, {len(facts[3])} attendance rows")
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        lines = derive_claim_lines(*facts)
        ms = (time.perf_counter() - t0) * 1000
        best = ms if best is None else min(best, ms)
    ready = sum(1 for ln in lines if ln.status == "ready")
    print(f"derive_claim_lines: {best:.0f} ms (best of 3), {len(lines)} lines, {ready} ready")


if __name__ == "__main__":
    main(sys.argv)
