"""Case attachments (PODs, BOLs, credit reports) and comments, and where the files live.

Files are untrusted input, so:

* a file is kept under the instance folder's ``attachments/`` directory (``ATTACHMENT_DIR``
  overrides it) by a random key, in two-letter shard folders; the uploader's filename is
  only ever shown and sent back in ``Content-Disposition``, never used as a path;
* its type must be on the allow-list by extension *and* by its content (magic numbers for
  PDF, PNG, JPEG and TIFF; the package parts of XLSX and DOCX; plain text for CSV, TXT and
  EML), so an ``.exe`` renamed ``.pdf`` is refused; the stored content type is the one we
  detected, never the client's;
* its size is capped by ``ATTACHMENT_MAX_BYTES`` (default 10 MB), counted while streaming.

Each comment and upload also appends a case event, so the timeline stays the audit trail.
Nothing here checks who may do it: the web layer asks ``can_read_case`` first.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import Response, abort, current_app, send_file

from casemgr.extensions import db
from casemgr.models import Attachment, Case, CaseEvent, Comment, User
from casemgr.models.types import utcnow

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_COMMENT_CHARS = 4000
MAX_FILENAME_CHARS = 150
CHUNK = 64 * 1024
SNIFF_BYTES = 64 * 1024  # how much of a text file is checked for binary content


class AttachmentError(Exception):
    """A refused upload, with the HTTP status that says why (413 too large, 422 otherwise)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class FileKind:
    label: str
    content_type: str
    extensions: tuple[str, ...]
    article: str = "a"


# The allow-list: what an AR case needs (signed PODs and BOLs as PDF or scans, credit
# reports, remittance spreadsheets, forwarded e-mails). Office files with macros are not
# on it: an .xlsm renamed .xlsx is refused by its content.
KINDS: dict[str, FileKind] = {
    "pdf": FileKind("PDF", "application/pdf", (".pdf",)),
    "png": FileKind("PNG image", "image/png", (".png",)),
    "jpeg": FileKind("JPEG image", "image/jpeg", (".jpg", ".jpeg")),
    "tiff": FileKind("TIFF image", "image/tiff", (".tif", ".tiff")),
    "csv": FileKind("CSV file", "text/csv", (".csv",)),
    "txt": FileKind("text file", "text/plain", (".txt",)),
    "xlsx": FileKind(
        "Excel workbook",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        (".xlsx",),
        "an",
    ),
    "docx": FileKind(
        "Word document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (".docx",),
    ),
    "eml": FileKind("e-mail message", "message/rfc822", (".eml",), "an"),
}
KIND_BY_EXTENSION = {ext: key for key, kind in KINDS.items() for ext in kind.extensions}
ALLOWED_TEXT = "PDF, PNG, JPEG, TIFF, CSV, TXT, XLSX, DOCX or EML"


def kind_label(content_type: str) -> str:
    """ "application/pdf" -> "PDF", for lists of attachments."""
    return next((k.label for k in KINDS.values() if k.content_type == content_type), content_type)


