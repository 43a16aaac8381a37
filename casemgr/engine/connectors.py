"""Service tasks' operations: what a diagram may ask the system to do beyond its data.

A diagram names an operation (`spiffworkflow:serviceTaskOperator id=...`); parameters are
expressions evaluated in the restricted environment. Operations run inside the engine
step's transaction, so a failure later in the step undoes them too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

from casemgr.engine.step import step_context
from casemgr.engine.workflows import jsonable
from casemgr.extensions import db
from casemgr.models import ROLES, Customer, Notification, Role, User

Operation = Callable[[dict], object]
OPERATIONS: dict[str, Operation] = {}


def operation(name: str):
    def decorator(fn: Operation) -> Operation:
        OPERATIONS[name] = fn
        return fn

    return decorator


def call_connector(task, name: str, params: dict) -> str:
    from casemgr.engine import ledger_connectors  # noqa: F401  (registers ledger.* operations)

    fn = OPERATIONS.get(name)
    if fn is None:
        raise WorkflowTaskException(f"unknown service operation {name!r}", task=task)
    values = {key: param.get("value") for key, param in params.items()}
    ctx = step_context()
    ctx.task_data = task.data
    try:
        result = jsonable(fn(values))
    except (ValueError, LookupError, InvalidOperation, TypeError) as exc:
        raise WorkflowTaskException(f"{name} failed: {exc}", task=task, exception=exc) from exc
    # What the service answered, when: the audit of a decision made on it, and what a replay
    # answers the same call with (a call made twice, e.g. in a loop, gave two answers).
    ctx.record("service_called", operation=name, element=task.task_spec.bpmn_id, result=result)
    return json.dumps(result)


# Key of the PostgreSQL advisory lock under which new customer numbers are picked.
CUSTOMER_NUMBER_LOCK = 0x43555354  # "CUST"


def _next_customer_number() -> str:
    """The highest C- number plus one. Two approvals at once would both pick the same one
    (found by bench/load.py: a unique violation, a 500): on PostgreSQL they take turns under
    a transaction-scoped advisory lock; SQLite's writers take turns anyway."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            db.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CUSTOMER_NUMBER_LOCK}
        )
    numbers = db.session.execute(db.select(Customer.number).where(Customer.number.like("C-%")))
    highest = 0
    for (number,) in numbers:
        tail = number[2:]
        if tail.isdigit():
            highest = max(highest, int(tail))
    return f"C-{highest + 1:05d}"


@operation("ledger.create_customer")
def create_customer(p: dict) -> str:
    """Set up the approved customer with its limit and terms; returns the new number."""
    ctx = step_context()
    expiry = p.get("tax_exempt_expiry")
    customer = Customer(
        number=_next_customer_number(),
        name=str(p["name"]),
        dba=p.get("dba") or None,
        tax_id=p.get("tax_id") or None,
        address=p.get("address") or None,
        credit_limit=Decimal(str(p.get("credit_limit") or "0")).quantize(Decimal("0.01")),
        terms_days=int(p.get("terms_days") or 0),
        cash_in_advance=bool(p.get("cash_in_advance")),
        sales_rep=p.get("sales_rep") or None,
        tax_exempt_number=p.get("tax_exempt_number") or None,
        tax_exempt_expiry=date.fromisoformat(str(expiry)) if expiry else None,
    )
    db.session.add(customer)
    db.session.flush()
    ctx.case.customer_number = customer.number
    ctx.record(
        "ledger",
        action="customer_created",
        customer=customer.number,
        credit_limit=f"{customer.credit_limit:.2f}",
        terms_days=customer.terms_days,
        cash_in_advance=customer.cash_in_advance,
    )
    return customer.number


def _recipients(to: str) -> list[User]:
    """'sales_rep': the case's sales rep and its starter if a rep; 'starter'; a role; a user."""
    ctx = step_context()
    case = ctx.case
    names: set[str] = set()
    users: list[User] = []
    if to in ("sales_rep", "starter"):
        if case.started_by and (to == "starter" or case.started_by.has_role("sales_rep")):
            users.append(case.started_by)
        data = {**(case.data or {}), **ctx.task_data}
        rep = data.get("sales_rep")
        customer_number = data.get("customer_number") or case.customer_number
        if to == "sales_rep" and customer_number and not rep:
            customer = db.session.execute(
                db.select(Customer).filter_by(number=str(customer_number))
            ).scalar_one_or_none()
            rep = customer.sales_rep if customer else None
        if to == "sales_rep" and rep:
            names.add(rep)  # no rep on file notifies nobody, never every sales rep
    elif to in ROLES:
        users.extend(
            db.session.execute(db.select(User).join(User.roles).where(Role.key == to)).scalars()
        )
    else:
        names.add(to)
    if names:
        users.extend(db.session.execute(db.select(User).where(User.username.in_(names))).scalars())
    unique = {u.id: u for u in users}
    return list(unique.values())


@operation("notify")
def notify(p: dict) -> list[str]:
    ctx = step_context()
    recipients = _recipients(str(p.get("to") or "starter"))
    for user in recipients:
        db.session.add(
            Notification(
                user_id=user.id,
                kind=str(p.get("kind") or "info"),
                message=str(p["message"]),
                case_id=ctx.case.id,
            )
        )
    names = [u.username for u in recipients]
    ctx.record("notified", to=names, message=str(p["message"]))
    return names


@operation("cases.start_linked")
def start_linked(p: dict) -> int:
    """Start another case from this one (a dispute's freight claim), linked both ways."""
    from casemgr.engine.cases import start_in_transaction  # the step runner imports us
    from casemgr.models import CaseLink

    ctx = step_context()
    data = p.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError("data for the linked case must be a dict")
    starter = ctx.actor or ctx.case.started_by
    other = start_in_transaction(str(p["case_type"]), data, starter)
    kind = str(p.get("link") or "related")
    db.session.add(CaseLink(case_id=ctx.case.id, other_id=other.id, kind=kind))
    db.session.add(CaseLink(case_id=other.id, other_id=ctx.case.id, kind=f"{kind}_from"))
    ctx.record("case_linked", other_case=other.id, case_type=str(p["case_type"]), link=kind)
    return other.id
