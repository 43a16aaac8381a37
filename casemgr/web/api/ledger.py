"""Ledger API: CSV imports, a customer's standing, aging and DSO reports (API.md, "Ledger").

Money is rendered as a string with two decimals so that no client reads it as a float;
``average_days_late`` is a Decimal too and is rendered the same way. ``dso`` is a JSON number,
as the contract says, and null when the span has no credit sales.

Who reads what, as on the web pages: ``READ_ALL_ROLES`` read every customer; a sales rep reads
the customers whose ``sales_rep`` is their user name, and their aging shows only those; the
process owner reads the reports (aging, DSO) but no single customer. Importing needs one of
``IMPORT_ROLES``.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from flask import jsonify, request
from sqlalchemy.exc import IntegrityError

from casemgr.extensions import db
from casemgr.ledger.aging import BUCKETS, Aging, aging_report
from casemgr.ledger.imports import (
    KINDS,
    CsvFormatError,
    ImportRejected,
    decode_csv,
    import_csv,
)
from casemgr.ledger.metrics import (
    CustomerSummary,
    UnknownCustomer,
    customer_summary,
    dso_report,
    find_customer,
)
from casemgr.models import Customer
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, require_role, token_required
from casemgr.web.api.errors import ApiError

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IMPORT_ROLES: tuple[str, ...] = ("ar_specialist", "credit_manager", "controller", "admin")
READ_ALL_ROLES: tuple[str, ...] = ("ar_specialist", "credit_manager", "controller", "admin")
REPORT_ROLES: tuple[str, ...] = (*READ_ALL_ROLES, "process_owner")
# Clients send CSV under many names (curl: octet-stream; Excel exports: vnd.ms-excel).
CSV_CONTENT_TYPES = {
    "",
    "text/csv",
    "application/csv",
    "text/plain",
    "application/vnd.ms-excel",
    "application/octet-stream",
}


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _csv_body() -> str:
    """The raw body as CSV text; 400 for anything that is not (JSON, a form, binary)."""
    if request.mimetype not in CSV_CONTENT_TYPES:
        raise ApiError(
            400,
            f"send the CSV file as the raw body (Content-Type: text/csv), not {request.mimetype}",
        )
    try:
        return decode_csv(request.get_data(cache=True), request.mimetype_params.get("charset"))
    except CsvFormatError as exc:
        raise ApiError(400, str(exc)) from None


@bp.post("/imports/<kind>")
@token_required
def import_file(kind: str):
    """Import a CSV of customers, invoices, payments or orders: all rows or none."""
    text = _csv_body()
    if kind not in KINDS:
        raise ApiError(404, f"unknown import kind {kind!r}; one of {', '.join(KINDS)}")
    require_role(current_api_user(), *IMPORT_ROLES)
    try:
        result = import_csv(kind, text)
        db.session.commit()
    except CsvFormatError as exc:
        db.session.rollback()
        raise ApiError(400, str(exc)) from None
    except ImportRejected as exc:
        db.session.rollback()
        raise ApiError(422, str(exc), rows=[e.as_dict() for e in exc.errors]) from None
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, "another import changed the same rows; send the file again") from None
    except Exception:
        db.session.rollback()
        raise
    return jsonify(
        {"imported": result.imported, "created": result.created, "updated": result.updated}
    )


def _query_date(name: str, errors: dict[str, list[str]], default: date | None = None):
    """A YYYY-MM-DD query parameter; a message in ``errors`` when missing or malformed."""
    raw = request.args.get(name, "").strip()
    if not raw:
        if default is None:
            errors.setdefault(name, []).append("is required (YYYY-MM-DD)")
        return default
    if _ISO_DATE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    errors.setdefault(name, []).append(f"{raw!r} is not a date (YYYY-MM-DD)")
    return None


def _invalid(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(422, "invalid query parameters", errors)


def summary_json(s: CustomerSummary) -> dict:
    """A customer's standing as the API shows it (shared with the web customer page)."""
    return {
        "number": s.number,
        "name": s.name,
        "credit_limit": _money(s.credit_limit),
        "terms_days": s.terms_days,
        "on_hold": s.on_hold,
        "cash_in_advance": s.cash_in_advance,
        "sales_rep": s.sales_rep,
        "currency": s.currency,
        "as_of": s.as_of.isoformat(),
        "open_balance": _money(s.open_balance),
        "open_orders": _money(s.open_orders),
        "exposure": _money(s.exposure),
        "available_credit": _money(s.available_credit),
        "average_days_late": _money(s.average_days_late),
        "past_due": _money(s.past_due),
        "oldest_past_due_days": s.oldest_past_due_days,
        "broken_promises": s.broken_promises,
        "aging": {k: _money(v) for k, v in s.aging.items()},
    }


