"""Validation before publishing: the engine parses it, plus the project's own rules.

Every problem is reported as {"element": id or None, "message": text for a person}, never
raised: the API answers any body, however broken, with a list of errors.
"""

from __future__ import annotations

import re

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from casemgr.engine.scripts import check_code
from casemgr.engine.specs import DiagramError, checked_xml, parse_process, properties_of
from casemgr.models.users import ROLES

RESERVED_IDS = {"Start", "End"}
# An ISO duration or repeating interval without quotes: the classic timer mistake.
_UNQUOTED_ISO = re.compile(r"(R\d*/)?P(\d+[YMWD])*(T(\d+(\.\d+)?[HMS])+)?")
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


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
        return [_err(None, exc.message)]
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
        return [_err(None, exc.message)]
    except etree.XMLSyntaxError as exc:
        return [_err(None, f"not well-formed XML: {exc}")]
    if etree.QName(root).namespace != BPMN_NS:
        return [_err(None, "not a BPMN 2.0 file (the root must be bpmn:definitions)")]
    errors = _reserved_ids(root)
    try:
        parsed = parse_process(bpmn_xml, tuple(dmn_xmls))
    except DiagramError as exc:
        return errors + [_err(exc.element, exc.message)]
    errors += _lanes_and_roles(parsed)
    errors += _forms(parsed)
    errors += _four_eyes(parsed)
    errors += _code(parsed)
    errors += _gateways(parsed)
    errors += _services(parsed)
    return errors


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
        definition = getattr(spec, "event_definition", None)
        if isinstance(definition, TimerEventDefinition):
            snippets.append(("timer", definition.expression, "eval"))
        due = properties_of(spec).get("dueDate")
        if due:
            snippets.append(("due date", due, "eval"))
        for what, source, mode in snippets:
            if what in ("timer", "due date") and _UNQUOTED_ISO.fullmatch(source.strip()):
                errors.append(
                    _err(
                        element,
                        f"{what} of {element}: {source.strip()} is read as a "
                        f'Python name; write "{source.strip()}" in quotes',
                    )
                )
                continue
            for problem in check_code(source, mode):
                errors.append(_err(element, f"{what} of {element}: {problem}"))
    return errors


def _gateways(parsed) -> list[dict]:
    errors = []
    for spec in _all_specs(parsed):
        if type(spec).__name__ not in ("ExclusiveGateway", "InclusiveGateway"):
            continue
        conditions = getattr(spec, "cond_task_specs", None) or []
        outgoing = len(spec.outputs)
        if outgoing > 1 and spec.default_task_spec is None and len(conditions) < outgoing:
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
