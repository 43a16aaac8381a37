"""Heartbeats, failed jobs and what the admin page shows about the background work."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from casemgr.engine import clock
from casemgr.engine.timers import broken_cases, due_count
from casemgr.extensions import db
from casemgr.models import AgingSnapshot, Case, DsoHistory, Heartbeat, JobFailure

QUEUE = "celery"  # Celery's default queue: every casemgr task goes there
DUE_COUNT_CAP = 100_000


def record_heartbeat(name: str, detail: dict | None = None) -> None:
    """Upsert one heartbeat row and commit (its own small transaction)."""
    now = clock.now()
    for _attempt in range(2):
        row = db.session.get(Heartbeat, name)
        if row is None:
            db.session.add(Heartbeat(name=name, at=now, detail=detail or {}))
        else:
            row.at = now
            row.detail = detail or {}
        try:
            db.session.commit()
            return
        except IntegrityError:  # another worker inserted it first: update theirs
            db.session.rollback()


def _jsonable(value):
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return repr(value)


def record_failure(
    task_name: str, task_id: str | None, args, kwargs, exc: BaseException, trace: str
) -> JobFailure:
    db.session.rollback()  # whatever the task left half-done is not ours to commit
    row = JobFailure(
        task_name=task_name,
        task_id=task_id,
        args=_jsonable(list(args or [])),
        kwargs=_jsonable(dict(kwargs or {})),
        error=f"{type(exc).__name__}: {exc}"[:4000],
        traceback=(trace or "")[-20000:],
        failed_at=clock.now(),
    )
    db.session.add(row)
    db.session.commit()
    return row


def retry_failure(failure_id: int, actor: str) -> JobFailure | None:
    """Send the failed task again with its arguments; None if unknown or already retried."""
    from casemgr.celery_app import celery

    row = db.session.get(JobFailure, failure_id)
    if row is None or row.retried_at is not None:
        return None
    result = celery.send_task(row.task_name, args=row.args, kwargs=row.kwargs)
    row.retried_at = clock.now()
    row.retried_by = actor
    row.retry_task_id = result.id
    db.session.commit()
    return row


def queue_length(timeout: float = 2.0) -> tuple[int | None, str | None]:
    """Messages waiting in the broker's queue, or (None, why not)."""
    from casemgr.celery_app import celery

    try:
        with celery.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            channel = conn.default_channel
            try:
                _name, count, _consumers = channel.queue_declare(queue=QUEUE, passive=True)
            except Exception as exc:  # a queue nobody declared yet holds nothing
                if "NOT_FOUND" in str(exc):
                    return 0, None
                raise
            return int(count), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]


@dataclass
class BackgroundState:
    now: datetime
    mode: str
    broker: str
    beat: Heartbeat | None
    tick: Heartbeat | None
    queue_length: int | None
    queue_error: str | None
    due_now: int
    late: int
    next_wake_at: datetime | None
    failures: list[JobFailure] = field(default_factory=list)
    retried: list[JobFailure] = field(default_factory=list)
    broken: list[Case] = field(default_factory=list)
    last_aging_snapshot: AgingSnapshot | None = None
    last_dso: DsoHistory | None = None

    def age(self, beat: Heartbeat | None) -> float | None:
        return None if beat is None else (self.now - beat.at).total_seconds()

    def stale(self, beat: Heartbeat | None, tick_seconds: float) -> bool:
        """Nothing heard for three ticks (at least half a minute)."""
        age = self.age(beat)
        return age is None or age > max(3 * tick_seconds, 30)


def redacted(url: str) -> str:
    """A broker URL without its password, for display."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def background_state() -> BackgroundState:
    from casemgr.celery_app import celery, is_embedded

    now = clock.now()
    url = str(celery.conf.broker_url)
    length, error = queue_length()
    upcoming = db.session.execute(
        select(Case.next_wake_at)
        .where(Case.status == "open", Case.broken.is_(None), Case.next_wake_at > now)
        .order_by(Case.next_wake_at)
        .limit(1)
    ).scalar()
    return BackgroundState(
        now=now,
        mode="embedded" if is_embedded(url) else "scale-out",
        broker=redacted(url),
        beat=db.session.get(Heartbeat, "beat"),
        tick=db.session.get(Heartbeat, "tick"),
        queue_length=length,
        queue_error=error,
        due_now=due_count(now, cap=DUE_COUNT_CAP),
        late=due_count(now - timedelta(minutes=1), cap=DUE_COUNT_CAP),
        next_wake_at=upcoming,
        failures=_failures(retried=False),
        retried=_failures(retried=True, limit=20),
        broken=broken_cases(),
        last_aging_snapshot=_latest(AgingSnapshot),
        last_dso=_latest(DsoHistory),
    )


def _failures(retried: bool, limit: int = 100) -> list[JobFailure]:
    column = JobFailure.retried_at
    query = select(JobFailure).where(column.is_not(None) if retried else column.is_(None))
    order = JobFailure.retried_at.desc() if retried else JobFailure.failed_at.desc()
    return list(db.session.execute(query.order_by(order).limit(limit)).scalars())


def _latest(model):
    return db.session.execute(select(model).order_by(model.as_of.desc()).limit(1)).scalar()
