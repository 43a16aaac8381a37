"""Case attachments over the API: upload as API.md's file value, list, download.

A file value is ``{"filename", "content_base64"}`` (API.md, "Forms"), so an ERP or a
scanner station sends a POD the way it sends any other field. The same checks as the web
upload apply (casemgr.attachments): the allow-list by extension and content, the size
limit, the sanitized name; only readers of the case may upload or download.
"""

from __future__ import annotations

import base64
import binascii

from flask import jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from casemgr import attachments
from casemgr.attachments import AttachmentError
from casemgr.engine import access
from casemgr.engine.errors import Forbidden, NotFound
from casemgr.extensions import db
from casemgr.models import Attachment, Case, User
from casemgr.web.api import bp
from casemgr.web.api.auth import current_api_user, json_body, token_required
from casemgr.web.api.cases import ids_in_range
from casemgr.web.api.errors import ApiError
from casemgr.web.api.openapi import doc

# Room for the JSON around the base64 text (the filename, the keys, whitespace).
JSON_OVERHEAD = 16 * 1024

FILE_VALUE_SCHEMA = {
    "type": "object",
    "required": ["filename", "content_base64"],
    "properties": {
        "filename": {"type": "string", "description": "shown to people; never used as a path"},
        "content_base64": {"type": "string", "contentEncoding": "base64"},
    },
}
ATTACHMENT_SCHEMA = {
    "type": "object",
    "required": ["id", "case_id", "filename", "content_type", "size", "sha256", "url"],
    "properties": {
        "id": {"type": "integer"},
        "case_id": {"type": "integer"},
        "filename": {"type": "string", "description": "the sanitized name"},
        "content_type": {"type": "string", "description": "as detected from the content"},
        "size": {"type": "integer", "description": "bytes"},
        "sha256": {"type": "string"},
        "uploaded_by": {"type": ["string", "null"]},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
        "url": {"type": "string", "description": "where to download it (same token)"},
    },
}


def attachment_json(att: Attachment) -> dict:
    return {
        "id": att.id,
        "case_id": att.case_id,
        "filename": att.filename,
        "content_type": att.content_type,
        "size": att.size,
        "sha256": att.sha256,
        "uploaded_by": att.uploaded_by.username if att.uploaded_by else None,
        "created_at": att.created_at.isoformat() if att.created_at else None,
        "url": url_for("api.download_attachment", case_id=att.case_id, attachment_id=att.id),
    }


def _readable_case(case_id: int, user: User) -> Case:
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    if not access.can_read_case(user, case):
        raise Forbidden("this case is not yours to read")
    return case


def _body_limit() -> int:
    """Base64 makes 3 bytes into 4 characters: the body limit that fits the file limit."""
    return -(-attachments.max_bytes() // 3) * 4 + JSON_OVERHEAD


def _too_large() -> ApiError:
    return ApiError(413, f"the file is larger than the {attachments.limit_text()} limit")


def _file_value(body: dict) -> tuple[str, bytes]:
    """The filename and decoded bytes of a file value; 422 naming the field that is wrong."""
    errors: dict[str, list[str]] = {}
    filename = body.get("filename")
    content = body.get("content_base64")
    if not isinstance(filename, str) or not filename.strip():
        errors["filename"] = ["give the file's name, e.g. pod-4711.pdf"]
    if not isinstance(content, str) or not content.strip():
        errors["content_base64"] = ["give the file's bytes, base64-encoded"]
    if errors:
        raise ApiError(422, "a file value is {filename, content_base64}", errors)
    try:
        data = base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422, "content_base64 is not valid base64", {"content_base64": ["not valid base64"]}
        ) from None
    return filename, data


@bp.post("/cases/<int:case_id>/attachments")
@doc(
    "Attach a file to a case",
    json_body=FILE_VALUE_SCHEMA,
    responses={201: ("The stored attachment", ATTACHMENT_SCHEMA)},
    errors=(403, 404, 413, 422),
    headers={
        201: {"Location": {"schema": {"type": "string"}, "description": "the download address"}}
    },
    tag="cases",
)
@token_required
@ids_in_range
def upload_attachment(case_id: int):
    """Store a PDF, image, CSV, text, XLSX, DOCX or EML file with a case.

    The type is checked by extension and by content; the stored name is sanitized.
    """
    user = current_api_user()
    request.max_content_length = _body_limit()
    try:
        body = json_body()
        oversized = False
    except RequestEntityTooLarge:
        body, oversized = {}, True
    case = _readable_case(case_id, user)  # 404 and 403 come before 413 (API.md's order)
    if oversized:
        raise _too_large()
    filename, data = _file_value(body)
    try:
        stored = attachments.add_attachment(case, user, filename, data)
    except AttachmentError as exc:
        db.session.rollback()
        raise ApiError(exc.status, exc.message) from None
    try:
        db.session.commit()
    except Exception:
        attachments.remove_orphan_file(stored)
        raise
    answer = attachment_json(stored)
    response = jsonify(answer)
    response.status_code = 201
    response.headers["Location"] = answer["url"]
    return response


@bp.get("/cases/<int:case_id>/attachments")
@doc(
    "A case's attachments, newest first",
    responses={200: ("The attachments", {"type": "array", "items": ATTACHMENT_SCHEMA})},
    errors=(403, 404),
    tag="cases",
)
@token_required
@ids_in_range
def list_attachments(case_id: int):
    """What is attached to a case (names, types, sizes, hashes), without the files."""
    case = _readable_case(case_id, current_api_user())
    return jsonify([attachment_json(a) for a in attachments.case_attachments(case.id)])


@bp.get("/cases/<int:case_id>/attachments/<int:attachment_id>")
@doc(
    "Download an attachment",
    responses={
        200: (
            "The file, as an attachment, with its detected type",
            {"type": "string"},
            tuple(kind.content_type for kind in attachments.KINDS.values()),
        )
    },
    errors=(403, 404),
    tag="cases",
)
@token_required
@ids_in_range
def download_attachment(case_id: int, attachment_id: int):
    """The file with its detected type; another case's attachment id is a 404 here."""
    case = _readable_case(case_id, current_api_user())
    found = attachments.attachment_of(case, attachment_id)
    if found is None:
        raise NotFound(f"case {case.id} has no attachment {attachment_id}")
    return attachments.download_response(found)
