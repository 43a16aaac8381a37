"""The weekly past-due report as a page: the same content the sales reps get by e-mail.

A sales rep sees their own customers; the report roles see every rep's summary and can open
any rep's report. A bad date is an inline error (422), never a 500.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, render_template, request

from casemgr.background.past_due import (
    PAGE_PATH,
    last_delivery,
    past_due_report,
    sales_reps,
)
from casemgr.web.helpers import require_login, roles_required, user
from casemgr.web.reports import READER_ROLES, REPORT_ROLES, BadQuery, parse_day

bp = Blueprint("past_due", __name__)
require_login(bp)


@bp.get(PAGE_PATH)
@roles_required(*READER_ROLES)
def index():
    me = user()
    manager = me.has_role(*REPORT_ROLES)
    rep = request.args.get("sales_rep", "").strip() if manager else me.username
    try:
        as_of = parse_day(request.args.get("as_of"), "date", date.today())
    except BadQuery as exc:
        return render_template(
            "reports/past_due.html", error=str(exc), as_of=request.args.get("as_of", "")
        ), 422
    if manager and not rep:
        summaries = [
            (name, past_due_report(name, as_of), last_delivery(name)) for name in sales_reps()
        ]
        return render_template(
            "reports/past_due.html", error=None, as_of=as_of.isoformat(), summaries=summaries
        )
    if manager and rep not in sales_reps():
        abort(404, description=f"No customer has the sales rep {rep[:80]}.")
    return render_template(
        "reports/past_due.html",
        error=None,
        as_of=as_of.isoformat(),
        report=past_due_report(rep, as_of),
        delivery=last_delivery(rep),
        manager=manager,
    )
