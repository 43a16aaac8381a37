"""CSV import in the browser: upload, preview every row error, then confirm (all or nothing).

Between the preview and the confirmation the file is kept **on the server**, in the instance
folder under a random token, never sent back and forth through the browser: what is imported
is byte for byte what was previewed. Why a file and not the session: Flask's session is a
signed cookie of about 4 KB, too small for any real export, and a cookie would make every
later request carry the file. Why not a table: a staged upload is scratch data that expires
within the hour, and a file needs no schema change. Each staged file records who uploaded it
(only they may confirm), is capped at ``MAX_CONTENT_LENGTH`` (which also caps the upload),
and expires after ``IMPORT_STAGING_TTL`` seconds (expired files are swept on each upload).

Confirming *claims* the file by renaming it, which the filesystem does atomically: a double
click or a second tab confirming the same token finds nothing and imports nothing twice.
Payments imported end, in the same transaction, the collection referrals of customers whose
balance they clear (``deliver_payment_messages``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from casemgr.engine.payments import deliver_payment_messages
from casemgr.extensions import db
from casemgr.ledger.imports import (
    KINDS,
    SPECS,
    CsvFormatError,
    ImportRejected,
    ImportResult,
    RowError,
    decode_csv,
    import_csv,
    parse_file,
)
from casemgr.models import User
from casemgr.web.helpers import error_page, money, require_login, roles_required, user

bp = Blueprint("imports", __name__)
require_login(bp)

IMPORT_ROLES = ("ar_specialist", "credit_manager", "controller", "admin")
PREVIEW_ROWS = 10
DEFAULT_TTL = 3600
ENCODINGS = {"utf-8": "UTF-8", "cp1252": "Windows-1252 (older Excel)", "latin-1": "ISO-8859-1"}
KIND_LABELS = {
    "customers": "Customers",
    "invoices": "Invoices",
    "payments": "Payments",
    "orders": "Open orders",
}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


# --- the staging area ---------------------------------------------------------------------


@dataclass(frozen=True)
class Staged:
    token: str
    user_id: int
    kind: str
    filename: str
    text: str
    created: float


def _staging_dir() -> Path:
    folder = current_app.config.get("IMPORT_STAGING_DIR") or os.path.join(
        current_app.instance_path, "imports"
    )
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ttl() -> int:
    return int(current_app.config.get("IMPORT_STAGING_TTL", DEFAULT_TTL))


def _path(token: str) -> Path:
    if not _TOKEN.fullmatch(token):  # never a path from the URL: only our own token shape
        abort(404, description="There is no such upload.")
    return _staging_dir() / f"{token}.json"


def _sweep(now: float) -> None:
    """Forget uploads nobody confirmed in time (and claims a crash left behind)."""
    for entry in _staging_dir().glob("*.json*"):  # staged, claimed, or half-written
        try:
            if now - entry.stat().st_mtime > _ttl():
                entry.unlink()
        except FileNotFoundError:
            continue


def stage(me: User, kind: str, filename: str, text: str) -> str:
    """Keep the decoded upload under a new random token; written atomically, owner-only."""
    now = time.time()
    _sweep(now)
    token = secrets.token_urlsafe(24)
    record = {"user_id": me.id, "kind": kind, "filename": filename, "text": text, "created": now}
    folder = _staging_dir()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".json.tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out)
    os.replace(tmp, folder / f"{token}.json")
    return token


def _read(path: Path, token: str) -> Staged | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        staged = Staged(
            token, int(record["user_id"]), str(record["kind"]), str(record["filename"]),
            str(record["text"]), float(record["created"]),
        )  # fmt: skip
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if time.time() - staged.created > _ttl() or staged.kind not in KINDS:
        path.unlink(missing_ok=True)
        return None
    return staged


def load_staged(token: str, me: User) -> Staged | None:
    """The upload, if it exists, has not expired and is this user's (else None: no hint)."""
    staged = _read(_path(token), token)
    return staged if staged is not None and staged.user_id == me.id else None


def claim(token: str, me: User) -> tuple[Staged, Path] | None:
    """Take the upload for importing; None when another request took it first."""
    path = _path(token)
    claimed = path.with_name(f"{path.name}.{secrets.token_hex(4)}.claimed")
    try:
        os.rename(path, claimed)  # atomic: exactly one confirmation wins
    except FileNotFoundError:
        return None
    staged = _read(claimed, token)
    if staged is None or staged.user_id != me.id:
        if staged is not None:  # someone else's token: put it back untouched
            os.rename(claimed, path)
        return None
    return staged, claimed


def release(claimed: Path, token: str) -> None:
    """Give an upload whose import failed back to the preview (to show why); an upload the
    sweep expired meanwhile is simply gone."""
    with contextlib.suppress(FileNotFoundError):
        os.rename(claimed, claimed.with_name(f"{token}.json"))


# --- the preview --------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[tuple[int, list[str]]]  # the first rows as parsed: (line, values)
    total_rows: int
    errors: list[RowError]
    created: int = 0
    updated: int = 0


def _shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "quantize"):
        return money(value)
    return str(value)


