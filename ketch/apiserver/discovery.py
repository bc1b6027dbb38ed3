"""Discovery documents (legacy and aggregated v2), all derived from the registry."""

from __future__ import annotations

from typing import Any

from ..api.registry import Registry, ResourceInfo

AGGREGATED_CT_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_CT_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# subresource -> (group, version, kind of the response or None for the parent kind, verbs)
SUBRESOURCES: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "status": ("", "", None, ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "binding": ("", "v1", "Binding", ("create",)),
    "eviction": ("policy", "v1", "Eviction", ("create",)),
    "log": ("", "v1", None, ("get",)),
    "exec": ("", "v1", "PodExecOptions", ("create", "get")),
    "attach": ("", "v1", "PodAttachOptions", ("create", "get")),
    "portforward": ("", "v1", "PodPortForwardOptions", ("create", "get")),
    "proxy": ("", "v1", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
    "finalize": ("", "", None, ("update",)),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
    "ephemeralcontainers": ("", "", None, ("get", "patch", "update")),
}


def _sub(ri: ResourceInfo, sub: str) -> tuple[str, str, str, tuple[str, ...]]:
    g, v, k, verbs = SUBRESOURCES.get(sub, ("", "", None, ("get",)))
    if k is None:
        return ri.group, ri.version, ri.kind, verbs
    return g, v, k, verbs


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions or not group:
        return None
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [api_group(registry, g) for g in registry.group_versions() if g]
    for g in groups:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    rs = registry.in_group_version(group, version)
    if not rs:
        return None
    out = []
    for ri in rs:
        item: dict[str, Any] = {"name": ri.plural, "singularName": ri.singular, "namespaced": ri.namespaced,
                                "kind": ri.kind, "verbs": list(ri.verbs)}
        if ri.short_names:
            item["shortNames"] = list(ri.short_names)
        if ri.categories:
            item["categories"] = list(ri.categories)
        out.append(item)
        for sub in ri.subresources:
            g, v, k, verbs = _sub(ri, sub)
            s: dict[str, Any] = {"name": f"{ri.plural}/{sub}", "singularName": "", "namespaced": ri.namespaced,
                                 "kind": k, "verbs": list(verbs)}
            if (g, v) != (ri.group, ri.version):
                s["group"], s["version"] = g, v
            out.append(s)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def aggregated(registry: Registry, legacy: bool, api_version: str = "apidiscovery.k8s.io/v2") -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (legacy=True, core group only) or /apis."""
    items = []
    for group, versions in registry.group_versions().items():
        if bool(group) == legacy:
            continue
        vitems = []
        for v in versions:
            resources = []
            for ri in registry.in_group_version(group, v):
                r: dict[str, Any] = {
                    "resource": ri.plural,
                    "responseKind": {"group": ri.group, "version": ri.version, "kind": ri.kind},
                    "scope": "Namespaced" if ri.namespaced else "Cluster",
                    "singularResource": ri.singular,
                    "verbs": list(ri.verbs),
                }
                if ri.short_names:
                    r["shortNames"] = list(ri.short_names)
                if ri.categories:
                    r["categories"] = list(ri.categories)
                subs = []
                for sub in ri.subresources:
                    g, sv, k, verbs = _sub(ri, sub)
                    subs.append({"subresource": sub, "responseKind": {"group": g, "version": sv, "kind": k},
                                 "verbs": list(verbs)})
                if subs:
                    r["subresources"] = subs
                resources.append(r)
            vitems.append({"version": v, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": vitems})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def wants_aggregated(accept: str) -> str | None:
    """The aggregated content type the client accepts, if any."""
    if "as=APIGroupDiscoveryList" not in accept:
        return None
    for part in accept.split(","):
        if "as=APIGroupDiscoveryList" in part and "v=v2beta1" not in part and "g=apidiscovery.k8s.io" in part:
            return AGGREGATED_CT_V2
    for part in accept.split(","):
        if "as=APIGroupDiscoveryList" in part and "v=v2beta1" in part:
            return AGGREGATED_CT_V2BETA1
    return None
