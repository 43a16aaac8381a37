"""Demo users for every role and a small sample ledger, for `flask demo` and `make run`."""

from __future__ import annotations

from datetime import date, timedelta
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
    db.session.flush()
    _demo_ledger(date.today())
    db.session.commit()
    return created


# (customer, invoice number, days ago issued, amount, paid)
DEMO_INVOICES = [
    ("C-10001", "INV-5001", 10, "12500.00", "0"),
    ("C-10001", "INV-5002", 45, "8200.00", "0"),
    ("C-10001", "INV-5003", 70, "4300.00", "4300.00"),
    ("C-10002", "INV-5101", 20, "6400.00", "0"),
    ("C-10002", "INV-5102", 95, "3150.00", "1000.00"),
    ("C-10002", "INV-5103", 160, "2275.50", "0"),
    ("C-10003", "INV-5201", 5, "48000.00", "0"),
    ("C-10003", "INV-5202", 35, "22000.00", "22000.00"),
    ("C-10004", "INV-5301", 130, "9800.00", "0"),
    ("C-10004", "INV-5302", 60, "1200.00", "0"),
]
DEMO_ORDERS = [("C-10001", "SO-9001", 3, "15000.00"), ("C-10004", "SO-9002", 1, "2500.00")]


def _demo_ledger(today: date) -> None:
    """Open and paid invoices at several ages, through the real CSV import (idempotent)."""
    from casemgr.ledger.imports import import_csv

    invoices = ["customer_number,number,invoice_date,due_date,amount"]
    payments = ["customer_number,reference,received_date,amount,method,invoice_number"]
    for customer, number, age, amount, paid in DEMO_INVOICES:
        issued = today - timedelta(days=age)
        invoices.append(f"{customer},{number},{issued},{issued + timedelta(days=30)},{amount}")
        if Decimal(paid):
            received = issued + timedelta(days=min(age - 1, 40))
            payments.append(f"{customer},PAY-{number},{received},{paid},check,{number}")
    orders = ["customer_number,number,order_date,amount"]
    orders += [f"{c},{n},{today - timedelta(days=age)},{a}" for c, n, age, a in DEMO_ORDERS]
    for kind, rows in (("invoices", invoices), ("payments", payments), ("orders", orders)):
        import_csv(kind, "\n".join(rows) + "\n")
