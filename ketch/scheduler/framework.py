"""The plugin interface and the filter -> score pipeline that runs one pod through it.

A plugin is a class with a `name` and any of five small hooks; the framework calls only the
hooks a plugin overrides. Filters remove nodes (returning why), scores rank the survivors
(0..100 each, weighted, summed; ties broken at random).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .types import NodeInfo, PodInfo

if TYPE_CHECKING:
    from .cache import Cache

MAX_NODE_SCORE = 100


class CycleState:
    """Scratch space for one scheduling attempt, shared by the plugins of that attempt."""

    def __init__(self, cache: Cache):
        self.cache = cache
        self.data: dict[str, Any] = {}


class Plugin:
    """Base class of filter and score plugins: override the hooks that apply.

    - `prefilter(state, pod)`: False when the plugin has nothing to check for this pod (its
      `filter` is then skipped); may precompute into `state.data`.
    - `filter(state, pod, node)`: None when the pod fits the node, else the reason(s) it does not,
      in Kubernetes' words ("Insufficient cpu").
    - `prescore(state, pod, nodes)`: False to skip scoring for this pod.
    - `score(state, pod, node)`: a number, normally 0..100.
    - `normalize(state, pod, scores)`: rescale the scores of all nodes in place to 0..100.
    """

    name: str = ""
    weight: int = 1
    # Can evicting lower-priority pods cure this plugin's filter failures? (preemption)
    preemption_helps: bool = False

    def __init__(self, args: dict[str, Any] | None = None):
        self.args = args or {}

    def prefilter(self, state: CycleState, pod: PodInfo) -> bool:
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | list[str] | None:
        return None

    def prescore(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> bool:
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> float:
        return 0

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[float]) -> None:
        return None

    def filter_nodes(self, state: CycleState, pod: PodInfo,
                     nodes: list[NodeInfo]) -> list[tuple[int, str | list[str]]]:
        """`filter` for many nodes: (index, reason) of those that fail; override only for speed."""
        out = []
        f = self.filter
        for i, n in enumerate(nodes):
            r = f(state, pod, n)
            if r:
                out.append((i, r))
        return out

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
        """`score` for each node; override only to compute many nodes faster."""
        score = self.score
        return [score(state, pod, n) for n in nodes]


def overrides(plugin: Plugin, hook: str) -> bool:
    return getattr(type(plugin), hook) is not getattr(Plugin, hook)


def normalize_by_max(scores: list[float], reverse: bool = False) -> None:
    """Scale to 0..100 by the highest score (reversed: the lowest raw score gets 100)."""
    top = max(scores, default=0)
    if top <= 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        v = s * MAX_NODE_SCORE / top
        scores[i] = MAX_NODE_SCORE - v if reverse else v


@dataclass
class Diagnosis:
    """Why nodes were rejected: node name -> (plugin, reasons)."""

    failures: dict[str, tuple[Plugin, list[str]]] = field(default_factory=dict)
    pod_reason: str = ""

    def message(self, num_nodes: int) -> str:
        """Kubernetes' FitError text: '0/3 nodes are available: 1 Insufficient cpu, ...'."""
        if self.pod_reason and not self.failures:
            return f"0/{num_nodes} nodes are available: {self.pod_reason}."
        hist: Counter[str] = Counter()
        for _plugin, reasons in self.failures.values():
            for r in reasons:
                hist[r] += 1
        parts = sorted(f"{n} {r}" for r, n in hist.items())
        if not parts:
            return f"0/{num_nodes} nodes are available: no nodes available to schedule pods."
        return f"0/{num_nodes} nodes are available: {', '.join(parts)}."


def num_feasible_nodes_to_find(num_nodes: int, percentage: int) -> int:
    """kube-scheduler's sample size: all nodes below 100, else an adaptive percentage (>= 100 nodes)."""
    if num_nodes < 100 or percentage >= 100:
        return num_nodes
    pct = percentage
    if pct <= 0:
        pct = max(5, 50 - num_nodes // 125)
    return max(100, num_nodes * pct // 100)


class Framework:
    """An ordered set of filter and score plugins (one scheduler profile)."""

    def __init__(self, plugins: list[Plugin], percentage_of_nodes_to_score: int = 0,
                 rng: random.Random | None = None):
        self.plugins = plugins
        self.filters = [p for p in plugins if overrides(p, "filter")]
        self.prefilters = {id(p) for p in plugins if overrides(p, "prefilter")}
        self.scorers = [p for p in plugins if (overrides(p, "score") or overrides(p, "score_nodes")) and p.weight]
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self._next_start = 0

    def active_filters(self, state: CycleState, pod: PodInfo) -> list[Plugin]:
        return [f for f in self.filters if id(f) not in self.prefilters or f.prefilter(state, pod)]

    def fits(self, state: CycleState, pod: PodInfo, node: NodeInfo, filters: list[Plugin]) -> bool:
        for f in filters:
            if f.filter(state, pod, node):
                return False
        return True

    def find_feasible(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                      diagnosis: Diagnosis) -> list[NodeInfo]:
        """Run the filters over a rotating window of nodes until enough feasible ones are found."""
        n = len(nodes)
        if not n:
            return []
        filters = self.active_filters(state, pod)
        want = num_feasible_nodes_to_find(n, self.percentage)
        start = self._next_start % n
        order = nodes[start:] + nodes[:start] if start else nodes
        failures = diagnosis.failures
        feasible: list[NodeInfo] = []
        pos = 0
        # Filter chunk by chunk (each plugin over the chunk's survivors) until enough nodes fit.
        while pos < n and len(feasible) < want:
            size = max(want - len(feasible), 32)
            chunk = order[pos:pos + size]
            pos += len(chunk)
            for f in filters:
                if not chunk:
                    break
                bad = f.filter_nodes(state, pod, chunk)
                if bad:
                    drop = set()
                    for i, r in bad:
                        failures[chunk[i].name] = (f, [r] if isinstance(r, str) else list(r))
                        drop.add(i)
                    chunk = [nd for i, nd in enumerate(chunk) if i not in drop]
            feasible.extend(chunk)
        if len(feasible) > want:
            # Return the extra nodes to the next attempt's window.
            pos -= len(feasible) - want
            feasible = feasible[:want]
        self._next_start = (start + pos) % n
        return feasible

    def select(self, state: CycleState, pod: PodInfo, feasible: list[NodeInfo]) -> NodeInfo:
        """The feasible node with the highest weighted score; ties broken at random."""
        if len(feasible) == 1:
            return feasible[0]
        totals = [0] * len(feasible)
        for p in self.scorers:
            if overrides(p, "prescore") and not p.prescore(state, pod, feasible):
                continue
            scores = p.score_nodes(state, pod, feasible)
            p.normalize(state, pod, scores)
            w = p.weight
            totals = [t + int(s) * w for t, s in zip(totals, scores, strict=True)]
        best = max(totals)
        ties = [i for i, t in enumerate(totals) if t == best]
        return feasible[ties[0] if len(ties) == 1 else self.rng.choice(ties)]
