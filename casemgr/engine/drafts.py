"""What process owners do with diagrams beyond the versions API: the engine side of the modeler.

* **Drafts**: one shared working copy per case type (or decision table), saved at any time,
  however incomplete, with the result of its last validation.
* **Publishing** a draft makes version N+1 (``processes.publish``'s contract, with the
  decision tables overlaid by the ones published in the browser); publishing a decision
  table re-publishes every case type calling it, so new cases take the new table and
  running ones keep theirs. **Restore** publishes an old version, tables and all, as N+1.
* **Diff** between two versions: added, removed and changed elements, in words.
* **Replay** (``casemgr.engine.replay``): the recorded data of the last completed cases,
  run through a draft with service calls answered as recorded, to show which would now
  take another path, wait elsewhere, decide otherwise or fail.
* **Migration** of running cases to a newer version, where the elements they wait on still
  exist; each case in its own transaction, each with its answer.
* **Heat map**: how many cases wait at each task now, and for how long (median).

This module and the rest of ``casemgr.engine`` are the only ones that touch SpiffWorkflow.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from SpiffWorkflow import TaskState
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy.orm.exc import StaleDataError

from casemgr.engine import clock
from casemgr.engine.errors import Conflict, Invalid, NotFound
from casemgr.engine.processes import (
    KEY_PATTERN,
    called_decisions,
    decision_files,
    decision_ids,
    decision_tables,
    dmn_for,
    parsed_for,
)
from casemgr.engine.processes import (
    DecisionFile as DecisionFile,  # the modeler's views name it through this module
)

# Publishing a diagram as version N+1 has one implementation: processes.publish.
from casemgr.engine.processes import publish as publish_bpmn
from casemgr.engine.replay import (  # noqa: F401  (the modeler's views name them here)
    ReplayResult,
    completed_cases,
    replay_case,
    replay_draft,
)
from casemgr.engine.specs import (
    MAX_XML_BYTES,
    DiagramError,
    ParsedProcess,
    checked_xml,
)
from casemgr.engine.validation import (
    BPMN_NS,
    DMN_NAMESPACES,
    tidy_message,
    validate_bpmn,
    validate_dmn,
)
from casemgr.engine.workflows import dump, load, load_case
from casemgr.extensions import db
from casemgr.models import (
    Case,
    CaseEvent,
    CaseType,
    DecisionVersion,
    ProcessDraft,
    ProcessVersion,
    TaskRecord,
    User,
)

_SAFE_PARSER = dict(resolve_entities=False, no_network=True, huge_tree=False)
DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _root(xml: str | bytes):
    """Parse untrusted XML the one safe way (DTDs and entities refused first)."""
    return etree.fromstring(checked_xml(xml), etree.XMLParser(**_SAFE_PARSER))


# --- decision tables ------------------------------------------------------------------------

# The overlay of published tables over the seed files lives in ``processes`` (the API's
# publish and validation use it too); these are the names the modeler's views know.
current_decision_tables = decision_tables
pinned_tables = dmn_for


def callers_of(ids: Iterable[str]) -> list[CaseType]:
    """Case types whose newest version calls one of these decisions."""
    wanted = set(ids)
    found = []
    for candidate in db.session.execute(db.select(CaseType).order_by(CaseType.name)).scalars():
        latest = candidate.latest()
        if latest is not None and wanted & called_decisions(latest.bpmn_xml):
            found.append(candidate)
    return found


def decision_versions(key: str) -> list[DecisionVersion]:
    return list(
        db.session.execute(
            db.select(DecisionVersion).filter_by(key=key).order_by(DecisionVersion.version)
        ).scalars()
    )


# --- drafts ---------------------------------------------------------------------------------


def kind_of(xml: str | bytes) -> str | None:
    """'bpmn' or 'dmn' by the root element's namespace; None for anything else."""
    try:
        root = _root(xml)
    except (DiagramError, etree.XMLSyntaxError):
        return None
    namespace = etree.QName(root).namespace or ""
    if namespace == BPMN_NS:
        return "bpmn"
    if namespace.startswith(DMN_NAMESPACES):
        return "dmn"
    return None