def preview(kind: str, text: str) -> Preview:
    """Parse the file and try the import in a transaction that is always rolled back, so the
    preview names every error the real import would (unknown customers, over-applied
    invoices) and writes nothing."""
    parsed = parse_file(kind, text)
    rows = sorted(parsed.rows + parsed.bad, key=lambda r: r[0])
    columns = list(rows[0][1]) if rows else list(SPECS[kind].required)
    shown = [(line, [_shown(rec.get(c)) for c in columns]) for line, rec in rows[:PREVIEW_ROWS]]
    created = updated = 0
    errors = parsed.errors
    try:
        result = import_csv(kind, text)
        created, updated = result.created, result.updated
    except ImportRejected as exc:
        errors = exc.errors
    finally:
        db.session.rollback()
    return Preview(columns, shown, len(rows), errors, created, updated)


# --- views --------------------------------------------------------------------------------


def _max_bytes() -> int:
    """What one staged upload may hold: the app's upload limit (10 MB when there is none)."""
    return int(current_app.config.get("MAX_CONTENT_LENGTH") or 10 * 1024 * 1024)


def _limit_text() -> str:
    limit = _max_bytes()
    return f"{limit / (1024 * 1024):.1f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err: RequestEntityTooLarge | None):
    """Raised while the form is read (even by the CSRF check): a page that says the limit."""
    return error_page(
        413,
        f"The file is larger than the upload limit of {_limit_text()}. "
        "Split it into smaller files and import them one after the other.",
    )


def _upload_page(errors: list[str] | None = None, status: int = 200, kind: str = ""):
    page = render_template(
        "imports/upload.html",
        kinds=KIND_LABELS,
        specs={k: SPECS[k].required for k in KINDS},
        encodings=ENCODINGS,
        selected=kind,
        errors=errors or [],
        limit=_limit_text(),
    )
    return page, status


@bp.get("/imports")
@roles_required(*IMPORT_ROLES)
def index():
    return _upload_page()


@bp.post("/imports")
@roles_required(*IMPORT_ROLES)
def upload():
    kind = request.form.get("kind", "")
    upload_file = request.files.get("file")
    encoding = request.form.get("encoding", "utf-8")
    errors = []
    if kind not in KINDS:
        errors.append("Choose what the file contains.")
    if upload_file is None or not upload_file.filename:
        errors.append("Choose a CSV file to upload.")
    if encoding not in ENCODINGS:
        errors.append("Choose the file's character encoding.")
    if errors:
        return _upload_page(errors, 422, kind)
    data = upload_file.read(_max_bytes() + 1)
    if len(data) > _max_bytes():
        return _too_large(None)
    try:
        text = decode_csv(data, encoding)
    except CsvFormatError as exc:
        return _upload_page([f"This file cannot be read: {exc}."], 422, kind)
    filename = os.path.basename(upload_file.filename)[:120]
    token = stage(user(), kind, filename, text)
    return redirect(url_for(".show", token=token))


@bp.get("/imports/<token>")
@roles_required(*IMPORT_ROLES)
def show(token: str):
    staged = load_staged(token, user())
    if staged is None:
        flash(
            "That upload is no longer waiting: it was imported, or it expired. "
            "Upload the file again.",
            "info",
        )
        return redirect(url_for(".index"))
    try:
        result = preview(staged.kind, staged.text)
    except CsvFormatError as exc:
        return _upload_page([f"This file cannot be read: {exc}."], 422, staged.kind)
    return render_template(
        "imports/preview.html",
        staged=staged,
        kind_label=KIND_LABELS[staged.kind],
        preview=result,
        error_rows=len({e.row for e in result.errors}),
    )


@bp.post("/imports/<token>/confirm")
@roles_required(*IMPORT_ROLES)
def confirm(token: str):
    me = user()
    taken = claim(token, me)
    if taken is None:
        flash("Nothing was imported: that upload was already imported, or it expired.", "info")
        return redirect(url_for(".index"))
    staged, claimed = taken
    try:
        result = import_csv(staged.kind, staged.text)
        ended = deliver_payment_messages(me) if staged.kind == "payments" else []
        db.session.commit()
    except (ImportRejected, CsvFormatError, IntegrityError):
        # The ledger changed since the preview: show the preview again, now with its errors.
        db.session.rollback()
        release(claimed, token)
        flash(
            "The ledger changed since the preview; nothing was imported. See the errors below.",
            "error",
        )
        return redirect(url_for(".show", token=token))
    except Exception:
        db.session.rollback()
        release(claimed, token)
        raise
    claimed.unlink(missing_ok=True)
    flash(_imported_message(staged, result, ended), "success")
    return redirect(url_for(".index"))


def _imported_message(staged: Staged, result: ImportResult, ended: list[int]) -> str:
    what = KIND_LABELS[staged.kind].lower()
    text = (
        f"Imported {result.imported} {what} from {staged.filename} "
        f"({result.created} new, {result.updated} updated)."
    )
    if ended:
        cases = ", ".join(f"#{i}" for i in ended)
        text += f" The payments cleared referred accounts and ended case{'s' * (len(ended) > 1)} "
        text += f"{cases}."
    return text
