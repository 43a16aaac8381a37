"""Process owners in the browser: the modeler, decision tables, versions, replay, migration, heat.

Thin views over ``casemgr.engine.drafts``. The editors are bpmn-js and dmn-js (npm, served
from static/); they load the working copy from ``working.bpmn`` / ``working.dmn`` and save
it back as the raw XML body of a fetch with the CSRF header, so what the page edits is
byte for byte what the engine validates and publishes. Forms (upload, restore, migrate,
discard) are ordinary posts. Every view needs the process owner or admin role.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import RequestEntityTooLarge

from casemgr import forms
from casemgr.engine import drafts
from casemgr.engine.connectors import OPERATIONS
from casemgr.engine.errors import EngineError, NotFound
from casemgr.engine.replay import replay_table_draft
from casemgr.engine.specs import MAX_XML_BYTES
from casemgr.extensions import db
from casemgr.models import ROLES, Case, CaseType, ProcessDraft, ProcessVersion
from casemgr.web.editor_csp import with_editor_policy
from casemgr.web.helpers import error_page, require_login, roles_required, sentence, user

bp = Blueprint("processes", __name__)
require_login(bp)

PROCESS_ROLES = ("process_owner", "admin")
MODELER_BUNDLE = "build/modeler/modeler.js"
DMN_BUNDLE = "build/modeler/dmn.js"
VIEWER_BUNDLE = "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"
REPLAY_DEFAULT = 20


def _limit_text() -> str:
    return f"{MAX_XML_BYTES // (1024 * 1024)} MB"


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err: RequestEntityTooLarge):
    return _json_or_page(413, f"The file is larger than the limit of {_limit_text()}.")


@bp.errorhandler(EngineError)
def _engine_error(err: EngineError):
    db.session.rollback()
    return _json_or_page(err.status, sentence(err.message))


def _wants_json() -> bool:
    """The editors' fetch calls send XML and want JSON; forms want a page (the body is
    never read here: it may be the one that was too large)."""
    return request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data")


def _json_or_page(status: int, message: str):
    if request.method != "GET" and _wants_json():
        return jsonify({"error": message}), status
    return error_page(status, message)


def _installed(path: str) -> bool:
    return (Path(current_app.static_folder or "") / path).is_file()


def _xml_body() -> str:
    """The raw XML a page sends (the limit checked before the body is read)."""
    if request.content_length is not None and request.content_length > MAX_XML_BYTES:
        raise RequestEntityTooLarge()
    raw = request.get_data(cache=False)
    if len(raw) > MAX_XML_BYTES:
        raise RequestEntityTooLarge()
    return raw


def _revision() -> int | None:
    value = request.headers.get("X-Draft-Revision", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def _xml_response(text: str, filename: str, download: bool) -> Response:
    response = Response(text, mimetype="application/xml")
    how = "attachment" if download else "inline"
    response.headers["Content-Disposition"] = f'{how}; filename="{filename}"'
    response.cache_control.no_store = True
    return response


def _draft_json(draft: ProcessDraft | None, errors: list[dict]) -> dict:
    return {
        "revision": draft.revision if draft else 0,
        "valid": not errors,
        "errors": errors,
        "saved_at": draft.updated_at.isoformat() if draft else None,
    }


# --- the list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseTypeRow:
    key: str
    name: str
    latest: ProcessVersion | None
    open_cases: int
    draft: ProcessDraft | None


@bp.get("/processes/")
@roles_required(*PROCESS_ROLES)
def index():
    """Case types and decision tables, with their drafts; start a new one from a blank sheet."""
    open_counts = dict(
        db.session.execute(
            db.select(Case.case_type_id, db.func.count(Case.id))
            .where(Case.status == "open")
            .group_by(Case.case_type_id)
        ).all()
    )
    all_drafts = list(db.session.execute(db.select(ProcessDraft)).scalars())
    bpmn_drafts = {d.key: d for d in all_drafts if d.kind == "bpmn"}
    rows = [
        CaseTypeRow(
            ct.key, ct.name, ct.latest(), open_counts.get(ct.id, 0), bpmn_drafts.pop(ct.key, None)
        )
        for ct in db.session.execute(db.select(CaseType).order_by(CaseType.name)).scalars()
    ]
    rows += [CaseTypeRow(d.key, d.name or d.key, None, 0, d) for d in bpmn_drafts.values()]
    dmn_drafts = {d.key: d for d in all_drafts if d.kind == "dmn"}
    tables = drafts.decision_files()
    new_tables = [d for key, d in dmn_drafts.items() if key not in tables]
    return render_template(
        "processes/index.html",
        rows=rows,
        tables=tables,
        dmn_drafts=dmn_drafts,
        new_tables=new_tables,
    )


@bp.post("/processes/new")
@roles_required(*PROCESS_ROLES)
def new_case_type():
    """A new case type starts as a draft from a blank, runnable diagram."""
    key = request.form.get("key", "").strip()
    name = request.form.get("name", "").strip()
    if not drafts.KEY_PATTERN.fullmatch(key):
        flash("The key is lower-case letters, digits and _, starting with a letter.", "error")
        return redirect(url_for("processes.index"))
    if drafts.case_type(key) is not None or drafts.get_draft("bpmn", key) is not None:
        flash(f"{key} exists already; open it below.", "error")
        return redirect(url_for("processes.index"))
    file = request.files.get("file")
    if file is not None and file.filename:
        raw = file.stream.read(MAX_XML_BYTES + 1)
        if len(raw) > MAX_XML_BYTES:
            return error_page(413, f"The file is larger than the limit of {_limit_text()}.")
        try:
            drafts.save_draft("bpmn", key, raw, user(), name=name or None)
        except EngineError as exc:
            db.session.rollback()
            flash(f"{file.filename} was not loaded: {exc.message}.", "error")
            return redirect(url_for("processes.index"))
        message = f"New case type {name or key} from {file.filename}."
    else:
        drafts.save_draft("bpmn", key, drafts.blank_diagram(key, name), user(), name=name or None)
        message = f"New case type {name or key}: a blank diagram to start from."
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("processes.modeler", key=key))


@bp.post("/decision-tables/new")
@roles_required(*PROCESS_ROLES)
def new_decision_table():
    key = request.form.get("key", "").strip()
    name = request.form.get("name", "").strip()
    if not drafts.KEY_PATTERN.fullmatch(key):
        flash("The key is lower-case letters, digits and _, starting with a letter.", "error")
        return redirect(url_for("processes.index"))
    if key in drafts.decision_files() or drafts.get_draft("dmn", key) is not None:
        flash(f"The decision table {key} exists already.", "error")
        return redirect(url_for("processes.index"))
    drafts.save_draft("dmn", key, drafts.blank_decision_table(key, name), user(), name=name)
    db.session.commit()
    return redirect(url_for("processes.decision_table", key=key))


# --- the BPMN modeler ------------------------------------------------------------------------


def _catalog() -> dict:
    """What the properties panel offers: roles, forms, decision tables, service operations."""
    from casemgr.engine import ledger_connectors  # noqa: F401  (registers ledger.* operations)

    return {
        "roles": [{"value": k, "label": label} for k, label in ROLES.items()],
        "forms": [
            {"value": k, "label": f"{k} ({(cls.__doc__ or '').strip().splitlines()[0]})"}
            if cls.__doc__
            else {"value": k, "label": k}
            for k, cls in sorted(forms.FORMS.items())
        ],
        "decisions": sorted(drafts.current_decision_tables()),
        "operations": sorted(OPERATIONS),
    }


def _known(key: str) -> tuple[CaseType | None, ProcessDraft | None]:
    found, draft = drafts.case_type(key), drafts.get_draft("bpmn", key)
    if found is None and draft is None:
        abort(404, description=f"There is no case type {key}.")
    return found, draft


@bp.get("/processes/<key>/")
@roles_required(*PROCESS_ROLES)
def modeler(key: str):
    found, draft = _known(key)
    errors = drafts.record_validation(draft) if draft else []
    if draft is not None:
        db.session.commit()  # keep a validation made now for the next visit
    config = {
        "key": key,
        "errors": errors,
        "xmlUrl": url_for("processes.working_bpmn", key=key),
        "saveUrl": url_for("processes.save_bpmn", key=key),
        "publishUrl": url_for("processes.publish_bpmn", key=key),
        "versionsUrl": url_for("processes.versions", key=key),
        "revision": draft.revision if draft else 0,
        "catalog": _catalog(),
    }
    page = render_template(
        "processes/modeler.html",
        key=key,
        case_type=found,
        draft=draft,
        errors=errors,
        config=config,
        installed=_installed(MODELER_BUNDLE),
        limit=_limit_text(),
    )
    return with_editor_policy(make_response(page), "bpmn")


@bp.get("/processes/<key>/working.bpmn")
@roles_required(*PROCESS_ROLES)
def working_bpmn(key: str):
    xml, draft = drafts.working_xml("bpmn", key)
    if xml is None:
        abort(404)
    suffix = "draft" if draft else "published"
    return _xml_response(xml, f"{key}-{suffix}.bpmn", request.args.get("download") == "1")


@bp.post("/processes/<key>/draft")
@roles_required(*PROCESS_ROLES)
def save_bpmn(key: str):
    return _save_draft("bpmn", key)


def _save_draft(kind: str, key: str):
    """Save the editor's XML as the draft: always kept, answered with its validation."""
    draft = drafts.save_draft(kind, key, _xml_body(), user(), revision=_revision())
    errors = list(draft.validation_errors or [])
    db.session.commit()
    return jsonify(_draft_json(draft, errors))


