"""The authorization work queue (nearest deadline first, overdue escalated) and the alerts on
approved authorizations (units left, days to expiry, continued-stay review). Reads only."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.clock import local_today
from portal.extensions import db
from portal.fact_loader import load_facts
from portal.models import Authorization, Program
from portal.rules import authorizations as ar
from portal.rules.claim_lines import derive_claim_lines
from portal.rules.facts import STATUS_READY

#: What the clinic must do next in each open state, and which deadline applies.
NEXT_ACTION = {
    "draft": ("Submit the request", None),
    "submitted": ("Record the payer's acknowledgement", "decision_due_at"),
    "pending": ("Payer decision due", "decision_due_at"),
    "denied": ("Request peer-to-peer or file an appeal", "p2p_due_at"),
    "p2p_requested": ("Hold the peer-to-peer", None),
    "p2p_held": ("Record the peer-to-peer outcome", None),
    "upheld": ("File an appeal", "appeal_due_at"),
    "appeal_filed": ("Record the appeal decision", None),
}
#: Alerts look at approved authorizations that ended at most this long ago.
RECENT_DAYS = 14


@dataclass
class QueueItem:
    auth: Authorization
    action: str
    deadline: datetime | None
    overdue: bool


@dataclass
class AlertItem:
    auth: Authorization
    used: int
    alerts: list = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.auth.units - self.used


def units_used_by_number(program: Program, auths: list[Authorization], today: date,
                         patient_ids: list[int] | None = None) -> dict[str, int]:
    """Units on billable (ready) lines per authorization number, one derivation for all."""
    approved = [a for a in auths if a.status in ar.APPROVED_STATES]
    if not approved:
        return {}
    first = min(a.start_date for a in approved)
    last = min(max(a.end_date for a in approved), today)
    if last < first:
        return {}
    facts = load_facts(program, first, last, lookback_days=0, patient_ids=patient_ids)
    used: dict[str, int] = defaultdict(int)
    for ln in derive_claim_lines(*facts.args(), current_app.extensions["rulebook"],
                                 documentation=facts.documentation):
        if ln.status == STATUS_READY and ln.authorization_number:
            used[ln.authorization_number] += ln.units
    return used


def build_queue(program: Program, now: datetime, *, patient_ids: list[int] | None = None,
                with_alerts: bool = True) -> tuple[list[QueueItem], list[AlertItem]]:
    today = local_today(program.tz, now)
    q = select(Authorization).options(selectinload(Authorization.patient),
                                      selectinload(Authorization.payer))
    if patient_ids is not None:
        q = q.where(Authorization.patient_id.in_(patient_ids or [-1]))
    auths = db.session.scalars(q).all()
    items = []
    for a in auths:
        if a.status not in NEXT_ACTION:
            continue
        action, clock = NEXT_ACTION[a.status]
        deadline = getattr(a, clock) if clock else None
        if a.status == "denied" and deadline and deadline < now and a.appeal_due_at:
            action, deadline = "File an appeal (peer-to-peer window closed)", a.appeal_due_at
        items.append(QueueItem(a, action, deadline, bool(deadline and deadline < now)))
    far = datetime.max.replace(tzinfo=now.tzinfo)
    items.sort(key=lambda i: (not i.overdue, i.deadline or far, i.auth.id))
    if not with_alerts:
        return items, []
    # IOP-level authorizations only: a higher level's ending is the step-down, not an alert.
    recent = [a for a in auths if a.status in ar.APPROVED_STATES and a.level_of_care == "2.1"
              and a.end_date >= today - timedelta(days=RECENT_DAYS)]
    used = units_used_by_number(program, recent, today, patient_ids)
    alerts = []
    for a in recent:
        pol = ar.policy_for(a.payer.rule_key, a.payer.kind, a.start_date)
        u = used.get(a.number or f"R-{a.id}", 0)
        found = ar.alerts_for(ar.AlertFact(a.label, a.start_date, a.end_date, a.units, u), today,
                              pol.alerts)
        if found:
            alerts.append(AlertItem(a, u, found))
    alerts.sort(key=lambda i: (i.auth.end_date, i.auth.id))
    return items, alerts


def overdue_items(program: Program, now: datetime) -> list[QueueItem]:
    """Open requests past a payer or clinic deadline (for the program page and billing board)."""
    items, _ = build_queue(program, now, with_alerts=False)
    return [i for i in items if i.overdue]
