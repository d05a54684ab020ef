"""Demo clinical documentation, written through the real services (rendered, stamped,
archived): a signed treatment plan per patient (one reviewed, one overdue for review), an
encounter note for every attendee of every closed roster, with the gaps readiness must show:
a few notes signed late, one near-identical pair left flagged, one note never written, one
draft left unsigned, and addenda (a late arrival corrected on a roster, a note's objective
corrected)."""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from portal.clock import local_to_utc
from portal.demo.signature_art import squiggle_png
from portal.extensions import db
from portal.models import GroupSession, Patient, Program, User
from portal.rules.facts import ATTENDED_STATUSES

PROBLEMS = (
    ("5", "Returns to use when stressed after work", "Sustained abstinence from alcohol",
     "Name three triggers and one coping skill for each"),
    ("4", "Ambivalent about stopping cannabis", "Commit to a recovery plan",
     "List two personal reasons for change and share them in group"),
    ("6", "Lives with a partner who drinks daily", "A home that supports recovery",
     "Attend two mutual-help meetings a week and identify one sober support"),
    ("3", "Anxiety drives evening cravings", "Manage anxiety without substances",
     "Practice a grounding skill daily and log it for two weeks"),
)
TOPICS = ("Coping with cravings", "Relapse warning signs", "Building a sober network",
          "Managing stress at work", "Sleep and recovery", "Communication in families")
MODALITIES = ("relapse_prevention", "psychoeducation", "cbt_skills", "process")
OPENINGS = ("Arrived on time and engaged early in the check-in.",
            "Quiet during the check-in; joined the discussion after the break.",
            "Shared a recent high-risk situation with the group.",
            "Took notes throughout and asked two clarifying questions.",
            "Offered support to a peer and stayed on topic.")
WORK = ("Mapped {n} personal triggers on the worksheet and chose urge surfing for the strongest.",
        "Rehearsed a refusal script in role play; rated confidence {n}/10 afterwards.",
        "Described {n} days without use and the routine that helped.",
        "Identified {n} people to call when cravings rise and added them to a phone list.",
        "Linked last week's lapse to skipped meals and {n} hours of sleep.")
CLOSINGS = ("Plans to practice the skill twice before the next group.",
            "Agreed to bring the completed log next session.",
            "Will discuss the plan with a sponsor this week.",
            "Expressed motivation to keep attending all three days.")


def _content(rng: random.Random, start: date) -> tuple[list[dict], list[dict]]:
    picks = rng.sample(PROBLEMS, 2)
    rows = [{"dimension": d, "text": t, "goal": g, "objective": o,
             "target_date": (start + timedelta(days=rng.choice((45, 60, 90)))).isoformat()}
            for d, t, g, o in picks]
    ivs = [{"modality": "IOP group (relapse prevention, CBT skills)", "frequency": "3 days/week, 3 h",
            "staff": "Group facilitator"},
           {"modality": "Individual counseling", "frequency": "Weekly, 50 min",
            "staff": "Primary counselor"}]
    return rows, ivs


def _sign_plan(plan_svc, plan, clinician, supervisor, at: datetime, seed: int):
    plan_svc.sign_plan_patient(plan.id, png=squiggle_png(seed=seed), max_png_bytes=512 * 1024,
                               now=at)
    plan = plan_svc.sign_plan_staff(plan.id, user=clinician, attested=True,
                                    now=at + timedelta(minutes=3))
    if plan.status != "signed":
        plan = plan_svc.sign_plan_staff(plan.id, user=supervisor, attested=True,
                                        as_supervisor=True, now=at + timedelta(minutes=9))
    return plan


