"""scripts/bpmn_layout.py: a diagram bpmn-js can draw, with the semantic part left alone."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from itertools import combinations, pairwise
from pathlib import Path

import pytest
from lxml import etree

from casemgr.engine.specs import parse_process

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bpmn_layout.py"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"


def _load_tool():
    spec = importlib.util.spec_from_file_location("bpmn_layout", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


tool = _load_tool()

# Two lanes; a loop from "check" back to the merge gateway; a non-interrupting timer on "work";
# a parallel split in one lane joined in the other; end events in both lanes.
PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" \
targetNamespace="https://casemgr.dev/test">
  <!-- hand-written -->
  <bpmn:collaboration id="collab">
    <bpmn:participant id="pool" name="Team" processRef="proc" />
  </bpmn:collaboration>
  <bpmn:process id="proc" name="Layout sample" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="lane_clerk" name="clerk">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>merge</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>work</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>timer</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>remind</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>reminded</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>check</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>fork</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>record</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="lane_boss" name="boss">
        <bpmn:flowNodeRef>approve</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>join</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>done</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="Request in" />
    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="merge" />
    <bpmn:exclusiveGateway id="merge" />
    <bpmn:sequenceFlow id="f_work" sourceRef="merge" targetRef="work" />
    <bpmn:userTask id="work" name="Do the work" />
    <bpmn:boundaryEvent id="timer" name="After a day" cancelActivity="false" attachedToRef="work">
      <bpmn:timerEventDefinition id="timer_def"><bpmn:timeDuration>"P1D"</bpmn:timeDuration>\
</bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_timer" sourceRef="timer" targetRef="remind" />
    <bpmn:userTask id="remind" name="Send a reminder" />
    <bpmn:sequenceFlow id="f_reminded" sourceRef="remind" targetRef="reminded" />
    <bpmn:endEvent id="reminded" name="Reminded" />
    <bpmn:sequenceFlow id="f_check" sourceRef="work" targetRef="check" />
    <bpmn:exclusiveGateway id="check" name="Good enough?" default="f_ok" />
    <bpmn:sequenceFlow id="f_again" name="redo" sourceRef="check" targetRef="merge">
      <bpmn:conditionExpression>redo == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_ok" name="yes" sourceRef="check" targetRef="fork" />
    <bpmn:parallelGateway id="fork" />
    <bpmn:sequenceFlow id="f_approve" sourceRef="fork" targetRef="approve" />
    <bpmn:sequenceFlow id="f_record" sourceRef="fork" targetRef="record" />
    <bpmn:userTask id="approve" name="Approve" />
    <bpmn:scriptTask id="record" name="Record"><bpmn:script>recorded = True</bpmn:script>\
</bpmn:scriptTask>
    <bpmn:sequenceFlow id="f_approved" sourceRef="approve" targetRef="join" />
    <bpmn:sequenceFlow id="f_recorded" sourceRef="record" targetRef="join" />
    <bpmn:parallelGateway id="join" />
    <bpmn:sequenceFlow id="f_done" sourceRef="join" targetRef="done" />
    <bpmn:endEvent id="done" name="Finished" />
  </bpmn:process>
</bpmn:definitions>
"""
LANES = {
    "lane_clerk": {"start", "merge", "work", "remind", "reminded", "check", "fork", "record"},
    "lane_boss": {"approve", "join", "done"},
}


def _box(shape) -> tuple[float, float, float, float]:
    b = shape.find(f"{{{DC}}}Bounds")
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(inner, outer) -> bool:
    return (
        outer[0] <= inner[0]
        and inner[0] + inner[2] <= outer[0] + outer[2]
        and outer[1] <= inner[1]
        and inner[1] + inner[3] <= outer[1] + outer[3]
    )


