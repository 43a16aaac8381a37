"""The engine's operations: each one database transaction with the optimistic version check.

start -> claim/unclaim/assign -> complete -> ... ; timers wake cases whose next_wake_at is due.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import current_app
from SpiffWorkflow import TaskState
from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy import bindparam, insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from casemgr import forms
from casemgr.engine import access, clock
from casemgr.engine.errors import (
    CaseBroken,
    Conflict,
    CorruptCaseState,
    Forbidden,
    Invalid,
    NotFound,
)
from casemgr.engine.indexing import sync_case
from casemgr.engine.processes import (
    VERSION_IDENTITY,
    case_version,
    parsed_for,
    remember_version_identity,
    with_version_identity,
)
from casemgr.engine.step import StepContext, current_step
from casemgr.engine.workflows import dump, find_task, jsonable, load, load_case, new_workflow
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, CaseType, TaskRecord, User


def _commit_or_conflict(case_id: int | None, task_id: int | None = None) -> None:
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(_conflict_message(task_id)) from None


def _conflict_message(task_id: int | None) -> str:
    if task_id is not None:
        row = db.session.get(TaskRecord, task_id)
        if row is not None and row.state != "open":
            return _closed_message(row)
        if row is not None and row.assignee is not None:
            return f"this task was just claimed by {row.assignee.label}"
    return "the case changed while you were working on it; reload and try again"


def _closed_message(row: TaskRecord) -> str:
    if row.state == "completed" and row.completed_by is not None:
        return (
            f"this task was already completed by {row.completed_by.label} at "
            f"{row.completed_at:%Y-%m-%d %H:%M} UTC"
        )
    return f"this task is no longer open ({row.state})"


def _write_events(case: Case, ctx: StepContext) -> None:
    """The step's events in one multi-row INSERT, not an ORM object each: the ORM inserts
    them one statement at a time on SQLite (it needs each new id back), which cost more than
    the rest of the step's writes together. Nothing reads them back in the step."""
    if ctx.events:
        now = clock.now()
        rows = [
            {
                "case_id": case.id,
                "at": now,
                "actor": ctx.actor_name,
                "kind": kind,
                "detail": jsonable(detail),
            }
            for kind, detail in ctx.events
        ]
        with db.session.no_autoflush:  # the step's own changes are flushed once, at commit
            db.session.execute(insert(CaseEvent.__table__), rows)
    from casemgr.notify.events import on_step  # notifications are worked out at commit

    on_step(case, ctx.actor, list(ctx.events))
    ctx.events.clear()


def _advance(case: Case, actor: User | None, ctx: StepContext, act: Callable) -> None:
    """Load the workflow, act on it, run to the next wait state, index and save it."""
    if any(isinstance(obj, CaseEvent) for obj in db.session.new):
        db.session.flush()  # events added before the step keep their place before its own
    version = case_version(case)
    token = current_step.set(ctx)
    try:
        wf = load(case.workflow_json, case.id, version.parsed) if case.workflow_json else None
        wf = act(wf, version.parsed) or wf
        wf.do_engine_steps()
        sync_case(case, wf, version, ctx)
        case.workflow_json = dump(wf)
    except SpiffWorkflowException as exc:
        raise CaseBroken(_engine_failure(exc)) from None
    finally:
        current_step.reset(token)
    _write_events(case, ctx)


def _engine_failure(exc: SpiffWorkflowException) -> str:
    task = getattr(exc, "task", None)
    where = f" at {task.task_spec.bpmn_name or task.task_spec.bpmn_id}" if task else ""
    return f"the process could not continue{where}: {exc}"


# --- starting ---------------------------------------------------------------------------


def start_case(case_type_key: str, data: dict | None, user: User) -> Case:
    """Start a case for a person or a system (API, web); checks who may start what."""
    case_type = _case_type(case_type_key)
    if not access.can_start(user, case_type.key):
        raise Forbidden(f"your roles may not start a {case_type.name} case")
    try:
        case = start_in_transaction(case_type, data, user)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return case


def _case_type(key: str) -> CaseType:
    case_type = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
    if case_type is None or case_type.latest() is None:
        raise Invalid(f"unknown case type {key!r}", {"case_type": [f"unknown case type {key!r}"]})
    return case_type


