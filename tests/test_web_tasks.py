"""The inbox and the task page, as the people in the credit department use them."""

from __future__ import annotations

import re

import pytest

from casemgr.accounts import find_user
from casemgr.engine.cases import claim_task, complete_task, start_case
from casemgr.extensions import db
from casemgr.models import TaskRecord
from tests.web_client import client_for

PASSWORD = "correct-horse-1"

INTAKE = {
    "legal_name": "Acme Widgets LLC",
    "tax_id": "12-3456789",
    "address": "1 Main Street\nSpringfield, IL 62701",
    "contact_email": "ap@acme.example",
    "years_in_business": 5,
    "requested_limit": "25000.00",
    "requested_terms_days": 30,
    "trade_ref_1": "Globex, J. Smith, 555-0101",
    "trade_ref_2": "Initech, P. Gibbons, 555-0102",
    "trade_ref_3": "Umbrella, A. Wesker, 555-0103",
    "bank_reference": "First Bank, M. Jones, 555-0199",
}
REVIEW = {
    "bureau_source": "dnb",
    "bureau_score": "720",
    "bureau_report_date": "2026-11-01",
    "trade_refs_verified": "3",
    "review_action": "recommend",
    "recommended_limit": "20000.00",
    "recommended_terms_days": "30",
}


def start_application(app, who: str = "rep", **changes) -> int:
    """A credit application started through the engine; returns its open task's id."""
    with app.app_context():
        case = start_case("credit_application", {**INTAKE, **changes}, find_user(who))
        return next(t.id for t in case.tasks if t.state == "open")


def review(app, task_id: int, who: str = "spec") -> int:
    """The specialist's recommendation; returns the approval task's id."""
    with app.app_context():
        case = complete_task(task_id, REVIEW, find_user(who))
        return next(t.id for t in case.tasks if t.state == "open")


def open_task(app, task_id: int) -> TaskRecord:
    with app.app_context():
        row = db.session.get(TaskRecord, task_id)
        db.session.expunge(row)
        return row


def test_the_inbox_shows_the_queue_of_my_roles_with_a_claim_button(app):
    task_id = start_application(app)
    page = client_for(app, "spec").get("/").get_data(as_text=True)
    assert "Acme Widgets LLC" in page
    assert "Review credit and recommend a limit" in page
    assert "25,000.00" in page
    assert "New-customer credit application" in page
    assert f'action="/tasks/{task_id}/claim"' in page


def test_the_inbox_hides_other_roles_queues(app):
    start_application(app)
    page = client_for(app, "mgr").get("/").get_data(as_text=True)
    assert "Review credit and recommend a limit" not in page
    assert "Nothing waiting for you" in page


def test_the_inbox_filters_by_role_and_case_type(app):
    review(app, start_application(app, legal_name="Dual Queue Inc"))
    client = client_for(app, "dual")
    start_application(app)  # a review for the specialist role
    both = client.get("/").get_data(as_text=True)
    assert "Approve the credit limit" in both and "Review credit" in both
    managers = client.get("/?role=credit_manager").get_data(as_text=True)
    assert "Approve the credit limit" in managers and "Review credit" not in managers
    other_type = client.get("/?case_type=dispute_resolution").get_data(as_text=True)
    assert "Nothing waiting for you with these filters" in other_type


def test_overdue_tasks_carry_a_red_badge(app):
    from datetime import UTC, datetime, timedelta

    task_id = start_application(app)
    with app.app_context():
        db.session.get(TaskRecord, task_id).due_at = datetime.now(UTC) - timedelta(hours=2)
        db.session.commit()
    page = client_for(app, "spec").get("/").get_data(as_text=True)
    assert 'class="badge badge-red"' in page and "overdue" in page


def test_the_start_menu_lists_what_the_user_may_start(app):
    rep_page = client_for(app, "rep").get("/").get_data(as_text=True)
    assert 'href="/cases/new/credit_application"' in rep_page
    owner_page = client_for(app, "owner").get("/").get_data(as_text=True)
    assert "/cases/new/" not in owner_page


