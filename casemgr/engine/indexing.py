"""Bringing the relational view of a case (task index, summary, wake-up) up to date."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy.orm.util import identity_key

from casemgr.engine import clock
from casemgr.engine.processes import PinnedVersion
from casemgr.engine.specs import ParsedProcess
from casemgr.engine.step import StepContext
from casemgr.engine.workflows import (
    awaited_messages,
    boundary_due_at,
    current_data,
    jsonable,
    next_wake_at,
    ready_human_tasks,
)
from casemgr.extensions import db
from casemgr.models import Case, TaskRecord

# Which data keys fill the inbox's customer and amount columns, first present wins.
CUSTOMER_NAME_KEYS = ("customer_name", "legal_name")
AMOUNT_KEYS = (
    "amount",
    "disputed_amount",
    "claimed_amount",
    "balance",
    "recommended_limit",
    "requested_limit",
)


def sync_case(case: Case, wf, version: PinnedVersion, ctx: StepContext) -> None:
    open_rows = _open_rows(case.id)
    data = current_data(wf)
    case.data = jsonable(data)
    _summarise(case, version.case_type_name, data)
    _sync_tasks(case, version.case_type_key, open_rows, wf, version.parsed, ctx)
    case.next_wake_at = None if wf.is_completed() else next_wake_at(wf)
    messages = [] if wf.is_completed() else awaited_messages(wf)
    case.awaiting = f",{','.join(messages)}," if messages else None
    case.updated_at = clock.now()
    case.broken = None  # a step that got this far ran cleanly
    if wf.is_completed() and case.status == "open":
        case.status = "completed"
        case.completed_at = clock.now()
        case.outcome = str(data.get("outcome") or "completed")[:80]
        ctx.record("case_completed", outcome=case.outcome)


def _summarise(case: Case, case_type_name: str, data: dict) -> None:
    if data.get("customer_number"):
        case.customer_number = str(data["customer_number"])[:40]
    name = next((data[k] for k in CUSTOMER_NAME_KEYS if data.get(k)), None)
    if name:
        case.customer_name = str(name)[:200]
    for key in AMOUNT_KEYS:
        if data.get(key) not in (None, ""):
            try:
                case.amount = Decimal(str(data[key])).quantize(Decimal("0.01"))
            except InvalidOperation:
                continue
            break
    who = case.customer_name or case.customer_number or f"case {case.id or ''}".strip()
    case.title = f"{case_type_name}: {who}"[:300]


_OPEN_IDS = (
    db.select(TaskRecord.__table__.c.id)
    .where(
        TaskRecord.__table__.c.case_id == db.bindparam("case_id"),
        TaskRecord.__table__.c.state == "open",
    )
    .order_by(TaskRecord.__table__.c.id)
)


def _open_rows(case_id: int) -> dict[str, TaskRecord]:
    """Only the open rows: loading the whole task history would make each step grow with it.

    Their ids first, then only the rows this session does not hold yet: the usual step
    holds the one it completes already, and building a query's objects costs more than
    the query. Read without flushing the step's changes (a flush of its own costs as much
    again), so a row the step has just closed comes back as the object it changed: the
    in-memory state decides."""
    with db.session.no_autoflush:
        ids = list(db.session.execute(_OPEN_IDS, {"case_id": case_id}).scalars())
        held = {i: db.session.identity_map.get(identity_key(TaskRecord, i)) for i in ids}
        missing = [i for i, row in held.items() if row is None]
        if missing:
            query = db.select(TaskRecord).where(TaskRecord.id.in_(missing))
            held.update({row.id: row for row in db.session.execute(query).scalars()})
        # Inside the block too: a held row expired by an earlier commit reloads as it is read.
        rows = [held[i] for i in ids]
        return {row.spiff_id: row for row in rows if row.state == "open"}


def _sync_tasks(
    case: Case,
    case_type_key: str,
    open_rows: dict[str, TaskRecord],
    wf,
    parsed: ParsedProcess,
    ctx: StepContext,
) -> None:
    ready = {str(task.id): task for task in ready_human_tasks(wf)}
    for spiff_id, row in open_rows.items():
        if spiff_id not in ready:
            row.state = "cancelled"
            row.completed_at = clock.now()
            ctx.record("task_cancelled", task=row.name, title=row.title, task_id=row.id)
    for spiff_id, task in ready.items():
        if spiff_id in open_rows:
            _refresh_summary(open_rows[spiff_id], case)
            continue
        info = parsed.human_tasks.get(task.task_spec.bpmn_id)
        row = TaskRecord(
            case_id=case.id,
            spiff_id=spiff_id,
            name=task.task_spec.bpmn_id,
            title=info.title if info else task.task_spec.bpmn_id,
            role=(info.role if info else None) or "ar_specialist",
            form_key=info.form_key if info else None,
            state="open",
            created_at=clock.now(),
            due_at=_due_at(task, info, ctx),
            four_eyes=list(info.four_eyes) if info else [],
            case_type_key=case_type_key,
        )
        _refresh_summary(row, case)
        db.session.add(row)
        ctx.record(
            "task_created",
            task=row.name,
            title=row.title,
            role=row.role,
            due_at=row.due_at.isoformat() if row.due_at else None,
        )


def _refresh_summary(row: TaskRecord, case: Case) -> None:
    row.customer_number = case.customer_number
    row.customer_name = case.customer_name
    row.amount = case.amount


def _due_at(task, info, ctx: StepContext) -> datetime | None:
    """A due-date expression on the task, else an interrupting boundary timer's moment."""
    if info and info.due_date:
        try:
            value = task.workflow.script_engine.evaluate(task, info.due_date)
            return _as_moment(value)
        except (SpiffWorkflowException, ValueError, TypeError) as exc:
            ctx.record("warning", message=f"due date of {task.task_spec.bpmn_id}: {exc}")
    return boundary_due_at(task)


def _as_moment(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=clock.now().tzinfo)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, 23, 59, tzinfo=clock.now().tzinfo)
    if isinstance(value, timedelta):
        return clock.now() + value
    text = str(value)
    if text.startswith("P"):
        duration = TimerEventDefinition.parse_iso_duration(text)
        return clock.now() + TimerEventDefinition.get_timedelta_from_start(duration, clock.now())
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=clock.now().tzinfo)
