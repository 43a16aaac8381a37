"""Does a case's relational view agree with its workflow? A checker for load tests and admins.

The inbox reads only the task index, so an index that drifts from the workflow shows people
tasks that cannot be done or hides ones that must be. Under concurrent load the other risk is
a step applied twice or lost; the case timeline (task_completed events) and the completed
rows of the index must tell the same story.
"""

from __future__ import annotations

from collections import Counter

from SpiffWorkflow.exceptions import SpiffWorkflowException

from casemgr.engine.workflows import load_case, ready_human_tasks
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, TaskRecord


def check_case(case_id: int) -> list[str]:
    """Every disagreement found in one case, as sentences; an empty list means consistent."""
    case = db.session.get(Case, case_id)
    if case is None:
        return [f"case {case_id}: no such case"]
    rows = list(
        db.session.execute(db.select(TaskRecord).where(TaskRecord.case_id == case_id)).scalars()
    )
    problems = _index_against_workflow(case, rows)
    problems += _completions_against_events(case_id, rows)
    return [f"case {case_id}: {problem}" for problem in problems]


def check_cases(case_ids: list[int]) -> list[str]:
    """check_case for many cases, releasing each case's objects as it goes."""
    problems: list[str] = []
    for case_id in case_ids:
        problems += check_case(case_id)
        db.session.expunge_all()
    return problems


def _index_against_workflow(case: Case, rows: list[TaskRecord]) -> list[str]:
    try:
        wf = load_case(case)
    except (SpiffWorkflowException, ValueError, KeyError, TypeError) as exc:
        return [f"the workflow cannot be loaded: {exc}"]
    problems = []
    finished = wf.is_completed()
    if finished and case.status == "open":
        problems.append("the workflow has finished but the case is still open")
    if not finished and case.status == "completed":
        problems.append("the case is completed but its workflow still waits")
    ready = {str(task.id): task.task_spec.bpmn_id for task in ready_human_tasks(wf)}
    if case.status != "open":
        ready = {}
    open_rows = [row for row in rows if row.state == "open"]
    counts = Counter(row.spiff_id for row in open_rows)
    for spiff_id, n in counts.items():
        if n > 1:
            problems.append(f"workflow task {spiff_id} has {n} open rows in the task index")
    for row in open_rows:
        if row.spiff_id not in ready:
            problems.append(
                f"task {row.id} ({row.name}) is open in the index but not ready in the workflow"
            )
        elif ready[row.spiff_id] != row.name:
            problems.append(
                f"task {row.id} is indexed as {row.name} but the workflow has {ready[row.spiff_id]}"
            )
    for spiff_id, name in ready.items():
        if spiff_id not in counts:
            problems.append(f"{name} ({spiff_id}) is ready in the workflow but not in the index")
    return problems


def _completions_against_events(case_id: int, rows: list[TaskRecord]) -> list[str]:
    """Each completed row has exactly one task_completed event, and no event lacks a row."""
    events = db.session.execute(
        db.select(CaseEvent.detail).where(
            CaseEvent.case_id == case_id, CaseEvent.kind == "task_completed"
        )
    ).scalars()
    per_task = Counter((detail or {}).get("task_id") for detail in events)
    completed = {row.id: row for row in rows if row.state == "completed"}
    problems = []
    for task_id, n in per_task.items():
        if n > 1:
            problems.append(f"task {task_id} was completed {n} times")
        if task_id not in completed:
            problems.append(f"a task_completed event names task {task_id}, not completed")
    for task_id, row in completed.items():
        if task_id not in per_task:
            problems.append(f"task {task_id} ({row.name}) is completed without an event")
    spiff_ids = Counter(row.spiff_id for row in completed.values())
    for spiff_id, n in spiff_ids.items():
        if n > 1:
            problems.append(f"workflow task {spiff_id} was completed by {n} index rows")
    return problems
