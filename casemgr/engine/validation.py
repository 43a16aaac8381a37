"""Validation before publishing: the engine parses it, plus the project's own rules.

Every problem is reported as {"element": id or None, "message": text for a person}, never
raised: the API answers any body, however broken, with a list of errors.

Two passes. A *lint* pass over the XML itself finds what SpiffWorkflow would stop at (it
raises on the first problem, in its own words) or silently ignore, so a file gets every
problem at once, each naming its element: no executable process (said plainly: a drawing
of a collaboration, or processes marked non-executable), unsupported elements (data stores,
complex gateways), call activities whose process is not in the file, service and
business-rule tasks with nothing to call, timers without a time, scripts in another
language, lanes that name no role. Then the engine parses the diagram and the project's own
rules run over the parsed spec (roles, forms, four-eyes, code, gateways, operations,
elements no path reaches).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator

from flask import has_app_context
from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from casemgr.engine.scripts import check_code
from casemgr.engine.specs import (
    DiagramError,
    checked_xml,
    parse_process,
    properties_of,
    role_for_lane,
)
from casemgr.models.users import ROLES

RESERVED_IDS = {"Start", "End"}
# An ISO duration or repeating interval without quotes: the classic timer mistake.
_UNQUOTED_ISO = re.compile(r"(R\d*/)?P(\d+[YMWD])*(T(\d+(\.\d+)?[HMS])+)?")
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NO_EXECUTABLE = "the diagram has no executable process"
_ELEMENT_REPR = re.compile(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-f]+>")


DMN_NAMESPACES = ("https://www.omg.org/spec/DMN/", "http://www.omg.org/spec/DMN/")


def validate_document(xml: str | bytes, dmn_xmls: list[str] | tuple[str, ...] = ()) -> list[dict]:
    """A BPMN diagram or a DMN decision table, told apart by the root element's namespace."""
    text = xml.decode("utf-8", errors="replace") if isinstance(xml, bytes) else xml
    try:
        root = etree.fromstring(
            checked_xml(xml),
            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False),
        )
    except (DiagramError, etree.XMLSyntaxError):
        return validate_bpmn(xml, dmn_xmls)  # reports the XML problem in its own words
    namespace = etree.QName(root).namespace or ""
    if namespace.startswith(DMN_NAMESPACES):
        return validate_dmn(text)
    return validate_bpmn(xml, dmn_xmls)


def validate_dmn(dmn_xml: str) -> list[dict]:
    """Every decision must parse into a decision table the engine can run."""
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

    try:
        root = etree.fromstring(
            checked_xml(dmn_xml),
            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False),
        )
        parser = SpiffBpmnParser()
        parser.add_dmn_xml(root, filename="decision.dmn")
    except DiagramError as exc:
        return [_err(None, tidy_message(exc.message))]
    except Exception as exc:  # noqa: BLE001 - the DMN parser raises many kinds; all are answers
        return [_err(None, f"the decision table could not be read: {exc}")]
    if not parser.dmn_parsers:
        return [_err(None, "the file has no decision")]
    errors = []
    for decision_id, dmn_parser in parser.dmn_parsers.items():
        try:
            dmn_parser.parse()
            if not dmn_parser.decision.decisionTables:
                errors.append(_err(decision_id, f"decision {decision_id!r} has no decision table"))
        except Exception as exc:  # noqa: BLE001
            errors.append(_err(decision_id, f"decision {decision_id!r}: {exc}"))
    return errors


