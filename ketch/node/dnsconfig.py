"""A pod's resolv.conf from its dnsPolicy and dnsConfig, as the kubelet builds it.

- ClusterFirst (the default): the cluster DNS, the search path `<ns>.svc.<domain> svc.<domain>
  <domain>` followed by the host's, `options ndots:5`. Host-network pods, and every pod when the
  cluster runs no DNS, fall back to Default.
- ClusterFirstWithHostNet: like ClusterFirst, for host-network pods too.
- Default: the host's resolv.conf.
- None: only what `dnsConfig` says.
`dnsConfig` is merged into every policy: nameservers and searches appended (duplicates dropped),
options replacing those of the same name.
"""

from __future__ import annotations

import contextlib

HOST_RESOLV_CONF = "/etc/resolv.conf"
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


def host_resolv_conf(path: str = HOST_RESOLV_CONF) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of the host's resolv.conf."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                parts = line.split("#", 1)[0].split(";", 1)[0].split()
                if not parts:
                    continue
                if parts[0] == "nameserver" and len(parts) > 1:
                    servers.append(parts[1])
                elif parts[0] in ("search", "domain"):
                    searches = parts[1:]
                elif parts[0] == "options":
                    options += parts[1:]
    return servers, searches, options


def _dedup(items: list[str]) -> list[str]:
    out: list[str] = []
    for i in items:
        if i and i not in out:
            out.append(i)
    return out


def _merge_options(base: list[str], extra: list[dict]) -> list[str]:
    opts: dict[str, str] = {}
    for o in base:
        name, _, value = o.partition(":")
        opts[name] = o
    for o in extra or ():
        name = o.get("name") or ""
        if name:
            opts[name] = f"{name}:{o['value']}" if o.get("value") not in (None, "") else name
    return list(opts.values())


def pod_dns_config(pod: dict, cluster_dns: list[str], domain: str = "cluster.local",
                   host_path: str = HOST_RESOLV_CONF) -> dict | None:
    """CRI DNSConfig (servers, searches, options) for the pod; None means the host's resolv.conf as is."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_net = bool(spec.get("hostNetwork"))
    extra = spec.get("dnsConfig") or {}
    if policy == "ClusterFirst" and host_net:
        policy = "Default"
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and not cluster_dns:
        policy = "Default"      # no cluster DNS runs: the host's resolvers, as the kubelet does
    if policy == "None":
        servers, searches, options = [], [], []
    else:
        servers, searches, options = host_resolv_conf(host_path)
        if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
            d = domain.strip(".")
            servers = list(cluster_dns)
            searches = [f"{ns}.svc.{d}", f"svc.{d}", d] + searches
            options = ["ndots:5"] + [o for o in options if not o.startswith("ndots:")]
        elif not extra:
            return None
    servers = _dedup(servers + list(extra.get("nameservers") or ()))[:MAX_NAMESERVERS]
    searches = _dedup(searches + list(extra.get("searches") or ()))[:MAX_SEARCHES]
    options = _merge_options(options, extra.get("options") or [])
    return {"servers": servers, "searches": searches, "options": options}
