"""A fictional demo program, set up the way a clinic sets itself up (the example clinic file,
then a census import), with two cohorts, the shared census (clean rows), and four weeks of
roster history with the gaps a real clinic has (an unclosed roster, an unsigned attendee, a
missing session time, no-shows, late arrivals), closed rosters archived in the audit chain."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from portal.clock import local_today
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import Cohort, Program, User
from portal.passwords import hash_password

CENSUS = Path(__file__).with_name("census_demo.csv")
HISTORY_DAYS = 28

# The clinic file the demo applies: the same file and code path a real clinic uses.
CLINIC_FILE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "clinic.yaml"

# (role, name, email, credential, NPI, password): the demo logins. Staff come from the clinic
# file (which never holds passwords); only the demo gives them these known passwords.
STAFF = (
    ("facilitator", "Dana Whitfield", "dana@lakeshore.example", "LCSW", "1487654323", "demo-dana"),
    ("facilitator", "Marcus Greene", "marcus@lakeshore.example", "LPC, LCADC", "1598765430", "demo-marcus"),
    ("clinician", "Priya Raman", "priya@lakeshore.example", "LCADC", "1679876544", "demo-priya"),
    ("billing", "Jordan Ellis", "billing@lakeshore.example", None, None, "demo-billing"),
    ("auditor", "Avery Quinn", "auditor@sunrise-mco.example", None, None, "demo-auditor"),
    ("admin", "Sam Okoye", "admin@lakeshore.example", None, None, "demo-admin"),
)


@dataclass
class DemoSummary:
    created: bool
    sessions: int = 0
    closed: int = 0
    logins: tuple = STAFF
    clinical: dict | None = None  # plans, notes, late notes, addenda written (issue 11)


DEMO_BACKFILL = "demo history: simulated past days, archived when the demo was loaded"


def load_demo(today: date | None = None, seed: int = 7, history_days: int = HISTORY_DAYS) -> DemoSummary:
    """Create the demo program unless one exists (idempotent). ``today`` is program-local."""
    if db.session.scalar(select(Program).limit(1)) is not None:
        return DemoSummary(created=False)
    from flask import current_app

    from portal.rules.clinic_file import read_clinic_file
    from portal.services.clinic_setup import apply_clinic, checks_for

    rulebook = current_app.extensions["rulebook"]
    spec = read_clinic_file(CLINIC_FILE.read_bytes(), str(CLINIC_FILE), checks_for(rulebook))
    apply_clinic(spec, rulebook, actor="demo load (command line)")
    program = db.session.scalar(select(Program).limit(1))
    for _role, _name, email, _cred, _npi, password in STAFF:
        user = db.session.scalar(select(User).where(User.email == email))
        user.password_hash = hash_password(password)
    _grant_demo_auditor()
    db.session.commit()
    weekend = db.session.scalar(select(Cohort).where(Cohort.name == "Weekend Relapse Prevention"))

    from portal.census.importer import import_census

    report = import_census(CENSUS.read_bytes(), commit=True)
    if report.errors:
        raise RuntimeError(f"demo census has errors: {report.errors}")
    from portal.services.archiving import backfilling

    # The demo writes four weeks of history at once: its entries are archived now, long after
    # their (simulated) events. They say so (a signed 'backfill' marker), so verify reports
    # them in one summary line and still warns about any other late-archived entry.
    with backfilling(DEMO_BACKFILL):
        _clinical_details(weekend)
        from portal.demo.authorizations import load_authorization_stories

        load_authorization_stories(program, today or local_today(program.tz))
        summary = DemoSummary(created=True)
        from portal.demo import no_shows as no_show_demo
        from portal.demo.clinical import load_clinical

        today = today or local_today(program.tz)
        no_show_demo.publish_demo_policy(program, today, history_days)
        _history(program, today, random.Random(seed), summary, history_days,
                 forced_absent=no_show_demo.forced_absences(today, history_days))
        summary.clinical = load_clinical(program, today, random.Random(seed + 1), history_days)
        no_show_demo.load_no_show_demo(program, today, history_days)
    from portal.services.checkpoints import checkpoint_now

    checkpoint_now()  # so every demo entry is provable against a signed head right away
    return summary


DEMO_GRANT_DAYS = 90


def _grant_demo_auditor() -> None:
    """The Sunrise auditor's access: a §2.53 audit grant for Sunrise members, 90 days."""
    from portal.auditors.service import grant_for_demo
    from portal.clock import now_utc
    from portal.models import Payer

    auditor = db.session.scalar(select(User).where(User.email == "auditor@sunrise-mco.example"))
    payer = db.session.scalar(select(Payer).where(Payer.rule_key == "sunrise_medicaid_mco"))
    grant_for_demo(auditor, payer, expires_at=now_utc() + timedelta(days=DEMO_GRANT_DAYS),
                   by="demo load (command line)", recipient="Sunrise Medicaid MCO, Program Integrity Unit")