@bp.get("/customers/<path:number>")
@token_required
def customer(number: str):
    """A customer's balances, exposure and payment habit; ``as_of`` defaults to today."""
    try:
        found = find_customer(number)
    except UnknownCustomer:
        raise ApiError(404, f"unknown customer {number!r}") from None
    me = current_api_user()
    if not me.has_role(*READ_ALL_ROLES) and not (
        me.has_role("sales_rep") and found.sales_rep == me.username
    ):
        raise ApiError(403, "this customer is not one of yours")
    errors: dict[str, list[str]] = {}
    as_of = _query_date("as_of", errors, default=date.today())
    if errors:
        raise _invalid(errors)
    return jsonify(summary_json(customer_summary(number, as_of)))


def aging_json(aging: Aging, names: dict[str, str] | None = None) -> dict:
    names = names or {}
    customers = []
    for number in sorted(aging.customers):
        buckets = aging.customers[number]
        row = {"number": number, "name": names.get(number)}
        row.update({b: _money(buckets[b]) for b in BUCKETS})
        row["total"] = _money(aging.customer_total(number))
        customers.append(row)
    return {
        "as_of": aging.as_of.isoformat(),
        "totals": {b: _money(aging.totals[b]) for b in BUCKETS},
        "total": _money(aging.total),
        "unapplied_cash": _money(aging.unapplied_total),
        "customers": customers,
    }


@bp.get("/reports/aging")
@token_required
def aging():
    """Open invoices at the end of ``as_of`` (default today) by days past due; ``sales_rep``
    narrows it to one representative's customers (the weekly past-dues by rep)."""
    rep = _aging_rep()  # 403 comes before 422
    errors: dict[str, list[str]] = {}
    as_of = _query_date("as_of", errors, default=date.today())
    if errors:
        raise _invalid(errors)
    report = aging_report(as_of, sales_rep=rep)
    return jsonify(aging_json(report, _customer_names(report.customers)))


def _aging_rep() -> str | None:
    """Whose customers the caller may age: anyone's (or the rep asked for), or only their own."""
    me = current_api_user()
    if me.has_role(*REPORT_ROLES):
        return request.args.get("sales_rep") or None
    if me.has_role("sales_rep"):
        return me.username
    raise ApiError(403, f"requires one of the roles: {', '.join((*REPORT_ROLES, 'sales_rep'))}")


def _customer_names(numbers) -> dict[str, str]:
    numbers = sorted(numbers)
    names: dict[str, str] = {}
    for i in range(0, len(numbers), 500):
        q = db.select(Customer.number, Customer.name).where(
            Customer.number.in_(numbers[i : i + 500])
        )
        names.update(dict(db.session.execute(q).all()))
    return names


@bp.get("/reports/dso")
@token_required
def dso():
    """DSO = AR open at the end of ``end`` / invoiced in start..end x days (both ends count)."""
    me = current_api_user()
    if not me.has_role(*REPORT_ROLES, "sales_rep"):
        raise ApiError(403, "requires a finance, process owner or sales rep role")
    errors: dict[str, list[str]] = {}
    start = _query_date("start", errors)
    end = _query_date("end", errors)
    if start and end and end < start:
        errors.setdefault("end", []).append("must be on or after start")
    if errors:
        raise _invalid(errors)
    result = dso_report(start, end)
    return jsonify(
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "dso": None if result.dso is None else float(result.dso),
            "ar_balance": _money(result.ar_balance),
            "credit_sales": _money(result.credit_sales),
            "days": result.days,
        }
    )
