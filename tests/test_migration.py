"""Moving running cases to a newer version: the safe ones move (their tasks, claims, data and
timers intact, open tasks in the new role's queue); the unsafe ones stay and say why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lxml import etree

from casemgr.accounts import find_user
from casemgr.engine import consistency, drafts
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


# --- waiting inside parallel branches, multi-instance tasks, subprocesses, boundary timers ------

LOOPS = ROOT / "tests" / "bpmn"


def loop_diagram(name: str) -> str:
    xml = (LOOPS / f"{name}.bpmn").read_text()
    if name == "multi_instance":
        # Each check hands back the invoice it checked (the form-less task records nothing).
        xml = xml.replace(
            '<bpmn:outputDataItem id="result" name="result" />',
            '<bpmn:outputDataItem id="invoice" name="invoice" />',
        )
    return xml


def publish_loop(key: str, xml: str):
    version, errors = drafts.publish_bpmn(key, xml, find_user("owner"))
    assert errors == [], errors
    db.session.commit()
    return version


def open_tasks(case_id: int) -> list:
    case = db.session.get(Case, case_id)
    return sorted((t for t in case.tasks if t.state == "open"), key=lambda t: t.id)


def finish(case_id: int, name: str) -> Case:
    task = next(t for t in open_tasks(case_id) if t.name == name)
    who = find_user("mgr") if task.role == "credit_manager" else find_user("spec")
    return complete_task(task.id, {}, who)


def untouched(case_id: int, before: tuple) -> None:
    """The refused case is exactly as it was: version, workflow and task index."""
    case = db.session.get(Case, case_id)
    assert snapshot(case) == before


def snapshot(case: Case) -> tuple:
    return (
        case.process_version.version,
        case.workflow_json,
        [(t.id, t.name, t.state, t.role, t.title, t.spiff_id) for t in open_tasks(case.id)],
    )


def test_a_case_waiting_in_both_parallel_branches_moves_and_finishes(ctx):
    publish_loop("parallel_loop", loop_diagram("parallel_loop"))
    case_id = start_case("parallel_loop", {"count": 0, "rounds": 1}, find_user("spec")).id
    assert [t.name for t in open_tasks(case_id)] == ["left", "right"]
    # Version 2: the right branch goes to the specialists, under a new title.
    target = publish_loop(
        "parallel_loop",
        moved_to_lane(loop_diagram("parallel_loop"), "right", "lane_spec").replace(
            'name="Right"', 'name="Right, checked by a specialist"'
        ),
    )
    [result] = drafts.migrate_cases(target, [case_id], find_user("owner"))
    assert (result.migrated, result.reason) == (True, "moved from version 1 to 2")
    assert consistency.check_case(case_id) == []
    tasks = open_tasks(case_id)
    assert [(t.name, t.role, t.title) for t in tasks] == [
        ("left", "ar_specialist", "Left"),
        ("right", "ar_specialist", "Right, checked by a specialist"),
    ]
    finish(case_id, "left")
    assert [t.name for t in open_tasks(case_id)] == ["right"]  # the join waits for it
    case = finish(case_id, "right")
    assert (case.status, case.process_version.version, case.data["count"]) == ("completed", 2, 1)
    assert consistency.check_case(case_id) == []


def test_a_case_past_one_parallel_branch_moves_and_the_join_still_waits(ctx):
    publish_loop("parallel_loop", loop_diagram("parallel_loop"))
    case_id = start_case("parallel_loop", {"count": 0, "rounds": 2}, find_user("spec")).id
    finish(case_id, "left")
    target = publish_loop(
        "parallel_loop", loop_diagram("parallel_loop").replace('name="Right"', 'name="Right 2"')
    )
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert result.migrated, result.reason
    assert [(t.name, t.title) for t in open_tasks(case_id)] == [("right", "Right 2")]
    finish(case_id, "right")  # the join fires: round two asks for both again
    assert [t.name for t in open_tasks(case_id)] == ["left", "right"]
    finish(case_id, "left")
    case = finish(case_id, "right")
    assert (case.status, case.data["count"]) == ("completed", 2)
    assert consistency.check_case(case_id) == []


def test_a_parallel_branch_that_is_gone_keeps_the_case_where_it_is(ctx):
    publish_loop("parallel_loop", loop_diagram("parallel_loop"))
    case_id = start_case("parallel_loop", {"count": 0, "rounds": 1}, find_user("spec")).id
    before = snapshot(db.session.get(Case, case_id))
    target = publish_loop("parallel_loop", renamed(loop_diagram("parallel_loop"), "right", "east"))
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert (result.safe, result.migrated) == (False, False)
    assert result.reason == "it waits at 'Right', which version 2 no longer has"
    untouched(case_id, before)
    finish(case_id, "left")
    case = finish(case_id, "right")
    assert (case.status, case.process_version.version) == ("completed", 1)


def with_a_third_branch(xml: str) -> str:
    """The split also starts a "Middle" task, which the join waits for too."""
    return (
        xml.replace(
            "<bpmn:outgoing>fr</bpmn:outgoing></bpmn:parallelGateway>",
            "<bpmn:outgoing>fr</bpmn:outgoing><bpmn:outgoing>fm</bpmn:outgoing>"
            "</bpmn:parallelGateway>"
            '<bpmn:sequenceFlow id="fm" sourceRef="split" targetRef="middle" />'
            '<bpmn:userTask id="middle" name="Middle"><bpmn:incoming>fm</bpmn:incoming>'
            "<bpmn:outgoing>fm2</bpmn:outgoing></bpmn:userTask>"
            '<bpmn:sequenceFlow id="fm2" sourceRef="middle" targetRef="join" />',
        )
        .replace(
            "<bpmn:incoming>fr2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>",
            "<bpmn:incoming>fr2</bpmn:incoming><bpmn:incoming>fm2</bpmn:incoming>"
            "<bpmn:outgoing>f3</bpmn:outgoing>",
        )
        .replace(
            "<bpmn:flowNodeRef>left</bpmn:flowNodeRef>",
            "<bpmn:flowNodeRef>left</bpmn:flowNodeRef><bpmn:flowNodeRef>middle</bpmn:flowNodeRef>",
        )
    )


def test_a_join_that_gains_a_branch_the_case_never_started_keeps_it_where_it_is(ctx):
    """Moved, the case would finish both branches and then wait at the join for ever."""
    publish_loop("parallel_loop", loop_diagram("parallel_loop"))
    case_id = start_case("parallel_loop", {"count": 0, "rounds": 2}, find_user("spec")).id
    before = snapshot(db.session.get(Case, case_id))
    target = publish_loop("parallel_loop", with_a_third_branch(loop_diagram("parallel_loop")))
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert not result.migrated
    assert result.reason == (
        "'join' would also wait for 'Middle', which this case never started (the parallel "
        "split before it has run)"
    )
    untouched(case_id, before)
    # It goes on along version 1: both branches again in round two.
    finish(case_id, "left")
    finish(case_id, "right")
    later = db.session.get(Case, case_id)
    assert [t.name for t in open_tasks(case_id)] == ["left", "right"]
    assert later.data["count"] == 1


def test_a_case_inside_a_multi_instance_task_moves_and_collects_every_result(ctx):
    publish_loop("multi_instance", loop_diagram("multi_instance"))
    data = {"count": 0, "rounds": 1, "total_checked": 0, "invoices": ["A-1", "A-2", "A-3"]}
    case_id = start_case("multi_instance", data, find_user("spec")).id
    assert [t.name for t in open_tasks(case_id)] == ["check"] * 3
    finish(case_id, "check")
    target = publish_loop(
        "multi_instance",
        loop_diagram("multi_instance").replace('name="Check an invoice"', 'name="Check one"'),
    )
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert result.migrated, result.reason
    assert consistency.check_case(case_id) == []
    assert [(t.name, t.title) for t in open_tasks(case_id)] == [("check", "Check one")] * 2
    finish(case_id, "check")
    case = finish(case_id, "check")
    assert case.status == "completed"
    assert (case.data["total_checked"], case.data["last_checked"]) == (
        3,
        ["A-1", "A-2", "A-3"],
    )


def test_a_multi_instance_task_that_is_gone_keeps_the_case_where_it_is(ctx):
    publish_loop("multi_instance", loop_diagram("multi_instance"))
    data = {"count": 0, "rounds": 1, "total_checked": 0, "invoices": ["A-1", "A-2"]}
    case_id = start_case("multi_instance", data, find_user("spec")).id
    finish(case_id, "check")
    before = snapshot(db.session.get(Case, case_id))
    target = publish_loop(
        "multi_instance", renamed(loop_diagram("multi_instance"), "check", "check_invoice")
    )
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert not result.migrated
    assert result.reason == "it waits at 'Check an invoice', which version 2 no longer has"
    untouched(case_id, before)
    case = finish(case_id, "check")
    assert (case.status, case.data["total_checked"]) == ("completed", 2)


def test_a_case_inside_a_subprocess_moves_and_finishes(ctx):
    publish_loop("subprocess_loop", loop_diagram("subprocess_loop"))
    case_id = start_case("subprocess_loop", {"count": 0, "rounds": 2}, find_user("spec")).id
    assert [t.name for t in open_tasks(case_id)] == ["inner_work"]
    target = publish_loop(
        "subprocess_loop",
        loop_diagram("subprocess_loop").replace('name="Inner work"', 'name="Inner work, v2"'),
    )
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert result.migrated, result.reason
    assert consistency.check_case(case_id) == []
    assert [(t.name, t.title) for t in open_tasks(case_id)] == [("inner_work", "Inner work, v2")]
    finish(case_id, "inner_work")
    assert [(t.name, t.title) for t in open_tasks(case_id)] == [("inner_work", "Inner work, v2")]
    finish(case_id, "inner_work")
    case = finish(case_id, "after")
    assert (case.status, case.data["count"]) == ("completed", 2)
    assert consistency.check_case(case_id) == []


def test_a_subprocess_task_that_is_gone_keeps_the_case_where_it_is(ctx):
    publish_loop("subprocess_loop", loop_diagram("subprocess_loop"))
    case_id = start_case("subprocess_loop", {"count": 0, "rounds": 1}, find_user("spec")).id
    before = snapshot(db.session.get(Case, case_id))
    target = publish_loop(
        "subprocess_loop", renamed(loop_diagram("subprocess_loop"), "inner_work", "inner_task")
    )
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert not result.migrated
    assert result.reason == "it waits at 'Inner work', which version 2 no longer has"
    untouched(case_id, before)
    finish(case_id, "inner_work")
    case = finish(case_id, "after")
    assert (case.status, case.process_version.version) == ("completed", 1)


def test_a_case_at_a_task_with_boundary_timers_moves_and_its_timers_keep_their_moments(ctx):
    publish_loop("boundary_loop", loop_diagram("boundary_loop"))
    case = start_case("boundary_loop", {"count": 0, "rounds": 1}, find_user("spec"))
    case_id, due = case.id, case.next_wake_at
    target = publish_loop(
        "boundary_loop", loop_diagram("boundary_loop").replace('name="Nudge"', 'name="Nudge, v2"')
    )
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert result.migrated, result.reason
    assert consistency.check_case(case_id) == []
    case = db.session.get(Case, case_id)
    assert case.next_wake_at == due
    assert wake_case(case_id, due + timedelta(seconds=1))  # one day late: the nudge, v2
    assert [(t.name, t.title) for t in open_tasks(case_id)] == [
        ("work", "Work"),
        ("nudge", "Nudge, v2"),
    ]
    finish(case_id, "nudge")
    case = finish(case_id, "work")
    assert (case.status, case.data["count"], case.outcome) == ("completed", 1, "completed")
    assert consistency.check_case(case_id) == []


def test_an_interrupting_timer_still_fires_after_the_move(ctx):
    publish_loop("boundary_loop", loop_diagram("boundary_loop"))
    case_id = start_case("boundary_loop", {"count": 0, "rounds": 1}, find_user("spec")).id
    target = publish_loop(
        "boundary_loop", loop_diagram("boundary_loop").replace('name="Work"', 'name="Work, v2"')
    )
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert result.migrated, result.reason
    started = db.session.get(Case, case_id).created_at
    wake_case(case_id, started + timedelta(days=1, seconds=1))
    finish(case_id, "nudge")
    assert wake_case(case_id, started + timedelta(days=5, seconds=1))
    case = db.session.get(Case, case_id)
    assert (case.status, case.outcome) == ("completed", "expired")
    assert open_tasks(case_id) == []


def test_a_boundary_timer_that_is_gone_keeps_the_case_where_it_is(ctx):
    publish_loop("boundary_loop", loop_diagram("boundary_loop"))
    case_id = start_case("boundary_loop", {"count": 0, "rounds": 1}, find_user("spec")).id
    before = snapshot(db.session.get(Case, case_id))
    without_nudge = renamed(loop_diagram("boundary_loop"), "late", "late_v2")
    target = publish_loop("boundary_loop", without_nudge)
    [result] = drafts.migrate_cases(target, [case_id], None)
    assert not result.migrated
    assert result.reason == "it waits at 'late', which version 2 no longer has"
    untouched(case_id, before)