def _runs_through(box, a, b) -> bool:
    """Whether the axis-parallel segment a-b passes through the inside of box."""
    x, y, w, h = box
    (x0, x1), (y0, y1) = sorted((a[0], b[0])), sorted((a[1], b[1]))
    inside_x = x < x0 < x + w if x0 == x1 else x0 < x + w and x < x1
    inside_y = y < y0 < y + h if y0 == y1 else y0 < y + h and y < y1
    return inside_x and inside_y


def _assert_edges_avoid_nodes(root, shapes, edges, containers) -> None:
    hosts = {b.get("id"): b.get("attachedToRef") for b in root.iter(f"{{{BPMN}}}boundaryEvent")}
    for flow in root.iter(f"{{{BPMN}}}sequenceFlow"):
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        own = {source, target, hosts.get(source), *containers}
        for element, found in shapes.items():
            if element not in own:
                for a, b in pairwise(edges[flow.get("id")]):
                    assert not _runs_through(_box(found[0]), a, b), (flow.get("id"), element)


def _diagram(path: Path):
    """Shapes by element id (each a list, to count them), edges' waypoints, and label boxes."""
    root = etree.fromstring(path.read_bytes())
    shapes: dict[str, list] = {}
    for shape in root.iter(f"{{{BPMNDI}}}BPMNShape"):
        shapes.setdefault(shape.get("bpmnElement"), []).append(shape)
    edges = {
        edge.get("bpmnElement"): [
            (float(p.get("x")), float(p.get("y"))) for p in edge.iter(f"{{{DI}}}waypoint")
        ]
        for edge in root.iter(f"{{{BPMNDI}}}BPMNEdge")
    }
    labels = {
        el.get("bpmnElement"): _box(el.find(f"{{{BPMNDI}}}BPMNLabel"))
        for el in root.iter(f"{{{BPMNDI}}}BPMNShape", f"{{{BPMNDI}}}BPMNEdge")
        if el.find(f"{{{BPMNDI}}}BPMNLabel") is not None
    }
    return root, shapes, edges, labels


def _semantic(root, *ids: str) -> list[bytes]:
    return [etree.tostring(root.find(f".//*[@id='{i}']"), method="c14n") for i in ids]


@pytest.fixture
def sample(tmp_path) -> Path:
    path = tmp_path / "sample.bpmn"
    path.write_text(PROCESS)
    assert tool.main([str(path)]) == 0
    return path


def test_every_node_has_one_shape_and_every_flow_an_orthogonal_edge(sample):
    root, shapes, edges, _ = _diagram(sample)
    nodes = [el.get("id") for el in root.iter() if tool.node_kind(el)]
    flows = [el.get("id") for el in root.iter(f"{{{BPMN}}}sequenceFlow")]
    assert len(nodes) == 12 and len(flows) == 12
    assert all(len(shapes.get(n, [])) == 1 for n in nodes)
    for flow in flows:
        points = edges[flow]
        assert len(points) >= 2
        assert all(a[0] == b[0] or a[1] == b[1] for a, b in pairwise(points)), flow


def test_edges_start_and_end_on_their_nodes(sample):
    root, shapes, edges, _ = _diagram(sample)
    for flow in root.iter(f"{{{BPMN}}}sequenceFlow"):
        (x0, y0), (x1, y1) = edges[flow.get("id")][0], edges[flow.get("id")][-1]
        sx, sy, sw, sh = _box(shapes[flow.get("sourceRef")][0])
        tx, ty, tw, th = _box(shapes[flow.get("targetRef")][0])
        assert sx <= x0 <= sx + sw and sy <= y0 <= sy + sh
        assert tx <= x1 <= tx + tw and ty <= y1 <= ty + th


def test_edges_do_not_run_through_other_nodes(sample):
    root, shapes, edges, _ = _diagram(sample)
    _assert_edges_avoid_nodes(root, shapes, edges, {"pool", "lane_clerk", "lane_boss"})


