"""What the HTML blueprints share: access guards, browser forms, paging, display filters.

The engine speaks JSON-like dicts; a browser posts strings. The bridge is here so that a
view stays three lines: read the post, call the engine, render or redirect.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, DecimalField, Form, SelectFieldBase, SelectMultipleField

from casemgr import forms
from casemgr.attachments import human_size
from casemgr.extensions import db
from casemgr.forms.registry import formdata_from_json
from casemgr.models import ROLES, CaseEvent, CaseType, Notification, User

# Everyone who works the ledger reads customers; a sales rep reads only their own.
CUSTOMER_ROLES = ("ar_specialist", "credit_manager", "controller", "admin", "sales_rep")

# Navigation: (endpoint, label, roles or None for everyone). An entry shows only when its
# blueprint is registered, so pages other engineers add appear without editing this layout.
NAV: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("inbox.index", "Inbox", None),
    ("cases.index", "Cases", None),
    ("customers.index", "Customers", CUSTOMER_ROLES),
    ("approvals.index", "Approvals", ("credit_manager", "controller")),
    ("reports.index", "Reports", ("credit_manager", "controller", "process_owner", "admin")),
    ("processes.index", "Processes", ("process_owner", "admin")),
    ("admin.index", "Admin", ("admin",)),
)

# Case data a decision needs, in the order a reviewer reads it (shown first on a task page):
# the request, the review and recommendation, the decision so far, then who the customer is.
KEY_FIGURES = (
    "legal_name", "customer_number", "requested_limit", "requested_terms_days",
    "bureau_source", "bureau_score", "bureau_report_date", "trade_refs_verified", "fraud_flags",
    "recommended_limit", "recommended_terms_days", "review_notes", "info_request",
    "info_received", "decision", "approved_limit", "comment",
    "invoice_numbers", "disputed_amount", "reason", "claimed_amount", "order_number",
    "balance", "days_past_due",
    "dba", "tax_id", "years_in_business", "address", "contact_email",
    "trade_ref_1", "trade_ref_2", "trade_ref_3", "bank_reference",
    "tax_exempt_number", "tax_exempt_expiry",
)  # fmt: skip

# Keys no form defines (set by scripts and ledger steps) that read like a form's field.
VALUE_ALIASES = {
    "approved_terms_days": "recommended_terms_days",
    "terms_days": "recommended_terms_days",
    "credit_limit": "recommended_limit",
}

# Ledger figures that services put in case data (ledger.credit_check's answer): money,
# though no form field declares them.
LEDGER_MONEY_KEYS = frozenset(
    {"open_balance", "open_orders", "exposure", "exposure_after", "past_due", "available_credit"}
)

# Choice fields that record a decision are never pre-filled from earlier rounds of a case:
# an approver who sent a case back must choose afresh, not find "send back" selected.
DECISION_FIELD_SUFFIXES = ("decision", "_action")


def user() -> User:
    """The logged-in user, typed (views run behind login, so this is never anonymous)."""
    return current_user._get_current_object()  # type: ignore[attr-defined]


def require_login(bp: Blueprint) -> None:
    """Every view of the blueprint needs a login: none can forget its decorator."""

    @bp.before_request
    @login_required
    def _logged_in() -> None:
        return None


def roles_required(*roles: str):
    """403 unless the user holds one of the roles (checked on the server, not by hiding)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not user().has_role(*roles):
                abort(403, description=f"This page needs one of the roles: {role_list(roles)}.")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def role_list(roles: Iterable[str]) -> str:
    return ", ".join(ROLES.get(r, r) for r in roles)


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths: a login link must never bounce the user to another host."""
    if not target or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


# --- browser forms <-> engine data ------------------------------------------------------


def form_values(form_cls: type[Form], formdata: MultiDict) -> dict:
    """A browser post as the dict the engine validates (the same shape an API client sends)."""
    values: dict = {}
    for field in form_cls():
        if isinstance(field, SelectMultipleField):
            values[field.name] = formdata.getlist(field.name)
        elif isinstance(field, BooleanField):
            values[field.name] = field.name in formdata
        else:
            values[field.name] = formdata.get(field.name, "")
    return values


def form_with_errors(
    form_cls: type[Form], formdata: MultiDict, errors: dict | None
) -> tuple[Form, list[str]]:
    """The form as typed, with the engine's errors on their fields; the rest returned apart."""
    form = form_cls(formdata=formdata)
    general: list[str] = []
    for name, messages in (errors or {}).items():
        if name in form._fields:
            form[name].errors = list(messages)
        else:
            general.extend(str(m) for m in messages)
    return form, general


def prefilled_form(form_cls: type[Form], data: dict | None) -> Form:
    """A fresh form showing what the case already knows (a loop back, an incomplete intake)."""
    known = {
        k: v
        for k, v in (data or {}).items()
        if v not in (None, "") and not k.endswith(DECISION_FIELD_SUFFIXES)
    }
    if not known:
        return form_cls()
    formdata = formdata_from_json(form_cls, known)
    return form_cls(formdata=formdata) if formdata else form_cls()


