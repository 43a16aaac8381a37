"""What a case stores: SpiffWorkflow's own format, with the process specs named, not written
out (casemgr.engine.serialization); states stored whole by an earlier release still run."""

from __future__ import annotations

import json
from pathlib import Path

from casemgr.accounts import find_user
from casemgr.engine import cases as engine
from casemgr.engine import processes, specs
from casemgr.engine.serialization import serializer
from casemgr.engine.workflows import load_case
from casemgr.extensions import db
from casemgr.models import Case
from tests.credit_data import INTAKE, review


def _start() -> Case:
    return engine.start_case("credit_application", dict(INTAKE), find_user("rep"))


def _open(case: Case, name: str):
    db.session.refresh(case)
    [task] = [t for t in case.tasks if t.state == "open" and t.name == name]
    return task


def test_a_case_stores_its_state_without_the_diagram(ctx):
    case = _start()
    stored = json.loads(case.workflow_json)
    assert stored["spec"] == {"typename": "BpmnProcessSpec", "pinned": "credit_application"}
    assert all(set(spec) == {"typename", "pinned"} for spec in stored["subprocess_specs"].values())
    whole = serializer.serialize_json(load_case(case))  # what the library alone would store
    assert len(case.workflow_json) < len(whole) / 3


def test_a_state_stored_whole_by_an_earlier_release_still_runs(ctx):
    case = _start()
    case.workflow_json = serializer.serialize_json(load_case(case))
    db.session.commit()
    assert "task_specs" in json.loads(case.workflow_json)["spec"]
    task = _open(case, "specialist_review")
    case = engine.complete_task(task.id, review(), find_user("spec"))
    assert _open(case, "manager_approval").role == "credit_manager"
    assert json.loads(case.workflow_json)["spec"]["pinned"] == "credit_application"


def test_cases_of_one_version_share_its_specs_and_keep_their_own_data(ctx):
    first, second = _start(), _start()
    one, two = load_case(first), load_case(second)
    assert one.spec is two.spec  # parsed once per process, never rebuilt from a case
    engine.complete_task(_open(first, "specialist_review").id, review("9000.00"), find_user("spec"))
    assert load_case(first).data.get("recommended_limit") != load_case(second).data.get(
        "recommended_limit"
    )


def test_a_case_stored_mid_multi_instance_finishes_in_a_process_that_never_ran_it(ctx, monkeypatch):
    """A restarted worker parses the diagram anew: its instances must still report back."""
    xml = (Path(__file__).parent / "bpmn" / "multi_instance.bpmn").read_text()
    xml = xml.replace(  # each check hands back the invoice it checked
        '<bpmn:outputDataItem id="result" name="result" />',
        '<bpmn:outputDataItem id="invoice" name="invoice" />',
    )
    _, errors = processes.publish("multi_instance", xml, find_user("owner"))
    assert errors == []
    data = {"count": 0, "rounds": 1, "total_checked": 0, "invoices": ["A-1", "A-2"]}
    case = engine.start_case("multi_instance", data, find_user("spec"))
    checks = [t.id for t in case.tasks if t.state == "open"]
    assert len(checks) == 2
    # A fresh process: nothing parsed yet, so no instance was ever created with these specs.
    monkeypatch.setattr(specs, "_cache", {})
    monkeypatch.setattr(processes, "_pinned", {})
    for task_id in checks:
        case = engine.complete_task(task_id, {}, find_user("spec"))
    assert case.status == "completed"
    assert case.data["total_checked"] == 2
