"""Case types and versions: publishing diagrams, loading the seed diagrams, pinned specs.

Decision tables live in two places: the seed files in workflows/dmn and the versions a
process owner published in the browser (DecisionVersion rows). A published version of a
file replaces its seed file whole, and every publish (API, browser, validation) pins the
tables as they are at that moment into the ProcessVersion, so a running case keeps the
tables it started with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from weakref import WeakKeyDictionary

from flask import current_app
from lxml import etree
from sqlalchemy import Select, bindparam, select

from casemgr.engine import clock
from casemgr.engine.specs import (
    DiagramError,
    ParsedProcess,
    checked_xml,
    content_hash,
    parse_process,
)
from casemgr.engine.validation import validate_bpmn
from casemgr.extensions import db
from casemgr.models import Case, CaseType, DecisionVersion, ProcessVersion, User

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,79}")
_DMN_REF = re.compile(r"calledDecisionId>\s*([^<\s]+)\s*<")


def parsed_for(version: ProcessVersion) -> ParsedProcess:
    return parse_process(version.bpmn_xml, tuple(version.dmn_xml or ()), version.process_id)


@dataclass(frozen=True)
class PinnedVersion:
    """What an engine step needs of its case's version: the diagram, parsed, and the names
    of its case type (the task index and the case's title carry them)."""

    parsed: ParsedProcess
    case_type_key: str
    case_type_name: str


# A published version never changes, so each is read and parsed once per process, not on
# every step (loading the row, diagram text included, and hashing it cost ~0.4 ms a step).
# The key holds the row's content hash and publish moment as well as its id: a test
# database, or a publish rolled back and its id reused, can never be served another row's
# diagram. A version's decision tables are pinned with it when it is published.
_versions = ProcessVersion.__table__
_types = CaseType.__table__
# What names a version's content (with its id) and the names of its case type: selected
# beside a case (see with_version_identity) or read on their own.
VERSION_IDENTITY = (_versions.c.sha256, _versions.c.published_at, _types.c.key, _types.c.name)
_VERSION_CONTENT = select(_versions.c.process_id, _versions.c.bpmn_xml, _versions.c.dmn_xml).where(
    _versions.c.id == bindparam("version_id")
)
_pinned: dict[tuple, PinnedVersion] = {}
_pinned_lock = Lock()
PINNED_LIMIT = 512


def with_version_identity(query: Select, version_id_column) -> Select:
    """``query`` joined to the version and case type whose identity it selects."""
    return query.join(_versions, _versions.c.id == version_id_column).join(
        _types, _types.c.id == _versions.c.case_type_id
    )


_VERSION_IDENTITY = (
    select(*VERSION_IDENTITY)
    .join(_types, _types.c.id == _versions.c.case_type_id)
    .where(_versions.c.id == bindparam("version_id"))
)


# Identities read along with a case (casemgr.engine.cases.task_to_change), taken by that
# case's next load so it reads nothing more to find its version.
_read_with_case: WeakKeyDictionary[Case, tuple] = WeakKeyDictionary()


def remember_version_identity(case: Case, identity: tuple) -> None:
    """``identity``: the VERSION_IDENTITY values of the case's version, read with the case."""
    _read_with_case[case] = (case.process_version_id, tuple(identity))


def case_version(case: Case) -> PinnedVersion:
    """The version a case runs (its identity as read with the case, when it was)."""
    known = _read_with_case.pop(case, None)
    identity = known[1] if known and known[0] == case.process_version_id else None
    return pinned_version(case.process_version_id, identity)


def pinned_version(version_id: int, identity: tuple | None = None) -> PinnedVersion:
    """The version a case runs, from the cache after its first use in this process.

    ``identity``: the VERSION_IDENTITY values, when the caller read them with the case."""
    params = {"version_id": version_id}
    if identity is None:
        with db.session.no_autoflush:  # what the step changed so far has no bearing on it
            identity = tuple(db.session.execute(_VERSION_IDENTITY, params).one())
    sha256, published_at, type_key, type_name = identity
    key = (version_id, sha256, published_at)
    with _pinned_lock:
        found = _pinned.get(key)
    if found is not None:
        return found
    with db.session.no_autoflush:
        process_id, bpmn_xml, dmn_xml = db.session.execute(_VERSION_CONTENT, params).one()
    found = PinnedVersion(
        parse_process(bpmn_xml, tuple(dmn_xml or ()), process_id), type_key, type_name
    )
    with _pinned_lock:
        while len(_pinned) >= PINNED_LIMIT:
            _pinned.pop(next(iter(_pinned)))  # the oldest entry
        _pinned[key] = found
    return found


# --- decision tables ------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionFile:
    """One DMN file as process owners see it: the seed file or its newest published version."""

    key: str
    xml: str
    decision_ids: tuple[str, ...]
    version: int | None  # None: the seed file in workflows/dmn, never published here


def decision_ids(xml: str) -> tuple[str, ...]:
    """The ids of the decisions a DMN file defines (none when it is not well-formed)."""
    try:
        root = etree.fromstring(
            checked_xml(xml), etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except (DiagramError, etree.XMLSyntaxError):
        return ()
    return tuple(n.get("id") for n in root.iter("{*}decision") if n.get("id"))


def _latest_decision_versions() -> list[DecisionVersion]:
    newest = (
        db.select(DecisionVersion.key, db.func.max(DecisionVersion.version).label("v"))
        .group_by(DecisionVersion.key)
        .subquery()
    )
    query = db.select(DecisionVersion).join(
        newest, (DecisionVersion.key == newest.c.key) & (DecisionVersion.version == newest.c.v)
    )
    return list(db.session.execute(query).scalars())


def decision_files(draft: tuple[str, str] | None = None) -> dict[str, DecisionFile]:
    """Key -> the current DMN file: published versions override the seed files.

    `draft` (key, XML) stands in for that file, to try a table before publishing it.
    """
    files: dict[str, DecisionFile] = {}
    folder = Path(current_app.config["WORKFLOWS_DIR"]) / "dmn"
    for path in sorted(folder.glob("*.dmn")):
        text = path.read_text()
        files[path.stem] = DecisionFile(path.stem, text, decision_ids(text), None)
    for row in _latest_decision_versions():
        files[row.key] = DecisionFile(row.key, row.dmn_xml, tuple(row.decision_ids), row.version)
    if draft is not None:
        key, xml = draft
        files[key] = DecisionFile(key, xml, decision_ids(xml), None)
    return dict(sorted(files.items()))


def decision_tables(draft: tuple[str, str] | None = None) -> dict[str, str]:
    """Decision id -> DMN text, as a diagram published now would pin them.

    The newest published version of a file replaces the seed file whole: a decision it
    dropped is gone. Without published versions, these are the seed files.
    """
    tables: dict[str, str] = {}
    for file in decision_files(draft).values():
        for decision_id in file.decision_ids:
            tables[decision_id] = file.xml
    return tables


def dmn_for(bpmn_xml: str, draft: tuple[str, str] | None = None) -> list[str]:
    """The decision tables a diagram calls, pinned with the version that calls them."""
    tables = decision_tables(draft)
    wanted: list[str] = []
    for decision_id in _DMN_REF.findall(bpmn_xml):
        text = tables.get(decision_id)
        if text and text not in wanted:
            wanted.append(text)
    return wanted


def called_decisions(bpmn_xml: str) -> set[str]:
    """The decision ids a diagram's business-rule tasks call."""
    return set(_DMN_REF.findall(bpmn_xml))


# --- versions -------------------------------------------------------------------------------


def publish(
    key: str,
    bpmn_xml: str,
    user: User | None,
    name: str | None = None,
    dmn: list[str] | None = None,
) -> tuple[ProcessVersion | None, list[dict]]:
    """Validate and publish as the next version; returns (version or None, errors).

    The decision tables pinned are the current ones (``dmn_for``), or `dmn` when a version
    is restored exactly as it was. A new key creates the case type at version 1.
    """
    if not KEY_PATTERN.fullmatch(key):
        return None, [{"element": None, "message": "invalid case-type key"}]
    tables = dmn_for(bpmn_xml) if dmn is None else list(dmn)
    errors = validate_bpmn(bpmn_xml, tables)
    if errors:
        return None, errors
    parsed = parse_process(bpmn_xml, tuple(tables))
    case_type = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
    if case_type is None:
        case_type = CaseType(key=key, name=(name or parsed.name)[:200])
        db.session.add(case_type)
        db.session.flush()
    latest = case_type.latest()
    version = ProcessVersion(
        case_type=case_type,
        version=(latest.version + 1) if latest else 1,
        process_id=parsed.process_id,
        bpmn_xml=bpmn_xml,
        dmn_xml=tables,
        sha256=content_hash(bpmn_xml),
        published_by_id=user.id if user else None,
        published_at=clock.now(),
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