def test_no_two_shapes_overlap(sample):
    _, shapes, _, _ = _diagram(sample)
    boxes = {
        element: _box(found[0])
        for element, found in shapes.items()
        if element not in ("pool", "lane_clerk", "lane_boss", "timer")
    }
    for (a, box_a), (b, box_b) in combinations(boxes.items(), 2):
        assert not _overlap(box_a, box_b), (a, b)


def test_lanes_are_stacked_bands_in_the_pool_holding_their_nodes(sample):
    _, shapes, _, _ = _diagram(sample)
    pool = _box(shapes["pool"][0])
    clerk, boss = _box(shapes["lane_clerk"][0]), _box(shapes["lane_boss"][0])
    assert shapes["pool"][0].get("isHorizontal") == "true"
    assert clerk[1] + clerk[3] == boss[1]  # document order, top to bottom
    assert clerk[0] == boss[0] == pool[0] + 30 and clerk[1] == pool[1]
    assert boss[1] + boss[3] == pool[1] + pool[3]
    for lane, members in LANES.items():
        band = _box(shapes[lane][0])
        for node in members | ({"timer"} if lane == "lane_clerk" else set()):
            assert _inside(_box(shapes[node][0]), band), (node, lane)


def test_loop_goes_back_to_the_merge_without_pushing_columns(sample):
    _, shapes, edges, _ = _diagram(sample)
    x = {n: _box(shapes[n][0])[0] for n in ("start", "merge", "work", "check", "fork", "done")}
    assert x["start"] < x["merge"] < x["work"] < x["check"] < x["fork"] < x["done"]
    loop = edges["f_again"]
    assert loop[-1][0] < loop[0][0]  # it ends left of where it starts
    work = _box(shapes["work"][0])
    assert max(y for _, y in loop) > work[1] + work[3]  # routed below the nodes it passes


def test_boundary_timer_sits_on_the_task_bottom_and_leaves_downwards(sample):
    _, shapes, edges, _ = _diagram(sample)
    tx, ty, tw, th = _box(shapes["work"][0])
    bx, by, bw, bh = _box(shapes["timer"][0])
    assert (bw, bh) == (36, 36)
    assert tx <= bx + bw / 2 <= tx + tw and by < ty + th < by + bh
    (x0, y0), (x1, y1) = edges["f_timer"][:2]
    assert (x0, y0) == (bx + bw / 2, by + bh) and x1 == x0 and y1 > y0
    remind = _box(shapes["remind"][0])
    assert remind[0] > tx and remind[1] > ty  # its target is below and to the right


def test_sizes_markers_and_labels(sample):
    _, shapes, _, labels = _diagram(sample)
    assert _box(shapes["work"][0])[2:] == (100, 80)
    assert _box(shapes["done"][0])[2:] == (36, 36)
    assert _box(shapes["fork"][0])[2:] == (50, 50)
    assert shapes["check"][0].get("isMarkerVisible") == "true"
    assert shapes["fork"][0].get("isMarkerVisible") is None
    assert {"start", "timer", "check", "done", "reminded", "f_again", "f_ok"} <= set(labels)
    assert "merge" not in labels and "work" not in labels  # unnamed; tasks label themselves
    nodes = [_box(found[0]) for e, found in shapes.items() if not e.startswith(("pool", "lane"))]
    for element, label in labels.items():
        assert not any(_overlap(label, node) for node in nodes), element


def test_running_twice_gives_identical_output(sample):
    first = sample.read_bytes()
    assert tool.main([str(sample)]) == 0
    assert sample.read_bytes() == first


def test_only_the_diagram_is_added(sample):
    before, after = PROCESS.encode(), sample.read_bytes()
    end = before.index(b"</bpmn:definitions>")
    assert after.startswith(before[:end]) and after.endswith(before[end:])
    old, new = etree.fromstring(before), etree.fromstring(after)
    assert _semantic(old, "proc", "collab") == _semantic(new, "proc", "collab")
    diagram = new.find(f"{{{BPMNDI}}}BPMNDiagram")
    assert diagram.find(f"{{{BPMNDI}}}BPMNPlane").get("bpmnElement") == "collab"
    assert diagram.nsmap["bpmndi"] == BPMNDI and diagram.nsmap["dc"] == DC
    assert parse_process(after.decode()).process_id == "proc"


