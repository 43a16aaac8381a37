"""A user's notifications (decisions, new tasks, escalations) and marking them read."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, redirect, render_template, request, url_for

from casemgr.extensions import db
from casemgr.models import Notification
from casemgr.web.helpers import require_login, safe_next, user

bp = Blueprint("notifications", __name__)
require_login(bp)

PER_PAGE = 50


@bp.get("/notifications")
def index():
    query = (
        db.select(Notification)
        .where(Notification.user_id == user().id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )
    page = db.paginate(query, per_page=PER_PAGE, max_per_page=200, error_out=False)
    return render_template("notifications/list.html", page=page)


@bp.post("/notifications/<int:notification_id>/read")
def mark_read(notification_id: int):
    """Only one's own: someone else's notification is simply not found."""
    note = db.session.get(Notification, notification_id)
    if note is None or note.user_id != user().id:
        abort(404, description="There is no such notification.")
    if note.read_at is None:
        note.read_at = datetime.now(UTC)
        db.session.commit()
    return redirect(safe_next(request.form.get("next"), url_for(".index")))


@bp.post("/notifications/read-all")
def mark_all_read():
    db.session.execute(
        db.update(Notification)
        .where(Notification.user_id == user().id, Notification.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    db.session.commit()
    return redirect(url_for(".index"))
