"""The OpenAPI 3.1 document, generated from the app's routes so it cannot drift from them.

Every rule under the API prefix appears. A view may carry metadata from ``@doc`` (summary,
parameters, request body, answers); a view without it still gets an entry built from its
rule, its docstring and whether it sits behind ``token_required``, so another engineer's new
route shows up without anyone editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, jsonify

from casemgr.web.api import bp
from casemgr.web.api.auth import token_required

JSON = "application/json"
XML = "application/xml"

# How a view behind token_required looks from outside: the wrapper's code object.
_TOKEN_WRAPPER_CODE = token_required(lambda: None).__code__
_RULE_ARG = re.compile(
    r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>[^)]*)\))?:)?"
    r"(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>"
)
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_CONVERTER_SCHEMAS = {"int": {"type": "integer"}, "float": {"type": "number"}}
_ERROR_TEXT = {
    400: "The body is not JSON (or not a JSON object)",
    401: "No bearer token, or an unknown or revoked one",
    403: "Not allowed: wrong role, the four-eyes rule, or not your case",
    404: "Unknown",
    409: "State conflict: the task is no longer open or another user holds it",
    413: "The body is too large",
    422: "Invalid data; `errors` names each field",
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def array_of(name: str) -> dict:
    return {"type": "array", "items": ref(name)}


def query(name: str, schema: dict, description: str) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


# The case document's short form (RFC 7240): no timeline, only the open tasks.
PREFER_MINIMAL = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    # Not an enum: RFC 7240 has a server ignore preferences it does not know, and a client
    # may send several ("respond-async, return=minimal").
    "schema": {"type": "string"},
    "description": "return=minimal: the case without its timeline (events) and with its open "
    "tasks only; the answer then carries Preference-Applied: return=minimal",
}


def doc(
    summary: str,
    *,
    responses: dict[int, tuple],
    errors: tuple[int, ...] = (),
    json_body: dict | None = None,
    body_required: bool = True,
    raw_body: str | None = None,
    parameters: list[dict] | None = None,
    headers: dict[int, dict[str, dict]] | None = None,
    auth: bool = True,
    tag: str | None = None,
) -> Callable:
    """Attach OpenAPI metadata to a view.

    ``responses`` maps a status to (text, schema) or (text, schema, media type or a tuple of
    them); the error statuses in ``errors`` (plus 401 behind a token, 400 with a JSON body and
    404 with a path parameter) share one shape.
    """

    def decorate(view: Callable) -> Callable:
        view.openapi = {
            "summary": summary,
            "responses": responses,
            "errors": errors,
            "json_body": json_body,
            "body_required": body_required,
            "raw_body": raw_body,
            "parameters": parameters or [],
            "headers": headers or {},
            "auth": auth,
            "tag": tag,
        }
        return view

    return decorate


def _converter_schema(converter: str, args: str) -> dict:
    """``any('a','b')`` matches only its words: the document lists them."""
    if converter == "any":
        return {"type": "string", "enum": [a or b for a, b in _QUOTED.findall(args)]}
    return dict(_CONVERTER_SCHEMAS.get(converter, {"type": "string"}))


def _path_and_parameters(rule: str) -> tuple[str, list[dict]]:
    params = []
    for match in _RULE_ARG.finditer(rule):
        schema = _converter_schema(match.group("converter") or "", match.group("args") or "")
        params.append(
            {"name": match.group("name"), "in": "path", "required": True, "schema": schema}
        )
    return _RULE_ARG.sub(lambda m: "{" + m.group("name") + "}", rule), params


def _content(media: str, schema: dict | None) -> dict:
    return {media: {"schema": schema if schema is not None else {}}}


def _error_response(status: int) -> dict:
    return {
        "description": _ERROR_TEXT.get(status, "Error"),
        "content": _content(JSON, ref("Error")),
    }


def _documented(meta: dict, path_params: list[dict]) -> dict:
    op: dict[str, Any] = {
        "summary": meta["summary"],
        "parameters": path_params + meta["parameters"],
    }
    if meta["tag"]:
        op["tags"] = [meta["tag"]]
    if meta["json_body"] is not None:
        op["requestBody"] = {
            "required": meta["body_required"],
            "content": _content(JSON, meta["json_body"]),
        }
    elif meta["raw_body"]:
        op["requestBody"] = {
            "required": True,
            "content": _content(meta["raw_body"], {"type": "string"}),
        }
    responses: dict[str, Any] = {}
    for status, (text, schema, *media) in meta["responses"].items():
        answer: dict[str, Any] = {"description": text}
        if schema is not None:
            types = media[0] if media else JSON  # one media type, or a tuple of them
            for media_type in (types,) if isinstance(types, str) else types:
                answer.setdefault("content", {}).update(_content(media_type, schema))
        if status in meta["headers"]:
            answer["headers"] = meta["headers"][status]
        responses[str(status)] = answer
    statuses = set(meta["errors"])
    if path_params:  # a value in the path that names nothing (or matches no route) is a 404
        statuses.add(404)
    if meta["auth"]:
        statuses.add(401)
    if meta["json_body"] is not None:
        statuses.add(400)
    for status in sorted(statuses):
        responses[str(status)] = _error_response(status)
    op["responses"] = responses
    return op


def _generic(view: Callable, path_params: list[dict], method: str) -> dict:
    """An entry for a view without metadata: its docstring, its parameters, JSON either way."""
    text = (view.__doc__ or "").strip()
    first = text.split("\n\n")[0].replace("\n", " ").strip() if text else ""
    op: dict[str, Any] = {
        "summary": first or view.__name__.replace("_", " "),
        "parameters": path_params,
        "responses": {
            "200": {"description": "OK", "content": _content(JSON, {})},
            "default": {
                "description": "An error (see the contract)",
                "content": _content(JSON, ref("Error")),
            },
        },
    }
    if method in ("POST", "PUT", "PATCH"):
        op["requestBody"] = {"required": False, "content": {"*/*": {"schema": {}}}}
    if _needs_token(view):
        op["responses"]["401"] = _error_response(401)
    return op


def _needs_token(view: Callable) -> bool:
    meta = getattr(view, "openapi", None)
    if meta is not None:
        return bool(meta["auth"])
    return getattr(view, "__code__", None) is _TOKEN_WRAPPER_CODE


def build_document(app: Flask) -> dict:
    """Walk the url_map: every API rule and method becomes an operation."""
    paths: dict[str, dict] = {}
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith(bp.url_prefix + "/")]
    for rule in sorted(rules, key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        path, path_params = _path_and_parameters(rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            meta = getattr(view, "openapi", None)
            op = _documented(meta, path_params) if meta else _generic(view, path_params, method)
            name = rule.endpoint.rsplit(".", 1)[-1]
            op["operationId"] = name if len(methods) == 1 else f"{name}_{method.lower()}"
            op["security"] = [{"bearerAuth": []}] if _needs_token(view) else []
            op.setdefault("tags", [rule.rule[len(bp.url_prefix) + 1 :].split("/")[0]])
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "casemgr API",
            "version": "1",
            "description": "Case management for accounts receivable. Errors are "
            '`{"error", "errors"?}`; when several apply the first of 401, 400, 404, 403, 409, '
            "413, 422 wins.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }


_STR_OR_NULL = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_MONEY = {"type": ["string", "null"], "pattern": r"^-?\d+\.\d{2}$"}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "errors": {
                "description": "By field for data (422), or a list of diagram problems",
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                    {"type": "array", "items": {"$ref": "#/components/schemas/DiagramProblem"}},
                ],
            },
        },
    },
    "DiagramProblem": {
        "type": "object",
        "required": ["element", "message"],
        "properties": {"element": _STR_OR_NULL, "message": {"type": "string"}},
    },
    "CaseType": {
        "type": "object",
        "required": ["key", "name", "version"],
        "properties": {
            "key": {"type": "string"},
            "name": {"type": "string"},
            "version": {"type": "integer"},
        },
    },
    "StartCase": {
        "type": "object",
        "required": ["case_type"],
        "properties": {"case_type": {"type": "string"}, "data": {"type": "object"}},
    },
    "TaskSummary": {
        "type": "object",
        "required": [
            "id",
            "case_id",
            "case_type",
            "name",
            "title",
            "role",
            "assignee",
            "state",
            "due_at",
            "completed_by",
            "completed_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "case_id": {"type": "integer"},
            "case_type": {"type": "string"},
            "name": {"type": "string", "description": "the BPMN element id"},
            "title": {"type": "string"},
            "role": {"type": "string"},
            "assignee": _STR_OR_NULL,
            "state": {"enum": ["open", "completed", "cancelled"]},
            "due_at": _TIME,
            "completed_by": _STR_OR_NULL,
            "completed_at": _TIME,
            "created_at": _TIME,
            "customer_number": _STR_OR_NULL,
            "customer_name": _STR_OR_NULL,
            "amount": _MONEY,
            "form_key": _STR_OR_NULL,
            "four_eyes": {"type": "array", "items": {"type": "string"}},
        },
    },
    "FormField": {
        "type": "object",
        "required": [
            "name",
            "label",
            "type",
            "required",
            "choices",
            "default",
            "placeholder",
            "min",
            "max",
            "max_length",
        ],
        "properties": {
            "name": {"type": "string"},
            "label": {"type": "string"},
            "type": {
                "enum": [
                    "string",
                    "text",
                    "email",
                    "integer",
                    "decimal",
                    "date",
                    "boolean",
                    "choice",
                    "multi_choice",
                    "file",
                ]
            },
            "required": {"type": "boolean"},
            "choices": {
                "type": ["array", "null"],
                "items": {"type": "array", "items": {"type": "string"}},
            },
            "default": {},
            "placeholder": _STR_OR_NULL,
            "min": {},
            "max": {},
            "max_length": {"type": ["integer", "null"]},
        },
    },
    "Form": {
        "type": "object",
        "required": ["key", "fields"],
        "properties": {
            "key": _STR_OR_NULL,
            "fields": {"type": "array", "items": {"$ref": "#/components/schemas/FormField"}},
        },
    },
    "Task": {
        "allOf": [
            {"$ref": "#/components/schemas/TaskSummary"},
            {
                "type": "object",
                "required": ["form"],
                "properties": {
                    "form": {"$ref": "#/components/schemas/Form"},
                    "case_title": {"type": "string"},
                },
            },
        ]
    },
    "CaseEvent": {
        "type": "object",
        "required": ["at", "actor", "kind", "detail"],
        "properties": {
            "at": _TIME,
            "actor": {"type": "string"},
            "kind": {"type": "string"},
            "detail": {"type": "object"},
        },
    },
    "Case": {
        "type": "object",
        # "events" is left out only when the request said Prefer: return=minimal.
        "required": ["id", "case_type", "version", "status", "data", "tasks"],
        "properties": {
            "id": {"type": "integer"},
            "case_type": {"type": "string"},
            "case_type_name": {"type": "string"},
            "version": {"type": "integer"},
            "status": {"enum": ["open", "completed", "cancelled"]},
            "outcome": _STR_OR_NULL,
            "title": {"type": "string"},
            "customer_number": _STR_OR_NULL,
            "customer_name": _STR_OR_NULL,
            "amount": _MONEY,
            "started_by": _STR_OR_NULL,
            "created_at": _TIME,
            "updated_at": _TIME,
            "completed_at": _TIME,
            "broken": _STR_OR_NULL,
            "data": {"type": "object"},
            "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/TaskSummary"}},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/CaseEvent"}},
        },
    },
    "Complete": {"type": "object", "properties": {"data": {"type": "object"}}},
    "Assign": {
        "type": "object",
        "required": ["user"],
        "properties": {"user": {"type": "string"}, "reason": {"type": "string"}},
    },
    "Unclaim": {"type": "object", "properties": {"reason": {"type": "string"}}},
    "BulkComplete": {
        "type": "object",
        "required": ["tasks"],
        "properties": {
            "tasks": {"type": "array", "items": {"type": ["integer", "string"]}, "maxItems": 500},
            "data": {"type": ["object", "null"]},
        },
    },
    "BulkResults": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "integer"},
                        "error": {"type": "string"},
                        "errors": {"type": "object"},
                    },
                },
            }
        },
    },
    "ValidationResult": {
        "type": "object",
        "required": ["valid", "errors"],
        "properties": {
            "valid": {"type": "boolean"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/DiagramProblem"}},
        },
    },
    "PublishedVersion": {
        "type": "object",
        "required": ["key", "version"],
        "properties": {"key": {"type": "string"}, "version": {"type": "integer"}},
    },
    "ProcessVersion": {
        "type": "object",
        "required": ["version", "published_at", "published_by", "sha256"],
        "properties": {
            "version": {"type": "integer"},
            "published_at": _TIME,
            "published_by": _STR_OR_NULL,
            "sha256": {"type": "string"},
            "process_id": {"type": "string"},
        },
    },
}


@bp.get("/openapi.json")
@doc(
    "This document",
    responses={200: ("The OpenAPI 3.1 document", {"type": "object"})},
    auth=False,
    tag="meta",
)
def openapi_document():
    """The API's OpenAPI document; readable without a token, like any published contract."""
    return jsonify(build_document(current_app))
