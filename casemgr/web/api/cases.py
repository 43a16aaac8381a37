"""Case types and cases: start one, read one (API.md, "HTTP")."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import jsonify, url_for

from casemgr.engine import access
from casemgr.engine.cases import start_case
from casemgr.engine.errors import Forbidden, NotFound
from casemgr.engine.processes import published_case_types
from casemgr.extensions import db
from casemgr.models import Case, User
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, json_body, token_required
from casemgr.web.api.case_document import case_id_of, case_response
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import PREFER_MINIMAL, array_of, doc, ref
from casemgr.web.api.serializers import case_type_json

# Ids are 32-bit integer columns on PostgreSQL; a larger number in a URL names nothing.
MAX_ID = 2**31 - 1


def ids_in_range(view: Callable) -> Callable:
    """404 for an integer path value beyond any id, before it reaches the database driver.

    Placed under ``token_required`` so that a caller without a token still gets 401 first.
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        for name, value in kwargs.items():
            if isinstance(value, int) and value > MAX_ID:
                raise NotFound(f"no {name.removesuffix('_id')} {value}")
        return view(*args, **kwargs)

    return wrapper


@bp.get("/case-types")
@doc(
    "Published case types, each at its newest version",
    responses={200: ("The case types", array_of("CaseType"))},
    tag="cases",
)
@token_required
def list_case_types():
    """Published case types with their newest version: what a client may start."""
    return jsonify([case_type_json(ct) for ct in published_case_types()])


def _start_request(body: dict, user: User) -> tuple[str, dict]:
    """The case type and data of a start request; 422 for a wrong shape.

    A start the caller may not make is refused with 403 before any 422 about its data, as the
    contract's order says, so the role check runs first when the data is malformed.
    """
    key = body.get("case_type")
    if not isinstance(key, str) or not key.strip():
        raise ApiError(
            422,
            "case_type is required",
            {"case_type": ["give the key of a case type, e.g. credit_application"]},
        )
    data = body.get("data")
    if data is None:
        return key, {}
    if not isinstance(data, dict):
        known = any(ct.key == key for ct in published_case_types())
        if known and not access.can_start(user, key):
            raise Forbidden("your roles may not start this case type")
        raise ApiError(
            422,
            "data must be a JSON object",
            {"data": ["must be an object of field names to values"]},
        )
    return key, data


@bp.post("/cases")
@doc(
    "Start a case and run it to its first wait state",
    json_body=ref("StartCase"),
    responses={201: ("The new case", ref("Case"))},
    errors=(403, 413, 422),
    parameters=[PREFER_MINIMAL],
    headers={
        201: {"Location": {"schema": {"type": "string"}, "description": "the case's address"}}
    },
    tag="cases",
)
@token_required
def create_case():
    """Start a case; what the data lacks is asked for by the case's first human task."""
    user = current_api_user()
    key, data = _start_request(json_body(), user)
    case = start_case(key, data, user)
    response = case_response(case, status=201)
    response.headers["Location"] = url_for("api.get_case", case_id=case_id_of(case))
    return response


@bp.get("/cases/<int:case_id>")
@doc(
    "A case with its tasks and timeline",
    responses={200: ("The case", ref("Case"))},
    errors=(403, 404),
    parameters=[PREFER_MINIMAL],
    tag="cases",
)
@token_required
@ids_in_range
def get_case(case_id: int):
    """Read one case: its data, its human tasks and its timeline, oldest first."""
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    if not access.can_read_case(current_api_user(), case):
        raise Forbidden("this case is not yours to read")
    return case_response(case)