def checked_upload(xml: bytes | str, kind: str) -> str:
    """A file a person sends: safe, well-formed, UTF-8 and of the expected kind, else why not.

    Raises Invalid (422) naming the problem; the size limit (413) is the web layer's, before
    the body is read.
    """
    raw = xml.encode() if isinstance(xml, str) else xml
    if len(raw) > MAX_XML_BYTES:
        raise Invalid(f"the file is larger than {MAX_XML_BYTES // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the file is not UTF-8 text") from None
    try:
        _root(raw)
    except DiagramError as exc:
        raise Invalid(tidy_message(exc.message)) from None
    except etree.XMLSyntaxError as exc:
        raise Invalid(f"not well-formed XML: {exc}") from None
    found = kind_of(raw)
    if found != kind:
        what = {"bpmn": "a BPMN diagram", "dmn": "a DMN decision table"}
        raise Invalid(
            f"this is {what.get(found or '', 'neither BPMN nor DMN')}, "
            f"where {what[kind]} was expected"
        )
    return text


def get_draft(kind: str, key: str) -> ProcessDraft | None:
    return db.session.execute(
        db.select(ProcessDraft).filter_by(kind=kind, key=key)
    ).scalar_one_or_none()


def case_type(key: str) -> CaseType | None:
    return db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()


def working_xml(kind: str, key: str) -> tuple[str | None, ProcessDraft | None]:
    """What the modeler opens: the draft, else the newest published version (or table)."""
    draft = get_draft(kind, key)
    if draft is not None:
        return draft.xml, draft
    if kind == "bpmn":
        found = case_type(key)
        latest = found.latest() if found else None
        return (latest.bpmn_xml if latest else None), None
    file = decision_files().get(key)
    return (file.xml if file else None), None


def save_draft(
    kind: str,
    key: str,
    xml: str | bytes,
    user: User | None,
    revision: int | None = None,
    name: str | None = None,
) -> ProcessDraft:
    """Keep the working copy (checked as untrusted XML, validated, never refused for content).

    `revision` is the one the editor loaded: a different current one means somebody saved
    in between, a 409 rather than a silent overwrite.
    """
    if not KEY_PATTERN.fullmatch(key):
        raise Invalid("invalid key: lower-case letters, digits and _, starting with a letter")
    text = checked_upload(xml, kind)
    draft = get_draft(kind, key)
    if draft is not None and revision is not None and revision != draft.revision:
        who = draft.updated_by.label if draft.updated_by else "someone"
        raise Conflict(
            f"{who} saved this draft at {draft.updated_at:%Y-%m-%d %H:%M} UTC after you "
            "opened it; reload to see their changes"
        )
    if draft is None:
        draft = ProcessDraft(kind=kind, key=key, revision=0, name=name or "")
        draft.based_on = _published_version(kind, key)
        db.session.add(draft)
    draft.xml = text
    if name:
        draft.name = name
    draft.revision += 1
    draft.updated_by = user
    draft.updated_at = clock.now()
    record_validation(draft)
    db.session.flush()
    return draft


def _published_version(kind: str, key: str) -> int | None:
    if kind == "bpmn":
        found = case_type(key)
        latest = found.latest() if found else None
        return latest.version if latest else None
    file = decision_files().get(key)
    return file.version if file else None


def validate_xml(kind: str, xml: str) -> list[dict]:
    """Exactly what publishing checks, with the tables a publish would pin."""
    if kind == "dmn":
        return validate_dmn(xml)
    return validate_bpmn(xml, pinned_tables(xml))


def record_validation(draft: ProcessDraft) -> list[dict]:
    """Validate once per distinct XML and keep the answer on the draft."""
    sha = _sha(draft.xml)
    if draft.validated_sha256 != sha or draft.validation_errors is None:
        draft.validation_errors = validate_xml(draft.kind, draft.xml)
        draft.validated_sha256 = sha
        draft.validated_at = clock.now()
    return list(draft.validation_errors)


def discard_draft(kind: str, key: str) -> bool:
    draft = get_draft(kind, key)
    if draft is None:
        return False
    db.session.delete(draft)
    db.session.flush()
    return True


