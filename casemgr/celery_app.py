"""The Celery app: `celery -A casemgr.celery_app worker` and `celery -A casemgr.celery_app beat`.

One code path, two modes, chosen by the broker URL alone:

* **Embedded** (no ``CELERY_BROKER_URL``): kombu's SQLAlchemy transport on a SQLite file
  beside the app's database (``instance/celery-broker.sqlite``), so `make run` needs no
  server. `casemgr.worker` starts one ``worker -B --pool solo`` process next to the web app.
* **Scale-out** (``CELERY_BROKER_URL=redis://…``, ``DATABASE_URL=postgresql+psycopg://…``):
  any number of workers and exactly one beat.

Tasks run inside an app context of ``create_app()``, made lazily in each worker process
(after the prefork pool has forked, so no process shares another's database connections).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery, Task, signals
from celery.schedules import crontab, schedule
from flask import Flask, has_app_context

log = logging.getLogger(__name__)

TICK_TASK = "casemgr.wake_due_timers"
BROKER_FILE = "celery-broker.sqlite"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def instance_path() -> Path:
    """The instance folder create_app() uses, found without building the app."""
    return Path(Flask("casemgr", instance_relative_config=True).instance_path)


def broker_url() -> str:
    """Redis (or any broker) when configured; else the embedded SQLite broker file."""
    configured = os.environ.get("CELERY_BROKER_URL", "").strip()
    if configured:
        return configured
    folder = instance_path()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqla+sqlite:///{folder / BROKER_FILE}"


def is_embedded(url: str | None = None) -> bool:
    return (url or broker_url()).startswith("sqla+")


def tick_seconds() -> float:
    return float(os.environ.get("CASEMGR_TIMER_TICK_SECONDS", "5"))


def beat_schedule() -> dict[str, dict[str, Any]]:
    """What runs when. Nightly and weekly times are UTC and set by environment variables."""
    tick = tick_seconds()
    nightly = _env_int("CASEMGR_NIGHTLY_HOUR", 1)
    entries: dict[str, dict[str, Any]] = {
        # A tick nobody picked up within two intervals is dropped: the next one does its work,
        # and a backlog of stale ticks never builds up while the workers are down.
        "wake-due-timers": {
            "task": TICK_TASK,
            "schedule": schedule(timedelta(seconds=tick)),
            "options": {"expires": max(2 * tick, 10)},
        },
        "deliver-payment-messages": {
            "task": "casemgr.deliver_payment_messages",
            "schedule": schedule(timedelta(seconds=_env_int("CASEMGR_MESSAGE_SWEEP_SECONDS", 60))),
            "options": {"expires": 120},
        },
        "send-email-outbox": {
            "task": "casemgr.send_email_outbox",
            "schedule": schedule(timedelta(seconds=_env_int("CASEMGR_MAIL_SEND_SECONDS", 60))),
            "options": {"expires": 120},
        },
        "review-promises": {
            "task": "casemgr.review_promises",
            "schedule": crontab(minute=5),
        },
        "nightly-ledger-history": {
            "task": "casemgr.nightly_ledger_history",
            "schedule": crontab(hour=nightly, minute=0),
        },
        "weekly-past-due-reports": {
            "task": "casemgr.weekly_past_due_reports",
            "schedule": crontab(
                day_of_week=os.environ.get("CASEMGR_REPORT_WEEKDAY", "mon"),
                hour=_env_int("CASEMGR_REPORT_HOUR", 6),
                minute=0,
            ),
        },
    }
    if os.environ.get("CASEMGR_REFERRAL_AFTER_DAYS", "").strip():
        entries["auto-start-referrals"] = {
            "task": "casemgr.auto_start_referrals",
            "schedule": crontab(hour=nightly, minute=30),
        }
    if is_embedded():
        entries["broker-housekeeping"] = {
            "task": "casemgr.broker_housekeeping",
            "schedule": crontab(minute=45),
        }
    return entries


_flask_app: Flask | None = None


def flask_app() -> Flask:
    """This process's Flask app, created on first use (so after any fork)."""
    global _flask_app
    if _flask_app is None:
        from casemgr import create_app

        _flask_app = create_app()
    return _flask_app


class AppContextTask(Task):
    """Runs in the current app context (tests, the web app) or in this worker's own."""

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return super().__call__(*args, **kwargs)
        from casemgr.extensions import db

        with flask_app().app_context():
            try:
                return super().__call__(*args, **kwargs)
            finally:
                db.session.remove()

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:  # noqa: D102
        """After the last retry: keep the error for the admin page and its retry button."""
        from casemgr.background.status import record_failure

        try:
            if has_app_context():
                record_failure(self.name, task_id, args, kwargs, exc, str(einfo))
            else:
                with flask_app().app_context():
                    record_failure(self.name, task_id, args, kwargs, exc, str(einfo))
        except Exception:  # the database may be what failed; the worker log keeps it then
            log.exception("could not record the failure of %s[%s]", self.name, task_id)


def transport_options(url: str) -> dict[str, Any]:
    if is_embedded(url):
        # kombu passes these to create_engine: wait for the SQLite file's lock, don't fail.
        return {"connect_args": {"timeout": 30}}
    # Redis hands a task whose worker vanished without acknowledging it to another worker
    # after this long (a SIGKILLed prefork child's task is requeued at once).
    return {"visibility_timeout": 3600}


def make_celery() -> Celery:
    url = broker_url()
    app = Celery("casemgr", task_cls=AppContextTask, include=["casemgr.jobs"])
    app.conf.update(
        broker_url=url,
        broker_connection_retry_on_startup=True,
        # Results are never read: outcomes live in the database (heartbeats, failures).
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        # A task is acknowledged after it ran, and a worker killed while running one puts it
        # back: every task is idempotent, so running again is always safe.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport_options(url),
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(),
        beat_schedule_filename=str(instance_path() / "celerybeat-schedule"),
        worker_hijack_root_logger=False,
    )
    return app


celery = make_celery()

# --- worker processes ------------------------------------------------------------------


@signals.worker_init.connect
def _app_before_the_first_task(sender=None, **_kwargs) -> None:
    """Build the Flask app when the worker starts, not during its first task. It opens no
    connection, so prefork children may inherit it (see the next handler)."""
    flask_app()


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:
    """A prefork child must never reuse its parent's pooled database connections."""
    if _flask_app is None:
        return
    from casemgr.extensions import db

    with _flask_app.app_context():
        db.engine.dispose(close=False)


# --- beat's heartbeat --------------------------------------------------------------------

_in_beat = False


@signals.beat_init.connect
@signals.beat_embedded_init.connect
def _mark_beat_process(sender=None, **_kwargs) -> None:
    global _in_beat
    _in_beat = True


@signals.before_task_publish.connect
def _beat_heartbeat(sender=None, **_kwargs) -> None:
    """Beat records each timer tick it sends, so the admin page can tell a dead beat from
    dead workers. A database problem must never stop beat from publishing."""
    if not _in_beat or sender != TICK_TASK:
        return
    from casemgr.background.status import record_heartbeat
    from casemgr.extensions import db

    try:
        with flask_app().app_context():
            try:
                record_heartbeat("beat", {"pid": os.getpid()})
            finally:
                db.session.remove()
    except Exception:
        log.warning("could not record beat's heartbeat", exc_info=True)