def load_clinical(program: Program, today: date, rng: random.Random, history_days: int) -> dict:
    from portal.services import addenda as add_svc
    from portal.services import notes as note_svc
    from portal.services import plans as plan_svc

    tz = program.tz
    clinician = db.session.scalar(select(User).where(User.name == "Priya Raman"))
    supervisor = db.session.scalar(select(User).where(User.name == "Marcus Greene"))
    patients = db.session.scalars(select(Patient).order_by(Patient.mrn)).all()
    start = today - timedelta(days=history_days + 1)
    counts = {"plans": 0, "notes": 0, "late": 0, "addenda": 0}
    # One patient's plan is from long ago and never reviewed (readiness: review overdue);
    # another's was reviewed mid-history (version 2).
    overdue_mrn = patients[1].mrn if len(patients) > 1 else None
    reviewed_mrn = patients[2].mrn if len(patients) > 2 else None
    for i, p in enumerate(patients):
        written = start - timedelta(days=45 if p.mrn == overdue_mrn else 0)
        at = local_to_utc(written, time(10, 0), tz)
        rows, ivs = _content(rng, written)
        plan = plan_svc.create_plan(p.id, author=clinician, rows=rows, interventions=ivs,
                                    asam_edition="4" if i % 3 == 0 else "3", now=at)
        _sign_plan(plan_svc, plan, clinician, supervisor, at + timedelta(minutes=20), seed=i)
        counts["plans"] += 1
        if p.mrn == reviewed_mrn:
            mid = today - timedelta(days=history_days // 2)
            at2 = local_to_utc(mid, time(13, 0), tz)
            rows2, ivs2 = _content(rng, mid)
            keep = plan_svc.patient_plans(p.id)[0].content["problems"]
            rows2[0] = dict(keep[0], objective=keep[0]["objective"] + " (met twice; now daily)")
            review = plan_svc.create_plan(p.id, author=clinician, rows=rows2, interventions=ivs2,
                                          asam_edition=plan.asam_edition, now=at2)
            _sign_plan(plan_svc, review, clinician, supervisor, at2 + timedelta(minutes=15), i + 50)
            counts["plans"] += 1

    sessions = db.session.scalars(
        select(GroupSession).where(GroupSession.status == "closed").order_by(
            GroupSession.dos, GroupSession.scheduled_start)).all()
    recent = [s for s in sessions if s.dos < today]
    clone_session = recent[-3] if len(recent) > 3 else None
    missing = recent[-2] if len(recent) > 2 else None
    draft_session = recent[-1] if recent else None
    late_sessions = {s.id for s in recent[len(recent) // 3: len(recent) // 3 + 2]}
    roster_fix_done = note_fix_done = False
    for s in sessions:
        sid = s.id
        facilitator = s.facilitator
        note_svc.save_group_note(sid, author=facilitator, topic=rng.choice(TOPICS),
                                 group_modality=rng.choice(MODALITIES),
                                 shared_text="The group reviewed the week's goals, worked through "
                                             "a skills exercise in pairs and closed with a "
                                             "relapse-prevention check-out.")
        s = db.session.get(GroupSession, sid)
        attended = [e for e in s.entries if e.status in ATTENDED_STATUSES]
        clone_text = None
        for k, e in enumerate(sorted(attended, key=lambda e: e.patient.mrn)):
            pid = e.patient_id
            if missing is not None and sid == missing.id and k == 0:
                continue  # a note never written
            plan = note_svc.plan_for_dos(pid, s.dos)
            objective = plan.objectives[rng.randrange(len(plan.objectives))]["key"]
            text = " ".join((rng.choice(OPENINGS), rng.choice(WORK).format(n=rng.randint(2, 9)),
                             rng.choice(CLOSINGS), f"Working on objective {objective}."))
            if clone_session is not None and sid == clone_session.id and k < 2:
                clone_text = clone_text or text
                text = clone_text if k == 0 else clone_text.replace(".", ";", 1)
            form = {"objective_key": objective, "participation": rng.choice(
                        ("active", "active", "moderate", "minimal")),
                    "affect": rng.choice(("appropriate", "appropriate", "anxious", "flat")),
                    "mental_status": "alert_oriented", "risk": rng.choice(("none", "none", "low")),
                    "progress": rng.choice(("progressing", "progressing", "maintaining")),
                    "individual_text": text}
            note = note_svc.save_note(sid, pid, author=facilitator, form=form,
                                      now=s.actual_end + timedelta(minutes=20))
            if draft_session is not None and sid == draft_session.id and k == 0:
                continue  # a draft still waiting for its signature ("My unsigned notes")
            signed_at = s.actual_end + timedelta(minutes=40 + k * 3)
            if sid in late_sessions and k == 0:
                signed_at = local_to_utc(s.dos + timedelta(days=7), time(9, 30), tz)
                counts["late"] += 1
            try:
                note_svc.sign_note(note.id, signer=facilitator, attested=True, now=signed_at)
            except note_svc.CloneSuspected:
                decision = "flag" if (clone_session and sid == clone_session.id) else "individualized"
                note_svc.sign_note(note.id, signer=facilitator, attested=True, now=signed_at,
                                   clone_decision=decision,
                                   clone_review="Reviewed: this reflects the patient's own report.")
            counts["notes"] += 1
            note = note_svc.get_note(note.id)
            if not note_fix_done and len(plan.objectives) > 1 and s.dos < today - timedelta(days=3):
                other = next(o["key"] for o in plan.objectives if o["key"] != objective)
                add_svc.add_addendum(note.document_id, pid, based_on=None, author=facilitator,
                                     reason="Wrong objective selected; the session worked on the other one.",
                                     fields={"objective_key": other},
                                     now=signed_at + timedelta(hours=20))
                note_fix_done = True
                counts["addenda"] += 1
        if not roster_fix_done and attended and s.dos < today - timedelta(days=5):
            e = next((e for e in attended if e.status == "present"), None)
            if e is not None:
                arrival = (s.actual_start + timedelta(minutes=25)).astimezone(tz).strftime("%H:%M")
                add_svc.add_addendum(s.document_id, e.patient_id, based_on=None,
                                     author=facilitator,
                                     reason="Sign-in sheet at the front desk shows a late arrival.",
                                     fields={"status": "late", "arrival": arrival},
                                     now=s.closed_at + timedelta(days=1))
                roster_fix_done = True
                counts["addenda"] += 1
    return counts
