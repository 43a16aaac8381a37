"""The admin's view of the background work: beat, workers, queue, due timers, failures.

Read-only figures plus two actions: send a failed job again, and clear a case's error so
its timers run again at the next tick.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from casemgr.background.status import background_state, retry_failure
from casemgr.celery_app import tick_seconds
from casemgr.engine.timers import retry_broken_case
from casemgr.web.helpers import require_login, roles_required, user

bp = Blueprint("admin", __name__, url_prefix="/admin")
require_login(bp)


@bp.get("/")
@roles_required("admin")
def index():
    return redirect(url_for(".background"))


@bp.get("/background")
@roles_required("admin")
def background():
    return render_template(
        "admin/background.html", state=background_state(), tick_seconds=tick_seconds()
    )


@bp.post("/background/failures/<int:failure_id>/retry")
@roles_required("admin")
def retry(failure_id: int):
    try:
        row = retry_failure(failure_id, user().username)
    except (OSError, ConnectionError) as exc:  # kombu's errors for an unreachable broker
        flash(f"The broker did not take the job: {exc}. Try again in a moment.", "error")
        return redirect(url_for(".background"))
    if row is None:
        abort(404, description="There is no such failed job, or it was already retried.")
    flash(f"{row.task_name} sent again (task {row.retry_task_id}).", "success")
    return redirect(url_for(".background"))


@bp.post("/background/cases/<int:case_id>/retry")
@roles_required("admin")
def retry_case(case_id: int):
    if not retry_broken_case(case_id, user().username):
        abort(404, description="There is no such case stopped by an error.")
    flash(f"Case {case_id}: error cleared; its timers run again at the next tick.", "success")
    return redirect(url_for(".background"))