@bp.post("/processes/<key>/publish")
@roles_required(*PROCESS_ROLES)
def publish_bpmn(key: str):
    """Publish the saved draft as version N+1; errors come back for the modeler to mark."""
    result = drafts.publish_draft("bpmn", key, user())
    if result.errors:
        db.session.commit()  # keep the validation on the draft
        return jsonify({"published": False, "errors": result.errors}), 422
    db.session.commit()
    version = result.version
    return jsonify(
        {
            "published": True,
            "version": version.version,
            "message": f"Published version {version.version} of {version.case_type.name}.",
            "versionsUrl": url_for("processes.versions", key=key),
        }
    ), 201


@bp.post("/processes/<key>/discard")
@roles_required(*PROCESS_ROLES)
def discard_bpmn(key: str):
    return _discard("bpmn", key, "processes.modeler", drafts.case_type(key) is not None)


def _discard(kind: str, key: str, endpoint: str, published: bool):
    """Drop the draft; back to its editor, or to the list when nothing was ever published."""
    drafts.discard_draft(kind, key)
    db.session.commit()
    flash("The draft was discarded.", "info")
    if not published:
        return redirect(url_for("processes.index"))
    return redirect(url_for(endpoint, key=key))


@bp.post("/processes/<key>/upload")
@roles_required(*PROCESS_ROLES)
def upload_bpmn(key: str):
    return _upload("bpmn", key, "processes.modeler")


