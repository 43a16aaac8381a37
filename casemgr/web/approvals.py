"""The approval inbox: every waiting approval with what the decision needs, decided inline
(approve, reject, send back, with a comment), one at a time or many at once with a result
per approval, by mouse or keyboard (static/js/approvals.js).

An approval is an open task under the four-eyes rule. Deciding goes through
casemgr.engine.worklist.decide, which completes each task with casemgr.engine.cases, so the
authority (the task's role), four-eyes and state rules hold for each one on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from casemgr.engine import worklist
from casemgr.engine.errors import Invalid
from casemgr.engine.inbox import inbox, parse_params
from casemgr.extensions import db
from casemgr.models import ROLES, TaskRecord
from casemgr.web.helpers import (
    case_type_names,
    data_items,
    require_login,
    roles_required,
    sentence,
    user,
)

bp = Blueprint("approvals", __name__)
require_login(bp)

APPROVER_ROLES = ("credit_manager", "controller")
PER_PAGE = 100
MAX_BULK = 500
DONE = {"approve": "Approved", "reject": "Rejected", "send_back": "Sent back"}
FILTERS = ("case_type", "q", "customer", "amount_min", "amount_max", "due", "sort", "scope")


@bp.get("/approvals")
@roles_required(*APPROVER_ROLES)
def index():
    me = user()
    now = datetime.now(UTC)
    params, errors = parse_params(request.args, default_limit=PER_PAGE, max_limit=PER_PAGE)
    # "all" widens the list to every waiting approval for readers of every case (managers,
    # controllers): what sits above their authority shows, and says so, but stays theirs to read.
    scope = request.args.get("scope")
    params = params.with_(
        approvals=True, everyone=scope == "all", limit=PER_PAGE, offset=0, assignee=None
    )
    rows, total = inbox(me, params, now)
    facts = worklist.approval_facts(rows, me)
    selected = {name: request.args.get(name, "") for name in FILTERS}
    return render_template(
        "approvals/index.html",
        rows=rows,
        facts=facts,
        total=total,
        errors=errors,
        selected=selected,
        filtered=any(selected[n] for n in FILTERS if n != "sort"),
        case_types=case_type_names(),
        recommendation_items=_recommendation_items,
        labels=worklist.ACTION_LABELS,
        roles=ROLES,
        now=now,
    )


def _rank(key: str) -> int:
    """What a decision reads first: the proposal, then its amounts, then why."""
    if key.endswith(("_action", "decision", "resolution")):
        return 0
    if key.startswith("recommended_") or key.endswith(("_amount", "_limit")):
        return 1
    if key.endswith(("notes", "reason", "comment")):
        return 2
    return 3


def _recommendation_items(data: dict) -> list[tuple[str, str]]:
    """The few things the recommender entered that a decision reads first."""
    shown = {k: v for k, v in (data or {}).items() if v not in (None, "", [], {})}
    ordered = sorted(shown, key=lambda k: (_rank(k), list(shown).index(k)))
    return data_items(shown, ordered[:4])


@bp.post("/approvals/decide")
@roles_required(*APPROVER_ROLES)
def decide():
    """JSON from the page's script (answered with each approval's result), or a plain form
    post without script (answered with flashes and the page again)."""
    me = user()
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "the body must be a JSON object"}), 400
        tasks, action = body.get("tasks"), body.get("action")
        comment = body.get("comment") if isinstance(body.get("comment"), str) else ""
        comments = body.get("comments") if isinstance(body.get("comments"), dict) else {}
        if not isinstance(tasks, list) or not tasks or len(tasks) > MAX_BULK:
            return jsonify({"error": "select between 1 and 500 approvals"}), 422
        try:
            results = worklist.decide(tasks, action, me, comment, comments)
        except Invalid as exc:
            return jsonify({"error": exc.message, "errors": exc.errors}), 422
        return jsonify({"results": _explained(results, action)})
    return _decide_form(me)


def _explained(results: dict[str, dict], action: str) -> dict[str, dict]:
    """Each result with a sentence for the page: what happened, or why not."""
    for result in results.values():
        if result["status"] == 200:
            result["message"] = DONE[action]
        else:
            fields = "; ".join(m for msgs in (result.get("errors") or {}).values() for m in msgs)
            result["message"] = sentence(fields or result.get("error", "refused"))
    return results


def _decide_form(me):
    form = request.form
    row_action = form.get("row_action", "")
    if ":" in row_action:
        raw_id, action = row_action.split(":", 1)
        tasks = [raw_id]
    else:
        tasks, action = form.getlist("task"), form.get("action", "")
    comments = {
        key.removeprefix("comment-"): value.strip()
        for key, value in form.items()
        if key.startswith("comment-") and value.strip()
    }
    if not tasks:
        flash("Select at least one approval first.", "error")
        return redirect(url_for(".index"))
    try:
        results = worklist.decide(tasks[:MAX_BULK], action, me, form.get("comment", ""), comments)
    except Invalid as exc:
        flash(sentence(exc.message), "error")
        return redirect(url_for(".index"))
    results = _explained(results, action)
    done = sum(1 for r in results.values() if r["status"] == 200)
    if done:
        flash(f"{DONE[action]}: {done} of {len(results)}.", "success")
    titles = _titles([int(k) for k, r in results.items() if r["status"] != 200 and k.isdigit()])
    for key, result in results.items():
        if result["status"] != 200:
            name = titles.get(int(key), f"task {key}") if key.isdigit() else f"task {key}"
            flash(f"{name}: {result['message']}", "error")
    return redirect(url_for(".index"))


def _titles(ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.session.execute(db.select(TaskRecord).where(TaskRecord.id.in_(ids))).scalars()
    return {r.id: f"{r.customer_name or r.case.title} ({r.title})" for r in rows}
