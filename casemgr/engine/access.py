"""Who may start, read and act on what (API.md, "Who may do what")."""

from __future__ import annotations

from sqlalchemy import or_

from casemgr.extensions import db
from casemgr.models import Case, Customer, TaskRecord, User

READ_ALL = ("admin", "credit_manager", "controller")
START_ALL = ("ar_specialist", "credit_manager", "controller", "admin")
SALES_REP_STARTS = {"credit_application", "dispute_resolution"}
MANAGE_TASKS = ("credit_manager", "admin")


def can_start(user: User, case_type_key: str) -> bool:
    if user.has_role(*START_ALL):
        return True
    return user.has_role("sales_rep") and case_type_key in SALES_REP_STARTS


def can_read_case(user: User, case: Case) -> bool:
    if user.has_role(*READ_ALL) or case.started_by_id == user.id:
        return True
    for task in case.tasks:
        if user.id in (task.assignee_id, task.completed_by_id):
            return True
        if task.state == "open" and task.assignee_id is None and task.role in user.role_keys:
            return True
    return user.has_role("sales_rep") and _is_reps_case(user, case)


def _is_reps_case(user: User, case: Case) -> bool:
    if (case.data or {}).get("sales_rep") == user.username:
        return True
    if not case.customer_number:
        return False
    rep = db.session.execute(
        db.select(Customer.sales_rep).filter_by(number=case.customer_number)
    ).scalar_one_or_none()
    return rep == user.username


def readable_cases_filter(user: User):
    """A SQL condition for the cases a user may read (for lists, without loading them)."""
    if user.has_role(*READ_ALL):
        return db.true()
    touched = db.select(TaskRecord.case_id).where(
        or_(
            TaskRecord.assignee_id == user.id,
            TaskRecord.completed_by_id == user.id,
            (TaskRecord.state == "open")
            & TaskRecord.assignee_id.is_(None)
            & TaskRecord.role.in_(user.role_keys),
        )
    )
    conditions = [Case.started_by_id == user.id, Case.id.in_(touched)]
    if user.has_role("sales_rep"):
        own = db.select(Customer.number).where(Customer.sales_rep == user.username)
        conditions.append(Case.customer_number.in_(own))
    return or_(*conditions)


def can_see_task(user: User, task: TaskRecord) -> bool:
    """Whether the task exists for the user at all: enough to be told why an action on it
    fails (409 "already completed by ...", API.md's order), not to read it."""
    if task.assignee_id == user.id or task.role in user.role_keys:
        return True
    return can_read_case(user, task.case)


def can_read_task(user: User, task: TaskRecord) -> bool:
    """Reading a task shows its case: its holders, the *open* tasks of one's roles (API.md),
    and whoever reads the case. A closed task of one's role is not a way into the case."""
    if user.id in (task.assignee_id, task.completed_by_id, task.delegated_from_id):
        return True
    if task.state == "open" and task.role in user.role_keys:
        return True
    return can_read_case(user, task.case)


def can_manage_tasks(user: User) -> bool:
    return user.has_role(*MANAGE_TASKS)
