"""Validation answers for BPMN and DMN files alike, naming what is wrong."""

from pathlib import Path

from casemgr.engine.validation import validate_document

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


def test_the_shipped_decision_tables_are_valid():
    for path in (WORKFLOWS / "dmn").glob("*.dmn"):
        assert validate_document(path.read_text()) == [], path.name


def test_a_dmn_file_without_a_table_is_reported():
    broken = (WORKFLOWS / "dmn" / "authority.dmn").read_text()
    start = broken.index("<decisionTable")
    end = broken.index("</decisionTable>") + len("</decisionTable>")
    errors = validate_document(broken[:start] + broken[end:])
    assert errors and errors[0]["element"] == "authority"


def test_a_file_that_is_neither_is_named_as_such():
    errors = validate_document(b"<inventory><item/></inventory>")
    assert errors == [
        {"element": None, "message": "not a BPMN 2.0 file (the root must be bpmn:definitions)"}
    ]
