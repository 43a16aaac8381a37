"""Customers from the ledger: a searchable list, and one customer's standing, open items,
payments, promises, notes and cases, with the payment and note forms the AR team uses.

Payments go through ``engine.payments.post_payment`` (never the ledger operation alone): the
payment and the message that ends a collection referral are one transaction.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import or_
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, Form, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from casemgr.engine.access import readable_cases_filter
from casemgr.extensions import db
from casemgr.ledger.metrics import customer_summary
from casemgr.ledger.operations import add_note
from casemgr.letters import OpenItem, load_open_items
from casemgr.models import AccountNote, Case, Customer, Payment, PromiseToPay, User
from casemgr.web.api.payments import already_posted, check_payment, post_checked_payment
from casemgr.web.helpers import CUSTOMER_ROLES, money, require_login, roles_required, user

bp = Blueprint("customers", __name__)
require_login(bp)

PER_PAGE = 50
RECENT = 20  # payments and promises shown; the full history is the ledger's business
# These roles read every customer; a user with only the sales rep role reads their own.
ALL_CUSTOMERS_ROLES = ("ar_specialist", "credit_manager", "controller", "admin")
# Who posts payments and writes account notes: the people who work the ledger.
LEDGER_WRITERS = ("ar_specialist", "credit_manager", "controller", "admin")
METHOD_LABELS = {
    "lockbox": "Lockbox",
    "credit_card": "Credit card",
    "ach": "ACH",
    "wire": "Wire",
    "check": "Check",
}


def _visible(me: User):
    """SQL condition for the customers this user may see."""
    if me.has_role(*ALL_CUSTOMERS_ROLES):
        return db.true()
    return Customer.sales_rep == me.username


def may_read_customer(me: User, customer: Customer) -> bool:
    return me.has_role(*ALL_CUSTOMERS_ROLES) or customer.sales_rep == me.username


def readable_customer(number: str, me: User) -> Customer:
    """The customer, or 404 / 403 as the customer page answers (letters share this)."""
    customer = db.session.execute(
        db.select(Customer).where(Customer.number == number)
    ).scalar_one_or_none()
    if customer is None:
        abort(404, description=f"There is no customer {number}.")
    if not may_read_customer(me, customer):
        abort(403, description="This customer is not one of yours.")
    return customer


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@bp.get("/customers")
@roles_required(*CUSTOMER_ROLES)
def index():
    me = user()
    q = (request.args.get("q") or "").strip()[:100]
    query = db.select(Customer).where(_visible(me))
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                Customer.number.ilike(pattern, escape="\\"),
                Customer.name.ilike(pattern, escape="\\"),
            )
        )
    query = query.order_by(Customer.name, Customer.number)
    page = db.paginate(query, per_page=PER_PAGE, max_per_page=200, error_out=False)
    return render_template("customers/list.html", page=page, q=q)


# --- forms ------------------------------------------------------------------------------


class PaymentForm(Form):
    """Cash received; checked by ``check_payment``, the same rules the API applies."""

    amount = StringField(
        "Amount",
        validators=[InputRequired()],
        render_kw={"placeholder": "1250.00", "inputmode": "decimal"},
    )
    received_date = StringField("Received on", render_kw={"type": "date"})
    method = SelectField("Method", choices=list(METHOD_LABELS.items()), default="check")
    reference = StringField(
        "Reference (cheque or transfer number)",
        validators=[Length(max=60)],
        render_kw={"placeholder": "generated when empty"},
    )
    invoice_number = SelectField("Applies to", choices=[])


class NoteForm(Form):
    text = TextAreaField(
        "Note",
        validators=[DataRequired("Write the note first."), Length(max=4000)],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    special_handling = BooleanField("Special handling: every collector must read this first")


def _payment_form(items: list[OpenItem], formdata: MultiDict | None = None) -> PaymentForm:
    """The form with the customer's open invoices to apply the cash to (or none: on account)."""
    form = PaymentForm(formdata=formdata)
    form.invoice_number.choices = [("", "Unapplied (on account)")] + [
        (i.number, f"{i.number} — {money(i.open_balance)} open, due {i.due_date}") for i in items
    ]
    if formdata is None:
        form.received_date.data = date.today().isoformat()
    return form


