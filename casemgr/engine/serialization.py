"""SpiffWorkflow's serializer of the Spiff family, taught Decimal, date and datetime; and the
form casemgr stores on a case: the same serializer, with the process specs left out.

The library writes a workflow's whole process spec (every task spec of the diagram and of
its subprocesses) into each serialization and rebuilds it on every load. A case's spec is
fixed by its version (casemgr.engine.processes pins it and parses it once per process), so
the stored state names its specs instead: the loop benchmark's state went from 7.7 to
3.4 KB and a step's load, run and save from 0.87 to 0.52 ms; a real diagram's spec is
larger still. Everything else (tasks, data, events, subprocess states) is the library's
own format, written and read by the library.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG as SPIFF_CONFIG

if TYPE_CHECKING:
    from casemgr.engine.specs import ParsedProcess

# The spec classes the Spiff configuration serializes whole (the top process, subprocesses).
SPEC_TYPENAMES = ("BpmnProcessSpec", "AdHocSubprocessSpec")
_pinned: ContextVar[ParsedProcess | None] = ContextVar("casemgr_pinned_specs", default=None)


def _registry():
    registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]))
    registry.register(
        datetime, lambda v: {"value": v.isoformat()}, lambda d: datetime.fromisoformat(d["value"])
    )
    registry.register(
        date, lambda v: {"value": v.isoformat()}, lambda d: date.fromisoformat(d["value"])
    )
    return registry


def _storage_registry():
    """The library's registry with each process spec written as a reference by name.

    A whole spec (a state stored before casemgr left specs out) is still read whole."""
    registry = _registry()
    for typename in SPEC_TYPENAMES:
        whole = registry.convert_from_dict[typename]
        registry.convert_to_dict[typename] = _reference_to(typename)
        registry.convert_from_dict[typename] = _restore_with(whole)
    return registry


def _reference_to(typename: str):
    def to_dict(spec, **_kwargs) -> dict:
        return {"typename": typename, "pinned": spec.name}

    return to_dict


def _restore_with(whole):
    def from_dict(dct: dict, **kwargs):
        if "pinned" not in dct:
            return whole(dct, **kwargs)
        return _pinned_spec(dct["pinned"])

    return from_dict


def _pinned_spec(name: str):
    parsed = _pinned.get()
    if parsed is None:
        raise ValueError(f"the stored state names process {name!r} but no version was given")
    if parsed.spec.name == name:
        return parsed.spec
    if name in parsed.subprocess_specs:
        return parsed.subprocess_specs[name]
    raise ValueError(f"the stored state runs process {name!r}, which its version lacks")


@contextmanager
def specs_of(parsed: ParsedProcess | None) -> Iterator[None]:
    """Within: a stored state's process references resolve to ``parsed``'s specs."""
    token = _pinned.set(parsed)
    try:
        yield
    finally:
        _pinned.reset(token)


# The library's own form, whole specs included (tests, and the raw figures of bench/).
serializer = BpmnWorkflowSerializer(_registry())
# What casemgr stores on a case (casemgr.engine.workflows.load and dump).
storage = BpmnWorkflowSerializer(_storage_registry())
