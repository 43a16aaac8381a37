"""What the case page draws on a case's diagram, from the engine's side.

The case page marks the completed path, the active tasks, the waiting timers and a failed
element. Most of that comes from relational rows (the task index and the case events), but
two things only the engine knows:

* which timers a case waits on and when they fire: that is in the serialized workflow, so
  ``workflow_marks`` loads it (one compacted workflow: about a millisecond);
* which non-human elements already ran (start events, gateways, script and service tasks).
  Compaction drops finished tasks from the tree, so the workflow forgets them; but every
  element that *dominates* a reached element in the diagram's flow graph (lies on every
  path from the start to it) must have run before it. ``ran_before`` computes that from the
  parsed spec, which is cached per version, without loading any workflow.

Nothing here changes a case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import Lock

from flask import current_app
from lxml import etree
from SpiffWorkflow import TaskState

from casemgr.engine.errors import CorruptCaseState
from casemgr.engine.processes import parsed_for
from casemgr.engine.specs import DiagramError, checked_xml
from casemgr.engine.workflows import load_case, timer_due_at, waiting_timers
from casemgr.models import Case, ProcessVersion

BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
# How the engine words a failed step (cases._engine_failure): "… could not continue at X: …".
_FAILURE_PREFIX = "the process could not continue at "


@dataclass(frozen=True)
class WaitingTimer:
    element_id: str
    due_at: datetime


@dataclass(frozen=True)
class WorkflowMarks:
    """What the serialized workflow adds to the relational view of a case."""

    waiting_timers: list[WaitingTimer] = field(default_factory=list)
    completed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    loaded: bool = True


# --- from the workflow ----------------------------------------------------------------------


def workflow_marks(case: Case) -> WorkflowMarks:
    """Waiting timers with their due moments, completed and failed elements still in the tree.

    A case whose workflow cannot be loaded (a broken row) answers empty marks with
    ``loaded=False`` rather than an error: the case page must still show everything else.
    """
    failed = failed_elements(case)
    if not case.workflow_json:
        return WorkflowMarks(failed=failed, loaded=False)
    try:
        wf = load_case(case)
    except CorruptCaseState as exc:  # flagged when someone acts on it; show the rest
        current_app.logger.warning("case %s: no diagram marks: %s", case.id, exc.reason)
        return WorkflowMarks(failed=failed, loaded=False)
    completed: set[str] = set()
    for workflow in (wf, *getattr(wf, "subprocesses", {}).values()):
        # Walk the task dicts, not the iterator: it is cheaper and has no depth limit.
        for task in workflow.tasks.values():
            bpmn_id = getattr(task.task_spec, "bpmn_id", None)
            if not bpmn_id:
                continue  # the library's own tasks (Start, End, boundary splits and joins)
            if task.state == TaskState.COMPLETED:
                completed.add(bpmn_id)
            elif task.state == TaskState.ERROR:
                failed.add(bpmn_id)
    timers = []
    for task in waiting_timers(wf):
        due = timer_due_at(task)
        bpmn_id = getattr(task.task_spec, "bpmn_id", None)
        if due is not None and bpmn_id:
            timers.append(WaitingTimer(bpmn_id, datetime.fromtimestamp(due.timestamp(), UTC)))
    timers.sort(key=lambda t: (t.due_at, t.element_id))
    return WorkflowMarks(waiting_timers=timers, completed=completed, failed=failed)


def failed_elements(case: Case) -> set[str]:
    """The element a broken case stopped at, read from its ``broken`` message.

    A failed step is rolled back, so the saved workflow never holds the error; the engine's
    message names the element by its name or id, which is matched against the version's spec.
    """
    message = case.broken or ""
    if not message.startswith(_FAILURE_PREFIX):
        return set()
    where = message[len(_FAILURE_PREFIX) :]
    try:
        parsed = parsed_for(case.process_version)
    except DiagramError:
        return set()
    found = set()
    for spec in _all_specs(parsed):
        for task_spec in spec.task_specs.values():
            bpmn_id = getattr(task_spec, "bpmn_id", None)
            if not bpmn_id:
                continue
            label = getattr(task_spec, "bpmn_name", None) or bpmn_id
            if where.startswith(f"{label}:"):
                found.add(bpmn_id)
    return found


# --- from the diagram's flow graph ------------------------------------------------------------


_dominators: dict[str, dict[str, dict[str, frozenset[str]]]] = {}
_dominators_lock = Lock()


def ran_before(version: ProcessVersion, reached: Iterable[str]) -> set[str]:
    """Elements that certainly ran before the reached ones: their dominators in the flow graph.

    Sound for loops and gateways (a dominator lies on *every* path from the start); an
    element on only some paths (the intake task when the intake came complete) is not
    claimed. Reaching an element inside a subprocess reaches the subprocess too.
    """
    reached = set(reached)
    if not reached:
        return set()
    try:
        parsed = parsed_for(version)
    except DiagramError:
        return set()
    per_spec = _dominators_for(version.sha256 + "/" + parsed.process_id, parsed)
    reached |= _containers_of(parsed, reached, per_spec)
    found: set[str] = set()
    for doms in per_spec.values():
        for element in reached & doms.keys():
            found |= doms[element] - {element}
    return found


def _all_specs(parsed) -> list:
    return [parsed.spec, *parsed.subprocess_specs.values()]


def _containers_of(parsed, reached: set[str], per_spec: dict) -> set[str]:
    """The subprocess and call-activity elements whose inner elements were reached."""
    specs_with_reached = {name for name, doms in per_spec.items() if reached & doms.keys()}
    containers = set()
    for spec in _all_specs(parsed):
        for task_spec in spec.task_specs.values():
            inner = getattr(task_spec, "spec", None)
            bpmn_id = getattr(task_spec, "bpmn_id", None)
            if bpmn_id and isinstance(inner, str) and inner in specs_with_reached:
                containers.add(bpmn_id)
    return containers


def _dominators_for(key: str, parsed) -> dict[str, dict[str, frozenset[str]]]:
    """Spec name -> BPMN id -> the BPMN ids that dominate it; computed once per version."""
    with _dominators_lock:
        cached = _dominators.get(key)
    if cached is not None:
        return cached
    result = {spec.name: _bpmn_dominators(spec) for spec in _all_specs(parsed)}
    with _dominators_lock:
        _dominators[key] = result
    return result


def _bpmn_dominators(spec) -> dict[str, frozenset[str]]:
    """Iterative dominator sets over the spec graph (a few dozen nodes: plain sets suffice).

    The graph includes the library's own nodes (Start, boundary splits), so a boundary
    event is reached through its split like the activity it is attached to.
    """
    start = spec.start
    order = _reachable(start)
    preds = {node.name: [p.name for p in node.inputs if p.name in order] for node in order.values()}
    every = frozenset(order)
    dom = {name: every for name in order}
    dom[start.name] = frozenset({start.name})
    changed = True
    while changed:
        changed = False
        for name in order:
            if name == start.name:
                continue
            incoming = [dom[p] for p in preds[name]]
            new = frozenset({name}).union(frozenset.intersection(*incoming) if incoming else ())
            if new != dom[name]:
                dom[name] = new
                changed = True
    bpmn_ids = {name: getattr(node, "bpmn_id", None) for name, node in order.items()}
    return {
        bpmn_ids[name]: frozenset(bpmn_ids[d] for d in doms if bpmn_ids[d])
        for name, doms in dom.items()
        if bpmn_ids[name]
    }


def _reachable(start) -> dict:
    """Spec nodes reachable from the start, in depth-first order (name -> task spec)."""
    seen: dict = {}
    stack = [start]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen[node.name] = node
        stack.extend(reversed(node.outputs))
    return seen


# --- the diagram file -------------------------------------------------------------------------


_layout_cache: dict[str, bool] = {}


def has_layout(version: ProcessVersion) -> bool:
    """Whether the version's BPMN carries diagram interchange (shapes to draw).

    A file without BPMNDI runs fine but bpmn-js has nothing to draw; the case page then
    says so instead of showing an empty canvas. Cached by the version's content hash.
    """
    cached = _layout_cache.get(version.sha256)
    if cached is not None:
        return cached
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(checked_xml(version.bpmn_xml), parser=parser)
    except (DiagramError, etree.XMLSyntaxError):
        answer = False
    else:
        answer = next(root.iter(f"{{{BPMNDI_NS}}}BPMNShape"), None) is not None
    _layout_cache[version.sha256] = answer
    return answer