def blank_diagram(key: str, name: str) -> str:
    """A new case type: one pool, one specialist lane, start -> first task -> end, laid out.

    It validates and publishes as it is (a user task without a form key has an empty form),
    so a process owner starts from something that runs.
    """
    if not KEY_PATTERN.fullmatch(key):
        raise Invalid("invalid key: lower-case letters, digits and _, starting with a letter")
    title = _xml_attr(name.strip() or key.replace("_", " ").capitalize())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:bpmndi="{DI_NS}" xmlns:dc="{DC_NS}" \
xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:spiffworkflow="{SPIFF_NS}" \
id="{key}_definitions" targetNamespace="https://casemgr.dev/bpmn">
  <bpmn:collaboration id="{key}_collaboration">
    <bpmn:participant id="{key}_participant" name="{title}" processRef="{key}" />
  </bpmn:collaboration>
  <bpmn:process id="{key}" name="{title}" isExecutable="true">
    <bpmn:laneSet id="{key}_lanes">
      <bpmn:lane id="lane_specialist" name="ar_specialist">
        <bpmn:flowNodeRef>start_{key}</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>first_step</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end_{key}</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start_{key}" name="Received">
      <bpmn:outgoing>flow_to_first_step</bpmn:outgoing>
    </bpmn:startEvent>
    <bpmn:sequenceFlow id="flow_to_first_step" sourceRef="start_{key}" targetRef="first_step" />
    <bpmn:userTask id="first_step" name="First step">
      <bpmn:incoming>flow_to_first_step</bpmn:incoming>
      <bpmn:outgoing>flow_to_end</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="flow_to_end" sourceRef="first_step" targetRef="end_{key}" />
    <bpmn:endEvent id="end_{key}" name="Done">
      <bpmn:incoming>flow_to_end</bpmn:incoming>
    </bpmn:endEvent>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="{key}_diagram">
    <bpmndi:BPMNPlane id="{key}_plane" bpmnElement="{key}_collaboration">
      <bpmndi:BPMNShape id="{key}_participant_di" bpmnElement="{key}_participant" \
isHorizontal="true">
        <dc:Bounds x="160" y="80" width="640" height="200" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="lane_specialist_di" bpmnElement="lane_specialist" isHorizontal="true">
        <dc:Bounds x="190" y="80" width="610" height="200" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="start_{key}_di" bpmnElement="start_{key}">
        <dc:Bounds x="252" y="162" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="first_step_di" bpmnElement="first_step">
        <dc:Bounds x="400" y="140" width="100" height="80" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_{key}_di" bpmnElement="end_{key}">
        <dc:Bounds x="652" y="162" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="flow_to_first_step_di" bpmnElement="flow_to_first_step">
        <di:waypoint x="288" y="180" />
        <di:waypoint x="400" y="180" />
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="flow_to_end_di" bpmnElement="flow_to_end">
        <di:waypoint x="500" y="180" />
        <di:waypoint x="652" y="180" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def blank_decision_table(key: str, name: str) -> str:
    """A new decision table: one input, one output, one rule; the DMN editor takes it on."""
    if not KEY_PATTERN.fullmatch(key):
        raise Invalid("invalid key: lower-case letters, digits and _, starting with a letter")
    title = _xml_attr(name.strip() or key.replace("_", " ").capitalize())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="{key}_definitions" \
name="{title}" namespace="https://casemgr.dev/dmn">
  <decision id="{key}" name="{title}">
    <decisionTable id="{key}_table" hitPolicy="FIRST">
      <input id="{key}_input" label="Amount">
        <inputExpression id="{key}_input_expression" typeRef="number">
          <text>amount</text>
        </inputExpression>
      </input>
      <output id="{key}_output" label="Result" name="result" typeRef="string" />
      <rule id="{key}_rule_1">
        <inputEntry id="{key}_rule_1_in"><text>-</text></inputEntry>
        <outputEntry id="{key}_rule_1_out"><text>"ok"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def _xml_attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


# --- publishing -----------------------------------------------------------------------------


