"""The web pages of work management: the approval inbox (inline and bulk decisions, JSON and
plain form posts), the inbox's filters, saved views and bulk claim, the task page's
follow-up, delegation and assignment forms, and the team page."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.extensions import db
from casemgr.models import TaskRecord
from tests.credit_data import INTAKE, review
from tests.web_client import client_for

PASSWORD = "correct-horse-1"


def review_task(app, **data) -> int:
    with app.app_context():
        case = engine.start_case("credit_application", dict(INTAKE, **data), find_user("rep"))
        return next(t.id for t in case.tasks if t.state == "open")


def approval(app, who="spec", limit="20000.00", **data) -> int:
    task_id = review_task(app, **data)
    with app.app_context():
        case = engine.complete_task(task_id, review(limit), find_user(who))
        return next(t.id for t in case.tasks if t.state == "open")


def state(app, task_id) -> tuple[str, str | None]:
    with app.app_context():
        row = db.session.get(TaskRecord, task_id)
        return row.state, row.assignee.username if row.assignee else None


def page(client, path) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


# --- the approval inbox -----------------------------------------------------------------------


def test_the_approval_inbox_shows_each_approval_with_what_it_needs(app):
    task_id = approval(app, legal_name="Globex Corporation")
    html = page(client_for(app, "mgr"), "/approvals")
    assert "Globex Corporation" in html and "Approve the credit limit (credit manager)" in html
    assert 'data-testid="recommended-by">Spec<' in html
    assert "20,000.00" in html and "requested 25,000.00" in html
    assert "Recommended credit limit" in html
    assert f'value="{task_id}:approve"' in html and f'value="{task_id}:send_back"' in html
    assert "new customer" in html and "Credit Manager" in html
    assert "<kbd>j</kbd>" in html and "approve the current one" in html
    assert 'src="/static/js/approvals.js"' in html and 'name="csrf-token"' in html


def test_the_approval_inbox_is_for_approvers(app):
    assert client_for(app, "spec").get("/approvals").status_code == 403
    assert client_for(app, "ctrl").get("/approvals").status_code == 200
    nav = page(client_for(app, "mgr"), "/")
    assert 'href="/approvals"' in nav and 'href="/team"' in nav
    assert 'href="/approvals"' not in page(client_for(app, "spec"), "/")


def test_bulk_approval_as_json_gives_a_result_per_approval(app):
    good = [approval(app) for _ in range(3)]
    blocked = approval(app, who="dual")
    client = client_for(app, "dual")
    html = page(client, "/approvals")
    assert "four-eyes rule: you completed" in html
    response = client.post(
        "/approvals/decide", json={"tasks": [*good, blocked], "action": "approve", "comment": ""}
    )
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert all(results[str(t)] == {"status": 200, "action": "approve", "message": "Approved"}
               for t in good)  # fmt: skip
    refused = results[str(blocked)]
    assert refused["status"] == 403 and refused["message"].startswith("Four-eyes rule")
    assert [state(app, t)[0] for t in good] == ["completed"] * 3
    assert state(app, blocked) == ("open", None)


def test_a_rejection_without_a_comment_says_what_is_missing(app):
    task_id = approval(app)
    client = client_for(app, "mgr")
    response = client.post("/approvals/decide", json={"tasks": [task_id], "action": "reject"})
    result = response.get_json()["results"][str(task_id)]
    assert result["status"] == 422 and "Say why" in result["message"]
    response = client.post(
        "/approvals/decide",
        json={"tasks": [task_id], "action": "reject", "comments": {str(task_id): "Too risky"}},
    )
    assert response.get_json()["results"][str(task_id)]["status"] == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [("[1]", 400), ('{"tasks": [], "action": "approve"}', 422),
     ('{"tasks": [1], "action": "maybe"}', 422), ('{"tasks": "1", "action": "approve"}', 422)],
)  # fmt: skip
def test_malformed_json_decisions_are_refused_not_500(app, body, status):
    response = client_for(app, "mgr").post(
        "/approvals/decide", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status


def test_without_script_the_form_decides_a_row_or_the_selection(app):
    first, second, third = approval(app), approval(app), approval(app)
    client = client_for(app, "mgr")
    response = client.post(
        "/approvals/decide",
        data={"row_action": f"{first}:send_back", f"comment-{first}": "Need the bank letter"},
        follow_redirects=True,
    )
    assert "Sent back: 1 of 1." in response.get_data(as_text=True)
    response = client.post(
        "/approvals/decide",
        data={"task": [str(second), str(third)], "action": "reject"},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert html.count("Say why (the requester sees this comment).") == 2
    response = client.post(
        "/approvals/decide",
        data={"task": [str(second), str(third)], "action": "approve"},
        follow_redirects=True,
    )
    assert "Approved: 2 of 2." in response.get_data(as_text=True)
    response = client.post("/approvals/decide", data={"action": "approve"}, follow_redirects=True)
    assert "Select at least one approval first." in response.get_data(as_text=True)


def test_approvals_above_my_authority_show_with_the_all_scope(app):
    high = approval(app, limit="60000.00", requested_limit="60000.00")
    client = client_for(app, "mgr")
    assert "No approvals waiting for you" in page(client, "/approvals")
    html = page(client, "/approvals?scope=all")
    assert f'data-task="{high}"' in html
    assert "outside your authority: this approval needs the Controller role" in html


# --- the inbox --------------------------------------------------------------------------------


def test_the_inbox_filters_by_amount_due_customer_and_text(app):
    small = review_task(app, requested_limit="1000.00", legal_name="Small Shop")
    big = review_task(app, requested_limit="90000.00", legal_name="Big Corp")
    with app.app_context():
        db.session.get(TaskRecord, big).due_at = datetime.now(UTC) - timedelta(hours=3)
        db.session.commit()
    client = client_for(app, "spec")
    html = page(client, "/?amount_min=50000")
    assert "Big Corp" in html and "Small Shop" not in html
    html = page(client, "/?due=overdue")
    assert "Big Corp" in html and "Small Shop" not in html and "overdue ·" in html
    html = page(client, "/?overdue=1")
    assert "Big Corp" in html and "Small Shop" not in html
    html = page(client, "/?q=small")
    assert "Small Shop" in html and "Big Corp" not in html
    html = page(client, "/?sort=-amount")
    assert html.index("Big Corp") < html.index("Small Shop")
    html = page(client, "/?amount_min=lots&sort=nonsense")
    assert "Amount min: must be an amount" in html and "Small Shop" in html
    assert small and "high" in page(client, "/?priority=high")


def test_a_follow_up_from_the_task_page_hides_the_task_until_then(app):
    task_id = review_task(app, legal_name="Callback Ltd")
    client = client_for(app, "spec")
    task_page = page(client, f"/tasks/{task_id}")
    assert (
        'data-testid="follow-up-form"' in task_page and 'data-testid="delegate-form"' in task_page
    )
    until = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    response = client.post(
        f"/tasks/{task_id}/follow-up",
        data={"until": until, "reason": "call back Thursday"},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert f"hidden from your inbox until {until}" in html
    assert "Callback Ltd" not in html.split('data-testid="inbox-table"')[-1]
    assert "1 parked until a follow-up date" in html
    assert "Callback Ltd" in page(client, "/?follow_up=only")
    response = client.post(f"/tasks/{task_id}/follow-up", data={"clear": "1"}, follow_redirects=1)
    assert "shows in your inbox again" in response.get_data(as_text=True)
    bad = client.post(f"/tasks/{task_id}/follow-up", data={"until": "2001-01-01"},
                      follow_redirects=True)  # fmt: skip
    assert "The follow-up date must be in the future (must be later than now" in bad.get_data(
        as_text=True
    )


def test_delegating_and_assigning_from_the_task_page(app):
    task_id = review_task(app)
    spec = client_for(app, "spec")
    spec.post(f"/tasks/{task_id}/claim")
    response = spec.post(
        f"/tasks/{task_id}/delegate", data={"user": "spec2", "reason": "PTO"}, follow_redirects=True
    )
    assert "is delegated to spec2" in response.get_data(as_text=True)
    assert state(app, task_id) == ("open", "spec2")
    assert "delegated by Spec" in page(client_for(app, "mgr"), "/?assignee=spec2")
    mgr = client_for(app, "mgr")
    response = mgr.post(
        f"/tasks/{task_id}/assign", data={"user": "mgr2", "reason": "x"}, follow_redirects=True
    )
    assert "mgr2 does not hold the ar_specialist role" in response.get_data(as_text=True).replace(
        "Mgr2", "mgr2"
    )
    response = mgr.post(
        f"/tasks/{task_id}/assign", data={"user": "dual", "reason": "load"}, follow_redirects=True
    )
    assert "is assigned to dual" in response.get_data(as_text=True)
    assert state(app, task_id) == ("open", "dual")


def test_bulk_claim_from_the_inbox(app):
    first, second = review_task(app), review_task(app)
    client = client_for(app, "spec")
    response = client.post(
        "/inbox/bulk", data={"task": [str(first), str(second)], "action": "claim", "next": "/"},
        follow_redirects=True,
    )  # fmt: skip
    assert "Claimed: 2 tasks." in response.get_data(as_text=True)
    assert state(app, first)[1] == state(app, second)[1] == "spec"
    response = client_for(app, "spec2").post(
        "/inbox/bulk", data={"task": [str(first)], "action": "claim"}, follow_redirects=True
    )
    assert "This task is claimed by Spec" in response.get_data(as_text=True) or (
        "claimed by Spec" in response.get_data(as_text=True)
    )
    empty = client.post("/inbox/bulk", data={"action": "claim"}, follow_redirects=True)
    assert "Select at least one task first" in empty.get_data(as_text=True)


def test_saved_views_on_the_inbox(app):
    review_task(app)
    client = client_for(app, "spec")
    response = client.post(
        "/views",
        data={"name": "Large", "amount_min": "10000", "sort": "-amount", "share_with": ""},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Saved the view “Large”." in html
    assert re.search(r'<a href="/\?(amount_min=10000&amp;sort=-amount|sort=-amount&amp;'
                     r'amount_min=10000)">Large</a>', html)  # fmt: skip
    shared = client_for(app, "mgr").post(
        "/views", data={"name": "Team", "due": "today", "share_with": "ar_specialist"},
        follow_redirects=True,
    )  # fmt: skip
    assert "shared with AR Specialist" in shared.get_data(as_text=True)
    assert ">Team</a>" in page(client_for(app, "spec2"), "/")
    refused = client.post("/views", data={"name": ""}, follow_redirects=True)
    assert "The view cannot be saved" in refused.get_data(as_text=True)


def test_the_team_page_reassigns_everything_of_a_person_who_is_out(app):
    held = [review_task(app) for _ in range(2)]
    spec = client_for(app, "spec")
    for task_id in held:
        spec.post(f"/tasks/{task_id}/claim")
    mgr = client_for(app, "mgr")
    team = page(mgr, "/team")
    assert 'data-user="spec"' in team and "Reassign all 2" in team
    response = mgr.post(
        "/team/spec/reassign-all", data={"to": "spec2", "reason": "out sick"}, follow_redirects=True
    )
    assert "spec's tasks: 2 moved to spec2." in html.unescape(response.get_data(as_text=True))
    assert [state(app, t)[1] for t in held] == ["spec2", "spec2"]
    response = mgr.post("/team/spec2/reassign-all", data={"reason": "x"}, follow_redirects=True)
    assert "2 back in their queues" in response.get_data(as_text=True)
    assert client_for(app, "spec").get("/team").status_code == 403
    missing = mgr.post("/team/ghost/reassign-all", data={}, follow_redirects=True)
    assert "No user 'ghost'" in html.unescape(missing.get_data(as_text=True))


def test_garbage_on_the_new_pages_is_never_a_500(app):
    client = client_for(app, "mgr")
    for path in ("/?page=abc", "/?page=999999999", "/?amount_max=%00", "/?q=%25_%5C",
                 "/?assignee=ghost", "/approvals?scope=zzz&sort=x&amount_min=y",
                 "/?priority=%C2%B2&due=x&follow_up=q"):  # fmt: skip
        assert client.get(path).status_code == 200, path
    for path, data in [("/tasks/99999/follow-up", {"until": "x"}),
                       ("/tasks/99999/delegate", {}), ("/tasks/99999/priority", {}),
                       ("/views/99999/delete", {}), ("/inbox/bulk", {"task": "x"})]:  # fmt: skip
        assert client.post(path, data=data).status_code in (302, 303), path
