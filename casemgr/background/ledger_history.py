"""The nightly aging snapshot and DSO history: one row per day, each day taken once.

Aging and DSO can be rebuilt for any past day from the payment history, so a night the
workers missed is filled in by the next run (up to ``BACKFILL_DAYS`` back) with the figures
that day really had, not today's.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casemgr.extensions import db
from casemgr.ledger.aging import aging_report
from casemgr.ledger.metrics import dso_report
from casemgr.models import AgingSnapshot, DsoHistory

BACKFILL_DAYS = 7
DSO_PERIOD_DAYS = 90
BUCKET_COLUMNS = {
    "current": "current",
    "1-30": "days_1_30",
    "31-60": "days_31_60",
    "61-90": "days_61_90",
    "91-120": "days_91_120",
    "120+": "days_over_120",
}


def take_aging_snapshot(as_of: date) -> AgingSnapshot | None:
    """The ledger's aging at the end of ``as_of``; None when that day is already kept."""
    if _exists(AgingSnapshot, as_of):
        return None
    aging = aging_report(as_of)
    row = AgingSnapshot(
        as_of=as_of,
        total=aging.total,
        unapplied=aging.unapplied_total,
        customers_past_due=sum(
            1
            for buckets in aging.customers.values()
            if any(v > 0 for k, v in buckets.items() if k != "current")
        ),
        **{column: aging.totals[bucket] for bucket, column in BUCKET_COLUMNS.items()},
    )
    return _insert(row)


def record_dso(as_of: date, period_days: int | None = None) -> DsoHistory | None:
    """DSO over the ``period_days`` ending on ``as_of``; None when that day is already kept."""
    if _exists(DsoHistory, as_of):
        return None
    days = period_days or int(current_app.config.get("DSO_HISTORY_DAYS", DSO_PERIOD_DAYS))
    result = dso_report(as_of - timedelta(days=days - 1), as_of)
    row = DsoHistory(
        as_of=as_of,
        period_days=result.days,
        dso=result.dso,
        ar_balance=result.ar_balance,
        credit_sales=result.credit_sales,
    )
    return _insert(row)


def nightly_history(today: date, backfill_days: int = BACKFILL_DAYS) -> list[date]:
    """Snapshot every day that ended since the last run (at most ``backfill_days``)."""
    taken = []
    for back in range(backfill_days, 0, -1):
        day = today - timedelta(days=back)
        snapshot = take_aging_snapshot(day)
        dso = record_dso(day)
        if snapshot is not None or dso is not None:
            taken.append(day)
    return taken


def _exists(model, as_of: date) -> bool:
    return db.session.execute(select(model.id).where(model.as_of == as_of)).first() is not None


def _insert(row):
    """Commit one day's row; a concurrent run that kept the day first wins."""
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return row