@dataclass
class PublishResult:
    errors: list[dict] = field(default_factory=list)
    version: ProcessVersion | None = None
    decision: DecisionVersion | None = None
    # Case types re-published because they call a decision of the published table.
    republished: list[ProcessVersion] = field(default_factory=list)


def publish_draft(kind: str, key: str, user: User | None) -> PublishResult:
    """Publish the draft and drop it; nothing changes when it does not validate."""
    draft = get_draft(kind, key)
    if draft is None:
        raise NotFound(f"there is no draft of {key}")
    if kind == "dmn":
        result = publish_dmn(key, draft.xml, user)
    else:
        version, errors = publish_bpmn(key, draft.xml, user, name=draft.name or None)
        result = PublishResult(errors=errors, version=version)
    if result.errors:
        draft.validation_errors = result.errors
        draft.validated_sha256 = _sha(draft.xml)
        draft.validated_at = clock.now()
        return result
    db.session.delete(draft)
    db.session.flush()
    return result


def publish_dmn(key: str, dmn_xml: str, user: User | None) -> PublishResult:
    """A decision table as the next version, pinned into new versions of its callers."""
    errors = validate_dmn(dmn_xml)
    if errors:
        return PublishResult(errors=errors)
    ids = decision_ids(dmn_xml)
    files = decision_files()
    before = files[key].decision_ids if key in files else ()
    taken = {
        decision_id: file.key
        for file in files.values()
        if file.key != key
        for decision_id in file.decision_ids
    }
    clashes = [d for d in ids if d in taken]
    if clashes:
        return PublishResult(
            errors=[
                {"element": d, "message": f"decision {d!r} is already defined in {taken[d]!r}"}
                for d in clashes
            ]
        )
    previous = decision_versions(key)
    row = DecisionVersion(
        key=key,
        version=(previous[-1].version + 1) if previous else 1,
        dmn_xml=dmn_xml,
        decision_ids=list(ids),
        sha256=_sha(dmn_xml),
        published_by_id=user.id if user else None,
        published_at=clock.now(),
    )
    db.session.add(row)
    db.session.flush()
    result = PublishResult(decision=row)
    # Callers of a decision the file drops are re-published too: their validation fails.
    for found in callers_of({*ids, *before}):
        latest = found.latest()
        version, problems = publish_bpmn(found.key, latest.bpmn_xml, user)
        if problems:
            # The table breaks a caller: publish nothing at all.
            for made in [*result.republished, row]:
                db.session.delete(made)
            db.session.flush()
            return PublishResult(
                errors=[
                    {"element": p["element"], "message": f"{found.key}: {p['message']}"}
                    for p in problems
                ]
            )
        result.republished.append(version)
    return result


def version_of(key: str, number: int) -> ProcessVersion:
    found = case_type(key)
    if found is None:
        raise NotFound(f"no case type {key!r}")
    for version in found.versions:
        if version.version == number:
            return version
    raise NotFound(f"{key} has no version {number}")


def restore_version(
    key: str, number: int, user: User | None
) -> tuple[ProcessVersion | None, list[dict]]:
    """Publish an old version, with the decision tables it had, as the next one."""
    old = version_of(key, number)
    return publish_bpmn(key, old.bpmn_xml, user, dmn=list(old.dmn_xml or []))


# --- diff -------------------------------------------------------------------------------------


_COMPARED = {
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "subProcess", "adHocSubProcess", "transaction", "callActivity",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
    "boundaryEvent", "exclusiveGateway", "inclusiveGateway", "parallelGateway",
    "complexGateway", "eventBasedGateway", "sequenceFlow", "lane", "participant", "process",
    "dataObjectReference", "textAnnotation", "messageFlow",
}  # fmt: skip
_ATTRIBUTES = (
    "sourceRef", "targetRef", "default", "attachedToRef", "cancelActivity", "isExecutable",
    "calledElement", "scriptFormat", "triggeredByEvent",
)  # fmt: skip


@dataclass(frozen=True)
class ElementChange:
    element: str
    kind: str
    name: str
    details: tuple[str, ...] = ()


