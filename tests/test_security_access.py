"""Who may use which route: a table with every rule of the app, checked role by role.

A route added without an entry in ACCESS fails `test_every_route_has_an_access_rule`, so
nobody ships a page or endpoint without deciding who may use it. For every entry, each role
that must not use the route calls it and gets 403 or 404 (a web action may instead send the
user back with an error message and change nothing); a visitor without a login is sent to
the log-in page, or gets 401 from the API. Case-level rules (a case is readable only by some
people) are checked against one sample case with outsiders of each kind.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest

from casemgr.accounts import create_user, find_user, issue_token
from casemgr.engine import cases as engine
from casemgr.extensions import db
from casemgr.models import Attachment, Case, CaseEvent, Comment, TaskRecord
from tests.credit_data import INTAKE, review

PASSWORD = "correct-horse-1"
PUBLIC = "public"  # no login needed
ANY = "any"  # any logged-in user (objects inside may still be refused; see CASE_ROUTES)

# One person per role (conftest's PEOPLE).
ROLE_USER = {
    "ar_specialist": "spec",
    "credit_manager": "mgr",
    "controller": "ctrl",
    "sales_rep": "rep",
    "process_owner": "owner",
    "admin": "admin",
}
WORKERS = ("ar_specialist", "credit_manager", "controller", "admin")  # start, import, post
CUSTOMER_READERS = (*WORKERS, "sales_rep")
READERS = (*CUSTOMER_READERS, "process_owner")  # reports: a rep sees only their customers
DASHBOARD = ("credit_manager", "controller", "process_owner", "admin")
APPROVERS = ("credit_manager", "controller")
MANAGERS = ("credit_manager", "admin")
PROCESS = ("process_owner", "admin")
ADMIN = ("admin",)


@dataclass(frozen=True)
class Access:
    who: str | tuple[str, ...]
    values: dict = field(default_factory=dict)  # URL values beyond the shared samples
    body: dict | str = field(default_factory=dict)  # passes validation up to the check


def A(who, **values) -> Access:  # noqa: N802 (reads as a table)
    return Access(who, values)


ACCESS: dict[str, Access] = {
    # --- public ---
    "static": A(PUBLIC, filename="css/app.css"),
    "health.healthz": A(PUBLIC),
    "auth.login": A(PUBLIC),
    "auth.logout": A(PUBLIC),
    "api.openapi_document": A(PUBLIC),
    # --- web: everyone logged in ---
    "inbox.index": A(ANY),
    "inbox.bulk": A(ANY),  # each task checked as if alone
    "inbox.save_view": A(ANY),
    "inbox.delete_view": A(ANY),  # only one's own or as a manager (engine)
    "inbox.task": A(ANY),
    "inbox.claim": A(ANY),
    "inbox.unclaim": A(ANY),
    "inbox.delegate": A(ANY),
    "inbox.follow_up": A(ANY),
    "inbox.priority": A(ANY),
    "inbox.take_back": A(ANY),
    "inbox.assign": A(MANAGERS),
    "inbox.team": A(MANAGERS),
    "inbox.reassign_all": A(MANAGERS, name="spec"),
    "cases.index": A(ANY),
    "cases.new": A(WORKERS, key="credit_hold_release"),
    "cases.detail": A(ANY),
    "cases.diagram_bpmn": A(ANY),
    "cases.diagram_state": A(ANY),
    "cases.post_comment": A(ANY),
    "cases.upload_attachment": A(ANY),
    "cases.download_attachment": A(ANY),
    "letters.case_letter": A(ANY, kind="approval"),
    "letters.case_letter_pdf": A(ANY, kind="approval"),
    "notifications.index": A(ANY),
    "notifications.mark_read": A(ANY),  # someone else's is 404
    "notifications.mark_all_read": A(ANY),
    "preferences.index": A(ANY),
    "preferences.save": A(ANY),
    # --- web: by role ---
    "customers.index": A(CUSTOMER_READERS),
    "customers.detail": A(CUSTOMER_READERS),
    "customers.post_note": A(WORKERS),
    "customers.post_payment": A(WORKERS),
    "letters.statement": A(CUSTOMER_READERS),
    "letters.statement_pdf": A(CUSTOMER_READERS),
    "letters.final_demand": A(CUSTOMER_READERS),
    "letters.final_demand_pdf": A(CUSTOMER_READERS),
    "reports.index": A(READERS),
    "reports.aging": A(READERS),
    "reports.aging_csv": A(READERS),
    "reports.aging_invoices": A(READERS),
    "reports.aging_invoices_csv": A(READERS),
    "reports.dso": A(READERS),
    "past_due.index": A(READERS),
    "imports.index": A(WORKERS),
    "imports.upload": A(WORKERS),
    "imports.show": A(WORKERS),
    "imports.confirm": A(WORKERS),
    "approvals.index": A(APPROVERS),
    "approvals.decide": A(APPROVERS),
    "dashboard.index": A(DASHBOARD),
    "dashboard.data": A(DASHBOARD),
    "admin.index": A(ADMIN),
    "admin.background": A(ADMIN),
    "admin.retry": A(ADMIN),
    "admin.retry_case": A(ADMIN),
    **{
        f"processes.{name}": A(PROCESS)
        for name in [
            "index",
            "new_case_type",
            "new_decision_table",
            "modeler",
            "working_bpmn",
            "save_bpmn",
            "publish_bpmn",
            "discard_bpmn",
            "upload_bpmn",
            "versions",
            "version_bpmn",
            "restore",
            "diff",
            "replay",
            "replay_dmn",
            "migration",
            "migrate",
            "heatmap",
            "decision_table",
            "working_dmn",
            "version_dmn",
            "save_dmn",
            "publish_dmn",
            "discard_dmn",
            "upload_dmn",
        ]
    },
    # --- API: everyone with a token ---
    "api.list_case_types": A(ANY),
    "api.list_versions": A(ANY),
    "api.get_version_bpmn": A(ANY),
    "api.get_case": A(ANY),
    "api.list_attachments": A(ANY),
    "api.upload_attachment": A(ANY),
    "api.download_attachment": A(ANY),
    "api.list_tasks": A(ANY),
    "api.get_task": A(ANY),
    "api.claim_task": A(ANY),
    "api.unclaim_task": A(ANY),
    "api.complete_task": A(ANY),
    "api.bulk_complete": A(ANY),
    "api.follow_up": A(ANY),
    "api.set_priority": A(ANY),
    "api.delegate": A(ANY),
    "api.take_back": A(ANY),
    "api.work_queue": A(ANY),
    "api.list_views": A(ANY),
    "api.save_view": A(ANY),
    "api.delete_view": A(ANY),
    "api.list_approvals": A(ANY),  # each sees the approvals of their own roles
    "api.decide": A(ANY),  # each task checked as if alone
    # --- API: by role ---
    "api.create_case": Access(WORKERS, body={"case_type": "credit_hold_release"}),
    "api.assign_task": Access(MANAGERS, body={"user": "spec2"}),
    "api.reassign_all": A(MANAGERS, name="spec"),
    "api.customer": A(CUSTOMER_READERS),  # a rep only their own customers
    "api.aging": A(READERS),
    "api.dso": A(READERS),
    "api.import_file": Access(WORKERS, {"kind": "invoices"}, "invoice_number,amount\nI-1,1\n"),
    "api.create_payment": A(WORKERS),
    **{
        f"api.{name}": A(PROCESS)
        for name in [
            "get_draft",
            "put_draft",
            "delete_draft",
            "validate_draft",
            "publish_case_type_draft",
            "publish_table_draft",
            "publish_version",
            "restore_version",
            "diff_versions",
            "replay_draft",
            "replay_table_draft",
            "migration_preview",
            "migrate",
            "heatmap",
            "list_tables",
            "get_table",
            "validate_diagram",
        ]
    },
}

# Routes about one case or one of its tasks: only people who may read the case get in.
CASE_ROUTES = {
    "cases.detail",
    "cases.diagram_bpmn",
    "cases.diagram_state",
    "cases.post_comment",
    "cases.upload_attachment",
    "cases.download_attachment",
    "letters.case_letter",
    "letters.case_letter_pdf",
    "api.get_case",
    "api.list_attachments",
    "api.upload_attachment",
    "api.download_attachment",
}
# Reading a task shows its case: the same people as the case (and the task's holder).
TASK_READS = {"inbox.task", "api.get_task"}
# Acting on a task someone else holds: refused (403/404), or 409 "claimed by" for a colleague
# of the same role (the contract's order: the task is visible to its role, but not theirs).
TASK_ACTIONS = {
    "inbox.claim",
    "inbox.unclaim",
    "inbox.delegate",
    "inbox.follow_up",
    "inbox.priority",
    "inbox.take_back",
    "inbox.assign",
    "api.claim_task",
    "api.unclaim_task",
    "api.complete_task",
    "api.follow_up",
    "api.set_priority",
    "api.delegate",
    "api.take_back",
    "api.assign_task",
}


# --- the sample case ------------------------------------------------------------------------


@dataclass
class Sample:
    case_id: int
    task_id: int  # the review, completed by spec
    approval_id: int  # the credit manager's approval that followed, open
    attachment_id: int
    view_id: int
    notification_id: int

    def values(self) -> dict:
        return {
            "case_id": self.case_id,
            "task_id": self.task_id,
            "attachment_id": self.attachment_id,
            "view_id": self.view_id,
            "notification_id": self.notification_id,
            "failure_id": 1,
            "key": "credit_application",
            "number": "C-0001",
            "name": "spec",
            "token": "no-such-upload",
            "kind": "invoices",
            "collection": "case-types",
            "version": 1,
            "number_": 1,
            "old": 1,
            "new": 1,
            "filename": "css/app.css",
        }


PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def sample(app, api, tmp_path) -> Sample:
    """A credit application by rep for rep's customer, reviewed by spec and waiting for a credit
    manager's approval, with a PDF attached; a saved view and a notification of mgr's."""
    app.config.update(ATTACHMENT_DIR=str(tmp_path / "attachments"))
    with app.app_context():
        create_user("rep2", ["sales_rep"], PASSWORD, display_name="Other Rep")
        api.tokens["rep2"] = issue_token(find_user("rep2"))
        db.session.commit()
        case = engine.start_case("credit_application", dict(INTAKE), find_user("rep"))
        task_id = next(t.id for t in case.tasks if t.state == "open")
        case = engine.complete_task(task_id, review(), find_user("spec"))
        approval_id = next(t.id for t in case.tasks if t.state == "open")
        case_id = case.id
    uploaded = api.as_("spec").post(
        f"/api/v1/cases/{case_id}/attachments",
        json={"filename": "pod.pdf", "content_base64": base64.b64encode(PDF).decode()},
    )
    assert uploaded.status_code == 201, uploaded.get_json()
    view = api.as_("mgr").post("/api/v1/views", json={"name": "Mine", "params": {}})
    assert view.status_code == 201, view.get_json()
    with app.app_context():
        from casemgr.models import Notification

        note = Notification(user_id=find_user("mgr").id, kind="info", message="hello")
        db.session.add(note)
        db.session.commit()
        return Sample(
            case_id,
            task_id,
            approval_id,
            uploaded.get_json()["id"],
            view.get_json()["id"],
            note.id,
        )


def fingerprint(app, case_id: int):
    """Everything a denied call could have changed about the sample case."""
    with app.app_context():
        case = db.session.get(Case, case_id)
        return (
            case.status,
            case.version,
            db.session.execute(
                db.select(db.func.count(CaseEvent.id)).filter_by(case_id=case_id)
            ).scalar_one(),
            tuple(
                db.session.execute(
                    db.select(TaskRecord.state, TaskRecord.assignee_id, TaskRecord.priority)
                    .filter_by(case_id=case_id)
                    .order_by(TaskRecord.id)
                ).all()
            ),
            db.session.execute(db.select(db.func.count(Attachment.id))).scalar_one(),
            db.session.execute(db.select(db.func.count(Comment.id))).scalar_one(),
        )


# --- calling a rule -------------------------------------------------------------------------


def rules(app):
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint, r.rule))


def methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def path_for(app, rule, sample: Sample) -> str:
    values = {**sample.values(), **ACCESS[rule.endpoint].values}
    if "number" in rule.arguments and rule.endpoint.startswith("processes."):
        values["number"] = 1
    args = {name: values[name] for name in rule.arguments}
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **args)


def call(client, method: str, path: str, rule, token: str | None = None):
    is_api = path.startswith("/api/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = ACCESS[rule.endpoint].body
    if method == "GET":
        return client.get(path, headers=headers)
    if isinstance(body, str):  # a raw CSV upload
        return client.open(path, method=method, data=body, headers=headers, mimetype="text/csv")
    if is_api:
        return client.open(path, method=method, json=body, headers=headers)
    return client.open(path, method=method, data=body, headers=headers)


def web_client(app, name: str):
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": PASSWORD})
    assert response.status_code == 302, f"{name} could not log in"
    return client


def taken_flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.pop("_flashes", []))


def refused(client, response, is_api: bool, *, allow_409: bool = False) -> bool:
    """403/404 (409 where the contract puts it first); for a web action, also a redirect back
    with an error message (the page a person sees says why nothing happened)."""
    codes = (403, 404, 409) if allow_409 else (403, 404)
    if response.status_code in codes:
        return True
    if is_api or response.status_code != 302 or "/login" in response.location:
        return False
    return any(category == "error" for category, _ in taken_flashes(client))


def denied_roles(entry: Access) -> list[str]:
    if entry.who in (PUBLIC, ANY):
        return []
    return [role for role in ROLE_USER if role not in entry.who]


# --- the tests ------------------------------------------------------------------------------


def test_every_route_has_an_access_rule(app):
    missing = sorted({r.endpoint for r in rules(app)} - set(ACCESS))
    assert not missing, f"routes without an access rule in {__name__}.ACCESS: {missing}"
    stale = sorted(set(ACCESS) - {r.endpoint for r in rules(app)})
    assert not stale, f"ACCESS names routes that no longer exist: {stale}"


@pytest.mark.parametrize("side", ["web", "api"])
def test_each_role_is_refused_what_it_may_not_use(app, api, sample, side):
    before = fingerprint(app, sample.case_id)
    failures = []
    for role, name in ROLE_USER.items():
        client = web_client(app, name) if side == "web" else app.test_client()
        token = api.tokens[name] if side == "api" else None
        for rule in rules(app):
            if rule.endpoint.startswith("api.") != (side == "api"):
                continue
            entry = ACCESS[rule.endpoint]
            path = path_for(app, rule, sample)
            for method in methods(rule):
                if role in denied_roles(entry):
                    response = call(client, method, path, rule, token)
                    if not refused(client, response, side == "api"):
                        failures.append((role, method, path, response.status_code))
                elif (
                    method == "GET"
                    and entry.who != PUBLIC
                    and rule.endpoint not in (CASE_ROUTES | TASK_READS)
                ):
                    # The table must not be stricter than the app: allowed roles get in.
                    response = call(client, method, path, rule, token)
                    if response.status_code in (401, 403) or "/login" in (response.location or ""):
                        failures.append((role, "allowed but refused", path, response.status_code))
    assert not failures, "\n".join(map(str, failures))
    assert fingerprint(app, sample.case_id) == before


def test_without_a_login_pages_send_you_to_log_in_and_the_api_answers_401(app, sample):
    client = app.test_client()
    failures = []
    for rule in rules(app):
        if ACCESS[rule.endpoint].who == PUBLIC:
            continue
        path = path_for(app, rule, sample)
        for method in methods(rule):
            response = call(client, method, path, rule)
            if path.startswith("/api/"):
                ok = response.status_code == 401 and response.is_json
            else:
                ok = response.status_code == 302 and response.location.startswith("/login")
            if not ok:
                failures.append((method, path, response.status_code))
    assert not failures, "\n".join(map(str, failures))


# Outsiders of the sample case: a colleague of spec's (the review is done, so the case is no
# longer in the specialists' queue), a process owner, and a sales rep of other customers.
OUTSIDERS = ("spec2", "owner", "rep2")


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_cannot_read_or_touch_the_case_through_any_route(app, api, sample, who):
    before = fingerprint(app, sample.case_id)
    failures = []
    web = web_client(app, who)
    for rule in rules(app):
        endpoint = rule.endpoint
        if endpoint not in CASE_ROUTES | TASK_READS | TASK_ACTIONS:
            continue
        is_api = endpoint.startswith("api.")
        client = app.test_client() if is_api else web
        token = api.tokens[who] if is_api else None
        path = path_for(app, rule, sample)
        for method in methods(rule):
            response = call(client, method, path, rule, token)
            # A closed task of one's role answers 409 "already completed" to an action.
            allow_409 = who == "spec2" and (
                endpoint in TASK_ACTIONS or (endpoint == "inbox.task" and method == "POST")
            )
            if not refused(client, response, is_api, allow_409=allow_409):
                failures.append((method, path, response.status_code))
            elif response.status_code != 302:
                text = response.get_data(as_text=True)
                # Nothing of the case leaks into the refusal.
                assert INTAKE["tax_id"] not in text and "pod.pdf" not in text, (method, path)
    assert not failures, "\n".join(map(str, failures))
    assert fingerprint(app, sample.case_id) == before


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_get_nothing_from_bulk_actions_on_the_case(app, api, sample, who):
    before = fingerprint(app, sample.case_id)
    results = (
        api.as_(who)
        .post(
            "/api/v1/tasks/bulk-complete",
            json={"tasks": [sample.task_id, sample.approval_id], "data": {}},
        )
        .get_json()["results"]
    )
    assert results[str(sample.task_id)]["status"] in (403, 404, 409)
    assert results[str(sample.approval_id)]["status"] in (403, 404)
    decided = api.as_(who).post(
        "/api/v1/approvals/decide", json={"tasks": [sample.approval_id], "action": "approve"}
    )
    assert decided.get_json()["results"][str(sample.approval_id)]["status"] in (403, 404)
    assert fingerprint(app, sample.case_id) == before


def test_readers_of_the_case_do_get_in(app, api, sample):
    """The outsider test means something only if the same routes open for the right people."""
    for who in ("spec", "rep", "mgr", "admin"):
        assert api.as_(who).get(f"/api/v1/cases/{sample.case_id}").status_code == 200
        download = f"/api/v1/cases/{sample.case_id}/attachments/{sample.attachment_id}"
        response = api.as_(who).get(download)
        assert response.status_code == 200 and response.data == PDF
        assert web_client(app, who).get(f"/cases/{sample.case_id}").status_code == 200
    assert api.as_("spec").get(f"/api/v1/tasks/{sample.task_id}").status_code == 200


def test_a_task_id_of_another_case_does_not_open_this_case(app, api, sample):
    """A rep reads their own customer's case; a task of another customer's case is closed to
    them, even by guessing its id."""
    with app.app_context():
        other = engine.start_case(
            "credit_application",
            {**INTAKE, "legal_name": "Other Corp", "sales_rep": "mgr"},
            find_user("mgr"),
        )
        other_task = next(t.id for t in other.tasks if t.state == "open")
    assert api.as_("rep").get(f"/api/v1/tasks/{other_task}").status_code in (403, 404)
    assert api.as_("rep").get(f"/api/v1/cases/{other.id}").status_code in (403, 404)
    page = web_client(app, "rep").get(f"/tasks/{other_task}")
    assert page.status_code in (403, 404) and "Other Corp" not in page.get_data(as_text=True)


def test_a_sales_rep_reaches_only_their_own_customers(app, api, sample):
    """Every customer route, with a customer of rep's: rep2 (another rep) and the process
    owner are refused, rep gets in."""
    from casemgr.models import Customer

    with app.app_context():
        db.session.add(Customer(number="C-REP", name="Rep's Customer", sales_rep="rep"))
        db.session.commit()
    customer_rules = [
        r for r in rules(app) if "number" in r.arguments and not r.endpoint.startswith("process")
    ]
    assert len(customer_rules) >= 8
    failures = []
    for who in ("rep2", "owner"):
        web = web_client(app, who)
        for rule in customer_rules:
            is_api = rule.endpoint.startswith("api.")
            client = app.test_client() if is_api else web
            with app.test_request_context():
                from flask import url_for

                path = url_for(rule.endpoint, number="C-REP")
            for method in methods(rule):
                response = call(client, method, path, rule, api.tokens[who] if is_api else None)
                if not refused(client, response, is_api):
                    failures.append((who, method, path, response.status_code))
    # The report's invoices behind one customer's amount (process owners read every customer's).
    for path in ("/reports/aging/invoices", "/reports/aging/invoices.csv"):
        query = {"customer": "C-REP", "bucket": "current"}
        response = web_client(app, "rep2").get(path, query_string=query)
        if response.status_code not in (403, 404):
            failures.append(("rep2", "GET", path, response.status_code))
    assert not failures, "\n".join(map(str, failures))
    assert web_client(app, "rep").get("/customers/C-REP").status_code == 200
    assert api.as_("rep").get("/api/v1/customers/C-REP").status_code == 200


def test_another_persons_notification_and_saved_view_are_out_of_reach(app, api, sample):
    from casemgr.models import Notification, SavedView

    web = web_client(app, "spec")
    assert web.post(f"/notifications/{sample.notification_id}/read").status_code == 404
    web.post(f"/views/{sample.view_id}/delete")
    deleted = api.as_("spec").client.delete(
        f"/api/v1/views/{sample.view_id}",
        headers={"Authorization": f"Bearer {api.tokens['spec']}"},
    )
    assert deleted.status_code in (403, 404)
    with app.app_context():
        assert db.session.get(Notification, sample.notification_id).read_at is None
        assert db.session.get(SavedView, sample.view_id) is not None
    listed = api.as_("spec").get("/api/v1/views").get_json()
    assert sample.view_id not in [v["id"] for v in listed]
