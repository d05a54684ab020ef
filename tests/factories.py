"""Factory functions for test data. Every person here is fictional (names from the shared
census fixture or invented)."""
from __future__ import annotations

import re
from datetime import date, time

from portal.extensions import db
from portal.models import Cohort, Enrollment, Patient, Payer, Program, User
from portal.passwords import hash_password

PASSWORD = "correct horse battery staple"
_HASH = None

PAYERS = (
    ("sunrise_medicaid_mco", "Sunrise Medicaid MCO", "medicaid"),
    ("blueriver_ppo", "BlueRiver PPO", "commercial"),
    ("keystone_commercial_hmo", "Keystone Commercial HMO", "commercial"),
    ("self_pay", "Self-pay", "self_pay"),
)


def password_hash() -> str:
    global _HASH
    if _HASH is None:  # argon2 is slow on purpose; hash the shared test password once
        _HASH = hash_password(PASSWORD)
    return _HASH


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def make_program(**kw) -> Program:
    p = Program(name=kw.get("name", "Lakeshore Recovery IOP"), time_zone=kw.get("time_zone", "America/Chicago"),
                billing_npi=kw.get("billing_npi", "1234567893"), tax_id="36-1234567",
                address="410 N Harbor Dr, Chicago IL 60601",
                service_line1=kw.get("service_line1", "410 N Harbor Dr"), service_city="Chicago",
                service_state="IL", service_zip=kw.get("service_zip", "606011234"),
                taxonomy_code=kw.get("taxonomy_code", "261QR0405X"),
                contact_name=kw.get("contact_name", "Jo Billing"),
                contact_phone=kw.get("contact_phone", "3125550100"))
    db.session.add(p)
    return p


def make_payers() -> dict[str, Payer]:
    out = {}
    for key, name, kind in PAYERS:
        payer = Payer(rule_key=key, name=name, kind=kind)
        db.session.add(payer)
        out[key] = payer
    return out


def make_user(role: str, name: str, email: str, credential=None, npi=None) -> User:
    u = User(name=name, email=email, role=role, credential=credential, npi=npi,
             password_hash=password_hash())
    db.session.add(u)
    return u


def make_patient(mrn, first, last, payer, *, preferred=None, dob=date(1988, 3, 14),
                 member_id="SMC44120931", admit=date(2026, 11, 2), dx="F10.20", sex="F",
                 address=("1420 W Wrightwood Ave", "Chicago", "IL", "606142207")) -> Patient:
    """``address``: (street, city, state, ZIP) of the subscriber (2010BA), or None."""
    street, city, state, zip_ = address or (None, None, None, None)
    p = Patient(mrn=mrn, legal_first=first, legal_last=last, preferred_first=preferred, dob=dob,
                payer=payer, member_id=member_id, level_of_care="2.1", admit_date=admit,
                diagnoses=dx, sex=sex, address_line1=street, city=city, state=state, zip=zip_)
    db.session.add(p)
    return p


class World:
    """Handles to what ``build_world`` created."""


def build_world(today: date | None = None) -> World:
    w = World()
    w.program = make_program()
    w.payers = make_payers()
    w.facilitator = make_user("facilitator", "Dana Whitfield", "dana@lakeshore.test", "LCSW", "1487654323")
    w.facilitator2 = make_user("facilitator", "Marcus Greene", "marcus@lakeshore.test", "LPC", "1598765430")
    w.clinician = make_user("clinician", "Priya Raman", "priya@lakeshore.test", "LCADC", "1679876544")
    w.billing = make_user("billing", "Jo Billing", "jo@lakeshore.test")
    w.auditor = make_user("auditor", "Avery Auditor", "avery@payer.test")
    db.session.flush()
    w.admin = make_user("admin", "Sam Admin", "sam@lakeshore.test")
    w.users = {u.role: u for u in (w.facilitator, w.clinician, w.billing, w.auditor, w.admin)}
    # Both cohorts meet every day so tests can use "today" whatever weekday the suite runs on.
    w.am = Cohort(program=w.program, name="AM IOP", weekdays="1,2,3,4,5,6,7", start_local=time(9, 0),
                  duration_minutes=180, facilitator=w.facilitator, capacity=12)
    w.pm = Cohort(program=w.program, name="PM IOP", weekdays="1,2,3,4,5,6,7", start_local=time(17, 30),
                  duration_minutes=180, facilitator=w.facilitator2, capacity=12)
    db.session.add_all([w.am, w.pm])
    med, ppo, sp = w.payers["sunrise_medicaid_mco"], w.payers["blueriver_ppo"], w.payers["self_pay"]
    w.patients = [
        make_patient("100231", "Marisol", "Alvarez", med),
        make_patient("100232", "Keegan", "O'Brien", med, member_id="SMC44120932"),
        make_patient("100233", "José", "García-López", ppo, member_id="BRP-883-1120"),
        make_patient("100234", "Thi Lan", "Nguyen", sp, preferred="Lan", member_id=None),
    ]
    w.pm_patients = [
        make_patient("100250", "Ravi", "Patel", med, member_id="SMC44120950"),
        make_patient("100251", "Sofia", "Lindqvist", w.payers["keystone_commercial_hmo"], member_id="KCH0099150"),
    ]
    for p in w.patients:
        db.session.add(Enrollment(patient=p, cohort=w.am, start_date=date(2026, 10, 1)))
    for p in w.pm_patients:
        db.session.add(Enrollment(patient=p, cohort=w.pm, start_date=date(2026, 10, 1)))
    db.session.flush()
    w.auditor_grant = grant(w.auditor, payer=med)  # a payer's auditor: Sunrise members
    db.session.commit()
    return w