def validate_bpmn(bpmn_xml: str | bytes, dmn_xmls: list[str] | tuple[str, ...] = ()) -> list[dict]:
    if isinstance(bpmn_xml, bytes):
        try:
            bpmn_xml = bpmn_xml.decode("utf-8")
        except UnicodeDecodeError:
            return [_err(None, "the file is not UTF-8 text")]
    try:
        root = etree.fromstring(
            checked_xml(bpmn_xml),
            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False),
        )
    except DiagramError as exc:
        return [_err(None, tidy_message(exc.message))]
    except etree.XMLSyntaxError as exc:
        return [_err(None, f"not well-formed XML: {exc}")]
    if etree.QName(root).namespace != BPMN_NS:
        return [_err(None, "not a BPMN 2.0 file (the root must be bpmn:definitions)")]
    errors = _reserved_ids(root)
    missing = _no_executable_process(root)
    if missing:
        return errors + missing
    linted = lint_bpmn(root, dmn_xmls)
    try:
        parsed = parse_process(bpmn_xml, tuple(dmn_xmls))
    except DiagramError as exc:
        problem = _err(exc.element, tidy_message(exc.message))
        # The parser stops at its first problem; when the lint pass already named it (or
        # the parser cannot say where it is), the lint's words are the clearer answer.
        said = {e["element"] for e in linted}
        if linted and (exc.element is None or exc.element in said):
            return _unique(errors + linted)
        return _unique(errors + linted + [problem])
    errors += linted
    errors += _lanes_and_roles(parsed)
    errors += _forms(parsed)
    errors += _four_eyes(parsed)
    errors += _code(parsed)
    errors += _gateways(parsed)
    errors += _services(parsed)
    errors += _unreachable(root, parsed)
    errors += _pools_not_run(root, parsed)
    return _unique(errors)


def _err(element: str | None, message: str) -> dict:
    return {"element": element, "message": message}


def _reserved_ids(root) -> list[dict]:
    return [
        _err(node.get("id"), f"the id {node.get('id')!r} is reserved by the engine; rename it")
        for node in root.iter()
        if isinstance(node.tag, str) and node.get("id") in RESERVED_IDS
    ]


def _lanes_and_roles(parsed) -> list[dict]:
    errors = []
    for info in parsed.human_tasks.values():
        if info.role is None:
            where = f"lane {info.lane!r}" if info.lane else "no lane"
            errors.append(
                _err(
                    info.bpmn_id,
                    f"user task {info.title!r} has {where}, which names no role; "
                    f"use one of: {', '.join(ROLES)}",
                )
            )
        elif info.role not in ROLES:
            errors.append(_err(info.bpmn_id, f"unknown role {info.role!r}"))
    return errors


def _forms(parsed) -> list[dict]:
    from casemgr.forms import FORMS

    errors = []
    keys = [(i.bpmn_id, i.form_key) for i in parsed.human_tasks.values() if i.form_key]
    if parsed.start_form:
        keys.append((None, parsed.start_form))
    for element, key in keys:
        if key not in FORMS:
            errors.append(
                _err(element, f"unknown form key {key!r}; known: {', '.join(sorted(FORMS))}")
            )
    return errors


def _four_eyes(parsed) -> list[dict]:
    errors = []
    for info in parsed.human_tasks.values():
        for name in info.four_eyes:
            if name not in parsed.human_tasks:
                errors.append(
                    _err(info.bpmn_id, f"four-eyes names {name!r}, which is not a user task")
                )
    return errors


def _all_specs(parsed):
    for process in [parsed.spec, *parsed.subprocess_specs.values()]:
        yield from process.task_specs.values()


def _code(parsed) -> list[dict]:
    errors = []
    for spec in _all_specs(parsed):
        element = getattr(spec, "bpmn_id", None) or spec.name
        snippets = []
        if getattr(spec, "script", None):
            snippets.append(("script", spec.script, "exec"))
        for attr in ("prescript", "postscript"):
            if getattr(spec, attr, None):
                snippets.append((attr, getattr(spec, attr), "exec"))
        for condition, _target in getattr(spec, "cond_task_specs", None) or []:
            expression = getattr(condition, "args", [None])[0] if condition is not None else None
            if isinstance(expression, str):
                snippets.append(("condition", expression, "eval"))
        snippets += list(_expressions(spec))
        due = properties_of(spec).get("dueDate")
        if due:
            snippets.append(("due date", due, "eval"))
        for what, source, mode in snippets:
            if not isinstance(source, str) or not source.strip():
                continue
            if what in ("timer", "due date") and _UNQUOTED_ISO.fullmatch(source.strip()):
                errors.append(
                    _err(
                        element,
                        f"{what} of {element}: {source.strip()} is read as a "
                        f'Python name; write "{source.strip()}" in quotes',
                    )
                )
                continue
            problems = check_code(source, mode) or _unavailable_calls(source, mode)
            for problem in problems:
                errors.append(_err(element, f"{what} of {element}: {problem}"))
    return errors