# Principal SUD diagnoses (ICD-10-CM F10-F19 [S112]); the census export carries none.
DIAGNOSES = ("F10.20", "F11.20", "F14.20", "F12.20,F10.10", "F15.20", "F10.20,F41.1")


def _clinical_details(weekend: Cohort) -> None:
    """Diagnoses for every patient, and a weekend group for a few AM patients (so the demo has
    a roster to sign on any day of the week)."""
    from portal.models import Enrollment, Patient

    patients = db.session.scalars(select(Patient).order_by(Patient.mrn)).all()
    for i, patient in enumerate(patients):
        patient.diagnoses = DIAGNOSES[i % len(DIAGNOSES)]
        if not patient.address_line1:  # fictional subscriber address until the census carries one
            patient.address_line1, patient.city = f"{100 + 7 * i} W Maple St", "Chicago"
            patient.state, patient.zip = "IL", f"606{10 + i % 30:02d}"
    for patient in patients[:6]:
        db.session.add(Enrollment(patient=patient, cohort=weekend, start_date=patient.admit_date,
                                  primary_counselor="Dana Whitfield, LCSW"))
    db.session.commit()


def _history(program: Program, today: date, rng: random.Random, summary: DemoSummary,
             history_days: int, forced_absent: set = frozenset()) -> None:
    from portal.services import roster as svc
    from portal.services.schedule import ensure_sessions

    day = today - timedelta(days=history_days)
    meeting_days = [today - timedelta(days=n) for n in range(history_days, 0, -1)
                    if (today - timedelta(days=n)).isoweekday() in (1, 2, 3, 4)]
    # The realistic gaps: an AM roster left open with one attendee who never signed, and a PM
    # roster whose actual end time was never entered (so it cannot be closed either).
    unsigned_gap = ("AM IOP", meeting_days[-2]) if len(meeting_days) > 3 else None
    missing_time_gap = ("PM IOP", meeting_days[len(meeting_days) // 2]) if len(meeting_days) > 3 else None
    while day <= today:
        for session in ensure_sessions(program, day):
            summary.sessions += 1
            if day == today:
                continue  # today's rosters are left open for the facilitators to sign
            key = (session.cohort.name, day)
            facilitator = session.facilitator
            # Groups usually run a few minutes over; now and then one starts late and ends on
            # time, and a 3-hour day falls under the H0015 minimum (a realistic gap).
            start = session.scheduled_start + timedelta(minutes=rng.choice((-2, 0, 0, 1, 2, 6)))
            end = session.scheduled_end + timedelta(minutes=rng.choice((3, 5, 8, 10, 10, 0)))
            session.actual_start = start
            session.actual_end = None if key == missing_time_gap else end
            for i, entry in enumerate(session.entries):
                _attend(entry, start, end, rng, sign=not (key == unsigned_gap and i == 0))
                if (entry.patient.mrn, day) in forced_absent:  # the no-show demo's cases
                    entry.status, entry.arrival, entry.departure = "absent", None, None
                    entry.signature_png = entry.signature_sha256 = entry.signed_at = None
            db.session.commit()
            if key in (unsigned_gap, missing_time_gap) or not session.entries:
                continue
            svc.close_roster(session.id, facilitator=facilitator, typed_name=facilitator.name,
                             attested=True, signature_png=squiggle_png(seed=facilitator.id),
                             max_png_bytes=512 * 1024, now=end + timedelta(minutes=rng.randint(5, 25)))
            summary.closed += 1
        day += timedelta(days=1)


def _attend(entry, start: datetime, end: datetime, rng: random.Random, *, sign: bool) -> None:
    """Give one roster row a plausible status, times and (unless ``sign`` is False) a signature."""
    roll = rng.random()
    if roll < 0.08:
        entry.status = "absent"
        return
    if roll < 0.10:
        entry.status = "cancelled"
        return
    if roll < 0.16:
        entry.status = "late"
        entry.arrival = start + timedelta(minutes=rng.choice((12, 20, 35, 50)))
    elif roll < 0.20:
        entry.status = "left_early"
        entry.departure = end - timedelta(minutes=rng.choice((15, 30, 60)))
    else:
        entry.status = "present"
    if sign:
        png = squiggle_png(seed=rng.randrange(10**6))
        entry.signature_png = png
        entry.signature_sha256 = hashlib.sha256(png).hexdigest()
        entry.signed_at = (entry.arrival or start) + timedelta(minutes=rng.randint(0, 6))
        entry.user_agent = "demo loader"


def login_lines() -> list[str]:
    return [f"  {role:<12} {email:<32} password: {password}" for role, _n, email, _c, _npi, password in STAFF]