def test_claiming_from_the_inbox_opens_the_task(app):
    task_id = start_application(app)
    client = client_for(app, "spec")
    response = client.post(f"/tasks/{task_id}/claim", data={"next": "/"})
    assert response.status_code == 302 and response.location == f"/tasks/{task_id}"
    assert open_task(app, task_id).assignee_id is not None
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Unclaim" in page and "Complete" in page


def test_a_task_claimed_by_someone_else_cannot_be_claimed(app):
    task_id = start_application(app)
    client_for(app, "spec").post(f"/tasks/{task_id}/claim")
    other = client_for(app, "spec2")
    response = other.post(f"/tasks/{task_id}/claim", data={"next": "/"}, follow_redirects=True)
    assert "This task is claimed by Spec." in response.get_data(as_text=True)
    page = other.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Spec has claimed this task." in page
    assert '<button type="submit" class="primary">Complete</button>' not in page


def test_unclaim_puts_the_task_back_in_the_queue(app):
    task_id = start_application(app)
    client = client_for(app, "spec")
    client.post(f"/tasks/{task_id}/claim")
    response = client.post(f"/tasks/{task_id}/unclaim", follow_redirects=True)
    assert "back in the AR Specialist queue" in response.get_data(as_text=True)
    assert open_task(app, task_id).assignee_id is None


def test_someone_else_cannot_unclaim_my_task(app):
    task_id = start_application(app)
    client_for(app, "spec").post(f"/tasks/{task_id}/claim")
    response = client_for(app, "spec2").post(f"/tasks/{task_id}/unclaim", follow_redirects=True)
    assert "Only the assignee, a credit manager or an admin" in response.get_data(as_text=True)
    assert open_task(app, task_id).assignee_id is not None


@pytest.mark.parametrize("who", ["owner", "spec2"])
def test_a_user_without_the_role_cannot_open_another_roles_task(app, who):
    approval = review(app, start_application(app))
    response = client_for(app, who).get(f"/tasks/{approval}")
    assert response.status_code == 403
    assert "not in your queues" in response.get_data(as_text=True)


def test_a_reader_of_the_case_sees_the_task_but_cannot_complete_it(app):
    task_id = start_application(app)
    client = client_for(app, "mgr")  # managers read every case; this task is a specialist's
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "This task is for the AR Specialist role" in page
    response = client.post(f"/tasks/{task_id}", data=REVIEW)
    assert response.status_code == 403
    assert "needs the ar_specialist role" in response.get_data(as_text=True)
    assert open_task(app, task_id).state == "open"


def test_unknown_tasks_are_404(app):
    assert client_for(app, "spec").get("/tasks/9999").status_code == 404


def test_completing_a_task_goes_to_the_case_and_moves_it_on(app):
    task_id = start_application(app)
    response = client_for(app, "spec").post(f"/tasks/{task_id}", data=REVIEW)
    assert response.status_code == 302 and response.location.startswith("/cases/")
    assert open_task(app, task_id).state == "completed"
    mgr_inbox = client_for(app, "mgr").get("/").get_data(as_text=True)
    assert "Approve the credit limit (credit manager)" in mgr_inbox


def test_invalid_input_shows_inline_errors_and_keeps_what_was_typed(app):
    task_id = start_application(app)
    typed = {
        **REVIEW,
        "bureau_score": "1200",
        "recommended_limit": "90000.00",
        "review_notes": "Called <b>Globex</b>, pays on time",
        "fraud_flags": ["address_mismatch"],
    }
    response = client_for(app, "spec").post(f"/tasks/{task_id}", data=typed)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    errors = re.findall(r'<ul class="errors" id="(\w+)-error">\s*<li>([^<]+)</li>', page)
    fields = dict(errors)
    assert "bureau_score" in fields
    assert "Cannot recommend more than the 25000.00 requested." in fields["recommended_limit"]
    assert 'value="1200"' in page and 'value="90000.00"' in page
    assert "Called &lt;b&gt;Globex&lt;/b&gt;, pays on time" in page  # kept, and escaped
    assert 'value="address_mismatch" checked' in page
    assert 'aria-invalid="true"' in page
    assert open_task(app, task_id).state == "open"


