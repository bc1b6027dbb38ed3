"""The node agent (our kubelet): node registration, leases, pods through a runtime."""

from .agent import Agent, AgentOptions, run_agent

__all__ = ["Agent", "AgentOptions", "run_agent"]