@dataclass
class DiagramDiff:
    added: list[ElementChange] = field(default_factory=list)
    removed: list[ElementChange] = field(default_factory=list)
    changed: list[ElementChange] = field(default_factory=list)
    moved: list[ElementChange] = field(default_factory=list)  # only the layout changed

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.moved)

    def as_json(self) -> dict:
        def items(changes: list[ElementChange]) -> list[dict]:
            return [
                {"element": c.element, "kind": c.kind, "name": c.name, "details": list(c.details)}
                for c in changes
            ]

        return {
            "added": items(self.added),
            "removed": items(self.removed),
            "changed": items(self.changed),
            "moved": items(self.moved),
        }


def _local(node) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _signature(root) -> dict[str, dict]:
    """Element id -> what makes it behave as it does (not where it is drawn)."""
    lanes = {}
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.findall(f"{{{BPMN_NS}}}flowNodeRef"):
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id")
    found: dict[str, dict] = {}
    for node in root.iter():
        if etree.QName(node).namespace != BPMN_NS if isinstance(node.tag, str) else True:
            continue
        if _local(node) not in _COMPARED or not node.get("id"):
            continue
        sig: dict = {"kind": _local(node), "name": (node.get("name") or "").strip()}
        for attr in _ATTRIBUTES:
            if node.get(attr) is not None:
                sig[attr] = node.get(attr)
        if node.get("id") in lanes:
            sig["lane"] = lanes[node.get("id")]
        for tag, label in (
            ("conditionExpression", "condition"),
            ("script", "script"),
            ("timeDate", "timer date"),
            ("timeDuration", "timer duration"),
            ("timeCycle", "timer cycle"),
        ):
            child = next(node.iterchildren(f"{{{BPMN_NS}}}{tag}"), None)
            if child is None and tag.startswith("time"):
                definition = node.find(f"{{{BPMN_NS}}}timerEventDefinition")
                child = definition.find(f"{{{BPMN_NS}}}{tag}") if definition is not None else None
            if child is not None:
                sig[label] = (child.text or "").strip()
        definitions = sorted(
            _local(c) for c in node if _local(c).endswith("EventDefinition")
        )  # what kind of event it is
        if definitions:
            sig["event"] = ", ".join(definitions)
        extensions = node.find(f"{{{BPMN_NS}}}extensionElements")
        if extensions is not None:
            for prop in extensions.iter(f"{{{SPIFF_NS}}}property"):
                sig[f"property {prop.get('name')}"] = prop.get("value")
            for tag in ("preScript", "postScript", "calledDecisionId"):
                child = extensions.find(f"{{{SPIFF_NS}}}{tag}")
                if child is not None:
                    sig[tag] = (child.text or "").strip()
            operator = extensions.find(f"{{{SPIFF_NS}}}serviceTaskOperator")
            if operator is not None:
                sig["operation"] = operator.get("id")
                sig["operation parameters"] = tuple(
                    (p.get("id"), p.get("value")) for p in operator.iter(f"{{{SPIFF_NS}}}parameter")
                )
        found[node.get("id")] = sig
    return found


def _layout(root) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {}
    for node in root.iter(f"{{{DI_NS}}}BPMNShape", f"{{{DI_NS}}}BPMNEdge"):
        bounds = node.find(f"{{{DC_NS}}}Bounds")
        points = tuple(
            (p.get("x"), p.get("y"))
            for p in node.iter("{http://www.omg.org/spec/DD/20100524/DI}waypoint")
        )
        box = (
            tuple(bounds.get(a) for a in ("x", "y", "width", "height"))
            if bounds is not None
            else ()
        )
        shapes[node.get("bpmnElement")] = (box, points)
    return shapes


_LABELS = {
    "lane": "role (lane)",
    "property formKey": "form",
    "property dueDate": "due date",
    "property fourEyes": "four-eyes",
    "property role": "role override",
    "calledDecisionId": "decision table",
    "preScript": "script before",
    "postScript": "script after",
}
_SHOWN_IN_FULL = {
    "name", "lane", "property formKey", "property role", "calledDecisionId",
    "property fourEyes", "property dueDate", "operation", "default",
    "timer duration", "timer date", "timer cycle", "sourceRef", "targetRef",
}  # fmt: skip


