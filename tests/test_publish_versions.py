"""Drafts, publishing, versions, restore and diff: a process owner changes a case type while
cases run, and every case keeps the version it started on."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from casemgr.accounts import find_user
from casemgr.engine import drafts
from casemgr.engine.cases import complete_task, start_case
from casemgr.extensions import db
from casemgr.models import Case, CaseType, ProcessVersion
from tests.credit_data import INTAKE, review

ROOT = Path(__file__).resolve().parent.parent
CREDIT = (ROOT / "workflows" / "bpmn" / "credit_application.bpmn").read_text()
AUTHORITY = (ROOT / "workflows" / "dmn" / "authority.dmn").read_text()
CREDIT_DMN = (ROOT / "workflows" / "dmn" / "credit_decision.dmn").read_text()
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
XML = {"Content-Type": "application/xml"}
PASSWORD = "correct-horse-1"


def moved_to_lane(xml: str, task: str, lane: str) -> str:
    """The diagram with `task` listed in `lane` (what dragging it there in the modeler does)."""
    root = etree.fromstring(xml.encode())
    for ref in root.iter(f"{BPMN}flowNodeRef"):
        if ref.text == task:
            ref.getparent().remove(ref)
    target = next(n for n in root.iter(f"{BPMN}lane") if n.get("id") == lane)
    etree.SubElement(target, f"{BPMN}flowNodeRef").text = task
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def with_property(xml: str, task: str, name: str, value: str) -> str:
    start = xml.index(f'<bpmn:userTask id="{task}"')
    at = xml.index("<spiffworkflow:properties>", start) + len("<spiffworkflow:properties>")
    return xml[:at] + f'<spiffworkflow:property name="{name}" value="{value}" />' + xml[at:]


def with_postscript(xml: str, task: str, code: str) -> str:
    start = xml.index(f'<bpmn:userTask id="{task}"')
    at = xml.index("</bpmn:extensionElements>", start)
    return xml[:at] + f"<spiffworkflow:preScript>{code}</spiffworkflow:preScript>" + xml[at:]


def owner_headers(api) -> dict:
    return {**XML, "Authorization": f"Bearer {api.tokens['owner']}"}


def put_draft(api, key: str, xml: str, **headers):
    return api.client.put(
        f"/api/v1/case-types/{key}/draft", data=xml, headers={**owner_headers(api), **headers}
    )


def publish_draft(api, key: str):
    return api.client.post(f"/api/v1/case-types/{key}/draft/publish", headers=owner_headers(api))


@pytest.fixture
def client_as(app):
    def login(name: str):
        client = app.test_client()
        assert (
            client.post("/login", data={"username": name, "password": PASSWORD}).status_code == 302
        )
        return client

    return login


def open_task(case: Case):
    tasks = [t for t in case.tasks if t.state == "open"]
    assert len(tasks) == 1, [(t.name, t.state) for t in case.tasks]
    return tasks[0]


# --- drafts -------------------------------------------------------------------------------------


def test_a_draft_is_saved_however_incomplete_and_answers_its_validation(api):
    broken = moved_to_lane(CREDIT, "specialist_review", "lane_manager").replace(
        'value="credit_review"', 'value="no_such_form"'
    )
    resp = put_draft(api, "credit_application", broken)
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["revision"], body["valid"], body["based_on"]) == (1, False, 1)
    assert [e["element"] for e in body["errors"]] == ["specialist_review"]
    got = api.client.get("/api/v1/case-types/credit_application/draft", headers=owner_headers(api))
    assert got.get_data(as_text=True) == broken
    assert got.headers["X-Draft-Revision"] == "1"


def test_two_people_saving_over_each_other_is_a_conflict(api):
    assert put_draft(api, "credit_application", CREDIT).get_json()["revision"] == 1
    assert put_draft(api, "credit_application", CREDIT, **{"If-Match": "1"}).status_code == 200
    stale = put_draft(api, "credit_application", CREDIT, **{"If-Match": "1"})
    assert stale.status_code == 409
    assert "after you opened it" in stale.get_json()["error"]


def test_only_process_owners_work_on_drafts(api):
    headers = {**XML, "Authorization": f"Bearer {api.tokens['mgr']}"}
    resp = api.client.put(
        "/api/v1/case-types/credit_application/draft", data=CREDIT, headers=headers
    )
    assert resp.status_code == 403


# --- publishing with running cases -----------------------------------------------------------


def test_publishing_pins_running_cases_to_their_version(api, app):
    with app.app_context():
        running = start_case("credit_application", dict(INTAKE), find_user("rep"))
        running_id = running.id
        assert open_task(running).role == "ar_specialist"

    put_draft(api, "credit_application", moved_to_lane(CREDIT, "specialist_review", "lane_manager"))
    resp = publish_draft(api, "credit_application")
    assert resp.status_code == 201
    assert resp.get_json() == {"key": "credit_application", "version": 2}
    assert (
        api.client.get(
            "/api/v1/case-types/credit_application/draft", headers=owner_headers(api)
        ).status_code
        == 404
    )  # the draft became version 2

    with app.app_context():
        running = db.session.get(Case, running_id)
        assert running.process_version.version == 1
        assert open_task(running).role == "ar_specialist"
        new = start_case("credit_application", dict(INTAKE), find_user("rep"))
        assert new.process_version.version == 2
        assert (open_task(new).name, open_task(new).role) == ("specialist_review", "credit_manager")
        # The running case goes on along version 1: the specialist reviews it.
        running = complete_task(open_task(running).id, review(), find_user("spec"))
        assert open_task(running).name == "manager_approval"
        assert running.process_version.version == 1

    versions = api.as_("owner").get("/api/v1/case-types/credit_application/versions").get_json()
    assert [(v["version"], v["published_by"]) for v in versions] == [(1, None), (2, "owner")]


def test_restoring_an_old_version_publishes_it_as_the_next(api, app):
    put_draft(api, "credit_application", moved_to_lane(CREDIT, "specialist_review", "lane_manager"))
    assert publish_draft(api, "credit_application").status_code == 201
    resp = api.client.post(
        "/api/v1/case-types/credit_application/versions/1/restore", headers=owner_headers(api)
    )
    assert resp.status_code == 201
    assert resp.get_json()["version"] == 3
    with app.app_context():
        found = db.session.execute(
            db.select(CaseType).filter_by(key="credit_application")
        ).scalar_one()
        first, third = found.versions[0], found.versions[2]
        assert (third.bpmn_xml, third.dmn_xml, third.sha256) == (
            first.bpmn_xml,
            first.dmn_xml,
            first.sha256,
        )
        assert third.published_by.username == "owner"
        case = start_case("credit_application", dict(INTAKE), find_user("rep"))
        assert open_task(case).role == "ar_specialist"


def test_the_diff_names_what_changed(api, client_as):
    changed = with_property(
        moved_to_lane(CREDIT, "specialist_review", "lane_manager"),
        "specialist_review",
        "fourEyes",
        "complete_intake",
    ).replace('route == "credit_manager"', 'route in ("credit_manager", "manager")')
    put_draft(api, "credit_application", changed)
    publish_draft(api, "credit_application")
    diff = api.client.get(
        "/api/v1/case-types/credit_application/versions/1/diff/2", headers=owner_headers(api)
    ).get_json()
    changes = {c["element"]: c["details"] for c in diff["changed"]}
    assert changes["specialist_review"] == [
        "role (lane): 'ar_specialist' → 'credit_manager'",
        "four-eyes set to 'complete_intake'",
    ]
    assert changes["flow_route_manager"] == ["condition changed"]
    assert diff["added"] == diff["removed"] == []
    page = client_as("owner").get("/processes/credit_application/diff?from=1&to=2")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "role (lane): &#39;ar_specialist&#39; → &#39;credit_manager&#39;" in text
    assert 'data-diff-side="old"' in text and 'data-diff-side="new"' in text


def test_the_versions_page_lists_who_published_what_and_restores(api, client_as):
    put_draft(api, "credit_application", moved_to_lane(CREDIT, "specialist_review", "lane_manager"))
    publish_draft(api, "credit_application")
    web = client_as("owner")
    page = web.get("/processes/credit_application/versions").get_data(as_text=True)
    assert "Owner" in page and "setup (seed diagram)" in page
    assert 'data-testid="restore-1"' in page
    resp = web.post("/processes/credit_application/versions/1/restore", follow_redirects=True)
    assert "Version 1 restored as version 3." in resp.get_data(as_text=True)


# --- what validation refuses at publish time -------------------------------------------------


@pytest.mark.parametrize("value", ["P3D", "PT4H", "R3/P1D"])
def test_an_unquoted_duration_is_refused_with_the_hint(api, value):
    xml = CREDIT.replace(
        '<spiffworkflow:property name="dueDate" value="&quot;P3D&quot;" />',
        f'<spiffworkflow:property name="dueDate" value="{value}" />',
    )
    resp = api.as_("owner").post(
        "/api/v1/case-types/credit_application/versions", data=xml, headers=XML
    )
    assert resp.status_code == 422
    assert {
        "element": "specialist_review",
        "message": f"due date of specialist_review: {value} is read as a Python name; "
        f'write "{value}" in quotes',
    } in resp.get_json()["errors"]


def test_an_unquoted_timer_gets_the_same_hint(api):
    xml = CREDIT.replace(
        '<bpmn:timeDuration>"P10D"</bpmn:timeDuration>',
        "<bpmn:timeDuration>P10D</bpmn:timeDuration>",
    )
    put_draft(api, "credit_application", xml)
    resp = publish_draft(api, "credit_application")
    assert resp.status_code == 422
    assert any(
        e["element"] == "timer_reminder" and 'write "P10D" in quotes' in e["message"]
        for e in resp.get_json()["errors"]
    )


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("import os", "imports are not allowed"),
        ("x = ().__class__.__base__.__subclasses__()", "__class__"),
        ("y = open('/etc/passwd').read()", "open() is not available in process scripts"),
        ("z = __import__('os').system('id')", "__import__"),
        ("w = eval('1')", "Eval calls are not allowed"),
        ("v = globals()", "globals() is not available"),
    ],
)
def test_unsafe_scripts_are_refused_at_publish_time(api, app, code, words):
    put_draft(api, "credit_application", with_postscript(CREDIT, "specialist_review", code))
    resp = publish_draft(api, "credit_application")
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert any(e["element"] == "specialist_review" for e in errors), errors
    assert any(words in e["message"] for e in errors), errors
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ProcessVersion.id))).scalar() == 5
    # Through the versions API too: nothing published.
    direct = api.as_("owner").post(
        "/api/v1/case-types/credit_application/versions",
        data=with_postscript(CREDIT, "specialist_review", code),
        headers=XML,
    )
    assert direct.status_code == 422


# --- the modeler's page actions and new case types ---------------------------------------------


def test_the_modeler_saves_and_publishes_what_it_sends(client_as, app):
    web = client_as("owner")
    assert web.get("/processes/credit_application/").status_code == 200
    xml = moved_to_lane(CREDIT, "specialist_review", "lane_manager")
    saved = web.post("/processes/credit_application/draft", data=xml, headers=XML)
    assert saved.status_code == 200
    assert saved.get_json()["valid"] is True
    stale = web.post(
        "/processes/credit_application/draft",
        data=xml,
        headers={**XML, "X-Draft-Revision": "7"},
    )
    assert stale.status_code == 409
    published = web.post("/processes/credit_application/publish")
    assert published.status_code == 201
    assert published.get_json()["message"] == (
        "Published version 2 of New-customer credit application."
    )
    with app.app_context():
        assert drafts.case_type("credit_application").latest().bpmn_xml == xml


def test_publishing_an_invalid_draft_answers_the_problems_and_keeps_the_draft(client_as, app):
    web = client_as("owner")
    bad = CREDIT.replace('value="credit_review"', 'value="nope"')
    web.post("/processes/credit_application/draft", data=bad, headers=XML)
    resp = web.post("/processes/credit_application/publish")
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["element"] == "specialist_review"
    with app.app_context():
        assert drafts.get_draft("bpmn", "credit_application").xml == bad
        assert drafts.case_type("credit_application").latest().version == 1


def test_a_new_case_type_from_a_blank_diagram_is_startable_once_published(client_as, api):
    web = client_as("owner")
    resp = web.post(
        "/processes/new", data={"key": "customer_refund_request", "name": "Customer refund request"}
    )
    assert resp.status_code == 302
    assert api.as_("spec").get("/api/v1/case-types").get_json() == [
        t
        for t in api.as_("spec").get("/api/v1/case-types").get_json()
        if t["key"] != "customer_refund_request"
    ]
    started = api.as_("spec").post("/api/v1/cases", json={"case_type": "customer_refund_request"})
    assert started.status_code == 422  # not published yet
    assert web.post("/processes/customer_refund_request/publish").status_code == 201
    types = {t["key"]: t for t in api.as_("spec").get("/api/v1/case-types").get_json()}
    assert types["customer_refund_request"] == {
        "key": "customer_refund_request",
        "name": "Customer refund request",
        "version": 1,
    }
    case = api.as_("spec").post("/api/v1/cases", json={"case_type": "customer_refund_request"})
    assert case.status_code == 201
    assert [t["name"] for t in case.get_json()["tasks"]] == ["first_step"]


# --- decision tables ---------------------------------------------------------------------------


def test_publishing_a_decision_table_gives_its_callers_a_new_version(api, app, client_as):
    stricter = CREDIT_DMN.replace("50000", "40000")
    assert stricter != CREDIT_DMN
    headers = owner_headers(api)
    assert (
        api.client.put(
            "/api/v1/decision-tables/credit_decision/draft", data=stricter, headers=headers
        ).status_code
        == 200
    )
    with app.app_context():
        running = start_case("credit_application", dict(INTAKE), find_user("rep")).id
    resp = api.client.post("/api/v1/decision-tables/credit_decision/draft/publish", headers=headers)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["version"] == 1
    assert {"key": "credit_application", "version": 2} in body["republished"]
    with app.app_context():
        credit = drafts.case_type("credit_application")
        assert credit.latest().dmn_xml == [stricter]
        assert credit.versions[0].dmn_xml == [CREDIT_DMN]
        assert db.session.get(Case, running).process_version.version == 1
    tables = {
        t["key"]: t for t in api.client.get("/api/v1/decision-tables", headers=headers).get_json()
    }
    assert tables["credit_decision"]["version"] == 1
    assert client_as("owner").get("/decision-tables/credit_decision/").status_code == 200


def test_a_republished_table_routes_new_cases_and_running_ones_keep_theirs(api, app):
    """The credit manager's limit drops from 50,000 to 15,000. A case reviewed after that,
    at 20,000, goes to the controller if it started after the change, and to the credit
    manager if it was already running (its version pinned the old table)."""
    stricter = CREDIT_DMN.replace("&lt;= 50000", "&lt;= 15000").replace("&gt; 50000", "&gt; 15000")
    with app.app_context():
        running = start_case("credit_application", dict(INTAKE), find_user("rep")).id
    headers = owner_headers(api)
    api.client.put("/api/v1/decision-tables/credit_decision/draft", data=stricter, headers=headers)
    published = api.client.post(
        "/api/v1/decision-tables/credit_decision/draft/publish", headers=headers
    )
    assert published.status_code == 201
    with app.app_context():
        new = start_case("credit_application", dict(INTAKE), find_user("rep"))
        assert new.process_version.version == 2
        new = complete_task(open_task(new).id, review("20000.00"), find_user("spec"))
        assert open_task(new).name == "controller_approval"
        old = db.session.get(Case, running)
        old = complete_task(open_task(old).id, review("20000.00"), find_user("spec"))
        assert (old.process_version.version, open_task(old).name) == (1, "manager_approval")


def test_a_broken_decision_table_is_not_published(api):
    headers = owner_headers(api)
    broken = AUTHORITY.replace("<decisionTable", "<notATable").replace(
        "</decisionTable>", "</notATable>"
    )
    api.client.put("/api/v1/decision-tables/authority/draft", data=broken, headers=headers)
    resp = api.client.post("/api/v1/decision-tables/authority/draft/publish", headers=headers)
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["element"] == "authority"


def test_a_table_that_breaks_a_caller_publishes_nothing(api, app):
    """The credit application routes on the table's "route" output; a table without the
    credit_route decision leaves its business-rule task nothing to call."""
    headers = owner_headers(api)
    renamed = CREDIT_DMN.replace('id="credit_route"', 'id="credit_route_v2"')
    api.client.put("/api/v1/decision-tables/credit_decision/draft", data=renamed, headers=headers)
    with app.app_context():
        from casemgr.models import DecisionVersion

        result = drafts.publish_dmn("credit_decision", renamed, find_user("owner"))
        assert result.errors
        db.session.commit()
        assert db.session.execute(db.select(db.func.count(DecisionVersion.id))).scalar() == 0
        assert drafts.case_type("credit_application").latest().version == 1
