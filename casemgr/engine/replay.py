"""Replay before publishing: the recorded history of completed cases run through a draft.

Each case's start data, form entries, timers and messages go through the draft at the
moments they happened, with service calls answered from what the case recorded, and
nothing saved. The answer says, per case, whether the draft

* takes the same path to the same end with the same results ("same");
* would wait at another task, end early, or still be waiting where the case ended; ends
  with another outcome; or ends with other decisions, e.g. a decision table's output or a
  limit a script sets ("different", with ``difference`` saying which);
* fails: a script error, a gateway none of whose conditions holds ("failed").

A decision table draft replays through every case type that calls it, with the draft in
place of the published table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from lxml import etree
from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition

from casemgr import forms
from casemgr.engine import clock
from casemgr.engine.errors import Invalid
from casemgr.engine.processes import (
    called_decisions,
    decision_files,
    decision_ids,
    dmn_for,
    parsed_for,
)
from casemgr.engine.scripts import ScriptEngine
from casemgr.engine.specs import DiagramError, ParsedProcess, checked_xml, parse_process
from casemgr.engine.workflows import current_data, jsonable
from casemgr.extensions import db
from casemgr.models import Case, CaseEvent, CaseType

MAX_CASES = 500
# A case's events carry the moment they were written, a few milliseconds after the step that
# started a timer or computed a date ran. Replayed at those moments, timers come due that
# much later and dates differ by that much: within this slack both count as the same.
TIMING_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class DataChange:
    """A value the case ended with that the draft would set otherwise."""

    field: str
    recorded: object
    replayed: object
    decision: bool  # an output of a decision table the draft calls

    def as_json(self) -> dict:
        return {
            "field": self.field,
            "recorded": self.recorded,
            "replayed": self.replayed,
            "decision": self.decision,
        }

    def words(self) -> str:
        what = "decision table output " if self.decision else ""
        return f"{what}{self.field}: {_shown(self.recorded)} → {_shown(self.replayed)}"


@dataclass
class ReplayResult:
    case_id: int
    title: str
    version: int
    status: str  # "same", "different" or "failed"
    message: str
    original_path: list[str] = field(default_factory=list)
    replayed_path: list[str] = field(default_factory=list)
    element: str | None = None  # where it diverged or failed
    # "waits_elsewhere", "ends_early", "still_waiting", "form", "outcome" or "data"
    difference: str | None = None
    expected: str | None = None  # the task the case went on with, which the draft does not reach
    waiting_at: list[str] = field(default_factory=list)  # where the draft waits instead
    data_changes: list[DataChange] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "case_id": self.case_id,
            "title": self.title,
            "version": self.version,
            "status": self.status,
            "difference": self.difference,
            "message": self.message,
            "element": self.element,
            "expected": self.expected,
            "waiting_at": self.waiting_at,
            "original_path": self.original_path,
            "replayed_path": self.replayed_path,
            "data_changes": [c.as_json() for c in self.data_changes],
        }


class _Divergence(Exception):
    def __init__(
        self,
        message: str,
        difference: str,
        element: str | None = None,
        expected: str | None = None,
        waiting_at: list[str] | None = None,
        data: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.difference = difference
        self.element = element
        self.expected = expected
        self.waiting_at = waiting_at or []
        self.data = data  # the draft's data where it parted from the case


class _ReplayEngine(ScriptEngine):
    """Scripts run restricted as always; service calls answer from the case's recorded data.

    A replay must change nothing: no customer set up, no notification, no linked case.
    The answer a service gave is in the case's final data under its result variable.
    """

    def __init__(self, recorded: dict, answers: dict[str, list], time_limit: float):
        super().__init__(time_limit=time_limit)
        self.recorded = recorded
        self.answers = answers

    def call_service(self, task, **kwargs):
        """The answers the element's calls gave, in their order; cases recorded before
        answers were kept fall back to the result variable in the case's final data."""
        waiting = self.answers.get(task.task_spec.bpmn_id)
        if waiting:
            return json.dumps(waiting.pop(0))
        variable = getattr(task.task_spec, "result_variable", None)
        return json.dumps(jsonable(self.recorded.get(variable)) if variable else None)


