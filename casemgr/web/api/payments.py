"""POST /api/v1/payments: cash from an ERP or lockbox feed, ending the referrals it clears.

The payment and the BPMN message it sends are one transaction (``engine.payments``): a
referral never ends for a payment that was not saved, nor a payment stays without its message.

Status codes, in the contract's order: 401, 400 (not a JSON object), 403 (not one of
``PAYMENT_ROLES``, the roles that import CSV), 409 (the customer already has a payment with
this reference: an ERP retrying a post gets a conflict, never a second payment), 422 (field
errors under ``errors``). An unknown customer is named in the body, so it is a 422 on
``customer_number``, as API.md has it for body references. ``check_payment`` is shared with
the customer page's payment form so both give the same answers.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import jsonify
from sqlalchemy.exc import IntegrityError

from casemgr.engine import payments as engine_payments
from casemgr.extensions import db
from casemgr.ledger.metrics import UnknownCustomer, find_customer
from casemgr.ledger.operations import (
    customer_open_balance,
    invoice_open_balance,
    parse_amount,
)
from casemgr.models import Customer, Invoice, Payment, User
from casemgr.models.ledger import PAYMENT_METHODS
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, json_body, require_role, token_required
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import doc

PAYMENT_ROLES: tuple[str, ...] = ("ar_specialist", "credit_manager", "controller", "admin")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class PaymentInput:
    """A payment request that passed every check against the ledger."""

    customer: Customer
    amount: Decimal
    received_date: date
    method: str
    reference: str | None
    invoice_number: str | None


def _text(values: Mapping[str, object], name: str, max_len: int, errors: dict) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.setdefault(name, []).append("Must be a string.")
        return None
    value = value.strip()
    if len(value) > max_len:
        errors.setdefault(name, []).append(f"Must be at most {max_len} characters.")
        return None
    return value or None


def _received(values: Mapping[str, object], today: date, errors: dict) -> date:
    raw = _text(values, "received_date", 10, errors)
    if raw is None:
        return today
    day = None
    if _ISO_DATE.fullmatch(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            day = None
    if day is None:
        errors.setdefault("received_date", []).append(f"{raw!r} is not a date (YYYY-MM-DD).")
        return today
    if day > today:
        errors.setdefault("received_date", []).append("A payment cannot be received in the future.")
    return day


def _amount(values: Mapping[str, object], errors: dict) -> Decimal | None:
    raw = values.get("amount")
    if raw is None or raw == "":
        errors.setdefault("amount", []).append("Enter the amount received, e.g. 1250.00.")
        return None
    if not isinstance(raw, str):
        # A JSON number is a float to most clients: 0.1 + 0.2 is not 0.30.
        errors.setdefault("amount", []).append('Send the amount as a string, e.g. "1250.00".')
        return None
    try:
        return parse_amount(raw.replace(",", "") if _has_grouping(raw) else raw)
    except ValueError as exc:
        errors.setdefault("amount", []).append(_sentence(str(exc)))
        return None


def _has_grouping(raw: str) -> bool:
    """1,250.00 as people type it on the page; a lone comma (12,50) stays an error."""
    return re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", raw.strip()) is not None


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _customer(values: Mapping[str, object], errors: dict) -> Customer | None:
    number = _text(values, "customer_number", 40, errors)
    if number is None:
        if "customer_number" not in errors:
            errors["customer_number"] = ["Enter the customer number."]
        return None
    try:
        return find_customer(number)
    except UnknownCustomer:
        errors["customer_number"] = [f"There is no customer {number}."]
        return None


def _check_against_ledger(
    customer: Customer, amount: Decimal | None, invoice_number: str | None, errors: dict
) -> None:
    """The invoice is the customer's, and the payment is not more than what is owed."""
    if invoice_number is None:
        owed = customer_open_balance(customer) if amount is not None else None
        if owed is not None and amount > owed:
            errors.setdefault("amount", []).append(
                f"{amount:,.2f} is more than the customer owes ({owed:,.2f})."
            )
        return
    invoice = db.session.execute(
        db.select(Invoice).where(Invoice.number == invoice_number)
    ).scalar_one_or_none()
    if invoice is None or invoice.customer_id != customer.id:
        errors.setdefault("invoice_number", []).append(
            f"Customer {customer.number} has no invoice {invoice_number}."
        )
        return
    owed = invoice_open_balance(invoice)
    if amount is not None and amount > owed:
        errors.setdefault("amount", []).append(
            f"{amount:,.2f} is more than invoice {invoice_number} has open ({owed:,.2f})."
        )


