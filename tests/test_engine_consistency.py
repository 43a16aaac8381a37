"""The consistency checker (casemgr.engine.consistency) the load benchmark relies on: silent
on healthy cases, and it names each kind of drift between the task index, the workflow and
the timeline."""

from __future__ import annotations

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine.consistency import check_case, check_cases
from casemgr.extensions import db
from casemgr.models import CaseEvent, TaskRecord
from tests.credit_data import INTAKE, review


def reviewed_case():
    """A credit application past the specialist, waiting on the credit manager."""
    case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
    task = next(t for t in case.tasks if t.state == "open")
    case = engine.complete_task(task.id, review(), find_user("spec"))
    return case.id


def open_row(case_id: int) -> TaskRecord:
    return db.session.execute(
        db.select(TaskRecord).filter_by(case_id=case_id, state="open")
    ).scalar_one()


def test_healthy_cases_open_and_completed_have_no_problems(ctx):
    waiting = reviewed_case()
    done = reviewed_case()
    engine.complete_task(open_row(done).id, {"decision": "approve"}, find_user("mgr"))
    assert check_cases([waiting, done]) == []


def test_a_ready_task_missing_from_the_index_is_reported(ctx):
    case_id = reviewed_case()
    row = open_row(case_id)
    row.state = "cancelled"
    db.session.commit()
    problems = check_case(case_id)
    assert problems == [
        f"case {case_id}: manager_approval ({row.spiff_id}) is ready in the workflow "
        "but not in the index"
    ]


def test_an_open_row_the_workflow_does_not_wait_on_is_reported(ctx):
    case_id = reviewed_case()
    stale = TaskRecord(
        case_id=case_id,
        spiff_id="00000000-0000-0000-0000-000000000000",
        name="specialist_review",
        title="Review credit and recommend a limit",
        role="ar_specialist",
        state="open",
        case_type_key="credit_application",
    )
    db.session.add(stale)
    db.session.commit()
    assert check_case(case_id) == [
        f"case {case_id}: task {stale.id} (specialist_review) is open in the index but not "
        "ready in the workflow"
    ]


def test_a_step_recorded_twice_is_reported(ctx):
    case_id = reviewed_case()
    done = db.session.execute(
        db.select(TaskRecord).filter_by(case_id=case_id, state="completed")
    ).scalar_one()
    db.session.add(
        CaseEvent(
            case_id=case_id,
            actor="spec",
            kind="task_completed",
            detail={"task": done.name, "task_id": done.id},
        )
    )
    db.session.commit()
    assert check_case(case_id) == [f"case {case_id}: task {done.id} was completed 2 times"]


def test_a_completed_case_whose_workflow_still_waits_is_reported(ctx):
    case_id = reviewed_case()
    case = open_row(case_id).case
    case.status = "completed"
    db.session.commit()
    problems = check_case(case_id)
    assert f"case {case_id}: the case is completed but its workflow still waits" in problems
    assert any("open in the index" in p for p in problems)


def test_an_unknown_case_is_a_problem_not_a_crash(ctx):
    assert check_case(999_999) == ["case 999999: no such case"]
