"""What the background work keeps: heartbeats, failed jobs, nightly ledger history, sent reports.

Every periodic job must be safe to run twice (a redelivered message, a retry after a crash,
two beats by mistake), so each result row has a natural unique key (a day, a week and a rep)
and the jobs skip what is already there.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from casemgr.extensions import db
from casemgr.models.cases import Case
from casemgr.models.types import Money, UTCDateTime, utcnow

# The timer workers' only way into the cases table: the open, unbroken cases with a wake-up,
# by wake-up time. Partial, so cases that are completed or stopped by an error cost nothing
# however many there are; the claim query's WHERE clause implies the predicate, so both
# PostgreSQL and SQLite use it (the constants are inlined in the query for that reason).
DUE_TIMERS_PREDICATE = "next_wake_at IS NOT NULL AND status = 'open' AND broken IS NULL"
Index(
    "ix_cases_due_timers",
    Case.next_wake_at,
    postgresql_where=text(DUE_TIMERS_PREDICATE),
    sqlite_where=text(DUE_TIMERS_PREDICATE),
)


class Heartbeat(db.Model):
    """The last time something happened, by name: ``beat`` (the scheduler sent a timer tick)
    and ``tick`` (a worker ran one). The admin page compares them with the clock."""

    __tablename__ = "heartbeats"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class JobFailure(db.Model):
    """A background job that failed after its retries: what an admin sees and can retry."""

    __tablename__ = "job_failures"
    __table_args__ = (Index("ix_job_failures_open", "retried_at", "failed_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(String(120))
    task_id: Mapped[str | None] = mapped_column(String(64))
    args: Mapped[list] = mapped_column(JSON, default=list)
    kwargs: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text, default="")
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retried_by: Mapped[str | None] = mapped_column(String(80))
    retry_task_id: Mapped[str | None] = mapped_column(String(64))


class AgingSnapshot(db.Model):
    """The ledger's aging at the end of a day, kept so trends need no rebuild of history."""

    __tablename__ = "aging_snapshots"
    __table_args__ = (UniqueConstraint("as_of", name="uq_aging_snapshots_as_of"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    current: Mapped[Decimal] = mapped_column(Money)
    days_1_30: Mapped[Decimal] = mapped_column(Money)
    days_31_60: Mapped[Decimal] = mapped_column(Money)
    days_61_90: Mapped[Decimal] = mapped_column(Money)
    days_91_120: Mapped[Decimal] = mapped_column(Money)
    days_over_120: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    unapplied: Mapped[Decimal] = mapped_column(Money)
    customers_past_due: Mapped[int] = mapped_column(default=0)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DsoHistory(db.Model):
    """DSO over the trailing period ending on a day, one row per day."""

    __tablename__ = "dso_history"
    __table_args__ = (UniqueConstraint("as_of", name="uq_dso_history_as_of"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    period_days: Mapped[int]
    dso: Mapped[Decimal | None] = mapped_column(Money)
    ar_balance: Mapped[Decimal] = mapped_column(Money)
    credit_sales: Mapped[Decimal] = mapped_column(Money)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportDelivery(db.Model):
    """One weekly past-due report e-mailed to one sales rep; the key makes a rerun a no-op."""

    __tablename__ = "report_deliveries"
    __table_args__ = (
        UniqueConstraint("kind", "period_start", "recipient", name="uq_report_deliveries_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[date] = mapped_column(Date)
    recipient: Mapped[str] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(200))
    items: Mapped[int] = mapped_column(default=0)
    total: Mapped[Decimal] = mapped_column(Money)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