def check_payment(
    values: Mapping[str, object], today: date
) -> tuple[PaymentInput | None, dict[str, list[str]]]:
    """Every problem of a payment request at once, by field; the input when there is none."""
    errors: dict[str, list[str]] = {}
    customer = _customer(values, errors)
    amount = _amount(values, errors)
    received = _received(values, today, errors)
    method = _text(values, "method", 20, errors)
    if method is None and "method" not in errors:
        errors["method"] = [f"Choose the method: {', '.join(PAYMENT_METHODS)}."]
    elif method is not None and method not in PAYMENT_METHODS:
        errors["method"] = [f"Must be one of {', '.join(PAYMENT_METHODS)}."]
    reference = _text(values, "reference", 60, errors)
    invoice_number = _text(values, "invoice_number", 40, errors)
    if customer is not None:
        _check_against_ledger(customer, amount, invoice_number, errors)
    if errors or customer is None or amount is None or method is None:
        return None, errors
    return PaymentInput(customer, amount, received, method, reference, invoice_number), errors


def post_checked_payment(
    payment: PaymentInput, reference: str | None, actor: User
) -> tuple[bool, list[int]]:
    """Post a checked payment through the engine: the payment and the referrals it ends in
    one transaction (rolled back whole on any error). Returns (cleared, ended case ids)."""
    return engine_payments.post_payment(
        payment.customer.number,
        payment.amount,
        actor,
        received_date=payment.received_date,
        method=payment.method,
        reference=reference,
        invoice_number=payment.invoice_number,
    )


def already_posted(values: Mapping[str, object]) -> bool:
    """The customer already has a payment with this reference (a retried post)."""
    number, reference = values.get("customer_number"), values.get("reference")
    if not isinstance(number, str) or not isinstance(reference, str) or not reference.strip():
        return False
    q = (
        db.select(Payment.id)
        .join(Customer, Payment.customer_id == Customer.id)
        .where(Customer.number == number.strip(), Payment.reference == reference.strip())
    )
    return db.session.execute(q).first() is not None


_MONEY = {"type": "string", "pattern": r"^\d+\.\d{2}$", "examples": ["1250.00"]}
_PAYMENT_BODY = {
    "type": "object",
    "required": ["customer_number", "amount", "method"],
    "properties": {
        "customer_number": {"type": "string", "maxLength": 40},
        "amount": {"type": "string", "description": "positive, at most two decimals"},
        "received_date": {"type": "string", "format": "date", "description": "default today"},
        "method": {"type": "string", "enum": list(PAYMENT_METHODS)},
        "reference": {"type": "string", "maxLength": 60, "description": "default generated"},
        "invoice_number": {
            "type": "string",
            "description": "the invoice it pays; without it the payment is unapplied cash",
        },
    },
}
_PAYMENT_ANSWER = {
    "type": "object",
    "required": ["cleared", "cases_ended", "open_balance", "reference"],
    "properties": {
        "cleared": {"type": "boolean", "description": "the customer now owes nothing"},
        "cases_ended": {"type": "array", "items": {"type": "integer"}},
        "open_balance": _MONEY,
        "reference": {"type": "string"},
    },
}


@bp.post("/payments")
@doc(
    "Post a payment; collection referrals of a customer it clears end",
    json_body=_PAYMENT_BODY,
    responses={201: ("The payment was posted", _PAYMENT_ANSWER)},
    errors=(403, 409, 413, 422),
    tag="ledger",
)
@token_required
def create_payment():
    """Post cash to an invoice or on account, and end the referrals it clears."""
    body = json_body()
    me = current_api_user()
    require_role(me, *PAYMENT_ROLES)
    if already_posted(body):
        raise ApiError(409, "a payment with this reference is already posted for the customer")
    payment, errors = check_payment(body, date.today())
    if payment is None:
        raise ApiError(422, "invalid payment", errors)
    reference = payment.reference or _generated_reference(payment)
    try:
        cleared, ended = post_checked_payment(payment, reference, me)
    except IntegrityError:
        raise ApiError(409, "a payment with this reference was posted meanwhile") from None
    except ValueError as exc:  # the ledger changed between the checks and the post
        raise ApiError(422, _sentence(str(exc)), {"amount": [_sentence(str(exc))]}) from None
    balance = customer_open_balance(find_customer(payment.customer.number))
    body = {
        "cleared": cleared,
        "cases_ended": ended,
        "open_balance": f"{balance:.2f}",
        "reference": reference,
    }
    return jsonify(body), 201


def _generated_reference(payment: PaymentInput) -> str:
    """A reference chosen here (not by the ledger) so that the answer can name it."""
    return f"PAY-{payment.received_date:%Y%m%d}-{secrets.token_hex(4).upper()}"