def service_answers(events: list[CaseEvent]) -> dict[str, list]:
    """Each service element's recorded answers, oldest first."""
    answers: dict[str, list] = {}
    for event in events:
        if event.kind == "service_called":
            detail = event.detail or {}
            answers.setdefault(str(detail.get("element")), []).append(detail.get("result"))
    return answers


def completed_cases(key: str, limit: int) -> list[Case]:
    """The newest `limit` completed cases of the type (at most MAX_CASES)."""
    found = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
    if found is None:
        return []
    query = (
        db.select(Case)
        .where(Case.case_type_id == found.id, Case.status == "completed")
        .order_by(Case.completed_at.desc(), Case.id.desc())
        .limit(max(1, min(limit, MAX_CASES)))
    )
    return list(db.session.execute(query).scalars())


def replay_draft(key: str, xml: str, limit: int = 20) -> list[ReplayResult]:
    """Re-run the last `limit` completed cases of the type through `xml`; nothing is saved."""
    tables = dmn_for(xml)
    try:
        parsed = parse_process(xml, tuple(tables))
    except DiagramError as exc:
        raise Invalid(f"the draft cannot be run: {exc.message}") from None
    outputs = decision_outputs(tables)
    return [replay_case(case, parsed, outputs) for case in completed_cases(key, limit)]


@dataclass
class TableReplay:
    """A decision table draft replayed through one case type that calls it."""

    key: str
    name: str
    version: int
    results: list[ReplayResult]

    def as_json(self) -> dict:
        statuses = ("same", "different", "failed")
        return {
            "key": self.key,
            "name": self.name,
            "version": self.version,
            "cases": [r.as_json() for r in self.results],
            "summary": {s: sum(1 for r in self.results if r.status == s) for s in statuses},
        }


def replay_table_draft(key: str, dmn_xml: str, limit: int = 20) -> list[TableReplay]:
    """A decision table draft, before publishing: each case type calling one of its decisions
    (or one it drops) re-runs its last completed cases with the draft in the table's place."""
    draft = (key, dmn_xml)
    before = decision_files().get(key)
    wanted = {*decision_ids(dmn_xml), *(before.decision_ids if before else ())}
    replays = []
    for case_type in db.session.execute(db.select(CaseType).order_by(CaseType.name)).scalars():
        latest = case_type.latest()
        if latest is None or not wanted & called_decisions(latest.bpmn_xml):
            continue
        tables = dmn_for(latest.bpmn_xml, draft)
        try:
            parsed = parse_process(latest.bpmn_xml, tuple(tables), latest.process_id)
        except DiagramError as exc:
            raise Invalid(f"{case_type.name} cannot run with the draft: {exc.message}") from None
        outputs = decision_outputs(tables)
        results = [replay_case(c, parsed, outputs) for c in completed_cases(case_type.key, limit)]
        replays.append(TableReplay(case_type.key, case_type.name, latest.version, results))
    return replays


def decision_outputs(dmn_xmls: list[str]) -> frozenset[str]:
    """The data fields the decision tables set (their outputs' names)."""
    names: set[str] = set()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    for text in dmn_xmls:
        root = etree.fromstring(checked_xml(text), parser)
        names.update(n.get("name") for n in root.iter("{*}output") if n.get("name"))
    return frozenset(names)


def replay_case(
    case: Case, parsed: ParsedProcess, outputs: frozenset[str] = frozenset()
) -> ReplayResult:
    """One case's recorded steps against another diagram: the same, different, or failing."""
    # In the order they were written: a step's clock may run behind an earlier timer's
    # moment (a timer run with --as-of), but a case's steps never overlap.
    events = sorted(case.events, key=lambda e: e.id)
    original = [e.detail.get("task") for e in events if e.kind == "task_completed"]
    result = ReplayResult(
        case.id,
        case.title,
        case.process_version.version,
        "same",
        "",
        original_path=[str(t) for t in original],
    )
    engine = _ReplayEngine(
        dict(case.data or {}),
        service_answers(events),
        current_app.config.get("SCRIPT_TIME_LIMIT", 1.0),
    )
    try:
        wf = _replay_events(events, parsed, parsed_for(case.process_version), engine, result)
        _compare_ending(case, wf, result, outputs)
    except _Divergence as exc:
        result.status, result.message, result.element = "different", exc.message, exc.element
        result.difference, result.expected = exc.difference, exc.expected
        result.waiting_at = exc.waiting_at
        if exc.data is not None:
            # Where the paths part, what the decision tables answered already tells why.
            result.data_changes = [
                c
                for c in _changes(dict(case.data or {}), exc.data, outputs)
                if c.decision and c.field in exc.data
            ]
    except SpiffWorkflowException as exc:
        result.status, result.message, result.element = "failed", *_failure(exc)
    except Exception as exc:  # noqa: BLE001 - any script or data error is this case's answer
        result.status, result.message = "failed", f"fails: {type(exc).__name__}: {exc}"
    if result.status == "same":
        result.message = "takes the same path to the same results"
    return result


