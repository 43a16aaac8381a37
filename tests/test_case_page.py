"""The case page: its diagram (the case's own version, marked with where the case stands),
the customer panel with special handling, linked cases, and who may see any of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from casemgr.accounts import create_user, find_user
from casemgr.engine.cases import complete_task, start_case, start_in_transaction
from casemgr.engine.processes import publish
from casemgr.extensions import db
from casemgr.models import AccountNote, Case, CaseLink, Customer, ProcessVersion
from tests.credit_data import INTAKE, review
from tests.web_client import client_for

PASSWORD = "correct-horse-1"
SUBPROCESS_LOOP = (Path(__file__).parent / "bpmn" / "subprocess_loop.bpmn").read_text()


def waiting_on_the_customer(app) -> int:
    """A credit application the specialist sent back to the customer for more information."""
    with app.app_context():
        case = start_case("credit_application", dict(INTAKE), find_user("rep"))
        first = next(t for t in case.tasks if t.state == "open")
        complete_task(first.id, review(action="request_info"), find_user("spec"))
        return case.id


def approved_with_customer(app) -> tuple[int, str]:
    """An approved application: the ledger now has the customer, with rep as its sales rep."""
    with app.app_context():
        case = start_case("credit_application", dict(INTAKE), find_user("rep"))
        first = next(t for t in case.tasks if t.state == "open")
        case = complete_task(first.id, review(), find_user("spec"))
        approval = next(t for t in case.tasks if t.state == "open")
        case = complete_task(approval.id, {"decision": "approve"}, find_user("mgr"))
        return case.id, case.customer_number


# --- the diagram's state ---------------------------------------------------------------------


def test_a_case_waiting_on_the_customer_marks_its_path_its_open_task_and_both_timers(app):
    case_id = waiting_on_the_customer(app)
    before = datetime.now(UTC)
    state = client_for(app, "spec").get(f"/cases/{case_id}/diagram-state.json").get_json()

    assert state["active"] == ["await_customer_info"]
    # The review was a human task; the start, the gateways and the merge ran before it on
    # every path, though compaction dropped them from the workflow's tree.
    assert set(state["completed"]) == {
        "start_application",
        "gw_intake_complete",
        "merge_review",
        "specialist_review",
        "gw_review_action",
    }
    # The intake came complete, so the intake task never ran: nothing claims it did.
    assert "complete_intake" not in state["completed"]
    assert [t["id"] for t in state["waiting_timers"]] == ["timer_reminder", "timer_withdraw"]
    reminder, withdraw = (datetime.fromisoformat(t["due_at"]) for t in state["waiting_timers"])
    assert abs(reminder - (before + timedelta(days=10))) < timedelta(minutes=1)
    assert abs(withdraw - (before + timedelta(days=30))) < timedelta(minutes=1)
    assert state["failed"] == [] and state["workflow_loaded"] is True


def test_after_the_info_arrives_the_loop_back_shows_the_review_active_again(app):
    case_id = waiting_on_the_customer(app)
    with app.app_context():
        case = db.session.get(Case, case_id)
        info = next(t for t in case.tasks if t.state == "open")
        complete_task(info.id, {"info_received": "Audited financials 2024-2025"}, find_user("spec"))
    state = client_for(app, "spec").get(f"/cases/{case_id}/diagram-state.json").get_json()
    assert state["active"] == ["specialist_review"]
    assert {"await_customer_info", "specialist_review"} <= set(state["completed"])
    assert state["waiting_timers"] == []  # the boundary timers went with the task


def test_a_completed_case_has_no_active_tasks_and_no_timers(app):
    case_id, _number = approved_with_customer(app)
    state = client_for(app, "mgr").get(f"/cases/{case_id}/diagram-state.json").get_json()
    assert state["active"] == [] and state["waiting_timers"] == []
    assert {"specialist_review", "manager_approval", "set_up_customer", "end_approved"} <= set(
        state["completed"]
    )


def test_reaching_a_task_inside_a_subprocess_marks_what_ran_before_the_subprocess(app):
    with app.app_context():
        _version, errors = publish("sub_loop", SUBPROCESS_LOOP, find_user("owner"))
        assert not errors
        db.session.commit()
        case = start_case("sub_loop", {"count": 0, "rounds": 2}, find_user("spec"))
        case_id = case.id
    state = client_for(app, "spec").get(f"/cases/{case_id}/diagram-state.json").get_json()
    assert state["active"] == ["inner_work"]
    assert {"begin", "merge", "sub_begin"} <= set(state["completed"])
    assert "count_up" not in state["completed"]


def test_a_broken_case_marks_the_element_it_stopped_at(app):
    case_id = waiting_on_the_customer(app)
    with app.app_context():
        case = db.session.get(Case, case_id)
        case.broken = (
            "the process could not continue at Review credit and recommend a limit: "
            "name 'bureau' is not defined"
        )
        db.session.commit()
    state = client_for(app, "spec").get(f"/cases/{case_id}/diagram-state.json").get_json()
    assert state["failed"] == ["specialist_review"]


# --- the diagram file and the page -----------------------------------------------------------


def test_the_diagram_is_the_version_the_case_started_on_not_the_newest(app):
    case_id = waiting_on_the_customer(app)
    with app.app_context():
        v1 = db.session.get(Case, case_id).process_version
        v1_xml, v1_sha = v1.bpmn_xml, v1.sha256
        newer = v1_xml.replace("Credit department", "Credit department (v2)")
        version, errors = publish("credit_application", newer, find_user("owner"))
        assert not errors and version.version == 2
        db.session.commit()
    client = client_for(app, "spec")
    response = client.get(f"/cases/{case_id}/diagram.bpmn")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.get_data(as_text=True) == v1_xml
    assert response.headers["ETag"] == f'"{v1_sha}"'
    again = client.get(f"/cases/{case_id}/diagram.bpmn", headers={"If-None-Match": f'"{v1_sha}"'})
    assert again.status_code == 304


def test_the_case_page_loads_the_viewer_and_points_it_at_the_case(app):
    case_id = waiting_on_the_customer(app)
    page = client_for(app, "spec").get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'id="case-diagram"' in page
    assert f'data-bpmn-url="/cases/{case_id}/diagram.bpmn"' in page
    assert f'data-state-url="/cases/{case_id}/diagram-state.json"' in page
    assert "/static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js" in page
    assert "/static/js/case_diagram.js" in page
    assert "<script>" not in page and " style=" not in page  # the CSP allows neither


def test_without_the_viewer_bundle_the_page_says_the_diagram_is_unavailable(app, monkeypatch):
    monkeypatch.setattr("casemgr.web.cases.VIEWER_BUNDLE", "vendor/missing/viewer.js")
    case_id = waiting_on_the_customer(app)
    response = client_for(app, "spec").get(f"/cases/{case_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "The diagram is unavailable" in page
    assert "bpmn-navigated-viewer" not in page and 'id="case-diagram"' not in page
    assert "Review credit and recommend a limit" in page  # the rest of the page is there


def test_a_version_without_diagram_layout_says_so_instead_of_an_empty_canvas(app):
    with app.app_context():
        _version, errors = publish("sub_loop", SUBPROCESS_LOOP, find_user("owner"))
        assert not errors
        db.session.commit()
        case_id = start_case("sub_loop", {"count": 0, "rounds": 1}, find_user("spec")).id
    page = client_for(app, "spec").get(f"/cases/{case_id}").get_data(as_text=True)
    assert "This version has no diagram layout" in page
    assert 'id="case-diagram"' not in page and "bpmn-navigated-viewer" not in page


# --- who may see it ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/diagram.bpmn", "/diagram-state.json"])
def test_a_sales_rep_of_another_customer_is_refused_the_page_and_its_diagram(app, path):
    case_id = waiting_on_the_customer(app)
    with app.app_context():
        create_user("rep2", ["sales_rep"], PASSWORD, display_name="Other Rep")
        db.session.commit()
    response = client_for(app, "rep2").get(f"/cases/{case_id}{path}")
    assert response.status_code == 403
    assert b"Acme" not in response.data and b"bpmn:definitions" not in response.data


@pytest.mark.parametrize("path", ["", "/diagram.bpmn", "/diagram-state.json"])
def test_an_unknown_case_is_a_404_and_a_visitor_must_log_in(app, path):
    assert client_for(app, "admin").get(f"/cases/999999{path}").status_code == 404
    assert client_for(app, "admin").get(f"/cases/99999999999{path}").status_code == 404
    case_id = waiting_on_the_customer(app)
    response = app.test_client().get(f"/cases/{case_id}{path}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_sales_rep_of_the_case_reads_its_diagram(app):
    case_id = waiting_on_the_customer(app)
    client = client_for(app, "rep")
    assert client.get(f"/cases/{case_id}/diagram-state.json").status_code == 200
    assert client.get(f"/cases/{case_id}/diagram.bpmn").status_code == 200


# --- the customer panel, special handling, linked cases ---------------------------------------


def add_notes(app, number: str) -> None:
    with app.app_context():
        customer = db.session.execute(db.select(Customer).filter_by(number=number)).scalar_one()
        customer.credit_limit = Decimal("20000.00")
        db.session.add_all(
            [
                AccountNote(
                    customer_id=customer.id,
                    author="spec",
                    text="Invoices always go to AP, not the buyer.",
                    special_handling=True,
                ),
                AccountNote(customer_id=customer.id, author="spec", text="Prefers e-mail."),
            ]
        )
        db.session.commit()


def test_the_customer_panel_shows_standing_aging_and_notes_with_special_handling_on_top(app):
    case_id, number = approved_with_customer(app)
    add_notes(app, number)
    page = client_for(app, "spec").get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'data-testid="customer-panel"' in page
    panel = page[page.index('data-testid="customer-panel"') :]
    for label in ("Balance", "Exposure", "Credit limit", "Available", "Past due"):
        assert f"<dt>{label}</dt>" in panel
    assert "20,000.00" in panel
    for bucket in ("current", "1-30", "31-60", "61-90", "91-120", "120+"):
        assert f">{bucket}</th>" in panel
    assert panel.index("Invoices always go to AP") < panel.index("Prefers e-mail.")
    # ... and the special handling is flagged at the top of the page, above the facts.
    banner = page.index('data-testid="special-handling"')
    assert banner < page.index('class="facts"')
    assert "Invoices always go to AP, not the buyer." in page[banner : page.index('class="facts"')]


def test_the_special_handling_macro_renders_on_any_page(app):
    _case_id, number = approved_with_customer(app)
    add_notes(app, number)
    with app.test_request_context():
        template = app.jinja_env.from_string(
            '{% from "cases/_special_handling.html" import special_handling %}'
            "{{ special_handling(number) }}|{{ special_handling(none) }}|"
        )
        html = template.render(number=number)
    assert "Invoices always go to AP, not the buyer." in html
    assert "Prefers e-mail." not in html
    assert html.split("|")[1].strip() == ""  # no customer: nothing at all


def test_a_case_whose_customer_is_not_in_the_ledger_yet_still_renders(app):
    case_id = waiting_on_the_customer(app)
    with app.app_context():
        case = db.session.get(Case, case_id)
        case.customer_number = "C-NOT-YET"
        db.session.commit()
    response = client_for(app, "spec").get(f"/cases/{case_id}")
    assert response.status_code == 200
    assert "Customer C-NOT-YET is not in the ledger yet." in response.get_data(as_text=True)


def test_linked_cases_are_listed_and_one_the_reader_may_not_open_shows_only_its_number(app):
    case_id = waiting_on_the_customer(app)
    with app.app_context():
        secret = {**INTAKE, "legal_name": "Secret Co", "sales_rep": "someone_else"}
        hidden = start_in_transaction("credit_application", secret, None)
        mine = start_case(
            "credit_application", {**INTAKE, "legal_name": "Visible Co"}, find_user("rep")
        )
        db.session.add_all(
            [
                CaseLink(case_id=case_id, other_id=mine.id, kind="freight_claim"),
                CaseLink(case_id=case_id, other_id=hidden.id, kind="dispute_resolution_from"),
            ]
        )
        db.session.commit()
        hidden_id, mine_id = hidden.id, mine.id
    page = client_for(app, "rep").get(f"/cases/{case_id}").get_data(as_text=True)
    linked = page[page.index('data-testid="linked-cases"') :]
    assert f'href="/cases/{mine_id}"' in linked and "Visible Co" in linked
    assert "Freight claim" in linked
    assert "Started this case as its dispute resolution" in linked
    assert f"#{hidden_id}" in linked and "Secret Co" not in page


def test_every_published_version_with_layout_is_detected(app):
    from casemgr.engine.diagram import has_layout

    with app.app_context():
        versions = db.session.execute(db.select(ProcessVersion)).scalars().all()
        laid_out = {v.case_type.key: has_layout(v) for v in versions}
    assert laid_out["credit_application"] is True
