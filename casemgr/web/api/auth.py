"""Bearer-token authentication and request helpers for the API."""

from __future__ import annotations

from functools import wraps

from flask import g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from casemgr.extensions import db
from casemgr.models import ApiToken, User
from casemgr.web.api.errors import ApiError

# The token, its user and their roles in one query, built once (every API call runs it).
_TOKEN_WITH_USER = (
    select(ApiToken)
    .where(ApiToken.token_hash == bindparam("token_hash"))
    .options(joinedload(ApiToken.user).joinedload(User.roles))
)


def current_api_user() -> User:
    return g.api_user


def token_required(view):
    """401 before anything else (the contract's order: 401, 400, 404, 403, 409, 413, 422)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing bearer token")
        found = db.session.execute(_TOKEN_WITH_USER, {"token_hash": ApiToken.hash(token.strip())})
        row = found.unique().scalar_one_or_none()
        if row is None or row.revoked_at is not None or not row.user.active:
            raise ApiError(401, "invalid or revoked token")
        g.api_user = row.user
        return view(*args, **kwargs)

    return wrapper


def json_body(required: bool = True) -> dict:
    """The request's JSON object, or 400 for a body that is not a JSON object."""
    if not request.get_data(cache=True):
        if required:
            raise ApiError(400, "request body must be a JSON object")
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # absurdly nested JSON: the parser gives up, so do we
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def require_role(user: User, *roles: str) -> None:
    if not user.has_role(*roles):
        raise ApiError(403, f"requires one of the roles: {', '.join(roles)}")
