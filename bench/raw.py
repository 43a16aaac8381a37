"""The raw engine for the benchmarks' reference figures: SpiffWorkflow's own serializer,
whole specs included, as the library does by itself (casemgr stores less: see
casemgr.engine.serialization)."""

from __future__ import annotations

from SpiffWorkflow.bpmn import BpmnWorkflow

from casemgr.engine.serialization import serializer
from casemgr.engine.workflows import load_case, script_engine


def library_state(case) -> str:
    """A case's stored state in the library's own form."""
    return serializer.serialize_json(load_case(case))


def library_load(text: str) -> BpmnWorkflow:
    """What the library does to load a state (plus the restricted script engine)."""
    wf = serializer.deserialize_json(text)
    wf.script_engine = script_engine()
    return wf