def test_a_stale_completion_says_who_completed_it_and_keeps_the_typed_values(app):
    task_id = start_application(app)
    late = client_for(app, "spec2")
    assert late.get(f"/tasks/{task_id}").status_code == 200  # the page both had open
    client_for(app, "spec").post(f"/tasks/{task_id}", data=REVIEW)

    typed = {**REVIEW, "recommended_limit": "15000.00", "review_notes": "my late notes"}
    response = late.post(f"/tasks/{task_id}", data=typed)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert re.search(r"already completed by Spec at \d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
    assert 'value="15000.00"' in page and "my late notes" in page
    assert "were not saved" in page
    # The case left spec2's queue with the completion: their entries back, not the case's data
    # (API.md: others read the *open* tasks of their roles; see test_security_access).
    assert "What Spec entered" not in page and INTAKE["tax_id"] not in page


def test_the_approval_shows_the_figures_and_who_recommended(app):
    approval = review(app, start_application(app))
    page = client_for(app, "mgr").get(f"/tasks/{approval}").get_data(as_text=True)
    assert re.search(r"Recommended by\s*<strong>Spec</strong>", page)
    for figure in ("25,000.00", "20,000.00", "720", "Dun &amp; Bradstreet", "Net 30"):
        assert figure in page
    assert "Fraud flags" in page


def test_four_eyes_the_recommender_cannot_approve_their_own_recommendation(app):
    approval = review(app, start_application(app), who="dual")
    client = client_for(app, "dual")
    assert "Approve the credit limit" in client.get("/").get_data(as_text=True)

    page = client.get(f"/tasks/{approval}").get_data(as_text=True)
    assert "Four-eyes rule." in page and "someone else must complete this task" in page

    response = client.post(f"/tasks/{approval}", data={"decision": "approve"})
    assert response.status_code == 403
    assert "you completed &#39;Review credit and recommend a limit&#39;" in response.get_data(
        as_text=True
    )
    claim = client.post(f"/tasks/{approval}/claim", follow_redirects=True)
    assert "four-eyes rule" in claim.get_data(as_text=True).lower()
    assert open_task(app, approval).state == "open"


def test_a_closed_task_shows_what_was_entered(app):
    task_id = start_application(app)
    with app.app_context():
        claim_task(task_id, find_user("spec"))
    client_for(app, "spec").post(f"/tasks/{task_id}", data=REVIEW)
    page = client_for(app, "spec").get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Completed by Spec at" in page
    assert "What Spec entered" in page and "Bureau score (0-1000)" in page


def test_an_incomplete_intake_task_shows_what_the_case_already_knows(app):
    partial = {k: v for k, v in INTAKE.items() if k != "bank_reference"}
    with app.app_context():
        case = start_case("credit_application", partial, find_user("spec"))
        task_id = next(t.id for t in case.tasks if t.state == "open")
    page = client_for(app, "spec").get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "Complete the credit application" in page
    assert (
        'id="legal_name" maxlength="200" name="legal_name" required type="text" value="Acme' in page
    )
    assert re.search(r'id="bank_reference"[^>]*value=""', page)


def test_garbage_input_is_a_422_never_a_500(app):
    task_id = start_application(app)
    client = client_for(app, "spec")
    garbage = {
        "bureau_source": "<script>",
        "bureau_score": "abc",
        "bureau_report_date": "31/31/2026",
        "trade_refs_verified": "1e9",
        "fraud_flags": ["bogus"],
        "review_action": "nonsense",
        "recommended_limit": "-5",
        "recommended_terms_days": "x",
    }
    response = client.post(f"/tasks/{task_id}", data=garbage)
    assert response.status_code == 422
    assert "<script>" not in response.get_data(as_text=True)
    for path in ("/?page=-3&role=<b>&case_type=x", "/tasks/abc", "/cases?page=x&status=zzz"):
        assert client.get(path).status_code in (200, 404)


def test_a_not_a_number_amount_is_a_422(app):
    task_id = start_application(app)
    data = {**REVIEW, "recommended_limit": "NaN"}
    assert client_for(app, "spec").post(f"/tasks/{task_id}", data=data).status_code == 422