def _upload(kind: str, key: str, endpoint: str):
    """A .bpmn or .dmn file becomes the draft: untrusted, so checked before anything reads it."""
    file = request.files.get("file")
    if file is None or not file.filename:
        flash("Choose a file to upload.", "error")
        return redirect(url_for(endpoint, key=key))
    raw = file.stream.read(MAX_XML_BYTES + 1)
    if len(raw) > MAX_XML_BYTES:
        return error_page(413, f"The file is larger than the limit of {_limit_text()}.")
    try:
        draft = drafts.save_draft(kind, key, raw, user())
    except EngineError as exc:
        db.session.rollback()
        flash(f"{file.filename} was not loaded: {exc.message}.", "error")
        return redirect(url_for(endpoint, key=key))
    db.session.commit()
    problems = len(draft.validation_errors or [])
    flash(
        f"{file.filename} is now the draft"
        + (f"; validation found {problems} problem(s)." if problems else "; it validates."),
        "success" if not problems else "info",
    )
    return redirect(url_for(endpoint, key=key))


# --- versions, diff, restore -------------------------------------------------------------


def _case_type_or_404(key: str) -> CaseType:
    found = drafts.case_type(key)
    if found is None:
        abort(404, description=f"There is no published case type {key}.")
    return found


@bp.get("/processes/<key>/versions")
@roles_required(*PROCESS_ROLES)
def versions(key: str):
    found = _case_type_or_404(key)
    counts = dict(
        db.session.execute(
            db.select(Case.process_version_id, db.func.count(Case.id))
            .where(Case.case_type_id == found.id, Case.status == "open")
            .group_by(Case.process_version_id)
        ).all()
    )
    return render_template(
        "processes/versions.html",
        case_type=found,
        versions=list(reversed(found.versions)),
        open_counts=counts,
        draft=drafts.get_draft("bpmn", key),
    )


@bp.get("/processes/<key>/versions/<int:number>.bpmn")
@roles_required(*PROCESS_ROLES)
def version_bpmn(key: str, number: int):
    version = _version(key, number)
    download = request.args.get("download") == "1"
    return _xml_response(version.bpmn_xml, f"{key}-v{number}.bpmn", download)


def _version(key: str, number: int) -> ProcessVersion:
    try:
        return drafts.version_of(key, number)
    except NotFound as exc:
        abort(404, description=sentence(exc.message))