def _describe(key: str, old, new) -> str:
    label = _LABELS.get(key, key)
    if old is None:
        return f"{label} set to {new!r}" if key in _SHOWN_IN_FULL else f"{label} added"
    if new is None:
        return f"{label} removed (was {old!r})" if key in _SHOWN_IN_FULL else f"{label} removed"
    if key in _SHOWN_IN_FULL:
        return f"{label}: {old!r} → {new!r}"
    return f"{label} changed"


def diff_diagrams(old_xml: str, new_xml: str) -> DiagramDiff:
    """What changed between two diagrams, element by element, in words."""
    old_root, new_root = _root(old_xml), _root(new_xml)
    old, new = _signature(old_root), _signature(new_root)
    old_layout, new_layout = _layout(old_root), _layout(new_root)
    diff = DiagramDiff()
    for element, sig in new.items():
        if element not in old:
            diff.added.append(ElementChange(element, sig["kind"], sig["name"]))
    for element, sig in old.items():
        if element not in new:
            diff.removed.append(ElementChange(element, sig["kind"], sig["name"]))
            continue
        other = new[element]
        keys = [k for k in dict.fromkeys([*sig, *other]) if sig.get(k) != other.get(k)]
        if keys:
            details = tuple(_describe(k, sig.get(k), other.get(k)) for k in keys)
            diff.changed.append(ElementChange(element, other["kind"], other["name"], details))
        elif old_layout.get(element) != new_layout.get(element):
            diff.moved.append(ElementChange(element, other["kind"], other["name"]))
    return diff


# --- migration --------------------------------------------------------------------------------


def _title(task) -> str:
    spec = task.task_spec
    return repr(getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None) or spec.name)


@dataclass
class MigrationCheck:
    case_id: int
    title: str
    from_version: int
    to_version: int
    safe: bool
    reason: str
    waiting: list[str] = field(default_factory=list)
    migrated: bool = False

    def as_json(self) -> dict:
        return {
            "case_id": self.case_id,
            "title": self.title,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "safe": self.safe,
            "migrated": self.migrated,
            "reason": self.reason,
            "waiting": self.waiting,
        }


_UNFINISHED = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
_PREDICTED = TaskState.PREDICTED_MASK


def open_cases_behind(target: ProcessVersion, case_ids: Iterable[int] | None = None) -> list[Case]:
    """Open cases of the type on another version than `target` (optionally only these)."""
    query = db.select(Case).where(
        Case.case_type_id == target.case_type_id,
        Case.status == "open",
        Case.process_version_id != target.id,
    )
    if case_ids is not None:
        query = query.where(Case.id.in_(list(case_ids)))
    return list(db.session.execute(query.order_by(Case.id)).scalars())


def _workflows(wf) -> list[tuple[object, str | None]]:
    """The top workflow and each subworkflow, with the spec name it runs (None: the top)."""
    return [(wf, None), *((sub, sub.spec.name) for sub in wf.subprocesses.values())]


def _target_spec(parsed: ParsedProcess, spec_name: str | None):
    return parsed.spec if spec_name is None else parsed.subprocess_specs.get(spec_name)


def check_migration(case: Case, target: ProcessVersion) -> MigrationCheck:
    """Safe when every step the case holds (waiting or done but kept) exists, same kind."""
    check = MigrationCheck(
        case.id, case.title, case.process_version.version, target.version, False, ""
    )
    if case.status != "open":
        check.reason = f"the case is {case.status}"
        return check
    if case.broken:
        check.reason = "the case is flagged as broken; repair it first"
        return check
    try:
        wf = load_case(case)
        parsed = parsed_for(target)
    except (DiagramError, SpiffWorkflowException, KeyError, ValueError, TypeError) as exc:
        check.reason = f"its workflow could not be read: {exc}"
        return check
    check.waiting = sorted(
        {
            t.task_spec.bpmn_name or t.task_spec.bpmn_id
            for w, _ in _workflows(wf)
            for t in w.tasks.values()
            if t.state & _UNFINISHED and getattr(t.task_spec, "bpmn_id", None)
        }
    )
    problems = list(_migration_problems(wf, parsed, target.version))
    check.safe = not problems
    check.reason = "; ".join(problems) if problems else "every step it waits on still exists"
    return check