def grant(auditor: User, *, payer: Payer | None = None, patients=(), dos_from=None, dos_to=None,
          expires_at=None, granted_at=None, legal_basis="audit_2_53", consent_scope="",
          purpose="Post-payment review of IOP claims", recipient="Sunrise Medicaid MCO SIU",
          starts_at=None):
    """An auditor grant written directly (the admin form's checks have their own tests)."""
    from datetime import datetime, timedelta, timezone

    from portal.auditors.models import AuditorGrant

    now = datetime.now(timezone.utc)
    g = AuditorGrant(auditor_id=auditor.id, payer_id=payer.id if payer else None,
                     dos_from=dos_from, dos_to=dos_to, purpose=purpose, legal_basis=legal_basis,
                     consent_scope=consent_scope, recipient=recipient,
                     starts_at=starts_at, expires_at=expires_at or now + timedelta(days=30),
                     granted_at=granted_at or now - timedelta(days=1))
    g.patients = list(patients)
    db.session.add(g)
    db.session.flush()
    return g


def sign_and_close(session, facilitator, *, absent=(), now=None):
    """Sign every patient on ``session`` (except ``absent`` MRNs, marked no-show), record times
    and close the roster through the real services. Returns the closed session."""
    from portal.demo.signature_art import squiggle_png
    from portal.services import roster as svc

    tz = session.cohort.program.tz
    for i, entry in enumerate(list(session.entries)):
        if entry.patient.mrn in absent:
            svc.mark_attendance(session.id, entry.id, status="absent")
        else:
            svc.sign_attendance(session.id, entry.id, png=squiggle_png(seed=i), strokes=None,
                                user_agent="pytest", max_png_bytes=512 * 1024, now=now)
    start = session.scheduled_start.astimezone(tz).strftime("%H:%M")
    end = session.scheduled_end.astimezone(tz).strftime("%H:%M")
    svc.set_session_times(session.id, start=start, end=end)
    return svc.close_roster(session.id, facilitator=facilitator, typed_name=facilitator.name,
                            attested=True, signature_png=squiggle_png(seed=99),
                            max_png_bytes=512 * 1024, now=now)


def document_sessions(sessions, author, *, signed_at=None):
    """Give every attended row of ``sessions`` the documentation a billed day needs (issue 11):
    a signed treatment plan in effect on the DOS and not due for review, and a signed encounter
    note on the DOS (written directly, like the tests' attendance rows; the note services have
    their own tests). Tests about other checks use this so those days can be ready."""
    import json
    from datetime import datetime, timedelta, timezone

    from portal.clock import local_to_utc
    from portal.models import EncounterNote, TreatmentPlan
    from portal.rules.facts import ATTENDED_STATUSES

    content = {"problems": [{"key": "O1", "dimension": "5", "text": "Relapse risk", "goal":
                             "Sustained abstinence", "objective": "Name 3 triggers",
                             "target_date": "2027-12-31"}],
               "interventions": [{"modality": "Group", "frequency": "3x/week", "staff": "LCSW"}]}
    for s in sorted(sessions, key=lambda s: s.dos):
        tz = s.cohort.program.tz
        for e in s.entries:
            if e.status not in ATTENDED_STATUSES:
                continue
            plans = list(db.session.scalars(db.select(TreatmentPlan).where(
                TreatmentPlan.patient_id == e.patient_id)))
            # Shortest review interval in the payer files is 28 days (or 4 sessions): a
            # version from up to 3 days before the DOS covers it.
            if not any(p.effective_date <= s.dos <= p.effective_date + timedelta(days=3)
                       for p in plans if p.status == "signed"):
                start = s.dos - timedelta(days=3)
                db.session.add(TreatmentPlan(
                    patient_id=e.patient_id, version=len(plans) + 1,
                    content_json=json.dumps(content), status="signed", created_by_id=author.id,
                    clinician_id=author.id, effective_date=start,
                    created_at=datetime(start.year, start.month, start.day, tzinfo=timezone.utc)))
                db.session.flush()
            exists = db.session.scalar(db.select(EncounterNote.id).where(
                EncounterNote.session_id == s.id, EncounterNote.patient_id == e.patient_id))
            if exists is None:
                db.session.add(EncounterNote(
                    session_id=s.id, patient_id=e.patient_id, author_id=author.id,
                    objective_key="O1", status="signed", individual_text="(test)",
                    signed_at=signed_at or local_to_utc(s.dos, time(20, 0), tz)))
    db.session.commit()


def make_policy(program, *, effective_from=date(2026, 1, 1), effective_to=None, grace=15,
                notice_hours=24, fee_cents=2500, uniform=True, version=1):
    """A no-show policy version inserted directly (the service refuses backdated policies;
    tests need one in force on past dates)."""
    from portal.models import NoShowPolicy

    p = NoShowPolicy(program_id=program.id, version=version, effective_from=effective_from,
                     effective_to=effective_to, grace_minutes=grace, notice_hours=notice_hours,
                     fee_cents=fee_cents, uniform=uniform, letter_consecutive=2, letter_count=3,
                     window_days=30, letter_sender="Harbor Health Services",
                     body="Please come on time or call ahead.")
    db.session.add(p)
    db.session.commit()
    return p
