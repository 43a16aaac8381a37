"""The managers' dashboard: open cases by type and step, time to resolve, SLA breaches,
approvals waiting per approver and the aging totals, each as a chart with its numbers.

The page renders the tables on the server; ``static/js/dashboard.js`` draws the charts
(Chart.js) from ``/dashboard/data.json``, the very same figures, because the CSP allows no
inline script. A bad ``days`` is an inline error (422 on the page, 400 as JSON), never a 500.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from casemgr.engine import clock
from casemgr.ledger.aging import BUCKETS
from casemgr.web.dashboard_data import figures
from casemgr.web.helpers import require_login, roles_required

bp = Blueprint("dashboard", __name__)
require_login(bp)

DASHBOARD_ROLES = ("credit_manager", "controller", "process_owner", "admin")
DEFAULT_DAYS = 90
MAX_DAYS = 3650
BUCKET_LABELS = {b: ("Current" if b == "current" else f"{b} days") for b in BUCKETS}


def parse_days(raw: str | None) -> int:
    """The look-back for resolved cases and late completions, in days (1 to 3650)."""
    text = (raw or "").strip()
    if not text:
        return DEFAULT_DAYS
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_DAYS:
        raise ValueError(f"“{text[:20]}” is not a number of days from 1 to {MAX_DAYS}.")
    return int(text)


@bp.get("/dashboard")
@roles_required(*DASHBOARD_ROLES)
def index():
    error = None
    try:
        days = parse_days(request.args.get("days"))
    except ValueError as exc:
        error, days = str(exc), DEFAULT_DAYS
    page = render_template(
        "dashboard/index.html",
        data=figures(clock.now(), days),
        days=days,
        error=error,
        bucket_labels=BUCKET_LABELS,
    )
    return page, 422 if error else 200


@bp.get("/dashboard/data.json")
@roles_required(*DASHBOARD_ROLES)
def data():
    try:
        days = parse_days(request.args.get("days"))
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400
    payload = figures(clock.now(), days)
    payload["bucket_labels"] = BUCKET_LABELS
    return jsonify(payload)
