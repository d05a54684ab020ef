"""Background jobs (portal/jobs): one row per job, shared by every web and worker process.

The row is the job's whole state, so any web process can answer a progress poll or a download
and a restart of either side loses nothing. ``id`` is an unguessable token (the URL names it);
only ``user_id`` may see the job.
"""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow

JOB_STATES = ("queued", "running", "done", "failed", "expired")


class BackgroundJob(db.Model):
    __tablename__ = "background_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    #: queued | running | done | failed | expired (done, then its file was deleted)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)  # percent, 0..100
    stage: Mapped[str] = mapped_column(String(200), default="Waiting for a worker")
    result_path: Mapped[str | None] = mapped_column(String(500))
    filename: Mapped[str | None] = mapped_column(String(255))
    mimetype: Mapped[str | None] = mapped_column(String(100))
    result_bytes: Mapped[int | None] = mapped_column(Integer)
    #: One sentence for people about the finished result ("5 lines for 2 patients").
    summary: Mapped[str | None] = mapped_column(String(300))
    #: JSON facts about the result the feature wants in its access-log description.
    result_info: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Last sign of life from the worker (start, each report); a running job silent for
    #: longer than PORTAL_JOB_STALE_SECONDS is marked failed (its worker died).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def details(self) -> list[str]:
        """A failed job's list of things to fix (``JobFailed(details=...)``)."""
        if self.state != "failed" or not self.result_info:
            return []
        return list(json.loads(self.result_info).get("details") or [])
