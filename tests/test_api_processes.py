"""Process versions over the API: validate any body, publish, list versions, read a diagram."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from casemgr.engine.specs import MAX_XML_BYTES
from tests.credit_data import INTAKE

XML = {"Content-Type": "application/xml"}
ROOT = Path(__file__).resolve().parent.parent
CREDIT_BPMN = (ROOT / "workflows" / "bpmn" / "credit_application.bpmn").read_text()
DMN = next((ROOT / "workflows" / "dmn").glob("*.dmn")).read_text()
CREDIT_DMN = (ROOT / "workflows" / "dmn" / "credit_decision.dmn").read_text()
# The credit manager decides up to 15,000 instead of 50,000; above that, the controller.
STRICTER_CREDIT_DMN = CREDIT_DMN.replace("&lt;= 50000", "&lt;= 15000").replace(
    "&gt; 50000", "&gt; 15000"
)

TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs"
    targetNamespace="https://casemgr.dev/test">
  <bpmn:process id="quick_check" name="Quick check" isExecutable="true">
    <bpmn:laneSet id="lanes"><bpmn:lane id="lane_one" name="{lane}">
      <bpmn:flowNodeRef>{task_id}</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="{start_id}"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="{start_id}" targetRef="{task_id}" />
    <bpmn:userTask id="{task_id}" name="{title}">{extensions}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="{task_id}" targetRef="done" />
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def diagram(
    lane="ar_specialist", task_id="check_it", start_id="begin", title="Check it", extensions=""
) -> str:
    return TEMPLATE.format(
        lane=lane, task_id=task_id, start_id=start_id, title=title, extensions=extensions
    )


def form_key(key: str) -> str:
    return (
        "<bpmn:extensionElements><spiffworkflow:properties>"
        f'<spiffworkflow:property name="formKey" value="{key}" />'
        "</spiffworkflow:properties></bpmn:extensionElements>"
    )


def script(code: str) -> str:
    return (
        "<bpmn:extensionElements>"
        f"<spiffworkflow:postScript>{code}</spiffworkflow:postScript>"
        "</bpmn:extensionElements>"
    )


def validate(api, body, who="owner", headers=XML):
    return api.as_(who).post("/api/v1/processes/validate", data=body, headers=headers)


def publish(api, key="quick_check", body=None, who="owner"):
    body = diagram() if body is None else body
    return api.as_(who).post(f"/api/v1/case-types/{key}/versions", data=body, headers=XML)


# --- validate -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_a_good_diagram_is_valid(api, who):
    resp = validate(api, diagram(), who)
    assert resp.status_code == 200
    assert resp.get_json() == {"valid": True, "errors": []}


def test_the_seed_diagram_validates_with_the_decision_tables_it_calls(api):
    assert validate(api, CREDIT_BPMN).get_json() == {"valid": True, "errors": []}


@pytest.mark.parametrize(
    ("body", "element"),
    [
        (diagram(lane="Janitors"), "check_it"),
        (diagram(start_id="Start"), "Start"),
        (diagram(extensions=form_key("no_such_form")), "check_it"),
        pytest.param(
            diagram(extensions=script("import os")),
            "check_it",
        ),
        (diagram(extensions=script("x = ().__class__.__base__.__subclasses__()")), "check_it"),
    ],
)
def test_problems_are_named_with_their_element(api, body, element):
    resp = validate(api, body)
    assert resp.status_code == 200
    result = resp.get_json()
    assert result["valid"] is False
    assert element in [e["element"] for e in result["errors"]]
    assert all(set(e) == {"element", "message"} and e["message"] for e in result["errors"])


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol3;</bpmn:definitions>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&x;</bpmn:definitions>
"""
REMOTE_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" />
"""


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"hello",
        b'{"process": "x"}',
        b"\x00\x01\x02\xff\xfe\xfd" * 100,
        "<a>caf\u00e9</a>".encode("latin-1"),
        "<?xml version='1.0' encoding='UTF-16'?><a/>".encode("utf-16"),
        b"<a><b></a>",
        b"<definitions/>",
        b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
        b"<a>" * 50_000 + b"</a>" * 50_000,
        BILLION_LAUGHS,
        XXE,
        REMOTE_DTD,
        DMN.encode()
        .replace(b"<decisionTable", b"<notATable")
        .replace(b"</decisionTable>", b"</notATable>"),
        diagram().encode()[:-40],
        diagram().replace('isExecutable="true"', 'isExecutable="false"').encode(),
        diagram().replace('targetRef="done"', 'targetRef="nowhere"').encode(),
    ],
    ids=lambda b: repr(b[:24]),
)
def test_any_body_however_broken_gets_a_200_answer(api, body):
    resp = validate(api, body, headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 200
    result = resp.get_json()
    assert result["valid"] is False
    assert result["errors"] and all(e["message"] for e in result["errors"])


def test_an_external_entity_never_reaches_the_answer(api):
    text = validate(api, XXE).get_data(as_text=True)
    assert "root:" not in text


def test_validate_ignores_the_content_type(api):
    for content_type in ("text/plain", "application/json", "multipart/form-data", ""):
        resp = validate(api, diagram(), headers={"Content-Type": content_type})
        assert (resp.status_code, resp.get_json()["valid"]) == (200, True), content_type


@pytest.mark.parametrize("who", ["spec", "mgr", "ctrl", "rep"])
def test_only_process_owners_and_admins_validate(api, who):
    resp = validate(api, diagram(), who)
    assert resp.status_code == 403
    assert resp.get_json()["error"]


def test_validate_needs_a_token(api):
    assert api.post("/api/v1/processes/validate", data=diagram(), headers=XML).status_code == 401


def test_a_diagram_over_the_size_limit_is_413(api):
    at_limit = b" " * MAX_XML_BYTES
    assert validate(api, at_limit).status_code == 200
    resp = validate(api, at_limit + b" ")
    assert resp.status_code == 413
    assert resp.is_json and resp.get_json()["error"]


def test_forbidden_wins_over_too_large(api):
    assert validate(api, b" " * (MAX_XML_BYTES + 1), who="spec").status_code == 403


# --- publish --------------------------------------------------------------------------------


def test_publishing_a_new_key_creates_the_case_type_at_version_1(api):
    resp = publish(api)
    assert resp.status_code == 201
    assert resp.get_json() == {"key": "quick_check", "version": 1}
    types = {t["key"]: t for t in api.as_("spec").get("/api/v1/case-types").get_json()}
    assert types["quick_check"] == {"key": "quick_check", "name": "Quick check", "version": 1}


def test_publishing_again_makes_the_next_version_and_running_cases_stay_on_theirs(api):
    publish(api)
    first = api.as_("spec").post("/api/v1/cases", json={"case_type": "quick_check"}).get_json()
    resp = publish(api, body=diagram(title="Check it twice"))
    assert resp.get_json() == {"key": "quick_check", "version": 2}
    assert resp.headers["Location"].endswith("/case-types/quick_check/versions/2/bpmn")
    second = api.as_("spec").post("/api/v1/cases", json={"case_type": "quick_check"}).get_json()
    assert (first["version"], first["tasks"][0]["title"]) == (1, "Check it")
    assert (second["version"], second["tasks"][0]["title"]) == (2, "Check it twice")
    again = api.as_("spec").get(f"/api/v1/cases/{first['id']}").get_json()
    assert again["version"] == 1


def test_an_admin_may_publish(api):
    assert publish(api, who="admin").status_code == 201


@pytest.mark.parametrize("who", ["spec", "mgr", "ctrl", "rep"])
def test_only_process_owners_and_admins_publish(api, who):
    assert publish(api, who=who).status_code == 403
    assert api.as_("owner").get("/api/v1/case-types/quick_check/versions").status_code == 404


def test_an_invalid_diagram_is_422_with_its_problems_and_nothing_is_published(api):
    publish(api)
    resp = publish(api, body=diagram(lane="Janitors"))
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["error"]
    assert [e["element"] for e in body["errors"]] == ["check_it"]
    versions = api.as_("owner").get("/api/v1/case-types/quick_check/versions").get_json()
    assert [v["version"] for v in versions] == [1]


def test_a_decision_table_validates_as_dmn(api):
    resp = validate(api, DMN.encode())
    assert resp.status_code == 200
    assert resp.get_json() == {"valid": True, "errors": []}


@pytest.mark.parametrize(
    "body", [b"", b"not xml", b"\xff\xfe<a/>", XXE, BILLION_LAUGHS, DMN.encode()], ids=repr
)
def test_broken_bodies_are_422_on_publish(api, body):
    resp = publish(api, body=body)
    assert resp.status_code == 422
    assert resp.get_json()["errors"]
    assert api.as_("owner").get("/api/v1/case-types/quick_check/versions").status_code == 404


@pytest.mark.parametrize("key", ["A", "x", "Quick", "1check", "quick-check", "q" * 81, "_q"])
def test_a_badly_formed_key_is_422(api, key):
    resp = publish(api, key=key)
    assert resp.status_code == 422
    assert resp.get_json()["errors"]["key"]


def test_publish_precedence_401_403_413_before_422(api):
    bad_key_big = b" " * (MAX_XML_BYTES + 1)
    resp = api.post("/api/v1/case-types/BAD/versions", data=bad_key_big, headers=XML)
    assert resp.status_code == 401
    assert publish(api, key="BAD", body=bad_key_big, who="spec").status_code == 403
    assert publish(api, key="BAD", body=bad_key_big).status_code == 413


def test_a_published_task_without_a_form_key_has_an_empty_form(api):
    publish(api)
    case = api.as_("spec").post("/api/v1/cases", json={"case_type": "quick_check"}).get_json()
    form = api.as_("spec").get(f"/api/v1/tasks/{case['tasks'][0]['id']}").get_json()["form"]
    assert form == {"key": None, "fields": []}


# --- decision tables published in the browser -----------------------------------------------

REFUND_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="refund_defs"
    name="Refund routing" namespace="https://casemgr.dev/dmn">
  <decision id="refund_route" name="Refund routing">
    <decisionTable id="refund_route_table" hitPolicy="FIRST">
      <input id="in_any" label="Anything">
        <inputExpression id="in_any_expr" typeRef="number"><text>1</text></inputExpression>
      </input>
      <output id="out_route" label="Route" name="route" typeRef="string" />
      <rule id="rule_1">
        <inputEntry id="rule_1_in"><text>-</text></inputEntry>
        <outputEntry id="rule_1_out"><text>"{route}"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""

REFUND_BPMN = (
    diagram(task_id="check_refund", title="Check the refund")
    .replace(
        '<bpmn:sequenceFlow id="f1" sourceRef="begin" targetRef="check_refund" />',
        '<bpmn:sequenceFlow id="f1" sourceRef="begin" targetRef="route_it" />'
        '<bpmn:businessRuleTask id="route_it" name="Route the refund"><bpmn:extensionElements>'
        "<spiffworkflow:calledDecisionId>refund_route</spiffworkflow:calledDecisionId>"
        "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming>"
        "<bpmn:outgoing>f0</bpmn:outgoing></bpmn:businessRuleTask>"
        '<bpmn:sequenceFlow id="f0" sourceRef="route_it" targetRef="check_refund" />',
    )
    .replace(
        "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>",
        "<bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>",
    )
)


def publish_table(api, key: str, xml: str):
    headers = {**XML, "Authorization": f"Bearer {api.tokens['owner']}"}
    saved = api.client.put(f"/api/v1/decision-tables/{key}/draft", data=xml, headers=headers)
    assert saved.status_code == 200, saved.get_json()
    return api.client.post(f"/api/v1/decision-tables/{key}/draft/publish", headers=headers)


def test_a_table_published_in_the_browser_is_what_the_api_validates_and_pins(api):
    """A decision table that exists only as a published version (no seed file) is known to
    validation and publishing over the API, and a new case runs it."""
    before = validate(api, REFUND_BPMN).get_json()
    assert before["valid"] is False
    assert (
        "'refund_route', which no published decision table defines"
        in (before["errors"][0]["message"])
    )
    assert publish(api, "refund_check", REFUND_BPMN).status_code == 422

    table = publish_table(api, "refund_limits", REFUND_DMN.format(route="refund_desk"))
    assert table.status_code == 201
    assert validate(api, REFUND_BPMN).get_json() == {"valid": True, "errors": []}
    resp = publish(api, "refund_check", REFUND_BPMN)
    assert resp.status_code == 201, resp.get_json()
    first = api.as_("spec").post("/api/v1/cases", json={"case_type": "refund_check"}).get_json()
    assert first["data"]["route"] == "refund_desk"

    # A new version of the table re-publishes its caller: new cases take the new table.
    republished = publish_table(api, "refund_limits", REFUND_DMN.format(route="team_lead"))
    assert republished.get_json()["republished"] == [{"key": "refund_check", "version": 2}]
    second = api.as_("spec").post("/api/v1/cases", json={"case_type": "refund_check"}).get_json()
    assert (second["version"], second["data"]["route"]) == (2, "team_lead")


def test_publishing_over_the_api_pins_the_published_table_not_the_seed_file(api, app):
    """After the credit decision table is made stricter in the browser, publishing the
    credit application over the API must not bring the old seed table back."""
    from casemgr.accounts import find_user
    from casemgr.engine import drafts
    from casemgr.engine.cases import complete_task, start_case
    from tests.credit_data import review

    stricter = STRICTER_CREDIT_DMN
    assert publish_table(api, "credit_decision", stricter).status_code == 201  # v2 republished
    resp = publish(api, "credit_application", CREDIT_BPMN)
    assert resp.get_json() == {"key": "credit_application", "version": 3}
    with app.app_context():
        assert drafts.case_type("credit_application").latest().dmn_xml == [stricter]
        case = start_case("credit_application", dict(INTAKE), find_user("rep"))
        task = next(t for t in case.tasks if t.state == "open")
        case = complete_task(task.id, review("20000.00"), find_user("spec"))
        assert [t.name for t in case.tasks if t.state == "open"] == ["controller_approval"]


# --- versions -------------------------------------------------------------------------------


def test_versions_list_who_published_when_and_the_hash(api):
    publish(api)
    publish(api, body=diagram(title="Check it twice"), who="admin")
    resp = api.as_("spec").get("/api/v1/case-types/quick_check/versions")
    assert resp.status_code == 200
    versions = resp.get_json()
    assert [(v["version"], v["published_by"]) for v in versions] == [(1, "owner"), (2, "admin")]
    for v in versions:
        assert re.fullmatch(r"[0-9a-f]{64}", v["sha256"])
        assert v["published_at"].endswith(("Z", "+00:00"))
    assert versions[0]["sha256"] != versions[1]["sha256"]


def test_seed_versions_have_no_publisher(api):
    [v] = api.as_("spec").get("/api/v1/case-types/credit_application/versions").get_json()
    assert (v["version"], v["published_by"]) == (1, None)


def test_versions_of_an_unknown_case_type_are_404(api):
    assert api.as_("owner").get("/api/v1/case-types/nope/versions").status_code == 404


def test_a_versions_diagram_reads_back_exactly(api):
    publish(api)
    publish(api, body=diagram(title="Check it twice"))
    resp = api.as_("spec").get("/api/v1/case-types/quick_check/versions/1/bpmn")
    assert resp.status_code == 200
    assert resp.mimetype == "application/xml"
    assert resp.get_data(as_text=True) == diagram()
    two = api.as_("spec").get("/api/v1/case-types/quick_check/versions/2/bpmn")
    assert "Check it twice" in two.get_data(as_text=True)


def test_the_seed_diagram_reads_back(api):
    resp = api.as_("spec").get("/api/v1/case-types/credit_application/versions/1/bpmn")
    assert resp.get_data(as_text=True) == CREDIT_BPMN


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/case-types/nope/versions/1/bpmn",
        "/api/v1/case-types/credit_application/versions/2/bpmn",
        "/api/v1/case-types/credit_application/versions/0/bpmn",
    ],
)
def test_an_unknown_version_is_404(api, path):
    resp = api.as_("spec").get(path)
    assert resp.status_code == 404
    assert resp.get_json()["error"]


def test_versions_need_a_token(api):
    assert api.get("/api/v1/case-types/credit_application/versions").status_code == 401
    assert api.get("/api/v1/case-types/credit_application/versions/1/bpmn").status_code == 401


def test_the_published_seed_still_runs(api):
    """A sanity check that validating the seed did not disturb the published version."""
    validate(api, CREDIT_BPMN)
    resp = api.as_("spec").post(
        "/api/v1/cases", json={"case_type": "credit_application", "data": INTAKE}
    )
    assert resp.status_code == 201


def test_a_version_number_beyond_any_integer_is_404(api):
    path = f"/api/v1/case-types/credit_application/versions/{'9' * 25}/bpmn"
    assert api.as_("spec").get(path).status_code == 404