def start_in_transaction(case_type: CaseType | str, data: dict | None, user: User | None) -> Case:
    """Start and run to the first wait state without committing (a case may start another)."""
    if isinstance(case_type, str):
        case_type = _case_type(case_type)
    version = case_type.latest()
    parsed = parsed_for(version)
    data = _checked_start_data(parsed.start_form, dict(data or {}))
    case = Case(
        case_type=case_type,
        process_version=version,
        started_by=user,
        status="open",
        data={},
        workflow_json="",
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    db.session.add(case)
    db.session.flush()
    ctx = StepContext(case, user)
    ctx.record(
        "case_started", case_type=case_type.key, version=version.version, data=jsonable(data)
    )
    _advance(case, user, ctx, lambda _wf, p: new_workflow(p, data))
    if user is not None:
        _assign_first_task_to_starter(case, user, ctx)
    _write_events(case, ctx)
    return case


def _checked_start_data(start_form: str | None, data: dict) -> dict:
    """Wrong values are a 422; missing ones are asked for by the first human task."""
    form_cls = forms.get_form_class(start_form)
    if form_cls is None:
        return data
    # One validation: the values given must be right (a 422 names them); the missing ones
    # (forms.validate's partial mode is this same check filtered to the given fields)
    # are asked for later.
    full_clean, full_errors = forms.validate(form_cls, data)
    wrong = {name: errs for name, errs in full_errors.items() if name in data}
    if wrong:
        raise Invalid("some values are not valid", wrong)
    merged = {**data, **full_clean}
    if full_errors:
        # Keep what was given as given; the intake task will ask for the rest.
        merged = {**data, **{k: v for k, v in full_clean.items() if k in data}}
    merged["intake_complete"] = not full_errors
    return merged


def _assign_first_task_to_starter(case: Case, user: User, ctx: StepContext) -> None:
    """An incomplete intake goes back to whoever started the case, if they hold its role."""
    if (case.data or {}).get("intake_complete", True):
        return  # the usual start: nothing to ask of the starter, no task list to load
    open_tasks = [t for t in case.tasks if t.state == "open"]
    if len(open_tasks) == 1:
        task = open_tasks[0]
        if task.role in user.role_keys:
            task.assignee = user
            ctx.record(
                "task_assigned",
                task=task.name,
                title=task.title,
                to=user.username,
                reason="asked of the person who started the case",
            )


# --- claiming ---------------------------------------------------------------------------


def get_task(task_id: int, user: User) -> TaskRecord:
    row = db.session.get(TaskRecord, task_id) if 0 < task_id < 2**63 else None
    if row is None:
        raise NotFound(f"no task {task_id}")
    if not access.can_see_task(user, row):
        raise Forbidden("this task is not in your queues or cases")
    return row


def read_task(task_id: int, user: User) -> TaskRecord:
    """A task to show (page or API): get_task's answer, then the read rule of the case."""
    row = get_task(task_id, user)
    if not access.can_read_task(user, row):
        raise Forbidden("this task is not in your queues or cases")
    return row


# Built once: building the statement on every action cost as much as running it. The
# version's identity comes along, so the step that follows need not read it on its own.
_TASK_AND_CASE = (
    with_version_identity(
        db.select(TaskRecord, Case, *VERSION_IDENTITY).join(Case, Case.id == TaskRecord.case_id),
        Case.process_version_id,
    )
    .where(TaskRecord.id == bindparam("task_id"))
    .execution_options(populate_existing=True)
)


def task_to_change(task_id: int, user: User) -> TaskRecord:
    """get_task for an action that changes the task: the task and its case read anew by one
    statement, so both come from one moment. A change committed before it shows in the task
    (a 409 from the checks); one after it fails the case's version check at commit (a 409
    too). Read one after the other, a request that read the task just before another
    person's claim committed could pass with a fresh case and a stale task, and take the
    task over (two people then both held it; found by bench/load.py)."""
    if not 0 < task_id < 2**63:
        raise NotFound(f"no task {task_id}")
    found = db.session.execute(_TASK_AND_CASE, {"task_id": task_id}).first()
    if found is None:
        raise NotFound(f"no task {task_id}")
    row, case, *identity = found
    remember_version_identity(case, identity)
    db.session.expire(row, ["assignee", "completed_by"])  # follow the fresh ids when read
    # The task's `case` is this statement's row: a lazy load would read the case again,
    # later than the task, and reopen the race.
    set_committed_value(row, "case", case)
    if not access.can_see_task(user, row):
        raise Forbidden("this task is not in your queues or cases")
    return row


def four_eyes_violation(row: TaskRecord, user: User) -> str | None:
    if not row.four_eyes:
        return None
    done = (
        db.session.execute(
            db.select(TaskRecord).where(
                TaskRecord.case_id == row.case_id,
                TaskRecord.name.in_(row.four_eyes),
                TaskRecord.state == "completed",
                TaskRecord.completed_by_id == user.id,
            )
        )
        .scalars()
        .first()
    )
    if done is None:
        return None
    return (
        f"four-eyes rule: you completed '{done.title}' on this case, so someone else "
        "must complete this task"
    )


def check_can_work(row: TaskRecord, user: User) -> None:
    """Role, four-eyes, still open, not held by another: what every action on a task needs."""
    if row.role not in user.role_keys:
        raise Forbidden(f"this task needs the {row.role} role")
    problem = four_eyes_violation(row, user)
    if problem:
        raise Forbidden(problem)
    if row.state != "open":
        raise Conflict(_closed_message(row))
    if row.assignee_id not in (None, user.id):
        raise Conflict(f"this task is claimed by {row.assignee.label}")


def _touch(case: Case) -> None:
    """Every change to a case bumps its version, so racing changes conflict."""
    case.updated_at = clock.now()


def claim_task(task_id: int, user: User) -> TaskRecord:
    row = task_to_change(task_id, user)
    check_can_work(row, user)
    _refuse_damaged(row.case)
    if row.assignee_id == user.id:
        return row
    row.assignee = user
    _touch(row.case)
    db.session.add(
        CaseEvent(
            case=row.case,
            at=clock.now(),
            actor=user.username,
            kind="task_claimed",
            detail={"task": row.name, "title": row.title},
        )
    )
    _commit_or_conflict(row.case_id, task_id)
    return row


def unclaim_task(task_id: int, user: User, reason: str = "") -> TaskRecord:
    row = task_to_change(task_id, user)
    if row.assignee_id != user.id and not access.can_manage_tasks(user):
        raise Forbidden("only the assignee, a credit manager or an admin may unclaim a task")
    if row.state != "open":
        raise Conflict(_closed_message(row))
    previous = row.assignee.username if row.assignee else None
    row.assignee = None
    _touch(row.case)
    db.session.add(
        CaseEvent(
            case=row.case,
            at=clock.now(),
            actor=user.username,
            kind="task_unclaimed",
            detail={"task": row.name, "title": row.title, "from": previous, "reason": reason},
        )
    )
    _commit_or_conflict(row.case_id, task_id)
    return row


def assign_task(task_id: int, username: str, user: User, reason: str = "") -> TaskRecord:
    row = task_to_change(task_id, user)
    if not access.can_manage_tasks(user):
        raise Forbidden("only a credit manager or an admin may assign tasks")
    if row.state != "open":
        raise Conflict(_closed_message(row))
    target = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
    if target is None or not target.active:
        raise Invalid(f"unknown user {username!r}", {"user": [f"unknown user {username!r}"]})
    if row.role not in target.role_keys:
        raise Invalid(
            f"{username} does not hold the {row.role} role",
            {"user": [f"{username} does not hold the {row.role} role"]},
        )
    problem = four_eyes_violation(row, target)
    if problem:
        message = f"{username} cannot take this task: {problem}"
        raise Invalid(message, {"user": [message]})
    previous = row.assignee.username if row.assignee else None
    row.assignee = target
    _touch(row.case)
    db.session.add(
        CaseEvent(
            case=row.case,
            at=clock.now(),
            actor=user.username,
            kind="task_assigned",
            detail={
                "task": row.name,
                "title": row.title,
                "from": previous,
                "to": username,
                "reason": reason,
            },
        )
    )
    _commit_or_conflict(row.case_id, task_id)
    return row


# --- completing -------------------------------------------------------------------------


def complete_task(task_id: int, data: dict | None, user: User) -> Case:
    """Validate against the task's form, complete it, run to the next wait state."""
    row = task_to_change(task_id, user)
    check_can_work(row, user)
    case = row.case
    form_cls = forms.get_form_class(row.form_key)
    clean: dict = {}
    if form_cls is not None:
        clean, errors = forms.validate(form_cls, data or {}, context=case.data or {})
        if errors:
            raise Invalid("some values are not valid", errors)
    ctx = StepContext(case, user)
    claimed_now = row.assignee_id is None
    now = clock.now()

    def act(wf, _parsed):
        task = find_task(wf, row.spiff_id)
        if task is None or task.state != TaskState.READY:
            raise Conflict("this task is no longer waiting in the process")
        task.data.update(clean)
        task.run()
        return wf

    # The ids, not the relationships: the unit of work then has no references to follow
    # (~0.1 ms of a completion); the relationships load from the ids when read.
    if claimed_now:
        row.assignee_id = user.id
        ctx.record("task_claimed", task=row.name, title=row.title)
    row.state = "completed"
    row.completed_by_id = user.id
    row.completed_at = now
    ctx.record(
        "task_completed", task=row.name, title=row.title, task_id=row.id, data=jsonable(clean)
    )
    case_id = case.id
    try:
        _advance(case, user, ctx, act)
    except CaseBroken as exc:
        # The person's attempt failed (e.g. the ledger refused an amount); the task stays
        # open and they see why. Only unattended steps (timers) flag the case for an admin,
        # and a damaged stored state, which no retry by the person can get past.
        db.session.rollback()
        if isinstance(exc, CorruptCaseState):
            _flag_broken(case_id, exc.flag_message)
        raise
    except StaleDataError:
        db.session.rollback()
        raise Conflict(_conflict_message(task_id)) from None
    except Exception:
        db.session.rollback()
        raise
    _commit_or_conflict(case_id, task_id)
    return case


def _refuse_damaged(case: Case) -> None:
    """A case whose stored workflow does not load takes no work until an admin repairs it."""
    try:
        if CorruptCaseState.is_flag(case.broken):
            raise CorruptCaseState(case.broken[len(CorruptCaseState.FLAG_PREFIX) :], case.id)
        if case.workflow_json:
            load_case(case)
    except CorruptCaseState as exc:
        db.session.rollback()
        _flag_broken(case.id, exc.flag_message)
        raise


def _flag_broken(case_id: int, message: str) -> None:
    """Record, in its own transaction, that a case's diagram failed; the step itself is undone."""
    case = db.session.get(Case, case_id)
    if case is None or case.broken == message:
        return
    case.broken = message
    db.session.add(
        CaseEvent(
            case=case, at=clock.now(), actor="system", kind="error", detail={"message": message}
        )
    )
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()


def _is_task_id(raw) -> bool:
    """Only plain ASCII digits within the id column's range name a task."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return False
    text = str(raw)
    return text.isascii() and text.isdigit() and 0 < int(text) < 2**63


def bulk_complete(task_ids: list, data: dict | None, user: User) -> dict[str, dict]:
    """Each task completed as if alone; one failure stops no other."""
    from casemgr.engine.errors import EngineError

    results: dict[str, dict] = {}
    for raw in task_ids:
        key = str(raw)
        if not _is_task_id(raw):
            results[key] = {"status": 404, "error": f"no task {raw!r}"}
            continue
        try:
            complete_task(int(raw), data, user)
            results[key] = {"status": 200}
        except EngineError as exc:
            db.session.rollback()
            results[key] = {"status": exc.status, "error": exc.message}
            if exc.errors:
                results[key]["errors"] = exc.errors
    return results


# --- timers -----------------------------------------------------------------------------


def due_case_ids(moment: datetime, limit: int | None = None) -> list[int]:
    query = (
        db.select(Case.id)
        .where(Case.status == "open", Case.broken.is_(None), Case.next_wake_at <= moment)
        .order_by(Case.next_wake_at)
    )
    if limit:
        query = query.limit(limit)
    return list(db.session.execute(query).scalars())


def wake_case(case_id: int, moment: datetime) -> bool:
    """Fire what is due in one case; True when the case moved on."""
    with clock.as_of(moment):
        case = db.session.get(Case, case_id)
        if case is None or case.status != "open" or case.next_wake_at is None:
            return False
        if case.next_wake_at > clock.now():
            return False
        ctx = StepContext(case, None)
        before = case.next_wake_at

        def act(wf, _parsed):
            wf.refresh_waiting_tasks()
            return wf

        try:
            _advance(case, None, ctx, act)
        except CaseBroken as exc:
            db.session.rollback()
            _flag_broken(case_id, exc.flag_message)
            return False
        ctx.record("timer_fired", due=before.isoformat())
        _write_events(case, ctx)
        try:
            db.session.commit()
        except StaleDataError:
            db.session.rollback()  # someone else advanced it; their step already did the work
            return False
        return True


def run_due_timers(as_of: datetime | None = None) -> int:
    """Wake every case with a timer due at `as_of` (default now); returns how many moved.

    The CLI and the Celery tick share this; engine.timers claims each case with
    FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent runs never wake a case twice."""
    from casemgr.engine.timers import drain_due_timers

    advanced = drain_due_timers(as_of).advanced
    current_app.logger.info("timers run as of %s: %d case(s) advanced", as_of or "now", advanced)
    return advanced