def test_an_existing_diagram_is_replaced(sample):
    text = sample.read_text()
    stale = text.replace('bpmnElement="f_done"', 'bpmnElement="gone"')
    sample.write_text(stale)
    assert tool.main(["--check", str(sample)]) == 1
    assert tool.main([str(sample)]) == 0
    assert sample.read_text() == text
    assert sample.read_text().count("<bpmndi:BPMNDiagram") == 1


def test_check_detects_a_missing_diagram(tmp_path, sample):
    bare = tmp_path / "bare.bpmn"
    bare.write_text(PROCESS)
    assert tool.main(["--check", str(bare)]) == 1
    assert bare.read_text() == PROCESS
    assert tool.main(["--check", str(sample)]) == 0
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(bare)], capture_output=True, text=True
    )
    assert run.returncode == 1 and "no diagram" in run.stderr


def test_check_detects_a_node_without_a_shape(sample):
    root = etree.fromstring(sample.read_bytes())
    shape = next(s for s in root.iter(f"{{{BPMNDI}}}BPMNShape") if s.get("bpmnElement") == "join")
    shape.getparent().remove(shape)
    sample.write_bytes(etree.tostring(root))
    assert tool.problems(root) == ["flow nodes without a shape: join"]
    assert tool.main(["--check", str(sample)]) == 1


def test_expanded_subprocess_holds_its_children(tmp_path):
    path = tmp_path / "sub.bpmn"
    shutil.copy(ROOT / "tests" / "bpmn" / "subprocess_loop.bpmn", path)
    assert tool.main([str(path)]) == 0
    _, shapes, _, _ = _diagram(path)
    sub = shapes["sub"][0]
    assert sub.get("isExpanded") == "true"
    for child in ("sub_begin", "inner_work", "sub_end"):
        assert _inside(_box(shapes[child][0]), _box(sub))
    assert not _overlap(_box(sub), _box(shapes["count_up"][0]))
    assert tool.main(["--check", str(path)]) == 0


def test_refuses_a_doctype(tmp_path):
    path = tmp_path / "entity.bpmn"
    text = PROCESS.replace("<bpmn:definitions", '<!DOCTYPE d [<!ENTITY e "x">]>\n<bpmn:definitions')
    path.write_text(text)
    assert tool.main([str(path)]) == 2
    assert path.read_text() == text


def test_credit_application_gets_a_diagram_spiffworkflow_still_reads(tmp_path):
    path = tmp_path / "credit_application.bpmn"
    shutil.copy(ROOT / "workflows" / "bpmn" / "credit_application.bpmn", path)
    assert tool.main([str(path)]) == 0
    assert tool.main(["--check", str(path)]) == 0
    dmn = [p.read_text() for p in sorted((ROOT / "workflows" / "dmn").glob("*.dmn"))]
    parsed = parse_process(path.read_text(), dmn)
    assert parsed.process_id == "credit_application"
    root, shapes, edges, labels = _diagram(path)
    assert root.find(f".//{{{BPMNDI}}}BPMNPlane").get("bpmnElement") == (
        "credit_application_collaboration"
    )
    lane_ids = ("lane_specialist", "lane_manager", "lane_controller")
    tops = [_box(shapes[lane][0])[1] for lane in lane_ids]
    assert tops == sorted(tops)
    containers = {"credit_application_participant", *lane_ids}
    nodes = {e: _box(s[0]) for e, s in shapes.items() if e not in containers}
    for element, label in labels.items():
        assert not any(_overlap(label, box) for box in nodes.values()), element
    _assert_edges_avoid_nodes(root, shapes, edges, containers)
    assert _box(shapes["merge_review"][0])[0] < _box(shapes["gw_decision"][0])[0]
