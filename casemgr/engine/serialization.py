"""SpiffWorkflow's serializer of the Spiff family, taught Decimal, date and datetime."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG as SPIFF_CONFIG

_registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
_registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]))
_registry.register(
    datetime, lambda v: {"value": v.isoformat()}, lambda d: datetime.fromisoformat(d["value"])
)
_registry.register(
    date, lambda v: {"value": v.isoformat()}, lambda d: date.fromisoformat(d["value"])
)

serializer = BpmnWorkflowSerializer(_registry)
