"""Celery tasks: thin wrappers over the engine and casemgr.background.

Each task is idempotent (a rerun finds its work done), so Celery may deliver it twice, a
retry may repeat it and an admin may press "retry" without harm. Transient database errors
(the server restarting, a lost connection, a lock timeout) are retried with exponential
backoff and jitter; what still fails is kept for the admin page.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, date, datetime, timedelta

from casemgr.background import ledger_history, messages, past_due, promises, referrals
from casemgr.background.locks import singleton
from casemgr.background.status import record_heartbeat
from casemgr.celery_app import TICK_TASK, broker_url, celery, is_embedded, tick_seconds
from casemgr.engine import clock
from casemgr.engine.timers import TRANSIENT_DB_ERRORS, drain_due_timers, due_count

RETRY = {
    "autoretry_for": TRANSIENT_DB_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 6,
}
# The tick comes again in a few seconds anyway: a short retry is enough.
TICK_RETRY = {**RETRY, "max_retries": 2, "retry_backoff_max": 10}


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def timer_batch() -> int:
    """Due cases per worker above which a tick asks more workers to help."""
    return _setting("CASEMGR_TIMER_BATCH", 200)


def timer_fanout() -> int:
    """At most this many helpers per tick (idle helpers cost one query each)."""
    return _setting("CASEMGR_TIMER_FANOUT", 8)


def drain_seconds() -> float:
    """A drain stops after this long and leaves the rest to the next tick."""
    return float(_setting("CASEMGR_TIMER_DRAIN_SECONDS", 60))


def _today(as_of: str | None) -> date:
    return date.fromisoformat(as_of) if as_of else clock.now().date()


def helpers_for(due: int, batch: int, fanout: int) -> int:
    """How many extra drains a backlog of ``due`` cases deserves (besides the tick's own)."""
    if due <= batch:
        return 0
    return min(fanout, math.ceil(due / batch) - 1)


@celery.task(name=TICK_TASK, bind=True, **TICK_RETRY)
def wake_due_timers(self, fan_out: bool = True) -> dict:
    """Beat's tick: wake what is due now; with a backlog, call idle workers to help."""
    # Heard at the start too: a long drain must not look like a dead worker on the admin page.
    record_heartbeat("tick", {"worker": self.request.hostname, "running": True})
    helpers = 0
    if fan_out:
        batch, fanout = timer_batch(), timer_fanout()
        helpers = helpers_for(due_count(cap=batch * (fanout + 1) + 1), batch, fanout)
        for _ in range(helpers):
            drain_timers.apply_async(expires=max(60.0, 4 * tick_seconds()))
    result = drain_due_timers(max_seconds=drain_seconds())
    detail = {
        "worker": self.request.hostname,
        "advanced": result.advanced,
        "examined": result.examined,
        "helpers": helpers,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    record_heartbeat("tick", detail)
    return detail


@celery.task(name="casemgr.drain_due_timers", **TICK_RETRY)
def drain_timers() -> dict:
    """A helper the tick called: the same drain, side by side with the others."""
    result = drain_due_timers(max_seconds=drain_seconds())
    return {"advanced": result.advanced, "examined": result.examined}


@celery.task(name="casemgr.deliver_payment_messages", **RETRY)
def deliver_payment_messages() -> list[int]:
    return messages.deliver_payment_messages()


@celery.task(name="casemgr.send_email_outbox", **RETRY)
def send_email_outbox() -> dict:
    """Every minute: the notification e-mails (and ended digests) of casemgr.notify's outbox.
    Each row is claimed before it is sent, so several workers never send one twice."""
    from casemgr.notify import send_pending

    result = send_pending()
    return {"sent": result.sent, "failed": result.failed, "digests": result.digests}


@celery.task(name="casemgr.review_promises", **RETRY)
def review_promises(as_of: str | None = None) -> dict:
    """Hourly: settle promises; each newly broken one is followed up exactly once."""
    with singleton("review_promises") as mine:
        if not mine:
            return {"skipped": "another worker is reviewing promises"}
        broken = promises.follow_up_broken_promises(_today(as_of))
        return {"broken": [p.id for p in broken]}


@celery.task(name="casemgr.nightly_ledger_history", **RETRY)
def nightly_ledger_history(as_of: str | None = None) -> dict:
    """Nightly: the aging snapshot and DSO of each day that ended (missed nights too)."""
    with singleton("nightly_ledger_history") as mine:
        if not mine:
            return {"skipped": "another worker is taking the snapshot"}
        days = ledger_history.nightly_history(_today(as_of))
        return {"days": [d.isoformat() for d in days]}


@celery.task(name="casemgr.weekly_past_due_reports", **RETRY)
def weekly_past_due_reports(as_of: str | None = None) -> dict:
    """Weekly: each sales rep's past-due customers, by e-mail, once per rep and week."""
    with singleton("weekly_past_due_reports") as mine:
        if not mine:
            return {"skipped": "another worker is sending the reports"}
        sent = past_due.send_weekly_reports(_today(as_of))
        return {"sent": [d.recipient for d in sent]}


@celery.task(name="casemgr.auto_start_referrals", **RETRY)
def auto_start_referrals(as_of: str | None = None) -> dict:
    """Nightly when configured: collection referrals for accounts past the threshold."""
    with singleton("auto_start_referrals") as mine:
        if not mine:
            return {"skipped": "another worker is starting referrals"}
        return {"started": referrals.auto_start_referrals(_today(as_of))}


@celery.task(name="casemgr.broker_housekeeping", **RETRY)
def broker_housekeeping(keep_hours: int = 1) -> int:
    """Embedded mode: kombu's SQLAlchemy transport keeps every delivered message (marked
    invisible) forever; delete those older than ``keep_hours`` so its polling stays fast."""
    url = broker_url()
    if not is_embedded(url):
        return 0
    from sqlalchemy import create_engine, text

    engine = create_engine(url.removeprefix("sqla+"))
    # kombu stamps a message with the local naive time when it hands it to a worker.
    cutoff = datetime.now() - timedelta(hours=keep_hours)
    try:
        with engine.begin() as conn:
            deleted = conn.execute(
                text('DELETE FROM kombu_message WHERE visible = 0 AND "timestamp" < :cutoff'),
                {"cutoff": cutoff},
            )
            return deleted.rowcount or 0
    finally:
        engine.dispose()
