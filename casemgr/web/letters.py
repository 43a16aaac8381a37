"""Letters as a page a person prints and as a PDF: one template renders both.

Access is that of the page the letter belongs to: a case's letters follow the case page's
rule, a customer's letters the customer page's. A letter that says nothing true for the case
yet (a decision letter before the decision) is a 404, as is every unknown kind.
"""

from __future__ import annotations

import re
from datetime import date

from flask import Blueprint, Response, abort, current_app, render_template, url_for

from casemgr.extensions import db
from casemgr.ledger.metrics import UnknownCustomer
from casemgr.letters import (
    LETTER_TITLES,
    LetterNotAvailable,
    credit_decision,
    html_to_pdf,
    letters_for_case,
    load_dispute_outcome,
    load_final_demand,
    load_statement,
    long_date,
)
from casemgr.models import Case, Customer
from casemgr.web.cases import readable_case
from casemgr.web.customers import readable_customer
from casemgr.web.helpers import CUSTOMER_ROLES, require_login, roles_required, sentence, user

bp = Blueprint("letters", __name__)
require_login(bp)

DEFAULT_COMPANY = "casemgr demo company"
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@bp.app_template_filter("long_date")
def _long_date(day: date) -> str:
    return long_date(day)


@bp.app_template_global()
def case_letters(case: Case) -> list[tuple[str, str]]:
    """(kind, title) of the letters the case page links to."""
    kinds = letters_for_case(
        case.case_type.key, case.status, case.outcome, _customer_exists(case.customer_number)
    )
    return [(kind, LETTER_TITLES[kind]) for kind in kinds]


def _customer_exists(number: str | None) -> bool:
    if not number:
        return False
    q = db.select(Customer.id).where(Customer.number == number)
    return db.session.execute(q).first() is not None


def _render(template: str, pdf: bool, filename: str, pdf_url: str, **context) -> Response | str:
    """The letter page, or the same template with the print stylesheet inline as a PDF."""
    html = render_template(
        f"letters/{template}.html",
        layout="letters/_pdf.html" if pdf else "letters/_screen.html",
        company=current_app.config.get("COMPANY_NAME") or DEFAULT_COMPANY,
        today=date.today(),
        pdf_url=pdf_url,
        **context,
    )
    if not pdf:
        return html
    safe = _UNSAFE_FILENAME.sub("-", filename).strip("-") or "letter"
    return Response(
        html_to_pdf(html),
        mimetype="application/pdf",
        # Like every page with ledger data: not kept in the browser's cache after logout.
        headers={
            "Content-Disposition": f'inline; filename="{safe}.pdf"',
            "Cache-Control": "no-store",
        },
    )


# --- a case's letters ---------------------------------------------------------------------


@bp.get("/cases/<int:case_id>/letters/<kind>")
def case_letter(case_id: int, kind: str):
    return _case_letter(case_id, kind, pdf=False)


@bp.get("/cases/<int:case_id>/letters/<kind>.pdf")
def case_letter_pdf(case_id: int, kind: str):
    return _case_letter(case_id, kind, pdf=True)


def _case_letter(case_id: int, kind: str, pdf: bool):
    case = readable_case(case_id, user())
    if kind not in dict(case_letters(case)):
        abort(404, description=f"This case has no {LETTER_TITLES.get(kind, 'such letter')}.")
    try:
        letter = _build_case_letter(case, kind)
    except (LetterNotAvailable, UnknownCustomer) as exc:
        abort(404, description=sentence(str(exc)))
    return _render(
        kind,
        pdf,
        f"{kind}-case-{case.id}-{date.today()}",
        url_for(".case_letter_pdf", case_id=case.id, kind=kind),
        letter=letter,
        case=case,
        title=LETTER_TITLES[kind],
        crumbs=[
            (url_for("cases.index"), "Cases"),
            (url_for("cases.detail", case_id=case.id), f"#{case.id}"),
        ],
    )


def _build_case_letter(case: Case, kind: str):
    today = date.today()
    data = case.data or {}
    if kind in ("approval", "decline"):
        return credit_decision(data, case.outcome)
    number = case.customer_number or ""
    if kind == "final_demand":
        return load_final_demand(number, today)
    if kind == "statement":
        return load_statement(number, today)
    return load_dispute_outcome(case.id, data, case.outcome, number)


# --- a customer's letters -----------------------------------------------------------------


@bp.get("/customers/<number>/statement")
@roles_required(*CUSTOMER_ROLES)
def statement(number: str):
    return _customer_letter(number, "statement", pdf=False)


@bp.get("/customers/<number>/statement.pdf")
@roles_required(*CUSTOMER_ROLES)
def statement_pdf(number: str):
    return _customer_letter(number, "statement", pdf=True)


@bp.get("/customers/<number>/final-demand")
@roles_required(*CUSTOMER_ROLES)
def final_demand(number: str):
    return _customer_letter(number, "final_demand", pdf=False)


@bp.get("/customers/<number>/final-demand.pdf")
@roles_required(*CUSTOMER_ROLES)
def final_demand_pdf(number: str):
    return _customer_letter(number, "final_demand", pdf=True)


def _customer_letter(number: str, kind: str, pdf: bool):
    """A customer's statement or final demand, read like the customer page."""
    customer = readable_customer(number, user())
    today = date.today()
    try:
        if kind == "statement":
            letter, pdf_endpoint = load_statement(number, today), ".statement_pdf"
        else:
            letter, pdf_endpoint = load_final_demand(number, today), ".final_demand_pdf"
    except LetterNotAvailable as exc:
        abort(404, description=sentence(str(exc)))
    return _render(
        kind,
        pdf,
        f"{kind}-{customer.number}-{today}",
        url_for(pdf_endpoint, number=customer.number),
        letter=letter,
        case=None,
        title=f"{LETTER_TITLES[kind]}: {customer.name}",
        crumbs=[
            (url_for("customers.index"), "Customers"),
            (url_for("customers.detail", number=customer.number), customer.number),
        ],
    )
