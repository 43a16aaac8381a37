"""Starting cases in the browser, the case page and list, customers and notifications."""

from __future__ import annotations

import re
from decimal import Decimal

from casemgr.accounts import find_user
from casemgr.engine.cases import complete_task, start_case
from casemgr.extensions import db
from casemgr.models import Case, Customer, Notification
from tests.web_client import client_for

PASSWORD = "correct-horse-1"

FORM = {
    "legal_name": "Acme Widgets LLC",
    "tax_id": "12-3456789",
    "address": "1 Main Street\nSpringfield, IL 62701",
    "contact_email": "ap@acme.example",
    "years_in_business": "5",
    "requested_limit": "25000.00",
    "requested_terms_days": "30",
    "trade_ref_1": "Globex, J. Smith, 555-0101",
    "trade_ref_2": "Initech, P. Gibbons, 555-0102",
    "trade_ref_3": "Umbrella, A. Wesker, 555-0103",
    "bank_reference": "First Bank, M. Jones, 555-0199",
    "sales_rep": "rep",
}


def run_to_approval(app, who: str = "rep", legal_name: str = "Acme Widgets LLC") -> int:
    """Start, review and approve an application through the engine; returns the case id."""
    with app.app_context():
        case = start_case("credit_application", {**FORM, "legal_name": legal_name}, find_user(who))
        review = next(t for t in case.tasks if t.state == "open")
        case = complete_task(
            review.id,
            {
                "bureau_source": "dnb",
                "bureau_score": 720,
                "bureau_report_date": "2026-11-01",
                "trade_refs_verified": 3,
                "review_action": "recommend",
                "recommended_limit": "20000.00",
                "recommended_terms_days": 30,
            },
            find_user("spec"),
        )
        approval = next(t for t in case.tasks if t.state == "open")
        complete_task(approval.id, {"decision": "approve"}, find_user("mgr"))
        return case.id


def test_a_sales_rep_opens_the_intake_form_with_themself_as_rep(app):
    page = client_for(app, "rep").get("/cases/new/credit_application").get_data(as_text=True)
    assert "Federal tax ID (EIN)" in page and "Trade reference 3" in page
    assert 'name="sales_rep" type="text" value="rep"' in page
    assert 'name="csrf_token"' in page


def test_a_bad_tax_id_is_shown_inline_and_nothing_typed_is_lost(app):
    client = client_for(app, "rep")
    response = client.post("/cases/new/credit_application", data={**FORM, "tax_id": "123456789"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'id="tax_id-error">\s*<li>Enter the federal tax ID as 12-3456789.', page)
    assert 'value="Acme Widgets LLC"' in page and 'value="123456789"' in page
    assert "1 Main Street\nSpringfield, IL 62701</textarea>" in page
    assert '<option selected value="30">Net 30</option>' in page
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Case.id))).scalar_one() == 0


def test_a_required_field_left_empty_is_an_inline_error(app):
    response = client_for(app, "rep").post(
        "/cases/new/credit_application", data={**FORM, "bank_reference": ""}
    )
    assert response.status_code == 422
    assert 'id="bank_reference-error"' in response.get_data(as_text=True)


def test_a_valid_intake_starts_the_case_and_shows_its_page(app):
    client = client_for(app, "rep")
    response = client.post("/cases/new/credit_application", data=FORM)
    assert response.status_code == 302
    case_page = client.get(response.location).get_data(as_text=True)
    assert "New-customer credit application: Acme Widgets LLC" in case_page
    assert "Review credit and recommend a limit" in case_page  # the open task
    assert "Started the case" in case_page
    assert "Federal tax ID (EIN)" in case_page and "12-3456789" in case_page


def test_roles_that_may_not_start_get_403_and_unknown_types_404(app):
    assert client_for(app, "rep").get("/cases/new/freight_claim").status_code in (403, 404)
    assert client_for(app, "owner").get("/cases/new/credit_application").status_code == 403
    owner = client_for(app, "owner")
    assert owner.post("/cases/new/credit_application", data=FORM).status_code == 403
    assert client_for(app, "spec").get("/cases/new/no_such_type").status_code == 404


