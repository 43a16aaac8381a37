"""Process versions for process owners: validate, publish, list and read diagrams.

Diagrams arrive as the raw request body, never as JSON. Validating answers 200 for any body,
however broken, because "this is not a diagram" is the answer a modeler needs. Only a caller
who is not a process owner or admin (403) and a body over the XML size limit (413) are
refused, both before anything parses the body.
"""

from __future__ import annotations

import re

from flask import Response, jsonify, request, url_for
from sqlalchemy.exc import IntegrityError

from casemgr.engine.errors import NotFound
from casemgr.engine.processes import dmn_for, publish
from casemgr.engine.specs import MAX_XML_BYTES
from casemgr.engine.validation import validate_document
from casemgr.extensions import db
from casemgr.models import CaseType, ProcessVersion, User
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, require_role, token_required
from casemgr.web.api.cases import ids_in_range
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import XML, array_of, doc, ref
from casemgr.web.api.serializers import version_json

PROCESS_ROLES: tuple[str, ...] = ("process_owner", "admin")
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,79}")


def _diagram_body(user: User) -> bytes:
    """The raw body, once the caller may send diagrams (403 comes before 413)."""
    require_role(user, *PROCESS_ROLES)
    too_large = ApiError(413, f"the file is larger than {MAX_XML_BYTES // (1024 * 1024)} MB")
    if request.content_length is not None and request.content_length > MAX_XML_BYTES:
        raise too_large
    raw = request.get_data(cache=True)
    if len(raw) > MAX_XML_BYTES:
        raise too_large
    return raw


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decision_tables(raw: bytes) -> list[str]:
    """The decision tables the diagram calls, so a diagram that uses one validates as published."""
    text = _text(raw)
    return dmn_for(text) if text is not None else []


@bp.post("/processes/validate")
@doc(
    "Validate a BPMN diagram without publishing it",
    raw_body=XML,
    responses={200: ("Whether it is valid, and every problem found", ref("ValidationResult"))},
    errors=(403, 413),
    tag="processes",
)
@token_required
def validate_diagram():
    """Report every problem of a diagram; any body gets an answer, never an error page."""
    raw = _diagram_body(current_api_user())
    errors = validate_document(raw, _decision_tables(raw))
    return jsonify({"valid": not errors, "errors": errors})


def _case_type(key: str) -> CaseType:
    row = db.session.execute(db.select(CaseType).filter_by(key=key)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no case type {key!r}")
    return row


@bp.post("/case-types/<key>/versions")
@doc(
    "Publish a BPMN diagram as the case type's next version",
    raw_body=XML,
    responses={201: ("The published version", ref("PublishedVersion"))},
    errors=(403, 409, 413, 422),
    tag="processes",
)
@token_required
def publish_version(key: str):
    """Validate and publish; a new key creates the case type at version 1."""
    raw = _diagram_body(current_api_user())
    if not KEY_PATTERN.fullmatch(key):
        raise ApiError(
            422,
            "invalid case-type key",
            {
                "key": [
                    "lower-case letters, digits and _, starting with a letter, 2 to 80 characters"
                ]
            },
        )
    text = _text(raw)
    if text is None:
        problems = [{"element": None, "message": "the file is not UTF-8 text"}]
        raise ApiError(422, "the diagram is not valid", problems)
    version, problems = publish(key, text, current_api_user())
    if problems:
        db.session.rollback()
        raise ApiError(422, "the diagram is not valid", problems)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(
            409, "another version was published at the same moment; send it again"
        ) from None
    response = jsonify({"key": key, "version": version.version})
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_version_bpmn", key=key, version=version.version)
    return response


@bp.get("/case-types/<key>/versions")
@doc(
    "The published versions of a case type, oldest first",
    responses={200: ("The versions", array_of("ProcessVersion"))},
    errors=(404,),
    tag="processes",
)
@token_required
def list_versions(key: str):
    """Every published version: running cases stay on theirs, so old ones stay readable."""
    return jsonify([version_json(v) for v in _case_type(key).versions])


@bp.get("/case-types/<key>/versions/<int:version>/bpmn")
@doc(
    "The BPMN XML of one version",
    responses={200: ("The diagram", {"type": "string"}, XML)},
    errors=(404,),
    tag="processes",
)
@token_required
@ids_in_range
def get_version_bpmn(key: str, version: int):
    """The diagram exactly as published, for the modeler and the case view."""
    case_type = _case_type(key)
    row = db.session.execute(
        db.select(ProcessVersion).filter_by(case_type_id=case_type.id, version=version)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{key} has no version {version}")
    return Response(row.bpmn_xml, mimetype=XML)
