"""Drafts, replay, migration, diff, restore, heat map and decision tables over the API.

The same engine calls as the modeler pages (``casemgr.engine.drafts``), for scripts and
CI pipelines that keep diagrams in git. Diagrams and tables travel as the raw body
(``application/xml``), answers as JSON. Only process owners and admins (403); the XML size
limit answers 413 before anything reads the body.
"""

from __future__ import annotations

from flask import Response, jsonify, request
from sqlalchemy.exc import IntegrityError

from casemgr.engine import drafts, replay
from casemgr.engine.errors import NotFound
from casemgr.extensions import db
from casemgr.models import ProcessDraft
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, require_role, token_required
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import SCHEMAS, XML, array_of, doc, query, ref
from casemgr.web.api.processes import PROCESS_ROLES, _diagram_body
from casemgr.web.api.serializers import iso, username

_PROBLEMS = {"type": "array", "items": ref("DiagramProblem")}
SCHEMAS.update(
    {
        "Draft": {
            "type": "object",
            "required": ["key", "kind", "revision", "valid", "errors"],
            "properties": {
                "key": {"type": "string"},
                "kind": {"type": "string", "enum": ["bpmn", "dmn"]},
                "revision": {"type": "integer"},
                "based_on": {"type": ["integer", "null"]},
                "updated_by": {"type": ["string", "null"]},
                "updated_at": {"type": "string", "format": "date-time"},
                "valid": {"type": "boolean"},
                "errors": _PROBLEMS,
            },
        },
        "ReplayResult": {
            "type": "object",
            "required": ["case_id", "status", "message"],
            "properties": {
                "case_id": {"type": "integer"},
                "title": {"type": "string"},
                "version": {"type": "integer"},
                "status": {"type": "string", "enum": ["same", "different", "failed"]},
                "difference": {
                    "type": ["string", "null"],
                    "enum": [
                        "waits_elsewhere",
                        "ends_early",
                        "still_waiting",
                        "form",
                        "outcome",
                        "data",
                        None,
                    ],
                    "description": "What differs, when the status is different",
                },
                "message": {"type": "string"},
                "element": {"type": ["string", "null"]},
                "expected": {
                    "type": ["string", "null"],
                    "description": "The task the case went on with, which the draft does not reach",
                },
                "waiting_at": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The elements the draft waits at instead",
                },
                "original_path": {"type": "array", "items": {"type": "string"}},
                "replayed_path": {"type": "array", "items": {"type": "string"}},
                "data_changes": {"type": "array", "items": ref("ReplayDataChange")},
            },
        },
        "ReplayDataChange": {
            "type": "object",
            "required": ["field", "recorded", "replayed", "decision"],
            "properties": {
                "field": {"type": "string"},
                "recorded": {"description": "The value the case ended with"},
                "replayed": {"description": "The value the draft sets"},
                "decision": {
                    "type": "boolean",
                    "description": "An output of a decision table the draft calls",
                },
            },
        },
        "Replay": {
            "type": "object",
            "required": ["cases", "summary"],
            "properties": {
                "cases": array_of("ReplayResult"),
                "summary": {
                    "type": "object",
                    "properties": {s: {"type": "integer"} for s in ("same", "different", "failed")},
                },
            },
        },
        "TableReplay": {
            "type": "object",
            "required": ["case_types"],
            "properties": {
                "case_types": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key", "version", "cases", "summary"],
                        "properties": {
                            "key": {"type": "string"},
                            "name": {"type": "string"},
                            "version": {"type": "integer"},
                            "cases": array_of("ReplayResult"),
                            "summary": {
                                "type": "object",
                                "properties": {
                                    s: {"type": "integer"} for s in ("same", "different", "failed")
                                },
                            },
                        },
                    },
                }
            },
        },
        "MigrationResult": {
            "type": "object",
            "required": ["case_id", "safe", "migrated", "reason"],
            "properties": {
                "case_id": {"type": "integer"},
                "title": {"type": "string"},
                "from_version": {"type": "integer"},
                "to_version": {"type": "integer"},
                "safe": {"type": "boolean"},
                "migrated": {"type": "boolean"},
                "reason": {"type": "string"},
                "waiting": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Migration": {
            "type": "object",
            "required": ["to_version", "cases"],
            "properties": {
                "to_version": {"type": "integer"},
                "cases": array_of("MigrationResult"),
            },
        },
        "DiagramDiff": {
            "type": "object",
            "properties": {
                part: {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "element": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string"},
                            "details": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                }
                for part in ("added", "removed", "changed", "moved")
            },
        },
        "HeatMap": {
            "type": "object",
            "required": ["version", "elements"],
            "properties": {
                "version": {"type": ["integer", "null"]},
                "elements": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "element": {"type": "string"},
                            "title": {"type": "string"},
                            "waiting": {"type": "integer"},
                            "median_wait_seconds": {"type": "integer"},
                            "oldest_wait_seconds": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "DecisionTable": {
            "type": "object",
            "required": ["key", "decisions"],
            "properties": {
                "key": {"type": "string"},
                "version": {"type": ["integer", "null"]},
                "decisions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "PublishedTable": {
            "type": "object",
            "required": ["key", "version", "republished"],
            "properties": {
                "key": {"type": "string"},
                "version": {"type": "integer"},
                "republished": array_of("PublishedVersion"),
            },
        },
    }
)
_KINDS = {"case-types": "bpmn", "decision-tables": "dmn"}


def _owner():
    user = current_api_user()
    require_role(user, *PROCESS_ROLES)
    return user


def _kind(collection: str) -> str:
    kind = _KINDS.get(collection)
    if kind is None:
        raise NotFound(f"no collection {collection!r}")
    return kind


def _draft_or_404(kind: str, key: str) -> ProcessDraft:
    draft = drafts.get_draft(kind, key)
    if draft is None:
        raise NotFound(f"there is no draft of {key}")
    return draft


def draft_json(draft: ProcessDraft) -> dict:
    errors = drafts.record_validation(draft)
    return {
        "key": draft.key,
        "kind": draft.kind,
        "revision": draft.revision,
        "based_on": draft.based_on,
        "updated_by": username(draft.updated_by),
        "updated_at": iso(draft.updated_at),
        "valid": not errors,
        "errors": errors,
    }


def _commit_or_conflict() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, "another save or publish happened at the same moment; retry") from None


# --- drafts -----------------------------------------------------------------------------------


@bp.get("/<any('case-types','decision-tables'):collection>/<key>/draft")
@doc(
    "The draft's XML (the revision in the X-Draft-Revision header)",
    responses={200: ("The draft", {"type": "string"}, XML)},
    errors=(403, 404),
    tag="drafts",
)
@token_required
def get_draft(collection: str, key: str):
    _owner()
    draft = _draft_or_404(_kind(collection), key)
    response = Response(draft.xml, mimetype=XML)
    response.headers["X-Draft-Revision"] = str(draft.revision)
    return response


@bp.put("/<any('case-types','decision-tables'):collection>/<key>/draft")
@doc(
    "Save the draft (any content; validated and answered with its problems)",
    raw_body=XML,
    parameters=[
        {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "The revision you edited: another one means a 409 (someone saved)",
        }
    ],
    responses={200: ("The saved draft and its validation", ref("Draft"))},
    errors=(403, 409, 413, 422),
    tag="drafts",
)
@token_required
def put_draft(collection: str, key: str):
    """Unsafe or malformed XML is refused (422) naming the problem; invalid content is kept."""
    kind = _kind(collection)
    raw = _diagram_body(current_api_user())
    match = request.headers.get("If-Match", "").strip('" ')
    revision = int(match) if match.isdigit() else None
    draft = drafts.save_draft(kind, key, raw, current_api_user(), revision=revision)
    body = draft_json(draft)
    _commit_or_conflict()
    return jsonify(body)


@bp.delete("/<any('case-types','decision-tables'):collection>/<key>/draft")
@doc("Discard the draft", responses={204: ("Discarded", None)}, errors=(403, 404), tag="drafts")
@token_required
def delete_draft(collection: str, key: str):
    _owner()
    if not drafts.discard_draft(_kind(collection), key):
        raise NotFound(f"there is no draft of {key}")
    db.session.commit()
    return "", 204


@bp.post("/<any('case-types','decision-tables'):collection>/<key>/draft/validate")
@doc(
    "Validate the draft as publishing would",
    responses={200: ("Whether it is valid, and every problem", ref("ValidationResult"))},
    errors=(403, 404),
    tag="drafts",
)
@token_required
def validate_draft(collection: str, key: str):
    _owner()
    draft = _draft_or_404(_kind(collection), key)
    errors = drafts.record_validation(draft)
    db.session.commit()
    return jsonify({"valid": not errors, "errors": errors})


@bp.post("/case-types/<key>/draft/publish")
@doc(
    "Publish the draft as the next version (the draft is then gone)",
    responses={201: ("The published version", ref("PublishedVersion"))},
    errors=(403, 404, 409, 422),
    tag="drafts",
)
@token_required
def publish_case_type_draft(key: str):
    user = _owner()
    _draft_or_404("bpmn", key)
    result = drafts.publish_draft("bpmn", key, user)
    if result.errors:
        db.session.rollback()
        raise ApiError(422, "the draft is not valid", result.errors)
    _commit_or_conflict()
    return jsonify({"key": key, "version": result.version.version}), 201


@bp.post("/decision-tables/<key>/draft/publish")
@doc(
    "Publish the decision table draft; case types calling it get a new version",
    responses={201: ("The table's version and the case types re-published", ref("PublishedTable"))},
    errors=(403, 404, 409, 422),
    tag="drafts",
)
@token_required
def publish_table_draft(key: str):
    user = _owner()
    _draft_or_404("dmn", key)
    result = drafts.publish_draft("dmn", key, user)
    if result.errors:
        db.session.rollback()
        raise ApiError(422, "the decision table is not valid", result.errors)
    _commit_or_conflict()
    republished = [{"key": v.case_type.key, "version": v.version} for v in result.republished]
    return jsonify(
        {"key": key, "version": result.decision.version, "republished": republished}
    ), 201


# --- versions -----------------------------------------------------------------------------


@bp.post("/case-types/<key>/versions/<int:version>/restore")
@doc(
    "Publish an old version (with its decision tables) as the next version",
    responses={201: ("The new version", ref("PublishedVersion"))},
    errors=(403, 404, 409, 422),
    tag="processes",
)
@token_required
def restore_version(key: str, version: int):
    user = _owner()
    restored, errors = drafts.restore_version(key, version, user)
    if errors:
        db.session.rollback()
        raise ApiError(422, f"version {version} no longer validates", errors)
    _commit_or_conflict()
    return jsonify({"key": key, "version": restored.version}), 201


@bp.get("/case-types/<key>/versions/<int:old>/diff/<int:new>")
@doc(
    "What changed between two versions, element by element",
    responses={200: ("Added, removed, changed and moved elements", ref("DiagramDiff"))},
    errors=(403, 404),
    tag="processes",
)
@token_required
def diff_versions(key: str, old: int, new: int):
    _owner()
    before, after = drafts.version_of(key, old), drafts.version_of(key, new)
    return jsonify(drafts.diff_diagrams(before.bpmn_xml, after.bpmn_xml).as_json())


# --- replay, migration, heat map ------------------------------------------------------------


@bp.post("/case-types/<key>/draft/replay")
@doc(
    "Replay the last completed cases through the draft (nothing is saved)",
    parameters=[query("limit", {"type": "integer", "default": 20}, "How many cases, newest first")],
    responses={200: ("Each case: same path, a different one, or a failure", ref("Replay"))},
    errors=(403, 404, 422),
    tag="drafts",
)
@token_required
def replay_draft(key: str):
    _owner()
    draft = _draft_or_404("bpmn", key)
    limit = request.args.get("limit", default=20, type=int) or 20
    results = drafts.replay_draft(key, draft.xml, limit)
    summary = {s: sum(1 for r in results if r.status == s) for s in ("same", "different", "failed")}
    return jsonify({"cases": [r.as_json() for r in results], "summary": summary})


@bp.post("/decision-tables/<key>/draft/replay")
@doc(
    "Replay the last completed cases of every case type calling the table, with the draft "
    "in its place (nothing is saved)",
    parameters=[query("limit", {"type": "integer", "default": 20}, "How many cases per type")],
    responses={200: ("Per calling case type, each case's answer", ref("TableReplay"))},
    errors=(403, 404, 422),
    tag="drafts",
)
@token_required
def replay_table_draft(key: str):
    _owner()
    draft = _draft_or_404("dmn", key)
    limit = request.args.get("limit", default=20, type=int) or 20
    replays = replay.replay_table_draft(key, draft.xml, limit)
    return jsonify({"case_types": [r.as_json() for r in replays]})


def _target(key: str, number: int | None):
    found = drafts.case_type(key)
    if found is None:
        raise NotFound(f"no case type {key!r}")
    return drafts.version_of(key, number) if number else found.latest()


@bp.get("/case-types/<key>/migration")
@doc(
    "Preview: which running cases can move to a version, and why the others cannot",
    parameters=[query("to", {"type": "integer"}, "The target version (default: the newest)")],
    responses={200: ("Each open case on another version", ref("Migration"))},
    errors=(403, 404),
    tag="processes",
)
@token_required
def migration_preview(key: str):
    _owner()
    target = _target(key, request.args.get("to", type=int))
    checks = [drafts.check_migration(c, target) for c in drafts.open_cases_behind(target)]
    return jsonify({"to_version": target.version, "cases": [c.as_json() for c in checks]})


@bp.post("/case-types/<key>/migration")
@doc(
    "Move running cases to a version where safe; each case answers for itself",
    json_body={
        "type": "object",
        "properties": {
            "to_version": {"type": "integer"},
            "cases": {"type": "array", "items": {"type": "integer"}},
        },
    },
    body_required=False,
    responses={200: ("Per case: moved, or why it stays", ref("Migration"))},
    errors=(403, 404, 422),
    tag="processes",
)
@token_required
def migrate(key: str):
    """Without `cases`, every open case on an older version is tried."""
    user = _owner()
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    cases = body.get("cases")
    if cases is not None and (
        not isinstance(cases, list) or not all(isinstance(c, int) and 0 < c < 2**63 for c in cases)
    ):
        raise ApiError(422, "cases must be a list of case ids", {"cases": ["a list of case ids"]})
    number = body.get("to_version")
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        raise ApiError(422, "to_version must be a number", {"to_version": ["a version number"]})
    target = _target(key, number)
    results = drafts.migrate_cases(target, cases, user)
    return jsonify({"to_version": target.version, "cases": [r.as_json() for r in results]})


@bp.get("/case-types/<key>/heatmap")
@doc(
    "Open tasks by element: how many cases wait there and their median wait",
    parameters=[query("version", {"type": "integer"}, "Only cases on this version")],
    responses={200: ("Elements, most waiting first", ref("HeatMap"))},
    errors=(403, 404),
    tag="processes",
)
@token_required
def heatmap(key: str):
    _owner()
    if drafts.case_type(key) is None:
        raise NotFound(f"no case type {key!r}")
    number = request.args.get("version", type=int)
    version = drafts.version_of(key, number) if number else None
    heat = drafts.heat_map(key, version)
    return jsonify({"version": number, "elements": [h.as_json() for h in heat]})


# --- decision tables -----------------------------------------------------------------------


@bp.get("/decision-tables")
@doc(
    "The decision tables, each at its current version (None: the seed file)",
    responses={200: ("The tables", array_of("DecisionTable"))},
    errors=(403,),
    tag="drafts",
)
@token_required
def list_tables():
    _owner()
    return jsonify(
        [
            {"key": f.key, "version": f.version, "decisions": list(f.decision_ids)}
            for f in drafts.decision_files().values()
        ]
    )


@bp.get("/decision-tables/<key>/dmn")
@doc(
    "The current DMN of a decision table",
    responses={200: ("The table", {"type": "string"}, XML)},
    errors=(403, 404),
    tag="drafts",
)
@token_required
def get_table(key: str):
    _owner()
    file = drafts.decision_files().get(key)
    if file is None:
        raise NotFound(f"no decision table {key!r}")
    return Response(file.xml, mimetype=XML)
