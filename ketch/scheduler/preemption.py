"""Preemption: find one node where evicting lower-priority pods lets a pending pod fit.

As kube-scheduler's DefaultPreemption: only nodes whose failure eviction could cure are tried;
on each, all lower-priority pods are removed, then re-admitted highest priority first while the
pod still fits (the rest are the victims). The node whose victims matter least wins.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .framework import CycleState, Diagnosis, Framework
from .types import NodeInfo, PodInfo

MAX_CANDIDATES = 100


@dataclass
class Candidate:
    node: NodeInfo
    victims: list[PodInfo]


@dataclass
class PreemptionResult:
    candidate: Candidate | None
    message: str


def _message(num_nodes: int, hist: Counter[str]) -> str:
    parts = sorted(f"{n} {r}" for r, n in hist.items())
    return f"preemption: 0/{num_nodes} nodes are available: {', '.join(parts)}."


def find_candidate(fw: Framework, state: CycleState, pod: PodInfo, diagnosis: Diagnosis,
                   nominated: str = "") -> PreemptionResult:
    """The best node to preempt on, with its victims; or why there is none."""
    cache = state.cache
    num_nodes = len(cache.nodes)
    if pod.preemption_policy == "Never":
        return PreemptionResult(None, "preemption: not eligible due to preemptionPolicy=Never.")
    if nominated:
        node = cache.nodes.get(nominated)
        if node is not None and any(p.terminating and p.priority < pod.priority for p in node.pods.values()):
            # Victims of an earlier preemption are still terminating: wait for them.
            return PreemptionResult(None, "preemption: waiting for victims on the nominated node to terminate.")
    filters = fw.active_filters(state, pod)
    hist: Counter[str] = Counter()
    found: list[Candidate] = []
    for name, (plugin, _reasons) in diagnosis.failures.items():
        node = cache.nodes.get(name)
        if node is None or not plugin.preemption_helps:
            hist["Preemption is not helpful for scheduling"] += 1
            continue
        if len(found) >= MAX_CANDIDATES:
            continue
        lower = [p for p in node.pods.values() if p.priority < pod.priority and not p.terminating]
        trial = node.clone()
        for p in lower:
            trial.remove_pod(p.key)
        if not lower or not fw.fits(state, pod, trial, filters):
            hist["No preemption victims found for incoming pod"] += 1
            continue
        victims: list[PodInfo] = []
        for p in sorted(lower, key=lambda p: (-p.priority, p.created)):
            trial.add_pod(p)
            if not fw.fits(state, pod, trial, filters):
                trial.remove_pod(p.key)
                victims.append(p)
        found.append(Candidate(node, victims))
    if not found:
        return PreemptionResult(None, _message(num_nodes, hist))
    best = min(found, key=lambda c: (max(v.priority for v in c.victims), sum(v.priority for v in c.victims),
                                     len(c.victims)))
    return PreemptionResult(best, "")
