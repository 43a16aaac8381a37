"""What process owners work on before it is published: drafts, and published decision tables.

A draft is the one working copy of a case type's diagram (or of a decision table) that the
process owners of the company share: saved at any time, however broken, with the result of
its last validation. `revision` counts saves, so two people saving over each other is a
conflict the modeler can show rather than a silent loss.

Decision tables are versioned like diagrams: a published table is pinned into the next
version of every case type that calls one of its decisions, so running cases keep the
table they started with and new cases take the new one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casemgr.extensions import db
from casemgr.models.types import UTCDateTime, utcnow
from casemgr.models.users import User

DRAFT_KINDS = ("bpmn", "dmn")


class ProcessDraft(db.Model):
    __tablename__ = "process_drafts"
    __table_args__ = (UniqueConstraint("kind", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "bpmn" (a case type) or "dmn" (a table)
    key: Mapped[str] = mapped_column(String(80))  # the case type's or the table's key
    name: Mapped[str] = mapped_column(String(200), default="")
    xml: Mapped[str] = mapped_column(Text)
    # The published version the draft was opened from (None: a new case type or table).
    based_on: Mapped[int | None]
    revision: Mapped[int] = mapped_column(default=1)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last validation: its errors, and the sha256 of the XML it was run on (a result
    # only counts while the XML is unchanged).
    validated_sha256: Mapped[str | None] = mapped_column(String(64))
    validation_errors: Mapped[list[dict] | None] = mapped_column(JSON)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by: Mapped[User | None] = relationship()


class DecisionVersion(db.Model):
    """One published DMN file; its decisions override the seed file of the same key."""

    __tablename__ = "decision_versions"
    __table_args__ = (UniqueConstraint("key", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int]
    dmn_xml: Mapped[str] = mapped_column(Text)
    decision_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    sha256: Mapped[str] = mapped_column(String(64))
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[User | None] = relationship()
