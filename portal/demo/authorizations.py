"""Demo authorization stories (fictional people), made through the real services so every move
is an archived PDF:

- a step-down from residential 3.5 whose IOP request is denied, then overturned at peer-to-peer;
- a request still pending with the payer, holding the patient's dates of service;
- an approved authorization about to expire, raising its alerts.

Runs before the roster history so the new patients attend groups; decisions carry past times.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import Authorization, CareEpisode, Cohort, Enrollment, Patient, Payer, User
from portal.services import authorizations as svc

DIMENSIONS = (
    ("1", "No withdrawal signs for 10 days; CIWA-Ar 2 at discharge."),
    ("0", "No active medical conditions needing monitoring."),
    ("2", "Moderate anxiety, engaged in treatment; no safety concerns."),
    ("2", "Ambivalent about abstinence but attending every group."),
    ("3", "High relapse risk without structured daily programming."),
    ("2", "Lives with a supportive sibling; one using friend nearby."),
)


def _patient(mrn, first, last, payer_key, admit, dx, member, cohort, *, prior_level=None,
             prior_auth=None) -> Patient:
    payer = db.session.scalar(select(Payer).where(Payer.rule_key == payer_key))
    p = Patient(mrn=mrn, legal_first=first, legal_last=last, dob=date(1990, 5, 17), sex="F",
                payer=payer, member_id=member, level_of_care="2.1", asam_edition="3",
                prior_level_of_care=prior_level, prior_auth_number=prior_auth,
                admit_date=admit, diagnoses=dx,
                # fictional subscriber address (837P loop 2010BA), as the census would give
                address_line1=f"{200 + int(mrn[-2:])} W Belmont Ave", city="Chicago", state="IL",
                zip="60657", phone="3125550199")
    db.session.add(p)
    db.session.add(Enrollment(patient=p, cohort=cohort, start_date=admit,
                              primary_counselor="Dana Whitfield, LCSW"))
    return p


def _form(start: date, days: int, units: int, per_week: int | None, dx: str, history: str,
          kind="standard") -> svc.RequestForm:
    return svc.RequestForm(
        level="2.1", edition="3", code="H0015", start=start.isoformat(),
        end=(start + timedelta(days=days - 1)).isoformat(), units=str(units),
        units_per_week=str(per_week) if per_week else "", request_kind=kind, diagnoses=dx,
        history=history, ratings={i + 1: r for i, (r, _) in enumerate(DIMENSIONS)},
        rationales={i + 1: w for i, (_, w) in enumerate(DIMENSIONS)})


def load_authorization_stories(program, today: date) -> None:
    cohort = db.session.scalar(select(Cohort).where(Cohort.program_id == program.id,
                                                    Cohort.name == "PM IOP"))  # AM is full
    actor = db.session.scalar(select(User).where(User.role == "billing"))

    def at(day: date, hour: int, minute: int = 0) -> str:
        return datetime.combine(day, time(hour, minute)).strftime("%Y-%m-%dT%H:%M")

    # 1. Step-down from residential, denied, overturned at peer-to-peer.
    iop_start = today - timedelta(days=16)
    renata = _patient("100290", "Renata", "Okonkwo", "sunrise_medicaid_mco", iop_start,
                      "F10.20,F41.1", "SMC44120990", cohort, prior_level="3.5",
                      prior_auth="RS-78002")
    residential = Authorization(patient=renata, payer=renata.payer, number="RS-78002",
                                hcpcs_code="H0015", level_of_care="3.5", asam_edition="3",
                                start_date=iop_start - timedelta(days=28),
                                end_date=iop_start - timedelta(days=1), units=28,
                                status="approved")
    db.session.add(residential)
    db.session.flush()
    db.session.add(CareEpisode(patient_id=renata.id, level="3.5", asam_edition="3",
                               start_date=residential.start_date, end_date=None,
                               authorization_id=residential.id, auth_number="RS-78002",
                               source="manual"))
    db.session.commit()
    _, prefill, _docs = svc.step_down_prefill(residential.id)
    form = _form(iop_start, 30, 20, 5, "F10.20, F41.1", prefill.history +
                 " Completed 28 days of residential care; discharge summary attached by fax.")
    req = svc.create_request(renata.id, form, actor=actor, prior_authorization_id=residential.id)
    d = iop_start - timedelta(days=3)
    for target, when, extra in (
            ("submitted", at(d, 10), {}),
            ("pending", at(d, 15), {"note": "Payer reference PA-3391 acknowledged receipt."}),
            ("denied", at(d + timedelta(days=2), 11),
             {"note": "Dimension 5 risk rating not supported by the submitted documentation."}),
            ("p2p_requested", at(d + timedelta(days=2), 14), {}),
            ("p2p_held", at(d + timedelta(days=4), 9),
             {"note": "Dr. Priya Raman with the plan's medical director; relapse history reviewed."}),
            ("overturned", at(d + timedelta(days=4), 9, 40), {"number": "IOP-66120"})):
        svc.transition(req.id, target, svc.Decision(at=when, **extra), actor=actor)

    # 2. A request pending with the payer: its dates are held, not blocked.
    tomas_start = today - timedelta(days=6)
    tomas = _patient("100291", "Tomasz", "Wierzbicki", "blueriver_ppo", tomas_start, "F11.20",
                     "BRP-883-4471", cohort)
    db.session.commit()
    pend = svc.create_request(tomas.id, _form(tomas_start, 28, 20, None, "F11.20",
                                              "Step-up from outpatient after a lapse."),
                              actor=actor)
    svc.transition(pend.id, "submitted", svc.Decision(at=at(tomas_start - timedelta(days=1), 16)),
                   actor=actor)
    svc.transition(pend.id, "pending", svc.Decision(at=at(tomas_start, 9)), actor=actor)

    # 3. An approved authorization about to run out: expiry, units and review alerts.
    imani_start = today - timedelta(days=24)
    imani = _patient("100292", "Imani", "Fairbanks", "keystone_commercial_hmo", imani_start,
                     "F14.20", "KCH0099292", cohort)
    db.session.commit()
    exp = svc.create_request(imani.id, _form(imani_start, 28, 18, None, "F14.20",
                                             "Admitted from the emergency department."),
                             actor=actor)
    for target, when, extra in (("submitted", at(imani_start - timedelta(days=2), 9), {}),
                                ("pending", at(imani_start - timedelta(days=2), 13), {}),
                                ("approved", at(imani_start - timedelta(days=1), 10),
                                 {"number": "KC-45601"})):
        svc.transition(exp.id, target, svc.Decision(at=when, **extra), actor=actor)