@bp.post("/processes/<key>/versions/<int:number>/restore")
@roles_required(*PROCESS_ROLES)
def restore(key: str, number: int):
    version, errors = drafts.restore_version(key, number, user())
    if errors:
        db.session.rollback()
        details = "; ".join(e["message"] for e in errors[:5])
        flash(f"Version {number} no longer validates, so it was not restored: {details}", "error")
        return redirect(url_for("processes.versions", key=key))
    db.session.commit()
    flash(f"Version {number} restored as version {version.version}.", "success")
    return redirect(url_for("processes.versions", key=key))


def _side(key: str, which: str) -> tuple[str, str, str]:
    """(label, xml url, xml) for 'draft' or a version number."""
    if which == "draft":
        draft = drafts.get_draft("bpmn", key)
        if draft is None:
            abort(404, description="There is no draft to compare.")
        return "draft", url_for("processes.working_bpmn", key=key), draft.xml
    if not which.isdigit():
        abort(404)
    version = _version(key, int(which))
    return (
        f"version {version.version}",
        url_for("processes.version_bpmn", key=key, number=version.version),
        version.bpmn_xml,
    )


@bp.get("/processes/<key>/diff")
@roles_required(*PROCESS_ROLES)
def diff(key: str):
    """Two versions (or the draft) side by side, changes marked on both and listed."""
    found = _case_type_or_404(key)
    latest = found.latest().version
    old_which = request.args.get("from") or str(max(1, latest - 1))
    new_which = request.args.get("to") or str(latest)
    old_label, old_url, old_xml = _side(key, old_which)
    new_label, new_url, new_xml = _side(key, new_which)
    changes = drafts.diff_diagrams(old_xml, new_xml)
    return render_template(
        "processes/diff.html",
        case_type=found,
        old=(old_which, old_label, old_url),
        new=(new_which, new_label, new_url),
        changes=changes,
        changes_json=changes.as_json(),
        choices=[str(v.version) for v in reversed(found.versions)]
        + (["draft"] if drafts.get_draft("bpmn", key) else []),
        installed=_installed(VIEWER_BUNDLE),
    )


# --- replay, migration, heat map -------------------------------------------------------------


@bp.get("/processes/<key>/replay")
@roles_required(*PROCESS_ROLES)
def replay(key: str):
    """The draft against the recorded data of the last completed cases; nothing is saved."""
    found = _case_type_or_404(key)
    draft = drafts.get_draft("bpmn", key)
    limit = request.args.get("limit", type=int) or REPLAY_DEFAULT
    results, problem = [], None
    if draft is not None and request.args.get("run") == "1":
        try:
            results = drafts.replay_draft(key, draft.xml, limit)
        except EngineError as exc:
            problem = sentence(exc.message)
    return render_template(
        "processes/replay.html",
        case_type=found,
        draft=draft,
        limit=max(1, min(limit, 500)),
        results=results,
        problem=problem,
        ran=request.args.get("run") == "1",
        completed=db.session.execute(
            db.select(db.func.count(Case.id)).where(
                Case.case_type_id == found.id, Case.status == "completed"
            )
        ).scalar_one(),
    )


def _target(found: CaseType) -> ProcessVersion:
    number = request.values.get("to", type=int)
    return _version(found.key, number) if number else found.latest()


@bp.get("/processes/<key>/migration")
@roles_required(*PROCESS_ROLES)
def migration(key: str):
    """Preview: which running cases could move to the target version, and why not."""
    found = _case_type_or_404(key)
    target = _target(found)
    checks = [drafts.check_migration(c, target) for c in drafts.open_cases_behind(target)]
    return render_template(
        "processes/migration.html",
        case_type=found,
        target=target,
        checks=checks,
        results=None,
    )


@bp.post("/processes/<key>/migration")
@roles_required(*PROCESS_ROLES)
def migrate(key: str):
    found = _case_type_or_404(key)
    target = _target(found)
    chosen = [int(v) for v in request.form.getlist("case") if v.isdigit()]
    if not chosen and request.form.get("all") != "1":
        flash("Choose the cases to move, or move all that are safe.", "error")
        return redirect(url_for("processes.migration", key=key, to=target.version))
    results = drafts.migrate_cases(
        target, None if request.form.get("all") == "1" else chosen, user()
    )
    moved = sum(1 for r in results if r.migrated)
    flash(f"{moved} of {len(results)} case(s) moved to version {target.version}.", "success")
    return render_template(
        "processes/migration.html",
        case_type=found,
        target=target,
        checks=[],
        results=results,
    )