def max_bytes() -> int:
    return int(current_app.config.get("ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def human_size(size: int) -> str:
    """1,234,567 bytes -> "1.2 MB" (the limit and the list show sizes as people read them)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} MB"


def limit_text() -> str:
    limit = max_bytes()
    whole_mb = limit % (1024 * 1024) == 0
    return f"{limit // (1024 * 1024)} MB" if whole_mb else human_size(limit)


def storage_dir() -> Path:
    configured = current_app.config.get("ATTACHMENT_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "attachments"


def path_for(storage_key: str) -> Path:
    """The file of a stored key. Keys are ours (hex), so the check only guards against bugs."""
    if not re.fullmatch(r"[0-9a-f]{32,64}", storage_key):
        raise ValueError("not a storage key")
    return storage_dir() / storage_key[:2] / storage_key


# --- filenames ------------------------------------------------------------------------------

_UNSAFE_CHARS = re.compile(r"[^\w .()+,=@&-]", re.UNICODE)


def sanitize_filename(raw: str | None) -> str:
    """A display name safe in a header, a page and any file system; the extension is kept.

    The last path component only (``..\\..\\boot.ini`` and ``../../x.pdf`` lose their
    folders), Unicode normalised (NFC), control and unusual characters replaced, no leading
    dots, at most 150 characters with the extension preserved.
    """
    name = unicodedata.normalize("NFC", str(raw or ""))
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE_CHARS.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    name = re.sub(r"_{2,}", "_", name)
    stem, ext = os.path.splitext(name)
    if len(ext) > 10:  # not an extension we know anyway; keep it as part of the name
        stem, ext = name, ""
    stem = stem[: MAX_FILENAME_CHARS - len(ext)].rstrip(" .") or "attachment"
    return stem + ext.lower()


# --- type detection ----------------------------------------------------------------------------


# Bytes no text file holds: C0 controls (NUL included) except tab, line feed, form feed and
# carriage return, and DEL. Executables and other binaries are full of them.
_CONTROL_BYTES = bytes(sorted(set(range(32)) - {9, 10, 12, 13} | {127}))
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _looks_like_text(head: bytes) -> bool:
    """Plain text: UTF-8 or a single-byte code page (what CSV exports and e-mails are), or
    UTF-16 with its byte-order mark (Excel's "Unicode text"), without control characters."""
    if head.startswith(_UTF16_BOMS):
        try:
            text = head[: len(head) - len(head) % 2].decode("utf-16")
        except UnicodeDecodeError:
            return False
        head = text.encode("utf-8", errors="replace")
    return head.translate(None, _CONTROL_BYTES) == head


def _is_email(head: bytes) -> bool:
    """RFC 5322: a message starts with header fields ("Name: value")."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9-]*:\s?", first)) and _looks_like_text(head)


def _office_kind(path: Path) -> str | None:
    """'xlsx' or 'docx' for an Office Open XML package without macros, else None.

    Only the ZIP's directory is read (nothing is extracted, so a zip bomb costs nothing).
    """
    try:
        with zipfile.ZipFile(path) as package:
            names = set(package.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names or any(n.endswith("vbaProject.bin") for n in names):
        return None
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "word/document.xml" in names:
        return "docx"
    return None


def detect_kind(path: Path) -> str | None:
    """The allow-listed kind the content is, by its first bytes (and package parts)."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"PK\x03\x04"):
        return _office_kind(path)
    if _looks_like_text(head):
        return "eml" if _is_email(head) else "txt"
    return None


def _checked_kind(filename: str, path: Path) -> FileKind:
    """The file's kind when its extension and its content agree; a clear 422 otherwise."""
    ext = os.path.splitext(filename)[1].lower()
    wanted = KIND_BY_EXTENSION.get(ext)
    if wanted is None:
        shown = f"“{ext}” files" if ext else "Files without an extension"
        raise AttachmentError(f"{shown} cannot be attached. Attach a {ALLOWED_TEXT} file.")
    found = detect_kind(path)
    text_kinds = {"txt", "csv", "eml"}
    # A CSV or TXT file is any plain text; an EML must also start like a message.
    agrees = found == wanted or (wanted in ("txt", "csv") and found in text_kinds)
    if not agrees:
        kind = KINDS[wanted]
        raise AttachmentError(
            f"“{filename}” is not {kind.article} {kind.label}: its content does not match "
            f"its {ext} extension. Attach the original file."
        )
    return KINDS[wanted]


# --- storing -----------------------------------------------------------------------------------


def _copy_limited(source: BinaryIO | Iterator[bytes], target: BinaryIO, filename: str) -> tuple:
    """Copy while counting and hashing; stop at one byte over the limit."""
    limit = max_bytes()
    digest = hashlib.sha256()
    size = 0
    chunks = iter(lambda: source.read(CHUNK), b"") if hasattr(source, "read") else source
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise AttachmentError(
                f"“{filename}” is larger than the {limit_text()} limit for attachments.", 413
            )
        digest.update(chunk)
        target.write(chunk)
    return size, digest.hexdigest()


def add_attachment(
    case: Case, user: User, filename: str | None, content: BinaryIO | bytes
) -> Attachment:
    """Check and store one file for a case and record it in the timeline (not committed).

    The bytes go to a temporary file in the storage folder first; only a file that passes
    the size and type checks is renamed to its random key, so a refused upload leaves
    nothing behind.
    """
    name = sanitize_filename(filename)
    if not filename or not str(filename).strip():
        raise AttachmentError("Choose a file to attach.")
    folder = storage_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    source = iter([content]) if isinstance(content, bytes) else content
    fd, temp_name = tempfile.mkstemp(prefix=".upload-", dir=folder)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as target:
            size, sha256 = _copy_limited(source, target, name)
        if size == 0:
            raise AttachmentError(f"“{name}” is empty.")
        kind = _checked_kind(name, temp)
        key = secrets.token_hex(16)
        final = path_for(key)
        final.parent.mkdir(exist_ok=True, mode=0o700)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    attachment = Attachment(
        case_id=case.id,
        uploaded_by_id=user.id,
        filename=name,
        content_type=kind.content_type,
        size=size,
        sha256=sha256,
        storage_key=key,
        created_at=utcnow(),
    )
    db.session.add(attachment)
    db.session.flush()
    _record(
        case,
        user,
        "attachment_added",
        attachment_id=attachment.id,
        filename=name,
        size=size,
        content_type=kind.content_type,
        sha256=sha256,
    )
    return attachment


def remove_orphan_file(attachment: Attachment) -> None:
    """Delete a stored file whose row was rolled back (the caller's commit failed)."""
    path_for(attachment.storage_key).unlink(missing_ok=True)


def download_response(attachment: Attachment) -> Response:
    """The stored file as a download, never rendered by the browser.

    ``Content-Disposition: attachment`` with the sanitized name, the content type we
    detected, ``nosniff``, no caching of a customer's documents, and a CSP that forbids the
    response to run or load anything should a browser render it anyway.
    """
    path = path_for(attachment.storage_key)
    if not path.is_file():
        current_app.logger.error(
            "attachment %s of case %s: stored file %s is missing",
            attachment.id,
            attachment.case_id,
            attachment.storage_key,
        )
        abort(404, description="The stored file of this attachment is missing; tell IT.")
    response = send_file(
        path,
        mimetype=attachment.content_type,
        as_attachment=True,
        download_name=attachment.filename,
        conditional=True,
        etag=attachment.sha256,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def attachment_of(case: Case, attachment_id: int) -> Attachment | None:
    """The attachment only if it belongs to this case: another case's id answers None."""
    found = db.session.get(Attachment, attachment_id) if 0 < attachment_id < 2**31 else None
    return found if found is not None and found.case_id == case.id else None


def case_attachments(case_id: int) -> list[Attachment]:
    query = (
        db.select(Attachment)
        .where(Attachment.case_id == case_id)
        .order_by(Attachment.created_at.desc(), Attachment.id.desc())
    )
    return list(db.session.execute(query).scalars())


# --- comments ----------------------------------------------------------------------------------


def add_comment(case: Case, user: User, body: str | None) -> Comment:
    """Add a comment and its timeline event (not committed); a clear 422 for an empty one."""
    text = (body or "").replace("\r\n", "\n").strip()
    if not text:
        raise AttachmentError("Write a comment first.")
    if len(text) > MAX_COMMENT_CHARS:
        raise AttachmentError(f"A comment has at most {MAX_COMMENT_CHARS:,} characters.")
    comment = Comment(case_id=case.id, author_id=user.id, body=text, created_at=utcnow())
    db.session.add(comment)
    db.session.flush()
    excerpt = text if len(text) <= 200 else text[:199].rstrip() + "…"
    _record(case, user, "comment", comment_id=comment.id, excerpt=excerpt)
    return comment


def case_comments(case_id: int, limit: int | None = None) -> list[Comment]:
    """Newest first (a task page shows the last few)."""
    query = (
        db.select(Comment)
        .where(Comment.case_id == case_id)
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )
    if limit:
        query = query.limit(limit)
    return list(db.session.execute(query).scalars())


def _record(case: Case, user: User, kind: str, **detail) -> None:
    db.session.add(
        CaseEvent(case_id=case.id, at=utcnow(), actor=user.username, kind=kind, detail=detail)
    )
