"""Demo users for every role and a small sample ledger, for `flask demo` and `make run`."""

from __future__ import annotations

from decimal import Decimal

from casemgr.accounts import create_user, find_user
from casemgr.extensions import db
from casemgr.models import Customer

DEMO_PASSWORD = "casemgr-demo"  # noqa: S105 - printed to the person running the demo

DEMO_USERS: list[tuple[str, str, list[str]]] = [
    ("alice", "Alice Alvarez (AR specialist)", ["ar_specialist"]),
    ("sam", "Sam Sato (AR specialist)", ["ar_specialist"]),
    ("maria", "Maria Moreau (credit manager)", ["credit_manager"]),
    ("carl", "Carl Chen (controller)", ["controller"]),
    ("rita", "Rita Ruiz (sales rep)", ["sales_rep"]),
    ("paul", "Paul Park (process owner)", ["process_owner"]),
    ("ada", "Ada Admin (admin)", ["admin"]),
]

DEMO_CUSTOMERS = [
    ("C-10001", "Northwind Traders", "50000.00", 30, "rita"),
    ("C-10002", "Contoso Retail", "25000.00", 45, "rita"),
    ("C-10003", "Fabrikam Industrial", "100000.00", 30, None),
    ("C-10004", "Tailspin Toys", "10000.00", 15, "rita"),
    ("C-10005", "Wide World Importers", "0.00", 0, None),
]


def load_demo() -> list[tuple[str, list[str]]]:
    """Idempotent: users and customers that exist already are left as they are."""
    created = []
    for username, display, roles in DEMO_USERS:
        if find_user(username) is None:
            create_user(username, roles, DEMO_PASSWORD, display_name=display)
        created.append((username, roles))
    for number, name, limit, terms, rep in DEMO_CUSTOMERS:
        exists = db.session.execute(
            db.select(Customer).filter_by(number=number)
        ).scalar_one_or_none()
        if exists is None:
            db.session.add(
                Customer(
                    number=number,
                    name=name,
                    credit_limit=Decimal(limit),
                    terms_days=terms,
                    sales_rep=rep,
                    cash_in_advance=(terms == 0),
                )
            )
    db.session.commit()
    return created
