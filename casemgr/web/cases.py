"""Cases: the list of readable cases, starting one from its start form, the case page.

The case page shows the diagram of the case's own version (drawn in the browser by bpmn-js
from /diagram.bpmn, marked from /diagram-state.json), the timeline, the data, the tasks,
linked cases, the customer's standing and notes, comments and attachments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import Form

from casemgr import attachments, forms
from casemgr.attachments import AttachmentError
from casemgr.engine.access import can_read_case, can_start, readable_cases_filter
from casemgr.engine.cases import start_case
from casemgr.engine.diagram import has_layout, ran_before, workflow_marks
from casemgr.engine.errors import EngineError
from casemgr.engine.processes import parsed_for
from casemgr.extensions import db
from casemgr.ledger.metrics import CustomerSummary, UnknownCustomer, customer_summary
from casemgr.models import (
    AccountNote,
    Attachment,
    Case,
    CaseEvent,
    CaseLink,
    CaseType,
    Comment,
    Customer,
    User,
)
from casemgr.web.customers import may_read_customer
from casemgr.web.helpers import (
    case_type_names,
    data_items,
    error_page,
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
    """The case, or 404 / 403 as the case page answers (letters and downloads share this)."""
    case = db.session.get(Case, case_id) if 0 < case_id < 2**31 else None
    if case is None:
        abort(404, description=f"There is no case {case_id}.")
    if not can_read_case(me, case):
        abort(403, description="This case is not one of yours or your roles'.")
    return case


@bp.get("/cases/<int:case_id>")
def detail(case_id: int):
    return render_case(readable_case(case_id, user()))


def render_case(case: Case, status: int = 200, **form_state) -> tuple[str, int]:
    """The case page; ``form_state`` re-shows a refused comment or upload with its message."""
    me = user()
    return render_template(
        "cases/detail.html",
        case=case,
        data=data_items(case.data),
        open_tasks=[t for t in case.tasks if t.state == "open"],
        done_tasks=[t for t in case.tasks if t.state != "open"],
        timeline=timeline(case.events),
        now=datetime.now(UTC),
        diagram=diagram_view(case),
        linked=linked_cases(case, me),
        customer=customer_panel(case, me),
        attachment_limit=attachments.limit_text(),
        attachment_accept=",".join(attachments.KIND_BY_EXTENSION),
        **form_state,
    ), status


# --- the diagram ----------------------------------------------------------------------------

VIEWER_BUNDLE = "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"


@dataclass(frozen=True)
class DiagramView:
    viewer_installed: bool
    has_layout: bool


def diagram_view(case: Case) -> DiagramView:
    """Whether the page can draw the diagram: the npm bundle is built and the BPMN has DI.

    Checked per request (a stat), so running ``make setup`` while the app runs takes effect.
    """
    installed = (Path(current_app.static_folder or "") / VIEWER_BUNDLE).is_file()
    return DiagramView(installed, has_layout(case.process_version))


@bp.get("/cases/<int:case_id>/diagram.bpmn")
def diagram_bpmn(case_id: int):
    """The BPMN of the version the case runs on (not the newest): that is what it follows."""
    version = readable_case(case_id, user()).process_version
    response = Response(version.bpmn_xml, mimetype="application/xml")
    response.headers["Content-Disposition"] = (
        f'inline; filename="{version.case_type.key}-v{version.version}.bpmn"'
    )
    response.set_etag(version.sha256)
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)


@bp.get("/cases/<int:case_id>/diagram-state.json")
def diagram_state(case_id: int):
    return jsonify(diagram_marks(readable_case(case_id, user())))


def diagram_marks(case: Case) -> dict:
    """Which elements to mark, from the task index and the timeline first.

    completed: human tasks completed (task rows and task_completed events), elements still
    completed in the compacted tree, and the elements that must have run before anything
    reached (their dominators in the flow graph). active: open human tasks. The workflow is
    loaded once, for the waiting timers and what the tree still holds.
    """
    human_done = {t.name for t in case.tasks if t.state == "completed"}
    completions = db.session.execute(
        db.select(CaseEvent.detail).where(
            CaseEvent.case_id == case.id, CaseEvent.kind == "task_completed"
        )
    ).scalars()
    human_done |= {str(d["task"]) for d in completions if isinstance(d, dict) and d.get("task")}
    active = sorted({t.name for t in case.tasks if t.state == "open"})
    marks = workflow_marks(case)
    timers = [{"id": t.element_id, "due_at": t.due_at.isoformat()} for t in marks.waiting_timers]
    reached = human_done | marks.completed | set(active) | {t["id"] for t in timers}
    completed = human_done | marks.completed | ran_before(case.process_version, reached)
    return {
        "completed": sorted(completed),
        "active": active,
        "waiting_timers": timers,
        "failed": sorted(marks.failed),
        "workflow_loaded": marks.loaded,
    }


# --- the rest of the page -------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedCase:
    kind: str
    other_id: int
    other: Case | None  # None when the reader may not read the other case


def linked_cases(case: Case, me: User) -> list[LinkedCase]:
    """Linked cases; one the reader may not open shows only its number, not its customer."""
    links = db.session.execute(
        db.select(CaseLink)
        .where(CaseLink.case_id == case.id)
        .options(selectinload(CaseLink.other))
        .order_by(CaseLink.id)
    ).scalars()
    return [
        LinkedCase(
            link_label(link.kind),
            link.other_id,
            link.other if can_read_case(me, link.other) else None,
        )
        for link in links
    ]


def link_label(kind: str) -> str:
    """How the other case relates to this one: 'freight_claim' -> 'Freight claim'; its
    mirror 'freight_claim_from' -> 'Started this case as its freight claim'."""
    if kind.endswith("_from"):
        return f"Started this case as its {kind.removesuffix('_from').replace('_', ' ')}"
    return kind.replace("_", " ").capitalize()


@dataclass(frozen=True)
class CustomerPanel:
    number: str
    summary: CustomerSummary | None  # None: the number is not in the ledger (yet)
    notes: list[AccountNote]


NOTES_SHOWN = 10


def customer_panel(case: Case, me: User) -> CustomerPanel | None:
    """The case customer's standing and notes, for readers allowed to see that customer.

    A credit application names no ledger customer until it is approved: the panel then
    says so instead of failing.
    """
    if not case.customer_number:
        return None
    customer = db.session.execute(
        db.select(Customer).where(Customer.number == case.customer_number)
    ).scalar_one_or_none()
    if customer is None:
        return CustomerPanel(case.customer_number, None, [])
    if not may_read_customer(me, customer):
        return None
    try:
        summary = customer_summary(customer.number, datetime.now(UTC).date())
    except UnknownCustomer:
        summary = None
    notes = db.session.execute(
        db.select(AccountNote)
        .where(AccountNote.customer_id == customer.id)
        .order_by(AccountNote.special_handling.desc(), AccountNote.created_at.desc())
        .limit(NOTES_SHOWN)
    ).scalars()
    return CustomerPanel(customer.number, summary, list(notes))


@bp.app_template_global()
def special_handling_notes(customer_number: str | None) -> list[AccountNote]:
    """The customer's special-handling notes, shown on every case and task of that customer.

    They are handling instructions ("invoices always go to AP, not the buyer") for whoever
    works the customer's cases, so any reader of the case or task sees them.
    """
    if not customer_number:
        return []
    query = (
        db.select(AccountNote)
        .join(Customer, AccountNote.customer_id == Customer.id)
        .where(Customer.number == customer_number, AccountNote.special_handling.is_(True))
        .order_by(AccountNote.created_at.desc())
    )
    return list(db.session.execute(query).scalars())


@bp.app_template_global()
def case_attachments(case_id: int) -> list[Attachment]:
    return attachments.case_attachments(case_id)


@bp.app_template_global()
def case_comments(case_id: int, limit: int | None = None) -> list[Comment]:
    return attachments.case_comments(case_id, limit)


@bp.app_template_filter("filesize")
def filesize(size: int) -> str:
    return attachments.human_size(size)


@bp.app_template_filter("file_kind")
def file_kind(content_type: str) -> str:
    return attachments.kind_label(content_type)


# --- comments and attachments ---------------------------------------------------------------

# Room for the multipart framing and the CSRF field around the file itself.
FORM_OVERHEAD = 64 * 1024


@bp.url_value_preprocessor
def _upload_body_limit(endpoint: str | None, _values: dict | None) -> None:
    """Size the body limit for uploads before anything reads the form.

    CSRF protection parses the form in the app's before-request hook, which runs before any
    view, and the app-wide MAX_CONTENT_LENGTH may be below ATTACHMENT_MAX_BYTES plus the
    multipart framing. URL value preprocessors run earlier still.
    """
    if endpoint == "cases.upload_attachment":
        request.max_content_length = attachments.max_bytes() + FORM_OVERHEAD


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err: RequestEntityTooLarge):
    if request.endpoint == "cases.upload_attachment":
        message = f"The file is larger than the {attachments.limit_text()} limit for attachments."
        return error_page(413, message)
    return error_page(413)


@bp.post("/cases/<int:case_id>/comments")
def post_comment(case_id: int):
    case = readable_case(case_id, user())
    text = request.form.get("body", "")
    try:
        attachments.add_comment(case, user(), text)
    except AttachmentError as exc:
        db.session.rollback()
        return render_case(case, exc.status, comment_error=exc.message, comment_text=text)
    db.session.commit()
    flash("Comment added.", "success")
    return redirect(url_for(".detail", case_id=case.id, _anchor="comments"))


@bp.post("/cases/<int:case_id>/attachments")
def upload_attachment(case_id: int):
    case = readable_case(case_id, user())
    upload = request.files.get("file")
    try:
        if upload is None:
            raise AttachmentError("Choose a file to attach.")
        stored = attachments.add_attachment(case, user(), upload.filename, upload.stream)
    except AttachmentError as exc:
        db.session.rollback()
        return render_case(case, exc.status, upload_error=exc.message)
    try:
        db.session.commit()
    except Exception:
        attachments.remove_orphan_file(stored)
        raise
    flash(f"Attached {stored.filename}.", "success")
    return redirect(url_for(".detail", case_id=case.id, _anchor="attachments"))


@bp.get("/cases/<int:case_id>/attachments/<int:attachment_id>")
def download_attachment(case_id: int, attachment_id: int):
    """Only for readers of the case; another case's attachment id is unknown here (404)."""
    case = readable_case(case_id, user())
    found = attachments.attachment_of(case, attachment_id)
    if found is None:
        abort(404, description=f"Case {case.id} has no attachment {attachment_id}.")
    return attachments.download_response(found)