def _unavailable_calls(source: str, mode: str) -> list[str]:
    """Python builtins a script calls that the restricted environment does not offer.

    RestrictedPython compiles ``open(...)`` (it fails only when run, as an unknown name);
    publishing refuses it now, with the reason. Names of the task data are never builtins.
    """
    import ast
    import builtins

    from casemgr.engine.scripts import _SAFE_BUILTINS, HELPERS

    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError:
        return []
    offered = set(_SAFE_BUILTINS) | set(HELPERS)
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    return [
        f"{name}() is not available in process scripts (no file, network or system access; "
        "only the helper functions casemgr offers)"
        for name in sorted(called)
        if hasattr(builtins, name) and name not in offered
    ]


def _gateways(parsed) -> list[dict]:
    errors = []
    for spec in _all_specs(parsed):
        if type(spec).__name__ not in ("ExclusiveGateway", "InclusiveGateway"):
            continue
        conditions = getattr(spec, "cond_task_specs", None) or []
        outgoing = len(spec.outputs)
        # An exclusive gateway keeps its default apart; an inclusive one as a None condition.
        has_default = getattr(spec, "default_task_spec", None) is not None or any(
            condition is None for condition, _target in conditions
        )
        conditioned = sum(1 for condition, _target in conditions if condition is not None)
        if outgoing > 1 and not has_default and conditioned < outgoing:
            errors.append(
                _err(
                    spec.bpmn_id,
                    f"gateway {spec.bpmn_name or spec.bpmn_id!r} needs a default "
                    "flow or a condition on every outgoing flow",
                )
            )
    return errors


def _services(parsed) -> list[dict]:
    from casemgr.engine import ledger_connectors  # noqa: F401  (registers ledger.* operations)
    from casemgr.engine.connectors import OPERATIONS

    errors = []
    for spec in _all_specs(parsed):
        name = getattr(spec, "operation_name", None)
        if name is not None and name not in OPERATIONS:
            errors.append(
                _err(
                    spec.bpmn_id,
                    f"unknown service operation {name!r}; known: {', '.join(sorted(OPERATIONS))}",
                )
            )
    return errors


def _expressions(spec) -> Iterator[tuple[str, str, str]]:
    """The Python expressions a task spec evaluates besides its scripts and flow conditions."""
    definition = getattr(spec, "event_definition", None)
    for single in getattr(definition, "event_definitions", None) or [definition]:
        if isinstance(single, TimerEventDefinition):
            yield ("timer", single.expression, "eval")
        elif type(single).__name__ == "ConditionalEventDefinition":
            yield ("condition", single.expression, "eval")
    for name, param in (getattr(spec, "operation_params", None) or {}).items():
        if isinstance(param, dict) and isinstance(param.get("value"), str):
            yield (f"parameter {name!r}", param["value"], "eval")
    for attr, what in (("cardinality", "cardinality"), ("condition", "loop condition")):
        value = getattr(spec, attr, None)
        if isinstance(value, str) and type(spec).__name__.endswith(("LoopTask", "InstanceTask")):
            yield (what, value, "eval")


_DEFUSED = re.compile(r"refused unsafe XML: (\w+) \((\w+)\((.*)\)\)$")
_DEFUSED_WORDS = {
    "DTDForbidden": "the file has a document type declaration (DTD), which can define "
    "entities that expand or read files; diagrams never need one",
    "EntitiesForbidden": "the file defines XML entities, which can expand without limit or "
    "read files",
    "ExternalReferenceForbidden": "the file refers to an external resource, which is never fetched",
}


