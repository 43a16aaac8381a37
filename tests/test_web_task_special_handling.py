"""A customer's special-handling notes are shown on every task of that customer."""

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.extensions import db
from casemgr.ledger.imports import import_csv
from casemgr.ledger.operations import add_note
from tests.conftest import PASSWORD


def test_special_handling_shows_on_the_task_page(app):
    with app.app_context():
        import_csv("customers", "number,name,credit_limit,terms_days\nC-900,Hooli,1000.00,30\n")
        import_csv(
            "orders", "customer_number,number,order_date,amount\nC-900,SO-9,2026-11-01,5.00\n"
        )
        add_note("C-900", "spec", "Invoices always go to AP, not the buyer", special_handling=True)
        db.session.commit()
        case = engine.start_case(
            "credit_hold_release",
            {
                "order_number": "SO-900",
                "customer_number": "C-900",
                "amount": "5000.00",
                "reason": "over_limit",
            },
            find_user("spec"),
        )
        task_id = next(t.id for t in case.tasks if t.state == "open")
    client = app.test_client()
    client.post("/login", data={"username": "spec", "password": PASSWORD})
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Special handling for this customer" in page
    assert "Invoices always go to AP, not the buyer" in page
