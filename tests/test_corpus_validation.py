"""Every file of the shared corpus gets a proper answer from validation: valid, or a list of
errors that name what is wrong. Never a 500, never an empty "invalid".

The corpus (../shared/corpus): the 21 BPMN MIWG reference models with their work-in-progress
drafts and bpmn.io re-exports, and SpiffWorkflow's own test diagrams and decision tables.
The counts measured here are recorded below; a change in validation that moves them must
say so by updating them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from casemgr.accounts import find_user, issue_token
from casemgr.engine.validation import NO_EXECUTABLE, validate_bpmn
from casemgr.extensions import db
from tests.conftest import app_from_template

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FILES = sorted(
    p
    for folder in ("miwg", "spiffworkflow")
    for p in (CORPUS / folder).rglob("*")
    if p.suffix in (".bpmn", ".dmn")
)
REFERENCE = [p for p in FILES if p.parent == CORPUS / "miwg"]
XML = {"Content-Type": "application/xml"}

# Measured with this validation (see the module docstring).
MEASURED = {"files": 128, "valid": 18, "invalid": 110, "no_executable": 19}
# The 21 MIWG reference models: 10 mark every process isExecutable="false" (the issue's
# earlier figure of 8 came from SpiffWorkflow's own parse, which stops at B.1.0's and
# B.2.0's data stores before it notices); none runs here as it is, since each either has no
# executable process or uses lanes, services or data stores casemgr does not know.
MEASURED_REFERENCE = {"files": 21, "valid": 0, "no_executable": 10}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")


@pytest.fixture(scope="module")
def answers(template_db, tmp_path_factory) -> dict[str, tuple[int, dict]]:
    """Each corpus file sent once to POST /api/v1/processes/validate, as a process owner."""
    app = app_from_template(template_db, tmp_path_factory.mktemp("corpus") / "corpus.db")
    with app.app_context():
        token = issue_token(find_user("owner"))
        db.session.commit()
    client = app.test_client()
    headers = {**XML, "Authorization": f"Bearer {token}"}
    found = {}
    for file in FILES:
        response = client.post(
            "/api/v1/processes/validate", data=file.read_bytes(), headers=headers
        )
        found[str(file.relative_to(CORPUS))] = (response.status_code, response.get_json())
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return found


def is_no_executable(body: dict) -> bool:
    return any(NO_EXECUTABLE in e["message"] for e in body["errors"])


@pytest.mark.parametrize("name", [str(p.relative_to(CORPUS)) for p in FILES])
def test_each_corpus_file_gets_a_proper_answer(answers, name):
    status, body = answers[name]
    assert status == 200, body
    assert set(body) == {"valid", "errors"}
    assert body["valid"] is (not body["errors"])
    for error in body["errors"]:
        assert set(error) == {"element", "message"}
        assert isinstance(error["message"], str) and len(error["message"]) > 10
        assert "<Element" not in error["message"], "a Python repr leaked into a message"
        assert error["element"] is None or isinstance(error["element"], str)


def test_the_measured_counts(answers):
    bodies = [body for _status, body in answers.values()]
    counts = {
        "files": len(bodies),
        "valid": sum(1 for b in bodies if b["valid"]),
        "invalid": sum(1 for b in bodies if not b["valid"]),
        "no_executable": sum(1 for b in bodies if is_no_executable(b)),
    }
    assert counts == MEASURED
    reference = [answers[str(p.relative_to(CORPUS))][1] for p in REFERENCE]
    assert {
        "files": len(reference),
        "valid": sum(1 for b in reference if b["valid"]),
        "no_executable": sum(1 for b in reference if is_no_executable(b)),
    } == MEASURED_REFERENCE


def test_no_executable_process_says_why(answers):
    _status, body = answers["miwg/A.1.0.bpmn"]
    assert body["errors"] == [
        {
            "element": "WFP-6-",
            "message": f"{NO_EXECUTABLE}: 'WFP-6-' is marked isExecutable=\"false\" (a "
            "descriptive model); mark the process executable to run it",
        }
    ]
    _status, body = answers["miwg/wip/modeld.3.bpmn"]  # pools and message flows only
    assert "only draws a collaboration" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("name", "element", "words"),
    [
        ("miwg/C.9.1.bpmn", "BoundaryEvent_2", 'write "P7D" in quotes'),
        ("miwg/C.9.0.bpmn", "Activity_ManualCheck", "calls process 'ManualCheck', which is not"),
        ("miwg/C.1.1.bpmn", "archiveInvoice", "names no operation"),
        ("miwg/C.4.0.bpmn", "_d367181e-c25a-407e-a5fb-817a27698a30", "data store"),
        ("miwg/bpmnio-export/C.1.0-export.bpmn", "Event_1m6mn1s", "has no time"),
        ("miwg/bpmnio-export/A.2.1-export.bpmn", "Activity_172ndxy", "outgoing flows"),
        ("spiffworkflow/bpmn/lanes.bpmn", "Activity_A1", "names no role"),
        (
            "spiffworkflow/camunda/invalid__InvalidDecision.bpmn",
            "InvalidDecisionTaskId",
            "decisionRef",
        ),
        (
            "spiffworkflow/camunda/external_message.bpmn",
            "Activity_1n8ighs",
            "scripts here are Python",
        ),
        ("spiffworkflow/spiff/service_task.bpmn", "Activity_12erefa", "unknown service operation"),
        ("spiffworkflow/bpmn/multiple-throw.bpmn", "initiate", "would never run"),
        ("spiffworkflow/bpmn/invalid_cancel.bpmn", "Activity_HowMany", "transactions"),
    ],
)
def test_problems_name_their_element(answers, name, element, words):
    _status, body = answers[name]
    assert any(e["element"] == element and words in e["message"] for e in body["errors"]), body


def test_an_inclusive_gateway_is_checked_without_a_crash(answers):
    """It used to raise AttributeError (an inclusive gateway keeps its default elsewhere)."""
    _status, body = answers["spiffworkflow/bpmn/inclusive_gateway.bpmn"]
    assert not any("gateway" in e["message"] for e in body["errors"])


# --- the lint rules on small diagrams of our own ----------------------------------------------

TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d"
    targetNamespace="https://casemgr.dev/test">
  <bpmn:process id="p" name="P" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane_one" name="ar_specialist">
      <bpmn:flowNodeRef>task</bpmn:flowNodeRef></bpmn:lane>{lanes}</bpmn:laneSet>
    <bpmn:startEvent id="begin"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="begin" targetRef="task" />
    <bpmn:userTask id="task" name="Task"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="done" />
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    {extra}
  </bpmn:process>
</bpmn:definitions>
"""


