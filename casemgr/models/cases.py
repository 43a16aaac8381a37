"""Cases, the task index (one row per human task) and the append-only case timeline."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from casemgr.extensions import db
from casemgr.models.processes import CaseType, ProcessVersion
from casemgr.models.types import Money, UTCDateTime, iso, utcnow
from casemgr.models.users import User
from casemgr.models.work import default_priority


class Case(db.Model):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_type_id: Mapped[int] = mapped_column(ForeignKey("case_types.id"), index=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    outcome: Mapped[str | None] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(300), default="")
    customer_number: Mapped[str | None] = mapped_column(String(40), index=True)
    customer_name: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    workflow_json: Mapped[str] = mapped_column(Text)
    # The earliest moment a timer of this case is due: timers only ever look at this index.
    next_wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The messages the case waits for, as ",name,name," so a LIKE finds them without
    # deserializing any workflow (e.g. ",payment_received,").
    awaiting: Mapped[str | None] = mapped_column(String(300), index=True)
    broken: Mapped[str | None] = mapped_column(Text)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)

    case_type: Mapped[CaseType] = relationship()
    process_version: Mapped[ProcessVersion] = relationship()
    started_by: Mapped[User | None] = relationship()
    tasks: Mapped[list[TaskRecord]] = relationship(
        back_populates="case", order_by="TaskRecord.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )

    # Optimistic locking: two steps on one case, one wins and the other gets StaleDataError.
    __mapper_args__ = {"version_id_col": version}


_INBOX_COLUMNS = (
    "due_at",
    "follow_up_at",
    "case_type_key",
    "priority",
    "amount",
    "created_at",
    "customer_number",
    "customer_name",
    "case_id",
)


class TaskRecord(db.Model):
    """The inbox reads this table only; it never deserializes a workflow."""

    __tablename__ = "tasks"
    __table_args__ = (
        # The inbox (casemgr.engine.inbox) reads a role's queue and a person's tasks from
        # these two alone: each walks in due order and holds every column the inbox filters
        # and sorts on, so a page of a 20,000-task queue never touches the table's rows.
        Index("ix_tasks_open_role", "state", "role", "assignee_id", *_INBOX_COLUMNS),
        Index("ix_tasks_open_assignee", "state", "assignee_id", *_INBOX_COLUMNS, "role"),
        # Counting a queue without filters: the narrowest index that answers it.
        Index("ix_tasks_queue_count", "state", "role", "assignee_id", "follow_up_at"),
        Index("ix_tasks_open_customer", "state", "customer_number"),
        Index("ix_tasks_delegated_from", "delegated_from_id", "state"),
        # A case's open tasks (every step reads them) without reading its closed ones.
        Index("ix_tasks_case_state", "case_id", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    spiff_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(40))
    form_key: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(20), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Denormalised from the case so the inbox can filter and sort without joins on big tables.
    case_type_key: Mapped[str] = mapped_column(String(80), index=True)
    customer_number: Mapped[str | None] = mapped_column(String(40))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    four_eyes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Work management (casemgr.engine.worklist): hidden from the inbox until follow_up_at,
    # ranked by priority (higher first), and who handed it on when it is delegated.
    follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[int] = mapped_column(default=default_priority)
    delegated_from_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Its summary as JSON once it is closed (casemgr.models.task_json); NULL while open.
    closed_json: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="tasks")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])
    delegated_from: Mapped[User | None] = relationship(foreign_keys=[delegated_from_id])


class CaseLink(db.Model):
    """Cases that belong together (a dispute and the freight claim it started), both ways."""

    __tablename__ = "case_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    other: Mapped[Case] = relationship(foreign_keys=[other_id])


def timeline_json(context) -> str:
    """An event as the API's timeline shows it, less its id (unknown before the INSERT):
    the members of its JSON object after the id (from the comma to the closing brace),
    ready for '{"id":N' in front.

    Events never change, so each is rendered once, when it is written: a case at its 500th
    loop has 1,500 of them, and building their JSON on every read was the largest part of
    answering a step (casemgr.web.api.json_sql puts the id in front, and builds the whole
    object for rows written before this column existed). A column default, so that the
    engine's multi-row INSERT and every ORM insert fill it alike."""
    row = context.get_current_parameters()
    members = {
        "at": iso(row["at"]),
        "actor": row["actor"],
        "kind": row["kind"],
        "detail": row.get("detail") or {},
    }
    return "," + json.dumps(members, separators=(",", ":"))[1:]


class CaseEvent(db.Model):
    """The audit trail. Rows are only ever inserted (casemgr.models.audit_guard)."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    timeline_json: Mapped[str | None] = mapped_column(Text, default=timeline_json)
    case: Mapped[Case] = relationship(back_populates="events")
