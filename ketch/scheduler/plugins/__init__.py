"""The default plugins, in kube-scheduler's filter order."""

from __future__ import annotations

from ..framework import Plugin
from .interpod import InterPodAffinity
from .node import ImageLocality, NodeAffinity, NodePorts, NodeUnschedulable, TaintToleration
from .resources import NodeResourcesBalancedAllocation, NodeResourcesFit, NodeResourcesLeastAllocated
from .spread import PodTopologySpread

DEFAULT_PLUGINS: list[type[Plugin]] = [
    NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit,
    PodTopologySpread, InterPodAffinity,
    NodeResourcesLeastAllocated, NodeResourcesBalancedAllocation, ImageLocality,
]

__all__ = ["DEFAULT_PLUGINS", "ImageLocality", "InterPodAffinity", "NodeAffinity", "NodePorts",
           "NodeResourcesBalancedAllocation", "NodeResourcesFit", "NodeResourcesLeastAllocated",
           "NodeUnschedulable", "PodTopologySpread", "TaintToleration"]
