"""Creating, loading, stepping and saving SpiffWorkflow workflows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from flask import current_app
from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from casemgr.engine.compaction import compact
from casemgr.engine.errors import CorruptCaseState
from casemgr.engine.processes import case_version
from casemgr.engine.scripts import ScriptEngine
from casemgr.engine.serialization import specs_of, storage
from casemgr.engine.specs import ParsedProcess

if TYPE_CHECKING:
    from casemgr.models import Case


def script_engine() -> ScriptEngine:
    return ScriptEngine(time_limit=current_app.config.get("SCRIPT_TIME_LIMIT", 1.0))


def new_workflow(parsed: ParsedProcess, data: dict) -> BpmnWorkflow:
    wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=script_engine())
    for task in wf.get_tasks(state=TaskState.READY):
        task.data.update(data)
    return wf


def load(
    workflow_json: str, case_id: int | None = None, parsed: ParsedProcess | None = None
) -> BpmnWorkflow:
    """The one place a stored workflow is read: any damage becomes CorruptCaseState.

    ``parsed``: the case's version, whose specs the stored state names (casemgr stores no
    spec with a case; a state stored whole, by an earlier release, needs none)."""
    try:
        with specs_of(parsed):
            wf = storage.deserialize_json(workflow_json)
        if not isinstance(wf, BpmnWorkflow):
            raise TypeError(f"the stored state is a {type(wf).__name__}, not a workflow")
        _check_structure(wf)
    except RecursionError:
        raise CorruptCaseState("the stored workflow is nested too deeply", case_id) from None
    except Exception as exc:  # noqa: BLE001 - bad JSON, a wrong shape or an unknown spec
        raise CorruptCaseState(f"{type(exc).__name__}: {exc}"[:500], case_id) from exc
    # A deserialized workflow comes back with the default, unrestricted engine.
    wf.script_engine = script_engine()
    return wf


def load_case(case: Case) -> BpmnWorkflow:
    """A case's stored workflow, read with the specs of the version it runs."""
    return load(case.workflow_json, case.id, case_version(case).parsed)


def _check_structure(wf: BpmnWorkflow) -> None:
    """What the deserializer lets through: a missing tree, tasks of specs the spec lacks."""
    for workflow in (wf, *wf.subprocesses.values()):
        if workflow.task_tree is None:
            raise ValueError("a workflow in the stored state has no task tree")
        specs = workflow.spec.task_specs
        for task in workflow.tasks.values():
            if specs.get(task.task_spec.name) is not task.task_spec:
                raise ValueError(f"a task runs {task.task_spec.name!r}, which its spec lacks")
    wf.get_tasks()  # walks the tree: a broken parent or child link fails here


def dump(wf: BpmnWorkflow) -> str:
    """The state to store: compacted, its specs named rather than written out."""
    compact(wf)
    return storage.serialize_json(wf)


def ready_human_tasks(wf: BpmnWorkflow) -> list:
    return wf.get_tasks(state=TaskState.READY, manual=True)


def find_task(wf: BpmnWorkflow, spiff_id: str):
    try:
        return wf.get_task_from_id(UUID(spiff_id))
    except Exception:  # noqa: BLE001 - the library raises a bare TaskNotFoundException type
        return None


def event_definitions(task) -> list:
    """A task's event definitions; an event-based gateway carries several in one."""
    definition = getattr(task.task_spec, "event_definition", None)
    if definition is None:
        return []
    return list(getattr(definition, "event_definitions", None) or [definition])


def timer_due_at(task) -> datetime | None:
    """When a waiting timer task fires (its event_value is set once it starts waiting)."""
    if not any(isinstance(d, TimerEventDefinition) for d in event_definitions(task)):
        return None
    value = task._get_internal_data("event_value")
    if isinstance(value, dict):  # cycle timers keep {"cycles", "next", "duration"}
        value = value.get("next") if value.get("cycles") else None
    if not value:
        return None
    try:
        moment = TimerEventDefinition.get_datetime(value)
    except (ValueError, TypeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def waiting_timers(wf: BpmnWorkflow) -> list:
    return [t for t in wf.get_tasks(state=TaskState.WAITING) if timer_due_at(t) is not None]


def next_wake_at(wf: BpmnWorkflow) -> datetime | None:
    moments = [timer_due_at(t) for t in waiting_timers(wf)]
    return min(moments) if moments else None


def awaited_messages(wf: BpmnWorkflow) -> list[str]:
    return sorted({e.name for e in wf.waiting_events() if e.event_type == "MessageEventDefinition"})


def boundary_due_at(task) -> datetime | None:
    """The due moment an interrupting boundary timer gives the task it is attached to."""
    parent = task.parent
    if parent is None:
        return None
    moments = []
    for sibling in parent.children:
        if sibling is task:
            continue
        if getattr(sibling.task_spec, "cancel_activity", False):
            moment = timer_due_at(sibling)
            if moment is not None:
                moments.append(moment)
    return min(moments) if moments else None


def current_data(wf: BpmnWorkflow) -> dict:
    """The case's data now: the last task's on completion, else what waiting tasks hold."""
    if wf.is_completed():
        return dict(wf.last_task.data) if wf.last_task else {}
    # Oldest change first, the last completed task on top: parallel branches that split off
    # earlier must not overwrite what the latest step decided.
    waiting = wf.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED)
    merged: dict = {}
    for task in sorted(waiting, key=lambda t: t.last_state_change):
        merged.update(task.data)
    if wf.last_task is not None:
        merged.update(wf.last_task.data)
    return merged


def jsonable(value):
    """Task data as JSON for the API and the timeline (money stays exact, as a string)."""
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not str(k).startswith("spiff__")}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def to_json_text(value) -> str:
    return json.dumps(jsonable(value))