def diagram(extra: str = "", lanes: str = "") -> str:
    return TEMPLATE.format(extra=extra, lanes=lanes)


def test_the_template_is_valid(ctx):
    assert validate_bpmn(diagram()) == []


@pytest.mark.parametrize(
    ("extra", "lanes", "element", "words"),
    [
        ('<bpmn:task id="lonely" name="Forgotten" />', "", "lonely", "is not connected"),
        (
            '<bpmn:scriptTask id="calc" name="Calc" />',
            "",
            "calc",
            "has no script",
        ),
        ("", '<bpmn:lane id="lane_x" name="Robots" />', "lane_x", "lane 'Robots' names no role"),
        (
            '<bpmn:callActivity id="call" calledElement="elsewhere" />',
            "",
            "call",
            "calls process 'elsewhere', which is not in this file",
        ),
        (
            '<bpmn:complexGateway id="cx" name="Complex" />',
            "",
            "cx",
            "complex gateway 'Complex' is not supported",
        ),
    ],
)
def test_lint_names_the_element(ctx, extra, lanes, element, words):
    errors = validate_bpmn(diagram(extra, lanes))
    assert any(e["element"] == element and words in e["message"] for e in errors), errors


def test_a_collaboration_without_processes_has_its_own_message(ctx):
    xml = """<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
      <bpmn:collaboration id="c"><bpmn:participant id="a" name="Buyer" />
      <bpmn:participant id="b" name="Seller" /></bpmn:collaboration></bpmn:definitions>"""
    assert validate_bpmn(xml) == [
        {
            "element": "c",
            "message": f"{NO_EXECUTABLE}: it only draws a collaboration of 'Buyer', 'Seller' "
            "with no process inside the pools; model the steps inside a pool",
        }
    ]