# --- display ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    label: str
    choices: dict[str, str]
    money: bool


@cache
def field_catalog() -> dict[str, FieldInfo]:
    """Labels and choice names of every form field, so case data reads like the forms."""
    catalog: dict[str, FieldInfo] = {}
    for form_cls in forms.FORMS.values():
        for field in form_cls():
            if field.name in catalog:
                continue
            choices = {}
            if isinstance(field, SelectFieldBase):
                choices = {str(c.value): str(c.label) for c in field.iter_choices()}
            money = isinstance(field, DecimalField) and field.places == 2
            catalog[field.name] = FieldInfo(str(field.label.text), choices, money)
    return catalog


def data_label(key: str) -> str:
    info = field_catalog().get(key)
    return info.label if info else key.replace("_", " ").capitalize()


def data_value(key: str, value) -> str:
    """One value of case data as a person reads it: choice names, money, yes/no."""
    catalog = field_catalog()
    info = catalog.get(key) or catalog.get(VALUE_ALIASES.get(key, ""))
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(data_value(key, v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{data_label(k)}: {data_value(k, v)}" for k, v in value.items())
    if info and str(value) in info.choices:
        return info.choices[str(value)]
    if (info and info.money) or key in LEDGER_MONEY_KEYS:
        return money(value)
    return str(value)


def data_items(data: dict | None, keys: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs of case data; `keys` picks and orders, else all visible keys."""
    data = data or {}
    chosen = [k for k in keys if k in data] if keys is not None else list(data)
    return [(data_label(k), data_value(k, data[k])) for k in chosen if not k.startswith("_")]


def money(value) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)


def utc(moment: datetime | None, with_time: bool = True) -> str:
    """Times on screen are UTC and say so (each user's zone is later work)."""
    if moment is None:
        return "—"
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC" if with_time else "%Y-%m-%d")


def age(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "—"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days} d {hours % 24} h" if days < 3 else f"{days} d"
    return f"{hours} h {minutes % 60} min" if hours else f"{minutes} min"


def due_status(due_at: datetime | None, now: datetime | None = None) -> str | None:
    """'overdue', 'today' (due later today, UTC) or None."""
    if due_at is None:
        return None
    now = now or datetime.now(UTC)
    if due_at < now:
        return "overdue"
    return "today" if due_at.date() == now.date() else None


def case_type_names() -> dict[str, str]:
    return dict(db.session.execute(db.select(CaseType.key, CaseType.name)).all())


# --- the timeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    text: str
    data: list[tuple[str, str]]
    data_label: str = "Details"  # what the data under the sentence is


def _event_text(kind: str, d: dict) -> str:
    title = f"“{d.get('title') or d.get('task') or ''}”"
    texts = {
        "case_started": f"Started the case (diagram version {d.get('version', '?')})",
        "task_created": f"New task {title} for {ROLES.get(d.get('role', ''), d.get('role'))}"
        + (f", due {utc(_parse(d.get('due_at')))}" if d.get("due_at") else ""),
        "task_claimed": f"Claimed {title}",
        "task_unclaimed": f"Put {title} back in the queue",
        "task_assigned": f"Assigned {title} to {d.get('to')}",
        "task_completed": f"Completed {title}",
        "task_cancelled": f"{title} was withdrawn: the process moved on",
        "notified": f"Notified {', '.join(d.get('to') or []) or 'nobody'}: {d.get('message', '')}",
        "case_completed": f"Case completed: {d.get('outcome', '')}",
        "timer_fired": f"A timer fired (due {utc(_parse(d.get('due')))})",
        "error": f"Error: {d.get('message', '')}",
        "warning": f"Warning: {d.get('message', '')}",
        "ledger": f"Ledger: {str(d.get('action', 'change')).replace('_', ' ')}",
        "error_cleared": "An administrator cleared the error and let the case go on",
        "follow_up_set": f"Set {title} aside until {utc(_parse(d.get('until')))}",
        "follow_up_cleared": f"Brought {title} back into the work list",
        "task_priority": f"Priority of {title}: {d.get('was', '?')} → {d.get('now', '?')}",
        "task_delegated": f"Delegated {title} to {d.get('to')}",
        "delegation_ended": f"Gave {title} back to {d.get('to')}",
        "case_migrated": (
            f"Moved to diagram version {d.get('to_version', '?')} "
            f"(was {d.get('from_version', '?')})"
        ),
        "case_linked": f"Linked case {d.get('other_case', '?')} ({d.get('case_type', '')})",
        "message_received": f"Received {str(d.get('message', 'a message')).replace('_', ' ')}",
        "promise_broken": f"The customer broke a promise to pay {d.get('amount', '')}".rstrip(),
        "attachment_added": (
            f"Attached “{d.get('filename', '')}” ({human_size(int(d.get('size') or 0))})"
        ),
        "comment": f"Commented: “{d.get('excerpt', '')}”",
        "service_called": _service_text(d),
    }
    return texts.get(kind, kind.replace("_", " ").capitalize())


_DATA_LABELS = {
    "case_started": "Data entered",
    "task_completed": "Data entered",
    "service_called": "Answer",
}


def _service_text(d: dict) -> str:
    """A service's answer: a plain value said in the sentence, a record shown as data."""
    text = f"{d.get('operation', 'A service')} answered"
    result = d.get("result")
    if isinstance(result, dict | list) or result is None:
        return text
    shown = json.dumps(result, default=str)
    return f"{text}: {shown if len(shown) <= 120 else shown[:119] + '…'}"


_SHOWN_DETAIL = {
    "case_started": "data",
    "task_completed": "data",
    "ledger": None,
    "task_unclaimed": None,
    "task_assigned": None,
}
_HIDDEN_DETAIL_KEYS = {"action", "task", "title", "task_id", "to", "from"}


def _event_data(kind: str, detail: dict) -> list[tuple[str, str]]:
    if kind == "service_called":
        result = detail.get("result")
        return data_items(result) if isinstance(result, dict) else []
    if kind not in _SHOWN_DETAIL:
        return []
    key = _SHOWN_DETAIL[kind]
    if key:
        return data_items(detail.get(key) or {})
    shown = {k: v for k, v in detail.items() if k not in _HIDDEN_DETAIL_KEYS and v}
    return data_items(shown)


def _parse(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


# Operations that write their own event just before their answer is recorded: on the page
# that event says it (the answer stays in the audit and the API's timeline).
_SAYS_ITSELF = {"ledger", "notified", "case_linked"}


def _shown(events: list[CaseEvent]) -> list[CaseEvent]:
    return [
        e
        for before, e in zip([None, *events], events, strict=False)
        if not (e.kind == "service_called" and before is not None and before.kind in _SAYS_ITSELF)
    ]


def timeline(events: Iterable[CaseEvent]) -> list[TimelineEntry]:
    """The case's events, oldest first, as sentences with the data each step entered."""
    events = _shown(sorted(events, key=lambda e: (e.at, e.id)))
    names = user_labels({e.actor for e in events})
    return [
        TimelineEntry(
            e.at,
            names.get(e.actor, e.actor),
            _event_text(e.kind, e.detail or {}),
            _event_data(e.kind, e.detail or {}),
            _DATA_LABELS.get(e.kind, "Details"),
        )
        for e in events
    ]


def user_labels(usernames: Iterable[str]) -> dict[str, str]:
    wanted = {u for u in usernames if u}
    if not wanted:
        return {}
    rows = db.session.execute(db.select(User).where(User.username.in_(wanted))).scalars()
    return {u.username: u.label for u in rows}


# --- templates and error pages ------------------------------------------------------------


def _nav_items() -> list[tuple[str, str]]:
    if not current_user.is_authenticated:
        return []
    me = user()
    return [
        (url_for(endpoint), label)
        for endpoint, label, roles in NAV
        if endpoint in current_app.view_functions and (roles is None or me.has_role(*roles))
    ]


def _unread_count() -> int:
    if not current_user.is_authenticated:
        return 0
    query = db.select(db.func.count(Notification.id)).where(
        Notification.user_id == current_user.id, Notification.read_at.is_(None)
    )
    return db.session.execute(query).scalar_one()


def _startable() -> list[CaseType]:
    if not current_user.is_authenticated:
        return []
    from casemgr.engine.access import can_start
    from casemgr.engine.processes import published_case_types

    return [ct for ct in published_case_types() if can_start(user(), ct.key)]


def init_templates(app: Flask) -> None:
    """Filters and the layout's globals (navigation, bell count, the start menu)."""
    app.jinja_env.filters.update(
        utc=utc,
        money=money,
        age=age,
        role_label=lambda r: ROLES.get(r, r),
        data_label=data_label,
        data_value=data_value,
    )
    app.jinja_env.globals.update(
        due_status=due_status,
        data_items=data_items,
        may_view_customers=lambda: user().has_role(*CUSTOMER_ROLES),
    )

    @app.context_processor
    def _layout() -> dict:
        return {
            "nav_items": _nav_items,
            "unread_count": _unread_count,
            "startable_case_types": _startable,
        }


ERROR_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Not valid",
    500: "Something went wrong",
}


def error_page(status: int, message: str | None = None):
    """An HTML error page; API paths get JSON as the API contract says."""
    title = ERROR_TITLES.get(status, "Error")
    if request.path.startswith("/api/"):
        return jsonify({"error": message or title.lower()}), status
    return render_template("errors/error.html", status=status, title=title, message=message), status


def sentence(message: str) -> str:
    """Engine messages are lower-case clauses; on a page they read as sentences."""
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