def _failure(exc: SpiffWorkflowException) -> tuple[str, str | None]:
    """What failed where, in words a process owner reads (the step, not the engine's name)."""
    task = getattr(exc, "task", None)
    spec = task.task_spec if task is not None else getattr(exc, "task_spec", None)
    element = getattr(spec, "bpmn_id", None) if spec is not None else None
    where = _spec_title(spec) if spec is not None else "a step"
    text = str(exc)
    if text.startswith("No conditions satisfied"):
        return (
            f"fails at {where}: none of its conditions holds for this case and it has no "
            "default flow",
            element,
        )
    return f"fails at {where}: {text}", element


def _spec_title(spec) -> str:
    return repr(getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None) or spec.name)


def _title(task) -> str:
    return _spec_title(task.task_spec)


def _ready(wf) -> list:
    return wf.get_tasks(state=TaskState.READY, manual=True)


def _replay_events(
    events: list[CaseEvent], parsed: ParsedProcess, then: ParsedProcess, engine, result
) -> BpmnWorkflow:
    """Run the case's history through `parsed`; `then` is the version the case ran on."""
    started = next((e for e in events if e.kind == "case_started"), None)
    if started is None:
        raise _Divergence("the case has no recorded start", "ends_early")
    with clock.as_of(started.at):
        data = _start_data(parsed, then, dict(started.detail.get("data") or {}))
        wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=engine)
        for task in wf.get_tasks(state=TaskState.READY):
            task.data.update(data)
        wf.do_engine_steps()
    for event in events:
        with clock.as_of(event.at):
            if event.kind == "task_completed":
                _replay_completion(wf, parsed, then, event, result)
            elif event.kind == "timer_fired":
                with clock.as_of(event.at + TIMING_SLACK):
                    wf.refresh_waiting_tasks()
                wf.do_engine_steps()
            elif event.kind == "message_received":
                _replay_message(wf, event)
    return wf


def _start_data(parsed: ParsedProcess, then: ParsedProcess, recorded: dict) -> dict:
    """The recorded start data (already checked, intake_complete included) as the draft
    starts with it; only another start form checks it again, and may refuse it."""
    from casemgr.engine.cases import _checked_start_data

    if parsed.start_form == then.start_form:
        form_cls = forms.get_form_class(parsed.start_form)
        if form_cls is None:
            return recorded
        clean, _errors = forms.validate(form_cls, recorded, partial=True)
        return {**recorded, **clean}
    try:
        return _checked_start_data(parsed.start_form, recorded)
    except Invalid as exc:
        fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in (exc.errors or {}).items())
        raise _Divergence(
            f"the start form refuses the recorded values ({fields})", "form"
        ) from None


def _accepted(
    form_key: str | None, form_then: str | None, recorded: dict, context: dict, task
) -> dict:
    """The recorded entries as the draft's form reads them.

    With the form the case had, they were accepted then: rules that look at today's ledger
    (an invoice paid since) must not refuse them now. Another form may refuse them.
    """
    form_cls = forms.get_form_class(form_key)
    if form_cls is None:
        return recorded
    clean, errors = forms.validate(form_cls, recorded, context=context)
    if errors and form_key != form_then:
        name = task.task_spec.bpmn_id
        fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items())
        raise _Divergence(
            f"the form of {_title(task)} refuses the recorded values ({fields})",
            "form",
            name,
            expected=name,
        )
    return clean


def _replay_message(wf: BpmnWorkflow, event: CaseEvent) -> None:
    name = str(event.detail.get("message"))
    payload = dict(event.detail.get("payload") or {})
    try:
        wf.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))
    except SpiffWorkflowException:
        raise _elsewhere(wf, f"the case received message {name!r} here", None) from None
    wf.do_engine_steps()


