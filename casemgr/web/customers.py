"""Customers from the ledger: a searchable list and one customer's standing and cases."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from sqlalchemy import or_

from casemgr.engine.access import readable_cases_filter
from casemgr.extensions import db
from casemgr.ledger.metrics import UnknownCustomer, customer_summary
from casemgr.models import Case, Customer, User
from casemgr.web.helpers import CUSTOMER_ROLES, require_login, roles_required, user

bp = Blueprint("customers", __name__)
require_login(bp)

PER_PAGE = 50
# These roles read every customer; a user with only the sales rep role reads their own.
ALL_CUSTOMERS_ROLES = ("ar_specialist", "credit_manager", "controller", "admin")


def _visible(me: User):
    """SQL condition for the customers this user may see."""
    if me.has_role(*ALL_CUSTOMERS_ROLES):
        return db.true()
    return Customer.sales_rep == me.username


def may_read_customer(me: User, customer: Customer) -> bool:
    return me.has_role(*ALL_CUSTOMERS_ROLES) or customer.sales_rep == me.username


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


@bp.get("/customers/<number>")
@roles_required(*CUSTOMER_ROLES)
def detail(number: str):
    me = user()
    customer = db.session.execute(
        db.select(Customer).where(Customer.number == number)
    ).scalar_one_or_none()
    if customer is None:
        abort(404, description=f"There is no customer {number}.")
    if not may_read_customer(me, customer):
        abort(403, description="This customer is not one of yours.")
    try:
        summary = customer_summary(number)
    except UnknownCustomer:
        summary = None
    cases = (
        db.session.execute(
            db.select(Case)
            .where(Case.customer_number == number, readable_cases_filter(me))
            .order_by(Case.created_at.desc())
            .limit(100)
        )
        .scalars()
        .all()
    )
    return render_template("customers/detail.html", customer=customer, summary=summary, cases=cases)
