"""History compaction keeps long cases correct and small (ARCHITECTURE.md, long-running cases).

Each diagram is driven twice through serialize/deserialize at every step: once compacted
(what the product does) and once as SpiffWorkflow leaves it. Both must take the same path;
the compacted one must stay small.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from SpiffWorkflow import TaskState

from casemgr.engine.compaction import compact
from casemgr.engine.serialization import serializer
from casemgr.engine.specs import parse_process
from casemgr.engine.workflows import dump, load, new_workflow

BPMN = Path(__file__).parent / "bpmn"


def drive(name: str, data: dict, compacting: bool, max_steps: int = 5000, storing: bool = False):
    """``storing``: saved and loaded as the product stores a case (compacted, the specs named
    rather than written out, and shared by every load); else by the library's serializer."""
    parsed = parse_process((BPMN / name).read_text())
    wf = new_workflow(parsed, data)
    wf.do_engine_steps()
    done: list[str] = []
    sizes: list[int] = []
    for _ in range(max_steps):
        if storing:
            text = dump(wf)
            sizes.append(len(text))
            wf = load(text, parsed=parsed)
        else:
            if compacting:
                compact(wf)
            text = serializer.serialize_json(wf)
            sizes.append(len(text))
            wf = load(text)
        ready = wf.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            break
        task = ready[0]
        if "invoice" in task.data:
            task.data["result"] = f"ok {task.data['invoice']}"
        done.append(task.task_spec.bpmn_id)
        task.run()
        wf.do_engine_steps()
    return wf, done, sizes


CASES = [
    ("parallel_loop.bpmn", {"count": 0, "rounds": 30}),
    ("subprocess_loop.bpmn", {"count": 0, "rounds": 30}),
    ("boundary_loop.bpmn", {"count": 0, "rounds": 30}),
    (
        "multi_instance.bpmn",
        {"count": 0, "rounds": 10, "total_checked": 0, "invoices": ["A-1", "A-2", "A-3"]},
    ),
]


@pytest.mark.parametrize(("name", "data"), CASES, ids=[c[0] for c in CASES])
def test_the_stored_form_takes_the_same_path_as_the_library(ctx, name, data):
    """Stored without specs, loaded with the version's shared specs: the same path, the same
    end data, and a state a fraction of the library's."""
    full, full_path, full_sizes = drive(name, dict(data), compacting=False)
    stored, stored_path, stored_sizes = drive(name, dict(data), compacting=True, storing=True)
    assert stored_path == full_path
    assert stored.is_completed()
    assert stored.last_task.data == full.last_task.data
    _, _, compacted_sizes = drive(name, dict(data), compacting=True)
    # The spec was at least 40% of even these small diagrams' state.
    assert max(stored_sizes) < 0.6 * max(compacted_sizes)


@pytest.mark.parametrize(("name", "data"), CASES, ids=[c[0] for c in CASES])
def test_compaction_takes_the_same_path_as_the_full_history(ctx, name, data):
    full, full_path, full_sizes = drive(name, dict(data), compacting=False)
    small, small_path, small_sizes = drive(name, dict(data), compacting=True)
    assert small_path == full_path
    assert small.is_completed() and full.is_completed()
    assert small.last_task.data["count"] == data["rounds"]
    assert small.last_task.data == full.last_task.data
    # Flat: the last step's state is no bigger than twice an early one.
    assert small_sizes[-2] < 2 * small_sizes[3]
    assert full_sizes[-2] > 2 * full_sizes[3]


def test_multi_instance_collects_every_result_each_round(ctx):
    wf, path, _ = drive(
        "multi_instance.bpmn",
        {"count": 0, "rounds": 4, "total_checked": 0, "invoices": ["A-1", "A-2"]},
        compacting=True,
    )
    assert path.count("check") == 8
    assert wf.last_task.data["total_checked"] == 8
    assert wf.last_task.data["last_checked"] == ["ok A-1", "ok A-2"]


def test_a_loop_past_the_iterators_depth_limit_reaches_its_end_event(ctx):
    """Uncompacted, SpiffWorkflow reports 'completed' near round 333 without ending."""
    rounds = 400
    small, path, sizes = drive("loop.bpmn", {"count": 0, "rounds": rounds}, compacting=True)
    assert small.is_completed()
    assert small.last_task.data["outcome"] == "looped"
    assert small.last_task.data["count"] == rounds
    assert path.count("work") == rounds
    assert max(sizes) < 2 * sizes[3]

    full, full_path, _ = drive("loop.bpmn", {"count": 0, "rounds": rounds}, compacting=False)
    assert full.is_completed()
    assert "outcome" not in full.last_task.data  # the library's silent stop, which we avoid
    assert len(full_path) < rounds