@bp.get("/processes/<key>/heatmap")
@roles_required(*PROCESS_ROLES)
def heatmap(key: str):
    """Where cases wait now and for how long, on the version's diagram."""
    found = _case_type_or_404(key)
    which = request.args.get("version", "all")
    version = _version(key, int(which)) if which.isdigit() else None
    shown = version or found.latest()
    heat = drafts.heat_map(key, version)
    drawn = drafts.element_ids(shown.bpmn_xml)
    return render_template(
        "processes/heatmap.html",
        case_type=found,
        version=version,
        shown=shown,
        heat=heat,
        heat_json=[h.as_json() for h in heat if h.element in drawn],
        elsewhere=[h for h in heat if h.element not in drawn],
        installed=_installed(VIEWER_BUNDLE),
    )


# --- decision tables -------------------------------------------------------------------------


def _table_or_404(key: str) -> tuple[drafts.DecisionFile | None, ProcessDraft | None]:
    file, draft = drafts.decision_files().get(key), drafts.get_draft("dmn", key)
    if file is None and draft is None:
        abort(404, description=f"There is no decision table {key}.")
    return file, draft


@bp.get("/decision-tables/<key>/")
@roles_required(*PROCESS_ROLES)
def decision_table(key: str):
    file, draft = _table_or_404(key)
    config = {
        "key": key,
        "xmlUrl": url_for("processes.working_dmn", key=key),
        "saveUrl": url_for("processes.save_dmn", key=key),
        "publishUrl": url_for("processes.publish_dmn", key=key),
        "revision": draft.revision if draft else 0,
    }
    page = render_template(
        "processes/dmn.html",
        key=key,
        file=file,
        draft=draft,
        errors=drafts.record_validation(draft) if draft else [],
        versions=list(reversed(drafts.decision_versions(key))),
        callers=drafts.callers_of(file.decision_ids if file else ()),
        config=config,
        installed=_installed(DMN_BUNDLE),
        limit=_limit_text(),
    )
    return with_editor_policy(make_response(page), "dmn")


@bp.get("/decision-tables/<key>/replay")
@roles_required(*PROCESS_ROLES)
def replay_dmn(key: str):
    """The table's draft through the completed cases of every caller; nothing is saved."""
    _table_or_404(key)
    draft = drafts.get_draft("dmn", key)
    limit = request.args.get("limit", type=int) or REPLAY_DEFAULT
    ran = draft is not None and request.args.get("run") == "1"
    replays, problem = [], None
    if ran:
        try:
            replays = replay_table_draft(key, draft.xml, limit)
        except EngineError as exc:
            problem = sentence(exc.message)
    return render_template(
        "processes/dmn_replay.html",
        key=key,
        draft=draft,
        limit=max(1, min(limit, 500)),
        replays=replays,
        problem=problem,
        ran=ran,
    )


@bp.get("/decision-tables/<key>/working.dmn")
@roles_required(*PROCESS_ROLES)
def working_dmn(key: str):
    xml, draft = drafts.working_xml("dmn", key)
    if xml is None:
        abort(404)
    suffix = "draft" if draft else "published"
    return _xml_response(xml, f"{key}-{suffix}.dmn", request.args.get("download") == "1")


@bp.get("/decision-tables/<key>/versions/<int:number>.dmn")
@roles_required(*PROCESS_ROLES)
def version_dmn(key: str, number: int):
    row = next((v for v in drafts.decision_versions(key) if v.version == number), None)
    if row is None:
        abort(404)
    return _xml_response(row.dmn_xml, f"{key}-v{number}.dmn", request.args.get("download") == "1")


@bp.post("/decision-tables/<key>/draft")
@roles_required(*PROCESS_ROLES)
def save_dmn(key: str):
    return _save_draft("dmn", key)


@bp.post("/decision-tables/<key>/publish")
@roles_required(*PROCESS_ROLES)
def publish_dmn(key: str):
    """The table as its next version; every case type calling it gets a new version too."""
    result = drafts.publish_draft("dmn", key, user())
    if result.errors:
        db.session.commit()
        return jsonify({"published": False, "errors": result.errors}), 422
    db.session.commit()
    callers = ", ".join(f"{v.case_type.name} v{v.version}" for v in result.republished)
    message = f"Published version {result.decision.version} of {key}." + (
        f" New versions using it: {callers}." if callers else ""
    )
    return jsonify({"published": True, "version": result.decision.version, "message": message}), 201


@bp.post("/decision-tables/<key>/discard")
@roles_required(*PROCESS_ROLES)
def discard_dmn(key: str):
    return _discard("dmn", key, "processes.decision_table", key in drafts.decision_files())


@bp.post("/decision-tables/<key>/upload")
@roles_required(*PROCESS_ROLES)
def upload_dmn(key: str):
    return _upload("dmn", key, "processes.decision_table")
