"""Scheduler configuration: a KubeSchedulerConfiguration-shaped YAML file, plus user plugins.

    apiVersion: kubescheduler.config.k8s.io/v1
    kind: KubeSchedulerConfiguration
    percentageOfNodesToScore: 0          # 0: adaptive, as kube-scheduler
    profiles:
    - schedulerName: default-scheduler
      plugins:
        multiPoint:
          enabled:  [{name: AvoidMaintenance, weight: 2}]
          disabled: [{name: ImageLocality}]   # or [{name: "*"}] for none of the defaults
      pluginConfig:
      - {name: AvoidMaintenance, args: {label: example.com/maintenance}}
    pluginPaths:                          # ketch: where user plugins live
      AvoidMaintenance: ./avoid_maintenance.py:AvoidMaintenance   # or a module: pkg.mod:Class
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from .framework import Plugin
from .plugins import DEFAULT_PLUGINS


class ConfigError(ValueError):
    """The configuration file is wrong; the message says where."""


@dataclass
class SchedulerConfig:
    scheduler_name: str = "default-scheduler"
    percentage_of_nodes_to_score: int = 0
    plugins: list[Plugin] = field(default_factory=lambda: [cls() for cls in DEFAULT_PLUGINS])


def load_plugin_class(ref: str, base_dir: str = ".") -> type[Plugin]:
    """'path/to/file.py:Class' or 'package.module:Class' -> the class."""
    target, _, cls_name = ref.rpartition(":")
    if not target or not cls_name:
        raise ConfigError(f"plugin path {ref!r}: expected 'file.py:Class' or 'module:Class'")
    if target.endswith(".py"):
        path = target if os.path.isabs(target) else os.path.join(base_dir, target)
        spec = importlib.util.spec_from_file_location(f"ketch_user_plugin_{cls_name}", path)
        if spec is None or spec.loader is None or not os.path.exists(path):
            raise ConfigError(f"plugin file {path} not found")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    else:
        try:
            mod = importlib.import_module(target)
        except ImportError as e:
            raise ConfigError(f"plugin module {target}: {e}") from None
    cls = getattr(mod, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise ConfigError(f"{ref}: {cls_name} is not a ketch.scheduler.Plugin subclass")
    return cls


def _names(block: Any) -> list[dict]:
    out = []
    for item in block or []:
        out.append(item if isinstance(item, dict) else {"name": str(item)})
    return out


def parse_config(doc: dict | None, base_dir: str = ".") -> SchedulerConfig:
    doc = doc or {}
    if not isinstance(doc, dict):
        raise ConfigError("the configuration must be a mapping")
    profiles = doc.get("profiles") or [{}]
    if len(profiles) != 1:
        raise ConfigError("exactly one profile is supported")
    prof = profiles[0] or {}
    available: dict[str, type[Plugin]] = {cls.name: cls for cls in DEFAULT_PLUGINS}
    for name, ref in (doc.get("pluginPaths") or {}).items():
        available[name] = load_plugin_class(str(ref), base_dir)
    enabled: list[dict] = []
    disabled: set[str] = set()
    for point in (prof.get("plugins") or {}).values():
        enabled += _names((point or {}).get("enabled"))
        disabled |= {d["name"] for d in _names((point or {}).get("disabled"))}
    args = {pc.get("name"): pc.get("args") or {} for pc in prof.get("pluginConfig") or []}
    order: list[str] = [] if "*" in disabled else [c.name for c in DEFAULT_PLUGINS if c.name not in disabled]
    weights: dict[str, int] = {}
    for e in enabled:
        name = e.get("name")
        if name not in available:
            raise ConfigError(f"unknown plugin {name!r}: add it to pluginPaths")
        if name not in order:
            order.append(name)
        if e.get("weight") is not None:
            weights[name] = int(e["weight"])
    plugins: list[Plugin] = []
    for name in order:
        p = available[name](args.get(name))
        if not p.name:
            p.name = name
        if name in weights:
            p.weight = weights[name]
        plugins.append(p)
    pct = int(doc.get("percentageOfNodesToScore") or 0)
    return SchedulerConfig(prof.get("schedulerName") or "default-scheduler", pct, plugins)


def load_config(path: str | None) -> SchedulerConfig:
    """Read a configuration file (None: the defaults)."""
    if not path:
        return SchedulerConfig()
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    return parse_config(doc, os.path.dirname(os.path.abspath(path)))
