"""Delivering notices by each person's choice: a bell entry, an e-mail, or a digest entry.

Everything here runs inside the transaction that caused the notice and writes rows only: a
Notification for the bell, an EmailOutbox row for the mail. Nothing talks to a mail server
here (``casemgr.notify.mail`` sends after the commit), and ``isolated`` keeps any failure of
ours inside a savepoint, so preparing a notification can never undo the work it reports.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import select

from casemgr.engine import clock
from casemgr.extensions import db
from casemgr.models import EmailOutbox, Notification, User
from casemgr.notify.pending import alive, mark_routed, pending
from casemgr.notify.prefs import EMAILED_ELSEWHERE, choices_for

log = logging.getLogger(__name__)
MAX_MESSAGE = 2000


@dataclass
class Notice:
    """One event told to one person. ``key`` names the event for that person (the outbox
    adds the channel), so the same event can never queue a second e-mail."""

    user: User
    kind: str
    message: str
    subject: str
    key: str
    # The preference it falls under (a key of prefs.KINDS).
    group: str
    case_id: int | None = None
    # A Notification row someone else created for this notice (a diagram's `notify`).
    row: Notification | None = None
    # Off when another notice of the same event already covers the channel (a diagram's
    # bell entry and our own e-mail about one escalation): one of each, never two.
    bell: bool = True
    mail: bool = True


def isolated(work: Callable[[], None]) -> None:
    """Run ``work`` in a savepoint: its failure is logged and undone, the caller's work stays.

    The caller's own pending changes are flushed first, outside the savepoint, so their
    errors (a version conflict) reach the caller exactly as its commit would raise them."""
    session = db.session
    session.flush()
    try:
        with session.begin_nested():
            work()
    except Exception:
        log.exception("notifications could not be prepared; the work they report goes on")


def deliver(notices: Iterable[Notice]) -> None:
    notices = list(notices)
    if not notices:
        return
    state = pending(db.session)
    choices = choices_for(n.user.id for n in notices)
    for notice in notices:
        if notice.key in state.delivered:
            continue
        state.delivered.add(notice.key)
        choice = choices[notice.user.id][notice.group]
        _in_app(notice, choice.in_app and notice.user.active)
        if notice.mail and choice.email != "none" and notice.kind not in EMAILED_ELSEWHERE:
            enqueue(notice, choice.email)


def _in_app(notice: Notice, wanted: bool) -> None:
    row = notice.row
    if wanted and row is None and notice.bell:
        db.session.add(
            mark_routed(
                Notification(
                    user_id=notice.user.id,
                    kind=notice.kind,
                    message=notice.message[:MAX_MESSAGE],
                    case_id=notice.case_id,
                    created_at=clock.now(),
                )
            )
        )
    elif row is not None:
        mark_routed(row)
        if not wanted and alive(row):
            if row in db.session.new:
                db.session.expunge(row)
            else:
                db.session.delete(row)


def enqueue(notice: Notice, email: str) -> bool:
    """An outbox row for the notice, unless its key is queued already; True when added.

    INSERT … ON CONFLICT DO NOTHING: a concurrent transaction queuing the same key waits
    for the other and adds nothing, instead of failing the step that reports it."""
    user = notice.user
    if not user.active or not (user.email or "").strip():
        return False
    digest = email in ("hour", "day")
    now = datetime.now(UTC)  # wall time, not the engine's (a timer step runs "as of" its due)
    values = {
        "dedupe_key": f"{notice.key}:{'digest' if digest else 'email'}"[:200],
        "user_id": user.id,
        "recipient": user.email.strip()[:200],
        "kind": notice.kind[:40],
        "subject": notice.subject[:300],
        "body": email_body(notice),
        "case_id": notice.case_id,
        "mode": "digest" if digest else "now",
        "period": email if digest else None,
        "created_at": now,
        "available_at": now,
        "attempts": 0,
    }
    return insert_once(values)


def insert_once(values: dict) -> bool:
    dialect = db.session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(EmailOutbox).values(**values)
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
        return db.session.execute(stmt).rowcount == 1
    exists = db.session.execute(
        select(EmailOutbox.id).where(EmailOutbox.dedupe_key == values["dedupe_key"])
    ).first()
    if exists:
        return False
    db.session.add(EmailOutbox(**values))
    return True


def base_url() -> str:
    """Absolute links in e-mails need the site's address (``BASE_URL`` or
    ``CASEMGR_BASE_URL``, as the weekly report uses); without it links are site paths."""
    value = current_app.config.get("BASE_URL") or os.environ.get("CASEMGR_BASE_URL", "")
    return str(value).rstrip("/")


def email_body(notice: Notice) -> str:
    base = base_url()
    lines = [notice.message, ""]
    if notice.case_id is not None:
        lines.append(f"Case {notice.case_id}: {base}/cases/{notice.case_id}")
    lines.append("")
    lines.append(f"You get this e-mail by your notification preferences: {base}/preferences")
    return "\n".join(lines)
