#!/usr/bin/env python3
"""Give hand-written BPMN files a diagram (BPMNDI) so that bpmn-js can draw them.

    python scripts/bpmn_layout.py FILE [FILE...]          rewrite each file in place
    python scripts/bpmn_layout.py --check FILE [FILE...]  exit 1 if a diagram is missing or stale

Only the bpmndi:BPMNDiagram elements are replaced (or appended); every other byte of the file
is kept. The layout is a grid: a pool per participant and a band per lane, a column per step of
the longest path from the start events (loops ignored), rows stacked within a lane where nodes
share a column, expanded sub-processes laid out recursively, orthogonal sequence flows.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
PREFERRED_PREFIXES = {BPMNDI: "bpmndi", DC: "dc", DI: "di"}

TASKS = {
    "task",
    "userTask",
    "manualTask",
    "scriptTask",
    "serviceTask",
    "sendTask",
    "receiveTask",
    "businessRuleTask",
    "callActivity",
}
SUBPROCESSES = {"subProcess", "transaction", "adHocSubProcess"}
EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent"}
GATEWAYS = {
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "complexGateway",
}
SIZES = {"task": (100, 80), "event": (36, 36), "boundary": (36, 36), "gateway": (50, 50)}

ORIGIN = (160, 80)  # where bpmn-js puts a new diagram's first pool
POOL_LABEL = 30  # bpmn-js draws pool and lane names in a 30 px strip on the left
LANE_LABEL = 30
POOL_GAP = 40
MARGIN = 10  # between a band's left/right border and its first/last column
CELL = (100, 80)  # the smallest node area of a column / row
COLUMN_GAP = 50  # horizontal room between the widest nodes of neighbouring columns
ROW_GAP = 50  # vertical room between stacked rows (boundary events and their labels live here)
CHANNEL_GAP = 12  # distance between the horizontal runs of loops below a lane
TRACK_OFFSETS = (0, 10, -10, 20, -20)  # x offsets of parallel vertical runs in a column gap
BOUNDARY_SPACING = 44  # between the centres of boundary events on one host
SUB_PAD = (20, 40, 20, 20)  # expanded sub-process padding: left, top (its name), right, bottom
LABEL_GAP = 4
NEAR = 30  # a label this close to another flow's line might be read as naming it
LABEL_MAX_WIDTH = 90  # bpmn-js wraps external labels at 90 px
LINE_HEIGHT = 13.2  # 11 px Arial at bpmn-js's 1.2 line height

Point = tuple[int, int]
Item = str | tuple[str, int]  # a node id, or (flow id, column) for a long flow crossing a column


class LayoutError(Exception):
    """A file this tool will not rewrite, with the reason."""


# --------------------------------------------------------------------------- semantic model


@dataclass
class Flow:
    id: str
    source: str
    target: str
    name: str


@dataclass
class Node:
    id: str
    kind: str  # task, subprocess, event, boundary or gateway
    tag: str
    name: str
    element: etree._Element
    host: str | None = None
    outgoing: list[Flow] = field(default_factory=list)
    incoming: list[Flow] = field(default_factory=list)
    boundaries: list[str] = field(default_factory=list)


@dataclass
class Graph:
    """The flow nodes and sequence flows directly inside one process or sub-process."""

    nodes: dict[str, Node]
    flows: list[Flow]


def local(element: etree._Element) -> str:
    """The local name of a BPMN element, or "" for anything else (comments, extensions)."""
    if not isinstance(element.tag, str):
        return ""
    qname = etree.QName(element)
    return qname.localname if qname.namespace == BPMN else ""


def node_kind(element: etree._Element) -> str | None:
    """Which drawing rules apply to an element; None for what is not a flow node."""
    tag = local(element)
    if tag in TASKS:
        return "task"
    if tag in SUBPROCESSES:
        return "subprocess"
    if tag in GATEWAYS:
        return "gateway"
    if tag == "boundaryEvent":
        return "boundary"
    return "event" if tag in EVENTS else None


def read_graph(container: etree._Element) -> Graph:
    """Flow nodes in document order and the flows between them, linked both ways."""
    nodes: dict[str, Node] = {}
    for child in container:
        kind = node_kind(child)
        if kind and child.get("id"):
            host = child.get("attachedToRef") if kind == "boundary" else None
            name = " ".join((child.get("name") or "").split())
            nodes[child.get("id")] = Node(child.get("id"), kind, local(child), name, child, host)
    flows = [
        Flow(child.get("id"), child.get("sourceRef"), child.get("targetRef"), child.get("name", ""))
        for child in container
        if local(child) == "sequenceFlow"
        and child.get("sourceRef") in nodes
        and child.get("targetRef") in nodes
    ]
    for flow in flows:
        nodes[flow.source].outgoing.append(flow)
        nodes[flow.target].incoming.append(flow)
    for node in nodes.values():
        if node.kind == "boundary" and node.host in nodes:
            nodes[node.host].boundaries.append(node.id)
        elif node.kind == "boundary":
            node.kind = "event"  # attached to nothing we draw: place it like any event
    return Graph(nodes, flows)


def read_lanes(process: etree._Element) -> list[tuple[str, set[str]]]:
    """Top-level lanes in document order with the nodes they (or their child lanes) hold."""
    lanes = []
    for lane_set in process:
        if local(lane_set) != "laneSet":
            continue
        for lane in lane_set:
            if local(lane) == "lane":
                refs = {(ref.text or "").strip() for ref in lane.iter(f"{{{BPMN}}}flowNodeRef")}
                lanes.append((lane.get("id"), refs))
    return lanes


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def cy(self) -> int:
        return self.y + self.h // 2

    def moved(self, dx: int, dy: int) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def overlaps(self, other: Box) -> bool:
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )

    def within(self, other: Box) -> bool:
        return (
            other.x <= self.x
            and self.right <= other.right
            and other.y <= self.y
            and self.bottom <= other.bottom
        )

    def crosses(self, a: Point, b: Point) -> bool:
        """Whether an axis-parallel segment runs through the inside of the box."""
        return Box(
            min(a[0], b[0]), min(a[1], b[1]), abs(a[0] - b[0]) or 1, abs(a[1] - b[1]) or 1
        ).overlaps(self)


@dataclass
class ShapeDi:
    element: str
    box: Box
    attrs: dict[str, str] = field(default_factory=dict)
    label: Box | None = None


@dataclass
class EdgeDi:
    element: str
    points: list[Point]
    label: Box | None = None


@dataclass
class Drawing:
    """Shapes and edges of one container, relative to its top-left corner."""

    width: int
    height: int
    shapes: list[ShapeDi]
    edges: list[EdgeDi]
    bands: list[tuple[str | None, int, int]]  # lane id (None: nodes in no lane), top, height

    def moved(self, dx: int, dy: int) -> tuple[list[ShapeDi], list[EdgeDi]]:
        shapes = [
            ShapeDi(s.element, s.box.moved(dx, dy), s.attrs, s.label and s.label.moved(dx, dy))
            for s in self.shapes
        ]
        edges = [
            EdgeDi(
                e.element,
                [(x + dx, y + dy) for x, y in e.points],
                e.label and e.label.moved(dx, dy),
            )
            for e in self.edges
        ]
        return shapes, edges


def even(value: float) -> int:
    """Round up to an even number so that halves (centres) stay whole pixels."""
    return int(math.ceil(value / 2) * 2)


def text_width(text: str) -> float:
    """Approximate width of 11 px Arial, enough to keep bpmn-js from re-wrapping a label."""
    narrow, wide = set("fijlrtI.,;:'!|()[] -"), set("mwMW@%")
    total = 0.0
    for char in text:
        if char in narrow:
            total += 3.2
        elif char in wide:
            total += 9.2
        else:
            total += 7.4 if char.isupper() else 6.2
    return total


def wrap(text: str) -> list[str]:
    """Break a label into lines the way bpmn-js does: whole words, 90 px at most."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}") <= LABEL_MAX_WIDTH:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def label_size(text: str) -> tuple[int, int]:
    """The box bpmn-js will fill with the wrapped text."""
    lines = wrap(text)
    return even(max(text_width(line) for line in lines) + 6), even(len(lines) * LINE_HEIGHT)


