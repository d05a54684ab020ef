"""Write the admin log: who changed which object, when, from what to what.

Every service that changes the program's setup (clinic file, admin pages) calls ``record`` in
the same transaction as the change, so a change and its log line commit or roll back together.
"""
from __future__ import annotations

from portal.extensions import db
from portal.models import AdminLogEntry

COMMAND_LINE = "command line"


def record(actor, object_type: str, obj_id: int | None, label: str, action: str,
           before: str = "", after: str = "") -> AdminLogEntry:
    """``actor`` is the signed-in ``User`` or a string naming the command (``setup apply``)."""
    if isinstance(actor, str) or actor is None:
        actor_id, actor_name = None, actor or COMMAND_LINE
    else:
        actor_id, actor_name = actor.id, f"{actor.name} <{actor.email}>"
    entry = AdminLogEntry(actor_id=actor_id, actor=actor_name[:200], object_type=object_type,
                          object_id=obj_id, object_label=label[:200], action=action,
                          before=before, after=after)
    db.session.add(entry)
    return entry


def diff_text(changes: dict[str, tuple[object, object]]) -> tuple[str, str]:
    """{"role": ("facilitator", "clinician")} -> ("role: facilitator", "role: clinician")."""
    before = "; ".join(f"{k}: {_show(old)}" for k, (old, _new) in changes.items())
    after = "; ".join(f"{k}: {_show(new)}" for k, (_old, new) in changes.items())
    return before, after


def _show(value) -> str:
    if value is None or value == "":
        return "(empty)"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
