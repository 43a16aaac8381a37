"""Moving running cases to a newer version: the safe ones move (their tasks, claims, data and
timers intact, open tasks in the new role's queue); the unsafe ones stay and say why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lxml import etree

from casemgr.accounts import find_user
from casemgr.engine import drafts
from casemgr.engine.cases import claim_task, complete_task, start_case, wake_case
from casemgr.extensions import db
from casemgr.models import Case
from tests.credit_data import INTAKE, review

ROOT = Path(__file__).resolve().parent.parent
CREDIT = (ROOT / "workflows" / "bpmn" / "credit_application.bpmn").read_text()
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
XML = {"Content-Type": "application/xml"}


def moved_to_lane(xml: str, task: str, lane: str) -> str:
    root = etree.fromstring(xml.encode())
    for ref in root.iter(f"{BPMN}flowNodeRef"):
        if ref.text == task:
            ref.getparent().remove(ref)
    target = next(n for n in root.iter(f"{BPMN}lane") if n.get("id") == lane)
    etree.SubElement(target, f"{BPMN}flowNodeRef").text = task
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def renamed(xml: str, old: str, new: str) -> str:
    """The element under another id: for the engine, the old one is gone."""
    for pattern in ('id="{}"', ">{}<", 'Ref="{}"', 'bpmnElement="{}"', 'id="{}_di"'):
        xml = xml.replace(pattern.format(old), pattern.format(new))
    return xml


def open_task(case: Case):
    return next(t for t in case.tasks if t.state == "open")


def at_review() -> Case:
    return start_case("credit_application", dict(INTAKE), find_user("rep"))


def awaiting_customer() -> Case:
    case = start_case("credit_application", dict(INTAKE), find_user("rep"))
    return complete_task(open_task(case).id, review(action="request_info"), find_user("spec"))


def publish(xml: str):
    version, errors = drafts.publish_bpmn("credit_application", xml, find_user("owner"))
    assert errors == []
    db.session.commit()
    return version


def test_a_safe_case_moves_and_an_unsafe_one_stays_saying_why(ctx):
    """Version 2 moves the review to the credit managers and renames the customer-info task:
    the case at the review can move; the one waiting for the customer cannot."""
    safe, unsafe = at_review(), awaiting_customer()
    safe_id, unsafe_id = safe.id, unsafe.id
    task_before = open_task(safe)
    spiff_id, row_id = task_before.spiff_id, task_before.id
    target = publish(
        renamed(
            moved_to_lane(CREDIT, "specialist_review", "lane_manager"),
            "await_customer_info",
            "await_customer_documents",
        )
    )

    preview = {
        c.case_id: c
        for c in (drafts.check_migration(c, target) for c in drafts.open_cases_behind(target))
    }
    assert preview[safe_id].safe is True
    assert preview[unsafe_id].safe is False
    assert preview[unsafe_id].reason == (
        'it waits at "Record the customer\'s additional information", which version 2 no longer has'
    )

    results = {r.case_id: r for r in drafts.migrate_cases(target, None, find_user("owner"))}
    assert (results[safe_id].migrated, results[safe_id].reason) == (
        True,
        "moved from version 1 to 2",
    )
    assert results[unsafe_id].migrated is False
    assert "no longer has" in results[unsafe_id].reason

    safe, unsafe = db.session.get(Case, safe_id), db.session.get(Case, unsafe_id)
    assert safe.process_version.version == 2 and unsafe.process_version.version == 1
    task = open_task(safe)
    assert (task.id, task.spiff_id, task.role) == (row_id, spiff_id, "credit_manager")
    assert safe.events[-1].kind == "case_migrated"
    assert safe.events[-1].detail["tasks"] == [
        {"task": "specialist_review", "from_role": "ar_specialist", "to_role": "credit_manager"}
    ]
    # The moved case goes on along version 2; the one that stayed, along version 1.
    safe = complete_task(task.id, review(), find_user("mgr"))
    assert open_task(safe).name == "manager_approval"
    assert open_task(unsafe).role == "ar_specialist"


def test_a_waiting_timer_keeps_its_due_moment(ctx):
    case = awaiting_customer()
    due = case.next_wake_at
    target = publish(moved_to_lane(CREDIT, "send_reminder", "lane_manager"))
    [result] = drafts.migrate_cases(target, [case.id], None)
    assert result.migrated, result.reason
    case = db.session.get(Case, case.id)
    assert case.next_wake_at == due
    assert wake_case(case.id, due + timedelta(seconds=1))
    case = db.session.get(Case, case.id)
    reminder = next(t for t in case.tasks if t.name == "send_reminder")
    assert reminder.role == "credit_manager"  # created by version 2


def test_a_holder_without_the_new_role_lets_the_task_go(ctx):
    case = at_review()
    claim_task(open_task(case).id, find_user("spec"))
    target = publish(moved_to_lane(CREDIT, "specialist_review", "lane_manager"))
    [result] = drafts.migrate_cases(target, [case.id], None)
    assert result.migrated
    task = open_task(db.session.get(Case, case.id))
    assert (task.role, task.assignee) == ("credit_manager", None)


def test_only_the_chosen_cases_move(ctx):
    first, second = at_review(), at_review()
    target = publish(moved_to_lane(CREDIT, "specialist_review", "lane_manager"))
    results = drafts.migrate_cases(target, [second.id], None)
    assert [r.case_id for r in results] == [second.id]
    assert db.session.get(Case, first.id).process_version.version == 1


def test_migration_over_the_api_answers_per_case(api, app):
    with app.app_context():
        safe, unsafe = at_review().id, awaiting_customer().id
        publish(renamed(CREDIT, "await_customer_info", "await_customer_documents"))
    owner = api.as_("owner")
    preview = owner.get("/api/v1/case-types/credit_application/migration").get_json()
    assert preview["to_version"] == 2
    assert {c["case_id"]: c["safe"] for c in preview["cases"]} == {safe: True, unsafe: False}
    resp = owner.post(
        "/api/v1/case-types/credit_application/migration", json={"cases": [safe, unsafe]}
    )
    assert resp.status_code == 200
    moved = {c["case_id"]: c["migrated"] for c in resp.get_json()["cases"]}
    assert moved == {safe: True, unsafe: False}
    assert (
        owner.post(
            "/api/v1/case-types/credit_application/migration", json={"cases": "all"}
        ).status_code
        == 422
    )
    assert (
        api.as_("mgr").post("/api/v1/case-types/credit_application/migration", json={}).status_code
        == 403
    )


def test_the_migration_page_previews_and_moves(app):
    with app.app_context():
        safe, unsafe = at_review().id, awaiting_customer().id
        publish(renamed(CREDIT, "await_customer_info", "await_customer_documents"))
    web = app.test_client()
    web.post("/login", data={"username": "owner", "password": "correct-horse-1"})
    page = web.get("/processes/credit_application/migration").get_data(as_text=True)
    assert f'data-case="{safe}" data-safe="yes"' in page
    assert f'data-case="{unsafe}" data-safe="no"' in page
    done = web.post("/processes/credit_application/migration", data={"to": "2", "all": "1"})
    text = done.get_data(as_text=True)
    assert f'data-case="{safe}" data-migrated="yes"' in text
    assert f'data-case="{unsafe}" data-migrated="no"' in text
    assert "1 of 2 case(s) moved to version 2." in text