# --- the customer page ------------------------------------------------------------------


def _detail_page(
    customer: Customer,
    payment_form: PaymentForm | None = None,
    note_form: NoteForm | None = None,
    status: int = 200,
):
    """Everything the customer page shows, read once per request."""
    me = user()
    today = date.today()
    items = load_open_items(customer, today)
    notes = (
        db.session.execute(
            db.select(AccountNote)
            .where(AccountNote.customer_id == customer.id)
            .order_by(AccountNote.created_at.desc(), AccountNote.id.desc())
        )
        .scalars()
        .all()
    )
    payments = (
        db.session.execute(
            db.select(Payment)
            .where(Payment.customer_id == customer.id)
            .order_by(Payment.received_date.desc(), Payment.id.desc())
            .limit(RECENT)
        )
        .scalars()
        .all()
    )
    promises = (
        db.session.execute(
            db.select(PromiseToPay)
            .where(PromiseToPay.customer_id == customer.id)
            .order_by(PromiseToPay.promised_date.desc(), PromiseToPay.id.desc())
            .limit(RECENT)
        )
        .scalars()
        .all()
    )
    cases = (
        db.session.execute(
            db.select(Case)
            .where(Case.customer_number == customer.number, readable_cases_filter(me))
            .order_by(Case.created_at.desc())
            .limit(100)
        )
        .scalars()
        .all()
    )
    may_write = me.has_role(*LEDGER_WRITERS)
    page = render_template(
        "customers/detail.html",
        customer=customer,
        summary=customer_summary(customer.number, today),
        items=items,
        payments=payments,
        promises=promises,
        notes=notes,
        special_notes=[n for n in notes if n.special_handling],
        open_cases=[c for c in cases if c.status == "open"],
        closed_cases=[c for c in cases if c.status != "open"],
        method_labels=METHOD_LABELS,
        payment_form=(payment_form or _payment_form(items)) if may_write else None,
        note_form=(note_form or NoteForm()) if may_write else None,
    )
    return page, status


@bp.get("/customers/<number>")
@roles_required(*CUSTOMER_ROLES)
def detail(number: str):
    return _detail_page(readable_customer(number, user()))


@bp.post("/customers/<number>/payments")
@roles_required(*LEDGER_WRITERS)
def post_payment(number: str):
    """Post a payment from the page; errors come back on the form with what was typed."""
    me = user()
    customer = readable_customer(number, me)
    values = {**request.form.to_dict(), "customer_number": customer.number}
    form = _payment_form(load_open_items(customer, date.today()), request.form)
    if already_posted(values):
        form.reference.errors = [f"Payment {values['reference'].strip()} is already posted."]
        return _detail_page(customer, payment_form=form, status=409)
    payment, errors = check_payment(values, date.today())
    if payment is None:
        for name, messages in errors.items():
            target = form[name] if name in form._fields else form.amount
            target.errors = list(target.errors or []) + list(messages)
        return _detail_page(customer, payment_form=form, status=422)
    try:
        cleared, ended = post_checked_payment(payment, payment.reference, me)
    except ValueError as exc:  # the ledger changed between the check and the post
        form.amount.errors = [str(exc)]
        return _detail_page(readable_customer(number, me), payment_form=form, status=409)
    flash(_payment_message(payment.amount, cleared, ended), "success")
    return redirect(url_for(".detail", number=number))


def _payment_message(amount, cleared: bool, ended: list[int]) -> str:
    text = f"Payment of {money(amount)} posted."
    if cleared:
        text += " The account is now clear."
    if ended:
        text += f" It ended {len(ended)} case{'s' if len(ended) != 1 else ''} waiting for payment"
        text += f" (#{', #'.join(str(i) for i in ended)})."
    else:
        text += " It ended no case."
    return text


@bp.post("/customers/<number>/notes")
@roles_required(*LEDGER_WRITERS)
def post_note(number: str):
    me = user()
    customer = readable_customer(number, me)
    form = NoteForm(formdata=request.form)
    if not form.validate():
        return _detail_page(customer, note_form=form, status=422)
    add_note(customer.number, me.username, form.text.data, form.special_handling.data)
    db.session.commit()
    flash("Note added.", "success")
    return redirect(url_for(".detail", number=number) + "#notes")