def tidy_message(message: str) -> str:
    """The parser's words without Python reprs and doubled full stops."""
    unsafe = _DEFUSED.match(message)
    if unsafe and unsafe.group(1) in _DEFUSED_WORDS:
        name = re.search(r"name='([^']*)'", unsafe.group(3))
        where = (
            f" (<!DOCTYPE {name.group(1)}>)" if name and unsafe.group(1) == "DTDForbidden" else ""
        )
        return f"refused unsafe XML: {_DEFUSED_WORDS[unsafe.group(1)]}{where} [{unsafe.group(1)}]"
    text = _ELEMENT_REPR.sub(lambda m: f"<{m.group(1)}>", message)
    text = re.sub(r"\.\s*\.(\s|$)", r".\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _unique(errors: Iterable[dict]) -> list[dict]:
    seen: set[tuple] = set()
    result = []
    for error in errors:
        key = (error["element"], error["message"])
        if key not in seen:
            seen.add(key)
            result.append(error)
    return result


# --- the lint pass: the XML itself ----------------------------------------------------------


def _q(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _local(node) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _label(node) -> str:
    """How a person recognises an element: its kind and its name (or id)."""
    kind = re.sub(r"(?<!^)([A-Z])", r" \1", _local(node)).lower()
    return f"{kind} {(node.get('name') or node.get('id') or '').strip()!r}"


def _is_executable(process) -> bool:
    # SpiffWorkflow counts a process without the attribute as executable.
    return (process.get("isExecutable") or "true").strip().lower() != "false"


def _no_executable_process(root) -> list[dict]:
    """Its own clear message: descriptive models are common (10 of the 21 MIWG references)."""
    processes = root.findall(_q("process"))
    if any(_is_executable(p) for p in processes):
        return []
    if not processes:
        pools = [p.get("name") or p.get("id") for p in root.iter(_q("participant"))]
        if pools:
            collaboration = next(root.iter(_q("collaboration")), None)
            return [
                _err(
                    collaboration.get("id") if collaboration is not None else None,
                    f"{NO_EXECUTABLE}: it only draws a collaboration of "
                    f"{', '.join(repr(p) for p in pools)} with no process inside the pools; "
                    "model the steps inside a pool",
                )
            ]
        return [_err(None, f"{NO_EXECUTABLE}: the file contains no process")]
    names = ", ".join(repr(p.get("name") or p.get("id")) for p in processes)
    element = processes[0].get("id") if len(processes) == 1 else None
    return [
        _err(
            element,
            f"{NO_EXECUTABLE}: {names} {'is' if len(processes) == 1 else 'are'} marked "
            'isExecutable="false" (a descriptive model); mark the process executable '
            "to run it",
        )
    ]


# Flow nodes as BPMN 2.0 defines them; the parser's class map says which the engine runs.
_FLOW_NODES = {
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "subProcess", "adHocSubProcess", "transaction", "callActivity",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
    "boundaryEvent", "exclusiveGateway", "inclusiveGateway", "parallelGateway",
    "complexGateway", "eventBasedGateway",
}  # fmt: skip
_ACTIVITIES = {
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "subProcess", "adHocSubProcess", "transaction", "callActivity",
}  # fmt: skip
_UNSUPPORTED_HINTS = {
    "complexGateway": "use an exclusive, inclusive or parallel gateway",
}
_PYTHON_FORMATS = {"", "python", "python3", "text/python", "text/x-python", "application/python"}


def lint_bpmn(root, dmn_xmls: Iterable[str] = ()) -> list[dict]:
    """What the parser would stop at or silently ignore, each naming its element."""
    processes = {p.get("id"): p for p in root.findall(_q("process"))}
    runnable = [p for p in processes.values() if _is_executable(p)]
    errors: list[dict] = []
    errors += _data_stores(root)
    for process in runnable:
        errors += _unsupported(process)
        errors += _data_associations(root, process)
        errors += _call_activities(process, processes)
        errors += _operators_and_decisions(process, dmn_xmls)
        errors += _timers_without_time(process)
        errors += _script_formats(process)
        errors += _split_without_gateway(process)
        errors += _lanes(process)
    return errors


def _data_stores(root) -> list[dict]:
    found = list(root.iter(_q("dataStore"))) + list(root.iter(_q("dataStoreReference")))
    return [
        _err(
            node.get("id"),
            f"{_label(node)} is not supported: a case keeps its own data; read or change "
            "the ledger with a service task",
        )
        for node in found
    ]


def _unsupported(process) -> list[dict]:
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

    parser = SpiffBpmnParser()
    errors = []
    for node in process.iter():
        if _local(node) not in _FLOW_NODES or etree.QName(node).namespace != BPMN_NS:
            continue
        if parser._get_parser_class(node.tag) == (None, None):
            hint = _UNSUPPORTED_HINTS.get(_local(node), "remove it or use a supported element")
            errors.append(_err(node.get("id"), f"{_label(node)} is not supported: {hint}"))
    return errors


def _data_associations(root, process) -> list[dict]:
    """Only data objects can be read or written; the parser's own message shows a repr."""
    objects = {
        n.get("id") for n in root.iter(_q("dataObject"), _q("dataObjectReference")) if n.get("id")
    }
    stores = {n.get("id") for n in root.iter(_q("dataStoreReference"))}
    errors = []
    for owner in process.iter():
        for tag, ref_tag in (
            ("dataInputAssociation", "sourceRef"),
            ("dataOutputAssociation", "targetRef"),
        ):
            for association in owner.findall(_q(tag)):
                for ref in association.findall(_q(ref_tag)):
                    target = (ref.text or "").strip()
                    if target in objects or target in stores:
                        continue  # stores are reported on their own
                    errors.append(
                        _err(
                            owner.get("id"),
                            f"{_label(owner)} has a data association with {target!r}, which is "
                            "not a data object of this diagram (only data objects are supported)",
                        )
                    )
    return errors


def _call_activities(process, processes: dict) -> list[dict]:
    errors = []
    for node in process.iter(_q("callActivity")):
        called = (node.get("calledElement") or "").strip()
        if not called:
            errors.append(_err(node.get("id"), f"{_label(node)} names no process to call"))
        elif called not in processes:
            known = ", ".join(repr(p) for p in processes) or "none"
            errors.append(
                _err(
                    node.get("id"),
                    f"{_label(node)} calls process {called!r}, which is not in this file "
                    f"(a case type is one file; processes here: {known})",
                )
            )
        elif not _is_executable(processes[called]):
            errors.append(
                _err(
                    node.get("id"),
                    f"{_label(node)} calls process {called!r}, which is marked "
                    'isExecutable="false"',
                )
            )
    return errors


def _known_decisions(dmn_xmls: Iterable[str]) -> set[str]:
    known: set[str] = set()
    for text in dmn_xmls:
        known.update(re.findall(r"<(?:\w+:)?decision\b[^>]*\bid=\"([^\"]+)\"", text))
    if has_app_context():
        from casemgr.engine.processes import decision_tables  # processes imports this module

        with contextlib.suppress(OSError, DiagramError, etree.XMLSyntaxError):
            known.update(decision_tables())
    return known


def _operators_and_decisions(process, dmn_xmls: Iterable[str]) -> list[dict]:
    from casemgr.engine import ledger_connectors  # noqa: F401  (registers ledger.* operations)
    from casemgr.engine.connectors import OPERATIONS

    errors = []
    for node in process.iter(_q("serviceTask")):
        if node.find(f".//{{{SPIFF_NS}}}serviceTaskOperator") is None:
            errors.append(
                _err(
                    node.get("id"),
                    f"{_label(node)} names no operation; choose one of: "
                    f"{', '.join(sorted(OPERATIONS))}",
                )
            )
    called = list(process.iter(_q("businessRuleTask")))
    if not called:
        return errors
    available = {
        d
        for text in dmn_xmls
        for d in re.findall(r"<(?:\w+:)?decision\b[^>]*\bid=\"([^\"]+)\"", text)
    }
    for node in called:
        ref = node.find(f".//{{{SPIFF_NS}}}calledDecisionId")
        decision = (ref.text or "").strip() if ref is not None else ""
        camunda = next((v for k, v in node.attrib.items() if k.endswith("decisionRef")), None)
        if not decision:
            how = (
                f"uses camunda:decisionRef {camunda!r}, which this engine does not read; "
                if camunda
                else "names no decision table; "
            )
            known = ", ".join(sorted(_known_decisions(dmn_xmls))) or "none yet"
            errors.append(_err(node.get("id"), f"{_label(node)} {how}choose one of: {known}"))
        elif decision not in available:
            known = ", ".join(sorted(_known_decisions(dmn_xmls))) or "none yet"
            errors.append(
                _err(
                    node.get("id"),
                    f"{_label(node)} calls decision {decision!r}, which no published decision "
                    f"table defines; known: {known}",
                )
            )
    return errors


def _timers_without_time(process) -> list[dict]:
    errors = []
    for event in process.iter():
        definition = event.find(_q("timerEventDefinition")) if isinstance(event.tag, str) else None
        if definition is None:
            continue
        times = [
            (child.text or "").strip()
            for child in definition
            if _local(child) in ("timeDate", "timeDuration", "timeCycle")
        ]
        if not any(times):
            errors.append(
                _err(
                    event.get("id"),
                    f"{_label(event)} has no time: give a date, a duration or a cycle as a "
                    'Python expression, e.g. "P3D" in quotes',
                )
            )
    return errors


def _script_formats(process) -> list[dict]:
    errors = []
    for node in process.iter(_q("scriptTask")):
        script_format = (node.get("scriptFormat") or "").strip().lower()
        if script_format not in _PYTHON_FORMATS:
            errors.append(
                _err(
                    node.get("id"),
                    f"{_label(node)} is written in {node.get('scriptFormat')!r}; "
                    "scripts here are Python",
                )
            )
        script = node.find(_q("script"))
        if script is None or not (script.text or "").strip():
            errors.append(_err(node.get("id"), f"{_label(node)} has no script"))
    return errors


def _split_without_gateway(process) -> list[dict]:
    outgoing: dict[str, int] = {}
    for flow in process.iter(_q("sequenceFlow")):
        source = flow.get("sourceRef")
        outgoing[source] = outgoing.get(source, 0) + 1
    errors = []
    for node in process.iter():
        if _local(node) in _ACTIVITIES and outgoing.get(node.get("id"), 0) > 1:
            errors.append(
                _err(
                    node.get("id"),
                    f"{_label(node)} has {outgoing[node.get('id')]} outgoing flows; split "
                    "after it with a gateway (parallel for all, exclusive to choose one)",
                )
            )
    return errors


def _lanes(process) -> list[dict]:
    """Every lane names a role by key or label (a lane holding lanes names none itself).

    A lane with human tasks is reported on each of those tasks (they are what gets a role),
    so here only lanes holding nothing but automated steps.
    """
    human = {n.get("id") for n in process.iter(_q("userTask"), _q("manualTask"))}
    errors = []
    for lane in process.iter(_q("lane")):
        if lane.find(_q("childLaneSet")) is not None:
            continue
        if any((ref.text or "").strip() in human for ref in lane.findall(_q("flowNodeRef"))):
            continue
        name = (lane.get("name") or "").strip()
        if role_for_lane(name) is None:
            what = f"lane {name!r} names no role" if name else "a lane without a name names no role"
            errors.append(_err(lane.get("id"), f"{what}; name it after one of: {', '.join(ROLES)}"))
    return errors


def _pools_not_run(root, parsed) -> list[dict]:
    """A case runs one process: others marked executable would silently never run."""
    runnable = [p for p in root.findall(_q("process")) if _is_executable(p)]
    called = {
        (n.get("calledElement") or "").strip() for p in runnable for n in p.iter(_q("callActivity"))
    }
    chosen = parsed.name or parsed.process_id
    pools = {n.get("processRef"): n for n in root.iter(_q("participant"))}
    errors = []
    for process in runnable:
        if process.get("id") == parsed.process_id or process.get("id") in called:
            continue
        pool = pools.get(process.get("id"))
        where = f" (pool {pool.get('name') or pool.get('id')!r})" if pool is not None else ""
        errors.append(
            _err(
                process.get("id"),
                f"process {process.get('name') or process.get('id')!r}{where} would never run: "
                f"a case runs one process, here {chosen!r}; mark the others "
                'isExecutable="false" or call them with a call activity',
            )
        )
    return errors


def _unreachable(root, parsed) -> list[dict]:
    """Elements of the running process that no path from its start reaches (never run)."""
    process = next(
        (p for p in root.findall(_q("process")) if p.get("id") == parsed.process_id), None
    )
    if process is None:
        return []
    known = {
        getattr(spec, "bpmn_id", None)
        for process_spec in [parsed.spec, *parsed.subprocess_specs.values()]
        for spec in process_spec.task_specs.values()
    }
    errors = []
    for node in process.iter():
        if _local(node) not in _FLOW_NODES or node.get("id") in known:
            continue
        if node.get("isForCompensation") == "true" or _inside_unparsed(node, known):
            continue
        if node.find(_q("linkEventDefinition")) is not None:
            continue  # reached by its link, not by a flow
        errors.append(
            _err(
                node.get("id"),
                f"{_label(node)} is not connected: no path from the start reaches it",
            )
        )
    return errors


def _inside_unparsed(node, known: set) -> bool:
    """Report the outermost unreached element only, not everything inside it."""
    parent = node.getparent()
    while parent is not None and _local(parent) != "process":
        if _local(parent) in _FLOW_NODES and parent.get("id") not in known:
            return True
        parent = parent.getparent()
    return False
