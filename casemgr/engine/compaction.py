"""History compaction: keep a case's task tree as small as what it still waits on.

SpiffWorkflow keeps every finished task, so a looping case grows without bound and its
iterator silently stops at depth 1000 (ARCHITECTURE.md, "Long-running cases"). The audit
lives in case events, so after each step we re-root the tree at the lowest *finished*
common ancestor of all unfinished tasks and drop everything above it. Joins, boundary
events and subprocesses only consult tasks below that ancestor: a join's inputs are the
branches under the split that created them, which is an ancestor of every waiting branch.
"""

from __future__ import annotations

from SpiffWorkflow import TaskState


def compact(workflow) -> int:
    """Compact the workflow and each of its subworkflows; return how many tasks were dropped."""
    dropped = _compact_one(workflow)
    for sub in list(getattr(workflow, "subprocesses", {}).values()):
        dropped += _compact_one(sub)
    _drop_orphan_subprocesses(workflow)
    return dropped


def _compact_one(wf) -> int:
    unfinished = [t for t in wf.tasks.values() if t.state & TaskState.NOT_FINISHED_MASK]
    if not unfinished:
        return 0
    root = _lowest_common_ancestor(unfinished)
    while root is not None and not root.state & TaskState.FINISHED_MASK:
        root = root.parent
    if root is None or root is wf.task_tree:
        return 0
    keep = {t.id for t in _subtree(root)}
    before = len(wf.tasks)
    wf.tasks = {tid: task for tid, task in wf.tasks.items() if tid in keep}
    root._parent = None
    wf.task_tree = root
    if wf.last_task is not None and wf.last_task.id not in keep:
        wf.last_task = root
    return before - len(wf.tasks)


def _ancestors(task) -> list:
    chain = []
    while task is not None:
        chain.append(task)
        task = task.parent
    return chain[::-1]


def _lowest_common_ancestor(tasks) -> object:
    common = _ancestors(tasks[0])
    for task in tasks[1:]:
        chain = _ancestors(task)
        i = 0
        while i < len(common) and i < len(chain) and common[i] is chain[i]:
            i += 1
        common = common[:i]
    return common[-1] if common else None


def _subtree(root):
    stack = [root]
    while stack:
        task = stack.pop()
        yield task
        stack.extend(task.children)


def _drop_orphan_subprocesses(workflow) -> None:
    """A subworkflow whose parent task was compacted away is finished history."""
    subs = getattr(workflow, "subprocesses", None)
    if not subs:
        return
    live_ids = set(workflow.tasks)
    for sub in subs.values():
        live_ids.update(sub.tasks)
    for task_id in [tid for tid in subs if tid not in live_ids]:
        del subs[task_id]
