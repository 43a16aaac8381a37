"""Cases: the list of readable cases, starting one from its start form, the case page."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload
from wtforms import Form

from casemgr import forms
from casemgr.engine.access import can_read_case, can_start, readable_cases_filter
from casemgr.engine.cases import start_case
from casemgr.engine.errors import EngineError
from casemgr.engine.processes import parsed_for
from casemgr.extensions import db
from casemgr.models import Case, CaseType, User
from casemgr.web.helpers import (
    case_type_names,
    data_items,
    form_values,
    form_with_errors,
    require_login,
    sentence,
    timeline,
    user,
)

bp = Blueprint("cases", __name__)
require_login(bp)

PER_PAGE = 25
STATUSES = ("open", "completed", "cancelled")


@bp.get("/cases")
def index():
    me = user()
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    case_type = request.args.get("case_type") or None
    query = db.select(Case).where(readable_cases_filter(me))
    if status:
        query = query.where(Case.status == status)
    if case_type:
        query = query.where(Case.case_type.has(CaseType.key == case_type))
    query = query.options(selectinload(Case.case_type), selectinload(Case.started_by))
    query = query.order_by(Case.created_at.desc(), Case.id.desc())
    page = db.paginate(query, per_page=PER_PAGE, max_per_page=100, error_out=False)
    return render_template(
        "cases/list.html",
        page=page,
        statuses=STATUSES,
        case_types=case_type_names(),
        selected={"status": status, "case_type": case_type},
    )


# --- starting a case ----------------------------------------------------------------------


def _startable_case_type(key: str, me: User) -> CaseType:
    case_type = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
    if case_type is None or case_type.latest() is None:
        abort(404, description=f"There is no published case type “{key}”.")
    if not can_start(me, key):
        abort(403, description=f"Your roles may not start a {case_type.name} case.")
    return case_type


def _start_form_class(case_type: CaseType) -> type[Form] | None:
    return forms.get_form_class(parsed_for(case_type.latest()).start_form)


def _blank_start_form(form_cls: type[Form], me: User) -> Form:
    """A sales rep starting an application is its rep: pre-fill it so the customer is theirs."""
    form = form_cls()
    if me.has_role("sales_rep") and "sales_rep" in form._fields:
        form["sales_rep"].data = me.username
    return form


@bp.route("/cases/new/<key>", methods=["GET", "POST"])
def new(key: str):
    me = user()
    case_type = _startable_case_type(key, me)
    form_cls = _start_form_class(case_type)
    if request.method == "GET":
        form = _blank_start_form(form_cls, me) if form_cls else None
        return render_template("cases/new.html", case_type=case_type, form=form, general=[])
    data = form_values(form_cls, request.form) if form_cls else {}
    # A person at a browser can fill the whole form now, so it is checked in full here; the
    # engine's lenient intake (missing fields asked for by a task) is for API callers.
    errors = forms.validate(form_cls, data)[1] if form_cls else {}
    status = 422
    if not errors:
        try:
            case = start_case(key, data, me)
        except EngineError as exc:  # invalid data, or the diagram failed: keep what was typed
            errors, status = exc.errors or {"": [sentence(exc.message)]}, exc.status
        else:
            flash(f"Started {case.title}.", "success")
            return redirect(url_for(".detail", case_id=case.id))
    form, general = form_with_errors(form_cls, request.form, errors) if form_cls else (None, [])
    if form is None:
        general = [m for messages in errors.values() for m in messages]
    page = render_template("cases/new.html", case_type=case_type, form=form, general=general)
    return page, status


# --- the case page ------------------------------------------------------------------------


def readable_case(case_id: int, me: User) -> Case:
    case = db.session.get(Case, case_id)
    if case is None:
        abort(404, description=f"There is no case {case_id}.")
    if not can_read_case(me, case):
        abort(403, description="This case is not one of yours or your roles'.")
    return case


@bp.get("/cases/<int:case_id>")
def detail(case_id: int):
    case = readable_case(case_id, user())
    return render_template(
        "cases/detail.html",
        case=case,
        data=data_items(case.data),
        open_tasks=[t for t in case.tasks if t.state == "open"],
        done_tasks=[t for t in case.tasks if t.state != "open"],
        timeline=timeline(case.events),
        now=datetime.now(UTC),
    )