def _migration_problems(wf, parsed: ParsedProcess, number: int) -> list[str]:
    """Why the case cannot move, once per element: where it waits comes before where it was.

    An element is often several engine tasks (a multi-instance task and its instances, a
    task and its boundary events' split and join); the person sees one step, by its name.
    """
    gone: dict[str, dict] = {}  # element -> {"name", "waiting"}
    retyped: list[str] = []
    joins: list[str] = []  # shown unless a branch is gone already (the same change, twice)
    internal: list[str] = []  # the engine's own steps (boundary splits, joins) of an element
    for workflow, spec_name in _workflows(wf):
        new_spec = _target_spec(parsed, spec_name)
        live = [t for t in workflow.tasks.values() if not t.state & _PREDICTED]
        if new_spec is None:
            if any(t.state & _UNFINISHED for t in live):
                retyped.append(
                    f"it is inside subprocess {spec_name!r}, which version {number} no longer has"
                )
            continue
        for task in live:
            spec = task.task_spec
            other = new_spec.task_specs.get(spec.name)
            element = getattr(spec, "bpmn_id", None)
            if other is None and element:
                seen = gone.setdefault(element, {"name": None, "waiting": False})
                seen["name"] = seen["name"] or getattr(spec, "bpmn_name", None)
                seen["waiting"] |= bool(task.state & _UNFINISHED)
            elif other is None:
                internal.append(
                    f"it has passed through {_title(task)}, which version {number} no longer has"
                )
            elif type(other).__name__ != type(spec).__name__:
                retyped.append(
                    f"{_title(task)} is now a {type(other).__name__}, not a {type(spec).__name__}"
                )
            elif problem := _join_gains_branches(task, other):
                joins.append(problem)
    visible = [
        f"it {'waits at' if seen['waiting'] else 'has passed through'} "
        f"{seen['name'] or element!r}, which version {number} no longer has"
        for element, seen in sorted(gone.items(), key=lambda item: not item[1]["waiting"])
    ]
    return list(dict.fromkeys([*visible, *retyped, *([] if visible else joins)] or internal))


def _join_gains_branches(task, new_spec) -> str | None:
    """A parallel join the case is already inside (its split has run) that the new version
    gives more incoming branches would wait for ever for the ones the case never started."""
    if not isinstance(new_spec, ParallelGateway) or not task.state & (
        TaskState.FUTURE | TaskState.WAITING
    ):
        return None
    before = {spec.name for spec in task.task_spec.inputs}
    added = [spec for spec in new_spec.inputs if spec.name not in before]
    if not added:
        return None
    names = ", ".join(repr(getattr(s, "bpmn_name", None) or s.bpmn_id or s.name) for s in added)
    return (
        f"{_title(task)} would also wait for {names}, which this case never started "
        "(the parallel split before it has run)"
    )


def migrate_case(case: Case, target: ProcessVersion, user: User | None) -> MigrationCheck:
    """Move one case to `target` in its own transaction; unsafe cases stay, saying why."""
    check = check_migration(case, target)
    if not check.safe:
        return check
    parsed = parsed_for(target)
    before = case.process_version.version
    try:
        wf = load_case(case)
        for workflow, spec_name in _workflows(wf):
            _repoint(workflow, _target_spec(parsed, spec_name))
        wf.spec = parsed.spec
        wf.subprocess_specs = parsed.subprocess_specs
        text = dump(wf)
        load(text, case.id, parsed)  # what is saved must load again, or nothing is saved
    except (SpiffWorkflowException, KeyError, ValueError, TypeError, AttributeError) as exc:
        db.session.rollback()
        check.safe, check.reason = False, f"could not be moved: {exc}"
        return check
    case.workflow_json = text
    case.process_version = target
    moved = _refresh_open_tasks(case, parsed)
    db.session.add(
        CaseEvent(
            case=case,
            at=clock.now(),
            actor=user.username if user else "system",
            kind="case_migrated",
            detail={"from_version": before, "to_version": target.version, "tasks": moved},
        )
    )
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        check.safe, check.reason = False, "the case changed while it was being moved; try again"
        return check
    check.migrated = True
    check.reason = f"moved from version {before} to {target.version}"
    return check