def simplify(points: Sequence[Point]) -> list[Point]:
    """Drop repeated points and middle points of straight runs."""
    result: list[Point] = []
    for point in points:
        if result and point == result[-1]:
            continue
        if len(result) >= 2:
            (ax, ay), (bx, by) = result[-2], result[-1]
            if (ax == bx == point[0]) or (ay == by == point[1]):
                result[-1] = point
                continue
        result.append(point)
    return result


def segments(points: Sequence[Point]) -> Iterator[tuple[Point, Point]]:
    return zip(points, points[1:], strict=False)


def uncovered(span: tuple[int, int], covers: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of a span (lo, hi) that no cover overlaps."""
    parts = [span]
    for lo, hi in covers:
        parts = [
            piece
            for a, b in parts
            for piece in ((a, min(b, lo)), (max(a, hi), b))
            if piece[1] - piece[0] > 0
        ]
    return parts


# --------------------------------------------------------------------------- layout


@dataclass
class Route:
    flow: Flow
    points: list[list[int]]
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first point index, column)

    def final(self) -> list[Point]:
        return simplify([(x, y) for x, y in self.points])


class Layout:
    """Grid layout of one container: columns by longest path, rows by lane, then stacking."""

    def __init__(self, graph: Graph, lanes: Sequence[tuple[str, set[str]]] = ()) -> None:
        self.g = graph
        self.nodes = graph.nodes
        self.flows = {flow.id: flow for flow in graph.flows}
        self.position = {n: i for i, n in enumerate(self.nodes)}  # document order
        self.lane_ids, self.band = self._bands(lanes)
        self.order, self.back = self._depth_first()
        self.col = self._columns()
        self.ncols = max(self.col.values(), default=-1) + 1
        self.children = {
            n: Layout(read_graph(node.element)).drawing()
            for n, node in self.nodes.items()
            if node.kind == "subprocess"
        }
        self.size = {n: self._node_size(n) for n in self.nodes}
        self.row: dict[Item, int] = {}
        self.grid: dict[tuple[int, int, int], Item] = {}  # (band, column, row) -> item
        self._assign_rows()
        self.channel = self._channels()
        self._place()
        self.routes = [self._route(flow) for flow in graph.flows]
        self._assign_tracks()
        self.paths = {route.flow.id: route.final() for route in self.routes}
        self.labels: dict[str, Box] = {}
        self._place_labels()

    # ---- structure

    def _bands(self, lanes: Sequence[tuple[str, set[str]]]) -> tuple[list[str | None], dict]:
        """Band index of every node: its lane's, a last band for the rest, hosts for boundaries."""
        ids: list[str | None] = []
        band: dict[str, int] = {}
        for lane_id, refs in lanes:
            ids.append(lane_id)
            for ref in refs:
                if ref in self.nodes and ref not in band:
                    band[ref] = len(ids) - 1
        loose = [n for n, node in self.nodes.items() if n not in band and node.kind != "boundary"]
        if loose or not ids:
            ids.append(None)
            band.update({n: len(ids) - 1 for n in loose})
        for n, node in self.nodes.items():
            if node.kind == "boundary":
                band[n] = band[node.host]
        return ids, band

    def _successors(self, n: str) -> list[tuple[str, str, int]]:
        """(key, target, columns to advance): flows, then the node's boundary events."""
        node = self.nodes[n]
        attached = [("@" + b, b, 0) for b in node.boundaries]
        return [(f.id, f.target, 1) for f in node.outgoing] + attached

    def _depth_first(self) -> tuple[list[str], set[str]]:
        """Topological order and the back edges (to a node on the DFS stack), i.e. the loops."""
        targets = {t for n in self.nodes for _, t, _ in self._successors(n)}
        sources = [n for n in self.nodes if n not in targets]
        roots = sorted(sources, key=lambda n: self.nodes[n].tag != "startEvent") + list(self.nodes)
        state: dict[str, int] = {}  # 1: on the stack, 2: done
        post: list[str] = []
        back: set[str] = set()
        for root in roots:
            if root in state:
                continue
            state[root] = 1
            stack = [(root, iter(self._successors(root)))]
            while stack:
                n, pending = stack[-1]
                for key, target, _ in pending:
                    if state.get(target) == 1:
                        back.add(key)
                    elif target not in state:
                        state[target] = 1
                        stack.append((target, iter(self._successors(target))))
                        break
                else:
                    state[n] = 2
                    post.append(n)
                    stack.pop()
        return post[::-1], back

    def _columns(self) -> dict[str, int]:
        """Longest path from the roots over forward edges; boundary events share their host's."""
        col = dict.fromkeys(self.order, 0)
        for n in self.order:
            for key, target, step in self._successors(n):
                if key not in self.back:
                    col[target] = max(col[target], col[n] + step)
        return col

    def _node_size(self, n: str) -> tuple[int, int]:
        """Sub-processes are as big as their laid-out contents plus room for their name."""
        node = self.nodes[n]
        if node.kind != "subprocess":
            return SIZES[node.kind]
        inner = self.children[n]
        left, top, right, bottom = SUB_PAD
        return even(max(inner.width + left + right, CELL[0])), even(
            max(inner.height + top + bottom, CELL[1])
        )

    # ---- rows

    def _item_band(self, item: Item) -> int:
        """A long flow's pieces stay in its source's lane until the last bend."""
        return self.band[item if isinstance(item, str) else self.flows[item[0]].source]

    def _forward(self, flow: Flow) -> bool:
        return flow.id not in self.back

    def _predecessors(self, item: Item) -> list[tuple[Item, int]]:
        """Items one column to the left feeding this one, with the flow's rank at its source."""
        flows = self.nodes[item].incoming if isinstance(item, str) else [self.flows[item[0]]]
        here = self.col[item] if isinstance(item, str) else item[1]
        found: list[tuple[Item, int]] = []
        for flow in filter(self._forward, flows):
            rank = self.nodes[flow.source].outgoing.index(flow)
            before = flow.source if self.col[flow.source] == here - 1 else (flow.id, here - 1)
            found.append((before, rank))
        return found

    def _row_key(self, item: Item) -> tuple[int, int, int, int, int]:
        """Stack under the predecessor's row; the first outgoing flow keeps its source's row.

        Items fed only from lanes further down come last and take the lowest free row, so
        their flows climb as little as possible.
        """
        preds = self._predecessors(item)
        band = self._item_band(item)
        same = [self.row[p] for p, _ in preds if self._item_band(p) == band]
        from_below = bool(preds) and not same and max(self._item_band(p) for p, _ in preds) > band
        rank = min((r for _, r in preds), default=0)
        target = item if isinstance(item, str) else self.flows[item[0]].target
        return (
            int(from_below),
            min(same, default=0),
            rank,
            self.position[target],
            int(not isinstance(item, str)),
        )

    def _column_items(self, c: int) -> list[Item]:
        """The column's nodes and the long flows passing through it, which need a free row too."""
        items: list[Item] = [
            n for n, node in self.nodes.items() if self.col[n] == c and node.kind != "boundary"
        ]
        for flow in filter(self._forward, self.g.flows):
            if self.col[flow.source] < c < self.col[flow.target]:
                items.append((flow.id, c))
        return items

    def _put(self, item: Item, c: int, row: int) -> None:
        """Take the first free row at or below the wanted one."""
        band = self._item_band(item)
        while (band, c, row) in self.grid:
            row += 1
        self.grid[(band, c, row)] = item
        self.row[item] = row

    def _lowest_free_row(self, item: Item, c: int) -> int:
        """The lowest row the lane already has that is free in this column, else a new one."""
        band = self._item_band(item)
        rows = self._rows_in(band)
        return next((r for r in reversed(range(rows)) if (band, c, r) not in self.grid), rows)

    def _assign_rows(self) -> None:
        """Fill columns left to right; boundary events reserve the rows under their host."""
        for c in range(self.ncols):
            keyed = sorted((self._row_key(item), item) for item in self._column_items(c))
            for (from_below, preferred, *_), item in keyed:
                if item in self.row:  # a later piece of a long flow, placed with its first
                    continue
                if not isinstance(item, str):
                    self._put_long_flow(item, preferred)
                    continue
                self._put(item, c, self._lowest_free_row(item, c) if from_below else preferred)
                for boundary in self.nodes[item].boundaries:
                    self._put(boundary, c, self.row[item] + 1)

    def _put_long_flow(self, first: tuple[str, int], row: int) -> None:
        """A long flow keeps one row across all the columns it crosses, so that it bends only
        at its ends and never beside a node it merely passes."""
        band = self._item_band(first)
        columns = range(first[1], self.col[self.flows[first[0]].target])
        while any((band, c, row) in self.grid for c in columns):
            row += 1
        for c in columns:
            self.grid[(band, c, row)] = (first[0], c)
            self.row[(first[0], c)] = row

    def _channels(self) -> dict[str, tuple[int, int]]:
        """Per loop target, where its loops run back: (row, index) for the index-th run just
        under that row of the target's lane; the row is the lowest one the loop passes over,
        so short loops stay close and long ones go round everything in their way."""
        spans: dict[str, tuple[int, int]] = {}
        for flow in self.g.flows:
            if flow.id in self.back:
                low, high = spans.get(flow.target, (self.col[flow.target],) * 2)
                spans[flow.target] = (low, max(high, self.col[flow.source]))
        channel: dict[str, tuple[int, int]] = {}
        for target in sorted(spans, key=lambda t: (spans[t][1] - spans[t][0], self.position[t])):
            band, (low, high) = self.band[target], spans[target]
            last = self._rows_in(band) - 1
            row = max(r for b, c, r in self.grid if b == band and low <= c <= high)
            taken = sum(1 for t in channel if self.band[t] == band and channel[t][0] == row)
            if row < last and taken >= 2:  # only the bottom strip grows with its loops
                row = last
                taken = sum(1 for t in channel if self.band[t] == band and channel[t][0] == row)
            channel[target] = (row, taken)
        return channel

    def _rows_in(self, band: int) -> int:
        return 1 + max((r for b, _, r in self.grid if b == band), default=0)

    # ---- coordinates

    def _place(self) -> None:
        """Column x, row y and node boxes, all relative to the container's top-left corner."""
        widths = [CELL[0]] * self.ncols
        room = [0] * self.ncols  # right of the nodes, for the names of boundary events
        for n, node in self.nodes.items():
            c = self.col[n]
            if node.kind != "boundary":
                widths[c] = max(widths[c], self.size[n][0])
            elif node.name:
                room[c] = max(room[c], label_size(node.name)[0])
        self.x = [MARGIN]
        self.mid: list[int] = []
        for width, extra in zip(widths, room, strict=True):
            self.mid.append(self.x[-1] + (width + COLUMN_GAP) // 2)
            self.x.append(self.x[-1] + width + COLUMN_GAP + extra)
        self.width = self.x[-1] + MARGIN
        self._place_rows()
        self.box: dict[str, Box] = {}
        for n, node in self.nodes.items():
            if node.kind != "boundary":
                top, height = self.cell[(self.band[n], self.row[n])]
                w, h = self.size[n]
                self.box[n] = Box(self.mid[self.col[n]] - w // 2, top + (height - h) // 2, w, h)
        for n in self.nodes:
            self._place_boundaries(n)

    def _place_rows(self) -> None:
        """Rows fit their tallest node; a lane is its rows plus the channels of its loops."""
        heights: dict[tuple[int, int], int] = {}
        for (band, _, row), item in self.grid.items():
            h = self.size[item][1] if isinstance(item, str) else 0
            heights[(band, row)] = max(heights.get((band, row), CELL[1]), h)
        self.cell: dict[tuple[int, int], tuple[int, int]] = {}
        self.bands: list[tuple[str | None, int, int]] = []
        y = 0
        for band, lane in enumerate(self.lane_ids):
            top = y
            rows = self._rows_in(band)
            for row in range(rows):
                height = heights.get((band, row), CELL[1]) + ROW_GAP
                self.cell[(band, row)] = (y, height)
                y += height
            loops = sum(
                1 for t, (r, _) in self.channel.items() if (self.band[t], r + 1) == (band, rows)
            )
            y += (loops + 1) * CHANNEL_GAP if loops else 0
            self.bands.append((lane, top, y - top))
        self.height = y

    def _place_boundaries(self, host: str) -> None:
        """Spread boundary events along the host's bottom; the one going lowest leftmost."""
        attached = sorted(self.nodes[host].boundaries, key=lambda b: -self.row[b])
        if not attached:
            return
        w, h = SIZES["boundary"]
        first = self.box[host].cx - BOUNDARY_SPACING * (len(attached) - 1) // 2
        for i, b in enumerate(attached):
            cx = first + i * BOUNDARY_SPACING
            self.box[b] = Box(cx - w // 2, self.box[host].bottom - h // 2, w, h)

    def _cell_y(self, item: Item) -> int:
        top, height = self.cell[(self._item_band(item), self.row[item])]
        return top + height // 2

    # ---- sequence flows

    def _route(self, flow: Flow) -> Route:
        """Right side to left side, bending only in column gaps; boundary events leave downwards."""
        route = Route(flow, [])
        source, target = self.box[flow.source], self.box[flow.target]
        drop = flow.id in self.back and self._free_below(flow.source, flow.target)
        if self.nodes[flow.source].kind == "boundary":
            route.points += [[source.cx, source.bottom], [source.cx, self._cell_y(flow.source)]]
        elif drop:
            route.points.append([source.cx, source.bottom])
        else:
            route.points.append([source.right, source.cy])
        if flow.id in self.back:
            self._route_back(route, drop)
            return route
        for c in range(self.col[flow.source] + 1, self.col[flow.target]):
            self._bend(route, c, self._cell_y((flow.id, c)))
        self._bend(route, self.col[flow.target], target.cy)
        route.points.append([target.x, target.cy])
        return route

    def _bend(self, route: Route, c: int, y: int) -> None:
        """Change rows in the gap left of column c, where no node can be in the way."""
        current = route.points[-1][1]
        if current != y:
            route.gaps.append((len(route.points), c))
            route.points += [[self.x[c], current], [self.x[c], y]]

    def _route_back(self, route: Route, drop: bool) -> None:
        """A loop: down to its channel, left along it, and up into the target."""
        flow = route.flow
        target = self.box[flow.target]
        row, index = self.channel[flow.target]
        top, height = self.cell[(self.band[flow.target], row)]
        channel_y = top + height + CHANNEL_GAP * index + CHANNEL_GAP // 2
        if drop:
            route.points.append([route.points[-1][0], channel_y])
        else:
            self._bend(route, self.col[flow.source] + 1, channel_y)
        if self._free_below(flow.target, flow.target):
            route.points += [[target.cx, channel_y], [target.cx, target.bottom]]
        else:
            self._bend(route, self.col[flow.target], target.cy)
            route.points.append([target.x, target.cy])

    def _free_below(self, n: str, loop_target: str) -> bool:
        """A gateway or event may leave/enter a loop from below when nothing is under it."""
        node = self.nodes[n]
        band, c = self.band[n], self.col[n]
        if node.kind not in ("gateway", "event") or band != self.band[loop_target]:
            return False
        return not any(b == band and col == c and r > self.row[n] for b, col, r in self.grid)

    def _assign_tracks(self) -> None:
        """Give vertical runs in one gap x offsets: a fan shares one, others avoid crossings."""
        by_gap: dict[int, list[tuple[Route, int]]] = {}
        for route in self.routes:
            for index, c in route.gaps:
                by_gap.setdefault(c, []).append((route, index))
        for runs in by_gap.values():
            fan = Counter(route.flow.source for route, _ in runs)
            placed: list[tuple[Run, int]] = []
            for run in sorted(
                (Run.of(*r) for r in runs), key=lambda r: (-fan[r.flow.source], r.low, r.high)
            ):
                offset = min(
                    TRACK_OFFSETS,
                    key=lambda dx: sum(run.conflicts(dx, other, at) for other, at in placed),
                )
                placed.append((run, offset))
                run.route.points[run.index][0] += offset
                run.route.points[run.index + 1][0] += offset

    # ---- labels

    def _place_labels(self) -> None:
        """Put each name where it covers the fewest nodes, labels and lines."""
        for n, node in self.nodes.items():
            if node.name and node.kind in ("event", "boundary", "gateway"):
                w, h = label_size(node.name)
                attached = {f.id for f in self.g.flows if n in (f.source, f.target)}
                self.labels[n] = self._best(self._node_spots(n, w, h), None, attached)
        for flow in self.g.flows:
            if flow.name.strip():
                w, h = label_size(flow.name)
                ends = {flow.source, flow.target}
                siblings = {f.id for f in self.g.flows if ends & {f.source, f.target}}
                self.labels[flow.id] = self._best(self._flow_spots(flow, w, h), flow.id, siblings)

    def _node_spots(self, n: str, w: int, h: int) -> list[Box]:
        """Label places to try: events below (as bpmn-js), gateways above (their flows leave right
        and loops may enter below), boundary events beside their outgoing flow."""
        box, kind = self.box[n], self.nodes[n].kind
        below = Box(box.cx - w // 2, box.bottom + LABEL_GAP, w, h)
        above = Box(box.cx - w // 2, box.y - LABEL_GAP - h, w, h)
        right = Box(box.right + LABEL_GAP, box.bottom - LABEL_GAP, w, h)
        left = Box(box.x - LABEL_GAP - w, box.bottom - LABEL_GAP, w, h)
        if kind == "gateway":
            return [above, below, right, left]
        if kind == "event":
            return [below, above, right, left]
        spots = []
        for flow in self.nodes[n].outgoing[:1]:
            x, y = self.paths[flow.id][1]
            spots.append(Box(x + LABEL_GAP, y - LABEL_GAP - h, w, h))
        return [*spots, left, right, below]

    def _flow_spots(self, flow: Flow, w: int, h: int) -> list[Box]:
        """Beside the parts of the flow's line no sibling flow shares, then around its bends."""
        spots: list[Box] = []
        for a, b in segments(self.paths[flow.id]):
            horizontal = a[1] == b[1]
            size = w if horizontal else h
            for p, q in self._own_parts(flow, a, b):
                ahead = q > p
                near_start = p + LABEL_GAP if ahead else p - LABEL_GAP - size
                near_end = q - LABEL_GAP - size if ahead else q + LABEL_GAP
                middle = (p + q - size) // 2
                order = (
                    (near_start, middle, near_end) if horizontal else (middle, near_start, near_end)
                )
                for along in order:
                    if horizontal:
                        spots += [
                            Box(along, a[1] - LABEL_GAP - h, w, h),
                            Box(along, a[1] + LABEL_GAP, w, h),
                        ]
                    else:
                        spots += [
                            Box(a[0] + LABEL_GAP, along, w, h),
                            Box(a[0] - LABEL_GAP - w, along, w, h),
                        ]
        for x, y in reversed(self.paths[flow.id][1:-1]):  # around its bends, last first
            for left, top in ((x + LABEL_GAP, y + LABEL_GAP), (x - LABEL_GAP - w, y + LABEL_GAP)):
                spots += [Box(left, top, w, h), Box(left, top - h - 2 * LABEL_GAP, w, h)]
        first, second = self.paths[flow.id][:2]
        spots.append(Box((first[0] + second[0] - w) // 2, (first[1] + second[1]) // 2 - h, w, h))
        return spots

    def _own_parts(self, flow: Flow, a: Point, b: Point) -> list[tuple[int, int]]:
        """Oriented (from, to) pieces of segment a-b that sibling flows do not run along."""
        axis = 0 if a[1] == b[1] else 1
        fixed = 1 - axis
        covers = []
        for other in self.g.flows:
            if other.id == flow.id or {other.source, other.target}.isdisjoint(
                {flow.source, flow.target}
            ):
                continue
            for c, d in segments(self.paths[other.id]):
                if c[fixed] == d[fixed] == a[fixed] and c[axis] != d[axis]:
                    covers.append(tuple(sorted((c[axis], d[axis]))))
        parts = uncovered(tuple(sorted((a[axis], b[axis]))), covers)
        ordered = [(lo, hi) if b[axis] > a[axis] else (hi, lo) for lo, hi in parts]
        return [part for part in ordered if abs(part[1] - part[0]) >= 8]

    def _best(self, spots: list[Box], own: str | None, related: set[str]) -> Box:
        return min(spots, key=lambda spot: self._cost(spot, own, related))

    def _cost(self, spot: Box, own: str | None, related: set[str]) -> int:
        """Covering a node is worst, then a label, then crossing a line; a line of an
        unrelated flow close by makes a name ambiguous, so that costs a little too."""
        nodes = sum(spot.overlaps(box) for box in self.box.values())
        labels = sum(spot.overlaps(box) for box in self.labels.values())
        around = Box(spot.x - NEAR, spot.y - NEAR, spot.w + 2 * NEAR, spot.h + 2 * NEAR)
        lines = 0
        for flow_id, path in self.paths.items():
            for a, b in segments(path):
                lines += spot.crosses(a, b) * (5 if flow_id == own else 10)
                lines += 3 * (flow_id not in related and around.crosses(a, b))
        borders = sum(spot.y < top < spot.bottom for _, top, _ in self.bands[1:])
        outside = not spot.within(Box(0, 0, self.width, self.height))
        return 100 * nodes + 50 * labels + lines + 10 * borders + 20 * outside

    # ---- result

    def drawing(self) -> Drawing:
        """The shapes and edges, sub-process contents moved into their shapes."""
        shapes: list[ShapeDi] = []
        edges: list[EdgeDi] = []
        for n, node in self.nodes.items():
            attrs = {}
            if node.tag == "exclusiveGateway":
                attrs["isMarkerVisible"] = "true"
            if node.kind == "subprocess":
                attrs["isExpanded"] = "true"
            shapes.append(ShapeDi(n, self.box[n], attrs, self.labels.get(n)))
            if node.kind == "subprocess":
                inner_shapes, inner_edges = self.children[n].moved(
                    self.box[n].x + SUB_PAD[0], self.box[n].y + SUB_PAD[1]
                )
                shapes += inner_shapes
                edges += inner_edges
        for flow in self.g.flows:
            edges.append(EdgeDi(flow.id, self.paths[flow.id], self.labels.get(flow.id)))
        return Drawing(self.width, self.height, shapes, edges, self.bands)


@dataclass(frozen=True)
class Run:
    """A vertical piece of a route in a column gap, and where its horizontals go on either end."""

    route: Route
    index: int  # of its first point in route.points
    low: int
    high: int
    enter: tuple[int, int]  # (y, side): the horizontal arriving comes from the left (-1) or right
    leave: tuple[int, int]

    @property
    def flow(self) -> Flow:
        return self.route.flow

    @classmethod
    def of(cls, route: Route, i: int) -> Run:
        (x, y1), (_, y2) = route.points[i], route.points[i + 1]
        before, after = route.points[i - 1], route.points[min(i + 2, len(route.points) - 1)]
        side_in = (before[0] > x) - (before[0] < x)
        side_out = (after[0] > x) - (after[0] < x)
        return cls(route, i, min(y1, y2), max(y1, y2), (y1, side_in), (y2, side_out))

    def conflicts(self, x: int, other: Run, other_x: int) -> int:
        """Crossings (and touches) with another run if this one is at x and the other at other_x."""
        if x == other_x:
            shared = {self.flow.source, self.flow.target} & {other.flow.source, other.flow.target}
            apart = self.high + 8 < other.low or other.high + 8 < self.low
            return 0 if shared or apart else 1000
        count = 0
        for run, at, crossed, crossed_at in ((self, x, other, other_x), (other, other_x, self, x)):
            side = 1 if crossed_at > at else -1
            for y, towards in (run.enter, run.leave):
                count += towards == side and crossed.low <= y <= crossed.high
        return count


# --------------------------------------------------------------------------- whole documents


@dataclass
class Diagram:
    plane: str  # the collaboration or process the plane shows
    shapes: list[ShapeDi]
    edges: list[EdgeDi]


def build_diagrams(root: etree._Element) -> list[Diagram]:
    """One diagram per collaboration (its pools) and one per process that is in no pool."""
    processes = {p.get("id"): p for p in root if local(p) == "process"}
    diagrams = []
    pooled: set[str] = set()
    for collaboration in (c for c in root if local(c) == "collaboration"):
        diagrams.append(collaboration_diagram(collaboration, processes))
        pooled.update(p.get("processRef") for p in collaboration if local(p) == "participant")
    for process_id, process in processes.items():
        if process_id not in pooled:
            shapes, edges = Layout(read_graph(process)).drawing().moved(*ORIGIN)
            diagrams.append(Diagram(process_id, shapes, edges))
    return diagrams


def pool_content(participant: etree._Element, processes: dict) -> tuple[Drawing, int]:
    """A participant's process laid out in lanes, and the width of its label strips."""
    process = processes.get(participant.get("processRef"))
    if process is None:  # a black-box pool
        return Drawing(4 * (CELL[0] + COLUMN_GAP), CELL[1] + ROW_GAP, [], [], []), POOL_LABEL
    lanes = read_lanes(process)
    inset = POOL_LABEL + (LANE_LABEL if lanes else 0)
    return Layout(read_graph(process), lanes).drawing(), inset


def collaboration_diagram(collaboration: etree._Element, processes: dict) -> Diagram:
    """Pools stacked top to bottom, all as wide as the widest, lanes as bands inside."""
    participants = [p for p in collaboration if local(p) == "participant"]
    contents = [pool_content(p, processes) for p in participants]
    width = max((inset + drawing.width for drawing, inset in contents), default=0)
    shapes: list[ShapeDi] = []
    edges: list[EdgeDi] = []
    y = ORIGIN[1]
    for participant, (drawing, inset) in zip(participants, contents, strict=True):
        pool = Box(ORIGIN[0], y, width, drawing.height)
        shapes.append(ShapeDi(participant.get("id"), pool, {"isHorizontal": "true"}))
        for lane, top, height in drawing.bands:
            if lane:
                box = Box(pool.x + POOL_LABEL, y + top, width - POOL_LABEL, height)
                shapes.append(ShapeDi(lane, box, {"isHorizontal": "true"}))
        inner_shapes, inner_edges = drawing.moved(pool.x + inset, y)
        shapes += inner_shapes
        edges += inner_edges
        y = pool.bottom + POOL_GAP
    edges += message_edges(collaboration, {shape.element: shape.box for shape in shapes})
    return Diagram(collaboration.get("id"), shapes, edges)


def message_edges(collaboration: etree._Element, boxes: dict[str, Box]) -> list[EdgeDi]:
    """Message flows as a vertical line with one horizontal jog, bottom to top."""
    edges = []
    for flow in collaboration:
        source = boxes.get(flow.get("sourceRef"))
        target = boxes.get(flow.get("targetRef"))
        if local(flow) != "messageFlow" or source is None or target is None:
            continue
        down = source.cy <= target.cy
        start = (source.cx, source.bottom if down else source.y)
        end = (target.cx, target.y if down else target.bottom)
        middle = (start[1] + end[1]) // 2
        points = simplify([start, (start[0], middle), (end[0], middle), end])
        edges.append(EdgeDi(flow.get("id"), points))
    return edges


# --------------------------------------------------------------------------- XML output


def attr(value: str) -> str:
    return '"' + value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;") + '"'


def bounds(dc: str, box: Box) -> str:
    return f'<{dc}:Bounds x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" />'


class Ids:
    """Fresh ids that collide with nothing in the document."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)

    def __call__(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self.taken:
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        return candidate


def diagram_lines(diagram: Diagram, p: dict[str, str], xmlns: str, ids: Ids) -> list[str]:
    """The BPMNDiagram element, one tag per line, indented two spaces per level."""
    bpmndi, dc, di = p[BPMNDI], p[DC], p[DI]
    lines = [
        f"<{bpmndi}:BPMNDiagram id={attr(ids('BPMNDiagram_' + diagram.plane))}{xmlns}>",
        f"  <{bpmndi}:BPMNPlane id={attr(ids('BPMNPlane_' + diagram.plane))} "
        f"bpmnElement={attr(diagram.plane)}>",
    ]
    for shape in diagram.shapes:
        extra = "".join(f" {key}={attr(value)}" for key, value in shape.attrs.items())
        lines.append(
            f"    <{bpmndi}:BPMNShape id={attr(ids(shape.element + '_di'))} "
            f"bpmnElement={attr(shape.element)}{extra}>"
        )
        lines.append(f"      {bounds(dc, shape.box)}")
        lines += label_lines(shape.label, bpmndi, dc)
        lines.append(f"    </{bpmndi}:BPMNShape>")
    for edge in diagram.edges:
        lines.append(
            f"    <{bpmndi}:BPMNEdge id={attr(ids(edge.element + '_di'))} "
            f"bpmnElement={attr(edge.element)}>"
        )
        lines += [f'      <{di}:waypoint x="{x}" y="{y}" />' for x, y in edge.points]
        lines += label_lines(edge.label, bpmndi, dc)
        lines.append(f"    </{bpmndi}:BPMNEdge>")
    return [*lines, f"  </{bpmndi}:BPMNPlane>", f"</{bpmndi}:BPMNDiagram>"]


def label_lines(label: Box | None, bpmndi: str, dc: str) -> list[str]:
    if label is None:
        return []
    return [
        f"      <{bpmndi}:BPMNLabel>",
        f"        {bounds(dc, label)}",
        f"      </{bpmndi}:BPMNLabel>",
    ]


def prefixes(root: etree._Element) -> tuple[dict[str, str], str]:
    """The prefixes the file already binds, else bpmn-js's, declared on the diagram itself."""
    bound = {uri: prefix for prefix, uri in root.nsmap.items() if prefix}
    chosen, xmlns = {}, ""
    for uri, preferred in PREFERRED_PREFIXES.items():
        chosen[uri] = bound.get(uri, preferred)
        if uri not in bound:
            xmlns += f" xmlns:{preferred}={attr(uri)}"
    return chosen, xmlns


# --------------------------------------------------------------------------- splicing the text

_MARKUP = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"
    r"""|<(?P<close>/)?(?P<name>[^\s/>!?]+)(?:[^>"']|"[^"]*"|'[^']*')*?(?P<empty>/)?>""",
    re.S,
)


def top_level_spans(text: str) -> tuple[list[tuple[str, int, int]], int]:
    """(qualified name, start, end) of each child of the root element, and where the root ends."""
    spans: list[tuple[str, int, int]] = []
    depth, start, name, root_end = 0, 0, "", -1
    for match in _MARKUP.finditer(text):
        tag = match.group("name")
        if tag is None:
            continue
        if match.group("close"):
            depth -= 1
            if depth == 1:
                spans.append((name, start, match.end()))
            elif depth == 0:
                root_end = match.start()
        elif match.group("empty"):
            if depth == 1:
                spans.append((tag, match.start(), match.end()))
        else:
            if depth == 1:
                name, start = tag, match.start()
            depth += 1
    if root_end < 0:
        raise LayoutError("could not find the end of the definitions element")
    return spans, root_end


def line_start(text: str, position: int) -> int:
    """Where the line of position starts if only indentation precedes it there, else position."""
    start = text.rfind("\n", 0, position) + 1
    return start if text[start:position].strip() == "" else position


def splice(text: str, lines: list[str], old_names: set[str]) -> str:
    """Put the new diagram lines where the first old diagram was (or last), drop the others."""
    spans, root_end = top_level_spans(text)
    old = [(start, end) for name, start, end in spans if name in old_names]
    newline = "\r\n" if "\r\n" in text else "\n"
    first_child = spans[0][1] if spans else root_end
    indent = text[line_start(text, first_child) : first_child] or "  "
    if old:
        start, end = old[0]
        indent = text[line_start(text, start) : start]
        at, resume = line_start(text, start), end
    else:
        at = resume = line_start(text, root_end)
    block = newline.join(indent + line for line in lines)
    if not old:  # a line of its own before the closing tag
        block = block + newline if text[at - 1 : at] in ("", "\n") else newline + block
    for start, end in reversed(old[1:]):
        cut = line_start(text, start)
        after = end + len(newline) if text.startswith(newline, end) else end
        text = text[:cut] + text[after:]
    return text[:at] + block + text[resume:]


def semantic_ids(root: etree._Element) -> set[str]:
    """Every id outside the diagrams: what DI may point at and new DI ids must avoid."""
    ids = {root.get("id")}
    for child in root:
        if child.tag != f"{{{BPMNDI}}}BPMNDiagram":
            ids.update(el.get("id") for el in child.iter())
    return ids - {None}


def with_diagram(data: bytes, root: etree._Element) -> bytes:
    """The file's bytes with freshly laid-out diagrams in place of the old ones."""
    encoding = root.getroottree().docinfo.encoding or "UTF-8"
    text = data.decode(encoding)
    old = [child for child in root if child.tag == f"{{{BPMNDI}}}BPMNDiagram"]
    old_names = {f"{c.prefix}:BPMNDiagram" if c.prefix else "BPMNDiagram" for c in old}
    ids = Ids(semantic_ids(root))
    chosen, xmlns = prefixes(root)
    lines = [
        line
        for diagram in build_diagrams(root)
        for line in diagram_lines(diagram, chosen, xmlns, ids)
    ]
    return splice(text, lines, old_names).encode(encoding)


# --------------------------------------------------------------------------- files


def read(path: Path) -> tuple[bytes, etree._Element]:
    """Parse without entities or network access; refuse what is not plain BPMN."""
    data = path.read_bytes()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(data, parser=parser)
    if root.getroottree().docinfo.doctype:
        raise LayoutError("refusing a file with a DOCTYPE")
    if root.tag != f"{{{BPMN}}}definitions":
        raise LayoutError("not a BPMN 2.0 definitions document")
    return data, root


def problems(root: etree._Element) -> list[str]:
    """Why a file's diagram is missing or stale; empty when every node and flow is drawn."""
    diagrams = [child for child in root if child.tag == f"{{{BPMNDI}}}BPMNDiagram"]
    if not diagrams:
        return ["no diagram (bpmndi:BPMNDiagram)"]
    known = semantic_ids(root)
    nodes = {el.get("id") for el in root.iter() if node_kind(el)}
    flows = {el.get("id") for el in root.iter() if local(el) == "sequenceFlow"}
    shapes = {el.get("bpmnElement") for el in root.iter(f"{{{BPMNDI}}}BPMNShape")}
    edges = {el.get("bpmnElement") for el in root.iter(f"{{{BPMNDI}}}BPMNEdge")}
    found = []
    for what, missing in (
        ("flow nodes without a shape", nodes - shapes),
        ("sequence flows without an edge", flows - edges),
        ("diagram elements for unknown ids", (shapes | edges) - known),
    ):
        if missing:
            found.append(f"{what}: {', '.join(sorted(map(str, missing)))}")
    return found


def write_atomically(path: Path, data: bytes) -> None:
    """Replace the file in one step so a concurrent reader never sees half a diagram."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def layout_file(path: Path, attempts: int = 3) -> bool:
    """Rewrite the file with a new diagram; False when it already had exactly this one.

    Others may save the file while it is being laid out: then start again from their version
    rather than overwrite it.
    """
    for _ in range(attempts):
        data, root = read(path)
        new = with_diagram(data, root)
        if new == data:
            return False
        if path.read_bytes() == data:
            write_atomically(path, new)
            return True
    raise LayoutError("the file kept changing while it was being laid out")


def main(argv: Sequence[str] | None = None) -> int:
    """Lay out (or check) each file; exit 0, 1 for a missing or stale diagram, 2 for a bad file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--check", action="store_true", help="only report files whose diagram is missing or stale"
    )
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            if args.check:
                found = problems(read(path)[1])
                for problem in found:
                    print(f"{path}: {problem}", file=sys.stderr)
                status = max(status, 1 if found else 0)
            else:
                print(f"{path}: {'laid out' if layout_file(path) else 'unchanged'}")
        except (OSError, etree.XMLSyntaxError, LayoutError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
