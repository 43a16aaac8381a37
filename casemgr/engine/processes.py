"""Case types and versions: publishing diagrams, loading the seed diagrams, pinned specs."""

from __future__ import annotations

import re
from pathlib import Path

from flask import current_app
from lxml import etree

from casemgr.engine.specs import ParsedProcess, checked_xml, content_hash, parse_process
from casemgr.engine.validation import validate_bpmn
from casemgr.extensions import db
from casemgr.models import CaseType, ProcessVersion, User

_DMN_REF = re.compile(r"calledDecisionId>\s*([^<\s]+)\s*<")


def parsed_for(version: ProcessVersion) -> ParsedProcess:
    return parse_process(version.bpmn_xml, tuple(version.dmn_xml or ()), version.process_id)


def decision_tables() -> dict[str, str]:
    """Decision id -> DMN text, from workflows/dmn (the tables the process owner edits)."""
    tables: dict[str, str] = {}
    folder = Path(current_app.config["WORKFLOWS_DIR"]) / "dmn"
    for path in sorted(folder.glob("*.dmn")):
        text = path.read_text()
        root = etree.fromstring(
            checked_xml(text), etree.XMLParser(resolve_entities=False, no_network=True)
        )
        for node in root.iter("{*}decision"):
            tables[node.get("id")] = text
    return tables


def dmn_for(bpmn_xml: str) -> list[str]:
    """The decision tables a diagram calls, pinned with the version that calls them."""
    tables = decision_tables()
    wanted = []
    for decision_id in _DMN_REF.findall(bpmn_xml):
        text = tables.get(decision_id)
        if text and text not in wanted:
            wanted.append(text)
    return wanted


def publish(key: str, bpmn_xml: str, user: User | None, name: str | None = None):
    """Validate and publish as the next version; returns (version or None, errors)."""
    dmn = dmn_for(bpmn_xml)
    errors = validate_bpmn(bpmn_xml, dmn)
    if errors:
        return None, errors
    parsed = parse_process(bpmn_xml, tuple(dmn))
    case_type = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
    if case_type is None:
        case_type = CaseType(key=key, name=name or parsed.name)
        db.session.add(case_type)
        db.session.flush()
    latest = case_type.latest()
    version = ProcessVersion(
        case_type=case_type,
        version=(latest.version + 1) if latest else 1,
        process_id=parsed.process_id,
        bpmn_xml=bpmn_xml,
        dmn_xml=dmn,
        sha256=content_hash(bpmn_xml),
        published_by_id=user.id if user else None,
    )
    db.session.add(version)
    db.session.flush()
    return version, []


def load_seed_workflows() -> list[str]:
    """Publish each workflows/bpmn/*.bpmn as version 1 of its case type, once."""
    loaded = []
    folder = Path(current_app.config["WORKFLOWS_DIR"]) / "bpmn"
    for path in sorted(folder.glob("*.bpmn")):
        key = path.stem
        exists = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
        if exists is not None:
            continue
        version, errors = publish(key, path.read_text(), None)
        if errors:
            details = "; ".join(e["message"] for e in errors)
            raise ValueError(f"{path.name} does not validate: {details}")
        loaded.append(key)
    return loaded


def published_case_types() -> list[CaseType]:
    return list(
        db.session.execute(
            db.select(CaseType).where(CaseType.versions.any()).order_by(CaseType.key)
        ).scalars()
    )