def _repoint(workflow, new_spec) -> None:
    """Each task takes the new version's spec of the same name; predictions are redone."""
    workflow.spec = new_spec
    for task in workflow.tasks.values():
        other = new_spec.task_specs.get(task.task_spec.name)
        if other is not None:
            task.task_spec = other
    for task in list(workflow.tasks.values()):
        if task.id not in workflow.tasks or not task.state & (TaskState.READY | TaskState.WAITING):
            continue
        # Children were predicted from the old flow; keep the task (its id, data and timer
        # moment) and predict again from the new one, all the way down as SpiffWorkflow does
        # for a new workflow: a join or a subprocess's end only finds what was predicted.
        task._drop_children(force=True)
        task.task_spec._predict(task, mask=TaskState.NOT_FINISHED_MASK)


def _refresh_open_tasks(case: Case, parsed: ParsedProcess) -> list[dict]:
    """Open tasks take the new version's role, title and form; a holder without the role lets go."""
    moved = []
    for row in db.session.execute(
        db.select(TaskRecord).where(TaskRecord.case_id == case.id, TaskRecord.state == "open")
    ).scalars():
        info = parsed.human_tasks.get(row.name)
        if info is None:
            continue
        role = info.role or row.role
        if role != row.role:
            moved.append({"task": row.name, "from_role": row.role, "to_role": role})
            if row.assignee is not None and role not in row.assignee.role_keys:
                row.assignee = None
        row.role = role
        row.title = info.title
        row.form_key = info.form_key
        row.four_eyes = list(info.four_eyes)
    return moved


def migrate_cases(
    target: ProcessVersion, case_ids: Iterable[int] | None, user: User | None
) -> list[MigrationCheck]:
    """Each case on its own: one that cannot move stops no other."""
    ids = [c.id for c in open_cases_behind(target, case_ids)]
    results = []
    for case_id in ids:
        case = db.session.get(Case, case_id)
        if case is None:
            continue
        results.append(migrate_case(case, target, user))
    return results


# --- heat map ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heat:
    element: str
    title: str
    waiting: int
    median_seconds: float
    oldest_seconds: float

    def as_json(self) -> dict:
        return {
            "element": self.element,
            "title": self.title,
            "waiting": self.waiting,
            "median_wait_seconds": round(self.median_seconds),
            "oldest_wait_seconds": round(self.oldest_seconds),
        }


def heat_map(
    key: str, version: ProcessVersion | None = None, now: datetime | None = None
) -> list[Heat]:
    """Open human tasks of the type by element: how many wait, and the median wait.

    With `version`, only cases pinned to it; without, cases on every version (drawn on the
    newest diagram, where most elements keep their ids).
    """
    now = now or clock.now()
    query = db.select(TaskRecord.name, TaskRecord.title, TaskRecord.created_at).where(
        TaskRecord.case_type_key == key, TaskRecord.state == "open"
    )
    if version is not None:
        query = query.join(Case, Case.id == TaskRecord.case_id).where(
            Case.process_version_id == version.id
        )
    waits: dict[str, list[float]] = {}
    titles: dict[str, str] = {}
    for name, title, created_at in db.session.execute(query):
        waits.setdefault(name, []).append(max(0.0, (now - created_at).total_seconds()))
        titles[name] = title
    return sorted(
        (
            Heat(name, titles[name], len(values), statistics.median(values), max(values))
            for name, values in waits.items()
        ),
        key=lambda h: (-h.waiting, h.element),
    )


def element_ids(xml: str) -> set[str]:
    """Every id in a diagram (to tell which heat-map elements the drawn version has)."""
    try:
        root = _root(xml)
    except (DiagramError, etree.XMLSyntaxError):
        return set()
    return {n.get("id") for n in root.iter() if isinstance(n.tag, str) and n.get("id")}