def test_the_case_page_shows_outcome_data_and_the_timeline_oldest_first(app):
    case_id = run_to_approval(app)
    page = client_for(app, "mgr").get(f"/cases/{case_id}").get_data(as_text=True)
    assert re.search(r'case-status">\s*<span class="badge badge-status-completed">completed', page)
    assert "approved" in page
    order = [
        page.index(s)
        for s in (
            "Started the case",
            "Completed “Review credit and recommend a limit”",
            "Completed “Approve the credit limit (credit manager)”",
            "Case completed: approved",
        )
    ]
    assert order == sorted(order)
    assert "Bureau score (0-1000)" in page and "Dun &amp; Bradstreet" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
    assert 'href="/customers/C-00001"' in page


def test_a_case_is_private_to_those_it_concerns(app):
    case_id = run_to_approval(app, who="spec")
    assert client_for(app, "owner").get(f"/cases/{case_id}").status_code == 403
    assert client_for(app, "spec2").get(f"/cases/{case_id}").status_code == 403
    assert client_for(app, "ctrl").get(f"/cases/{case_id}").status_code == 200
    assert client_for(app, "spec").get("/cases/424242").status_code == 404


def test_the_case_list_shows_readable_cases_newest_first(app):
    first = run_to_approval(app, who="spec", legal_name="First Corp")
    second = run_to_approval(app, who="spec", legal_name="Second Corp")
    page = client_for(app, "mgr").get("/cases").get_data(as_text=True)
    assert page.index("Second Corp") < page.index("First Corp")
    owner_page = client_for(app, "owner").get("/cases").get_data(as_text=True)
    assert "First Corp" not in owner_page and "No cases to show" in owner_page
    completed = client_for(app, "mgr").get("/cases?status=completed&page=abc")
    assert completed.status_code == 200
    assert first != second


def test_customers_list_and_detail_with_standing_and_cases(app):
    case_id = run_to_approval(app)
    client = client_for(app, "spec")
    listing = client.get("/customers?q=acme").get_data(as_text=True)
    assert "C-00001" in listing and "20,000.00" in listing
    page = client.get("/customers/C-00001").get_data(as_text=True)
    assert "Net 30" in page and "Open balance" in page and "Aging" in page
    assert f'href="/cases/{case_id}"' in page
    assert client.get("/customers/NOPE").status_code == 404


def test_a_sales_rep_sees_only_their_own_customers(app):
    run_to_approval(app)
    with app.app_context():
        db.session.add(
            Customer(
                number="C-90000",
                name="Someone Else's Co",
                credit_limit=Decimal("1000.00"),
                sales_rep="another",
            )
        )
        db.session.commit()
    rep = client_for(app, "rep")
    listing = rep.get("/customers").get_data(as_text=True)
    assert "Acme Widgets LLC" in listing and "Someone Else" not in listing
    assert rep.get("/customers/C-90000").status_code == 403
    assert client_for(app, "owner").get("/customers").status_code == 403


def test_the_sales_rep_gets_the_decision_in_the_bell_and_marks_it_read(app):
    case_id = run_to_approval(app)
    rep = client_for(app, "rep")
    inbox = rep.get("/").get_data(as_text=True)
    assert 'data-testid="unread-count">1<' in inbox
    page = rep.get("/notifications").get_data(as_text=True)
    assert "Credit application for Acme Widgets LLC approved" in page
    with app.app_context():
        note_id = db.session.execute(db.select(Notification.id)).scalar_one()
    response = rep.post(f"/notifications/{note_id}/read", data={"next": f"/cases/{case_id}"})
    assert response.location == f"/cases/{case_id}"
    assert 'data-testid="unread-count"' not in rep.get("/").get_data(as_text=True)


def test_nobody_marks_another_users_notification(app):
    run_to_approval(app)
    with app.app_context():
        note_id = db.session.execute(db.select(Notification.id)).scalar_one()
    assert client_for(app, "spec").post(f"/notifications/{note_id}/read").status_code == 404
    client_for(app, "spec").post("/notifications/read-all")
    with app.app_context():
        assert db.session.get(Notification, note_id).read_at is None


def test_navigation_follows_the_roles(app):
    spec_page = client_for(app, "spec").get("/").get_data(as_text=True)
    assert 'href="/customers"' in spec_page
    owner_page = client_for(app, "owner").get("/").get_data(as_text=True)
    assert 'href="/customers"' not in owner_page and 'href="/cases"' in owner_page