def _replay_completion(
    wf: BpmnWorkflow, parsed: ParsedProcess, then: ParsedProcess, event: CaseEvent, result
) -> None:
    name = str(event.detail.get("task"))
    task = next((t for t in _ready(wf) if t.task_spec.bpmn_id == name), None)
    if task is None:
        title = event.detail.get("title") or name
        raise _elsewhere(wf, f"the case went on with {title!r}", name)
    info, info_then = parsed.human_tasks.get(name), then.human_tasks.get(name)
    recorded = dict(event.detail.get("data") or {})
    clean = _accepted(
        info.form_key if info else None,
        info_then.form_key if info_then else None,
        recorded,
        dict(task.data),
        task,
    )
    task.data.update(clean)
    task.run()
    result.replayed_path.append(name)
    wf.do_engine_steps()


def _waiting(wf: BpmnWorkflow) -> list:
    """The steps a replayed workflow waits at: human tasks first, else events and timers."""
    ready = _ready(wf)
    if ready:
        return ready
    return [
        t
        for t in wf.get_tasks(state=TaskState.WAITING)
        if getattr(t.task_spec, "bpmn_id", None) and getattr(t.task_spec, "bpmn_name", None)
    ]


def _elsewhere(wf: BpmnWorkflow, what: str, expected: str | None) -> _Divergence:
    """The case did `what` here; the draft ended, or waits at other steps."""
    data = jsonable(current_data(wf))
    if wf.is_completed():
        return _Divergence(
            f"{what}; the draft has already ended", "ends_early", expected, expected, data=data
        )
    waiting = _waiting(wf)
    if not waiting:
        return _Divergence(
            f"{what}; the draft is stuck", "waits_elsewhere", expected, expected, data=data
        )
    ids = list(dict.fromkeys(t.task_spec.bpmn_id for t in waiting))
    verb = "asks for" if waiting[0].state == TaskState.READY else "waits at"
    titles = ", ".join(dict.fromkeys(_title(t) for t in waiting))
    return _Divergence(
        f"{what}; the draft {verb} {titles} instead",
        "waits_elsewhere",
        expected or ids[0],
        expected,
        ids,
        data,
    )


def _compare_ending(case: Case, wf: BpmnWorkflow, result: ReplayResult, outputs) -> None:
    if not wf.is_completed():
        waiting = _waiting(wf)
        ids = list(dict.fromkeys(t.task_spec.bpmn_id for t in waiting))
        titles = ", ".join(dict.fromkeys(_title(t) for t in waiting)) or "a step"
        raise _Divergence(
            f"the case ended here; the draft would still wait at {titles}",
            "still_waiting",
            ids[0] if ids else None,
            waiting_at=ids,
        )
    final = jsonable(current_data(wf))
    result.data_changes = _changes(dict(case.data or {}), final, outputs)
    outcome = str(final.get("outcome") or "completed")[:80]
    if case.outcome and outcome != case.outcome:
        raise _Divergence(f"ends with outcome {outcome!r} instead of {case.outcome!r}", "outcome")
    if result.data_changes:
        shown = "; ".join(c.words() for c in result.data_changes[:5])
        more = len(result.data_changes) - 5
        raise _Divergence(
            f"takes the same path but ends with other values: {shown}"
            + (f" and {more} more" if more > 0 else ""),
            "data",
        )


def _changes(recorded: dict, replayed: dict, outputs) -> list[DataChange]:
    """Fields the case ended with that the draft sets otherwise, decision outputs first."""
    changes = [
        DataChange(key, recorded.get(key), replayed.get(key), key in outputs)
        for key in sorted(set(recorded) | set(replayed))
        if not _same(recorded.get(key), replayed.get(key))
    ]
    return sorted(changes, key=lambda c: (not c.decision, c.field))


def _same(recorded: object, replayed: object) -> bool:
    """Equal, or two moments within the replay's timing slack of each other."""
    if recorded == replayed:
        return True
    if isinstance(recorded, str) and isinstance(replayed, str):
        try:
            then, now = datetime.fromisoformat(recorded), datetime.fromisoformat(replayed)
        except ValueError:
            return False
        if len(recorded) > 10 and (then.tzinfo is None) == (now.tzinfo is None):
            return abs(now - then) <= TIMING_SLACK
    return False


def _shown(value: object) -> str:
    text = "(not set)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
