"""Parsing diagrams safely, once: specs are cached by the sha256 of their XML."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from threading import Lock

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from casemgr.models.users import ROLES

MAX_XML_BYTES = 5 * 1024 * 1024


class DiagramError(Exception):
    """A diagram that cannot be used, with the element it concerns where known."""

    def __init__(self, message: str, element: str | None = None):
        super().__init__(message)
        self.message = message
        self.element = element


@dataclass(frozen=True)
class HumanTaskInfo:
    bpmn_id: str
    title: str
    role: str | None
    lane: str | None
    form_key: str | None
    due_date: str | None
    four_eyes: tuple[str, ...]


@dataclass
class ParsedProcess:
    process_id: str
    name: str
    spec: object
    subprocess_specs: dict
    start_form: str | None
    human_tasks: dict[str, HumanTaskInfo] = field(default_factory=dict)


_cache: dict[str, ParsedProcess] = {}
_lock = Lock()


def checked_xml(data: bytes | str) -> bytes:
    """Refuse what untrusted XML must not do (DTDs, entities, external references) first."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_XML_BYTES:
        raise DiagramError(f"the file is larger than {MAX_XML_BYTES // (1024 * 1024)} MB")
    try:
        SafeET.fromstring(raw, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise DiagramError(f"refused unsafe XML: {type(exc).__name__} ({exc})") from None
    except SafeET.ParseError as exc:
        raise DiagramError(f"not well-formed XML: {exc}") from None
    return raw


def role_for_lane(lane: str | None) -> str | None:
    """A lane names its role by key ("credit_manager") or label ("Credit Manager")."""
    if not lane:
        return None
    text = lane.strip()
    if text in ROLES:
        return text
    for key, label in ROLES.items():
        if text.lower() in (label.lower(), key.replace("_", " ")):
            return key
    return None


def content_hash(bpmn_xml: str, dmn_xmls: list[str] | tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256(bpmn_xml.encode())
    for dmn in dmn_xmls:
        digest.update(b"\0")
        digest.update(dmn.encode())
    return digest.hexdigest()


def parse_process(
    bpmn_xml: str, dmn_xmls: list[str] | tuple[str, ...] = (), process_id: str | None = None
) -> ParsedProcess:
    key = content_hash(bpmn_xml, dmn_xmls) + (process_id or "")
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    parsed = _parse(bpmn_xml, list(dmn_xmls), process_id)
    with _lock:
        _cache[key] = parsed
    return parsed


def _parse(bpmn_xml: str, dmn_xmls: list[str], process_id: str | None) -> ParsedProcess:
    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_xml(_lxml(bpmn_xml), filename="diagram.bpmn")
        for i, dmn in enumerate(dmn_xmls):
            parser.add_dmn_xml(_lxml(dmn), filename=f"decision{i}.dmn")
        ids = parser.get_process_ids()
        if not ids:
            raise DiagramError(
                'the diagram has no executable process (set isExecutable="true" on a process)'
            )
        chosen = process_id if process_id in ids else _main_process(parser, ids)
        spec = parser.get_spec(chosen)
        subprocess_specs = parser.get_subprocess_specs(chosen)
    except ValidationException as exc:
        raise DiagramError(_validation_message(exc), exc.id or None) from None
    except DiagramError:
        raise
    except (etree.XMLSyntaxError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise DiagramError(f"the diagram could not be read: {exc}") from None
    _wire_loops(spec, subprocess_specs)
    return ParsedProcess(
        process_id=chosen,
        name=spec.description or chosen,
        spec=spec,
        subprocess_specs=subprocess_specs,
        start_form=_start_form(spec),
        human_tasks=_human_tasks(spec, subprocess_specs),
    )


def _wire_loops(spec, subprocess_specs: dict) -> None:
    """Connect each loop or multi-instance task to the completion of its instances, as the
    library's deserializer does for a spec it restores. A parsed spec gets that connection
    only when a workflow creates an instance; a case stored mid-loop and loaded with a
    parsed spec (casemgr stores no spec with a case: casemgr.engine.serialization) would
    otherwise never hear that its instances finished, and wait for ever."""
    for process in (spec, *subprocess_specs.values()):
        for task_spec in process.task_specs.values():
            if not isinstance(task_spec, LoopTask):
                continue
            instance = process.task_specs.get(task_spec.task_spec)
            if instance is not None and not instance.completed_event.is_connected(
                task_spec.merge_child
            ):
                instance.completed_event.connect(task_spec.merge_child)


def _lxml(text: str):
    safe = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    return etree.fromstring(checked_xml(text), parser=safe)


def _main_process(parser: SpiffBpmnParser, ids: list[str]) -> str:
    """The process no other process calls (a call activity's target is not the main one)."""
    called = set()
    for pid in ids:
        called.update(parser.get_process_parser(pid).called_element_ids())
    top = [pid for pid in ids if pid not in called]
    return (top or ids)[0]


def _validation_message(exc: ValidationException) -> str:
    message = str(exc).split("\n")[0]
    where = f" (element {exc.id})" if getattr(exc, "id", None) else ""
    return f"{message}{where}"


def properties_of(task_spec) -> dict[str, str]:
    extensions = getattr(task_spec, "extensions", None) or {}
    return dict(extensions.get("properties", {}))


def _start_form(spec) -> str | None:
    for task_spec in spec.task_specs.values():
        if type(task_spec).__name__ == "StartEvent":
            form = properties_of(task_spec).get("formKey")
            if form:
                return form
    return None


def _human_tasks(spec, subprocess_specs: dict) -> dict[str, HumanTaskInfo]:
    found: dict[str, HumanTaskInfo] = {}
    for process in [spec, *subprocess_specs.values()]:
        for task_spec in process.task_specs.values():
            if not getattr(task_spec, "manual", False):
                continue
            props = properties_of(task_spec)
            lane = task_spec.lane
            role = props.get("role") or role_for_lane(lane)
            found[task_spec.bpmn_id] = HumanTaskInfo(
                bpmn_id=task_spec.bpmn_id,
                title=task_spec.bpmn_name or task_spec.bpmn_id,
                role=role,
                lane=lane,
                form_key=props.get("formKey") or None,
                due_date=props.get("dueDate") or None,
                four_eyes=tuple(
                    t.strip() for t in props.get("fourEyes", "").split(",") if t.strip()
                ),
            )
    return found
