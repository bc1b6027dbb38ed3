"""A container's environment from its spec: values, downward API, configMaps, secrets, $(VAR) expansion."""

from __future__ import annotations

import base64
import math
import re

from ..api.errors import StatusError
from ..api.quantity import parse_quantity
from ..client.rest import Client
from .runtime import ContainerConfigError

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(s: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, unknown stay as written."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return _REF.sub(sub, s)


def field_ref(pod: dict, path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": status.get("hostIP"),
              "status.podIP": status.get("podIP"),
              "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or ()),
              "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or ())}
    if path not in simple:
        raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")
    return str(simple[path] or "")


def resource_field_ref(container: dict, ref: dict, allocatable: dict[str, str]) -> str:
    res = ref.get("resource") or ""
    kind, _, name = res.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None and kind in ("limits", "requests"):
        value = allocatable.get(name) if kind == "limits" else "0"
    if value is None:
        raise ContainerConfigError(f"unsupported resourceFieldRef resource {res!r}")
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(value) / divisor))


class EnvResolver:
    """Reads configMaps and secrets through the API as a container starts."""

    def __init__(self, client: Client):
        self.client = client
        self.cm_ri = client.resource("configmaps")
        self.secret_ri = client.resource("secrets")

    async def _data(self, kind: str, ns: str, name: str, optional: bool) -> dict[str, str] | None:
        ri = self.cm_ri if kind == "configmap" else self.secret_ri
        try:
            obj = await self.client.get(ri, ns, name)
        except StatusError as e:
            if e.code == 404:
                if optional:
                    return None
                raise ContainerConfigError(f'{kind} "{name}" not found') from None
            raise
        if kind == "secret":
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        data = dict(obj.get("data") or {})
        for k, v in (obj.get("binaryData") or {}).items():
            data.setdefault(k, base64.b64decode(v).decode(errors="replace"))
        return data

    async def resolve(self, pod: dict, container: dict, allocatable: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a container starts with (raises ContainerConfigError as the kubelet would)."""
        ns = pod["metadata"].get("namespace") or "default"
        env: dict[str, str] = {}
        for src in container.get("envFrom") or ():
            prefix = src.get("prefix") or ""
            for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
                ref = src.get(key)
                if ref:
                    data = await self._data(kind, ns, ref.get("name") or "", bool(ref.get("optional")))
                    for k, v in (data or {}).items():
                        env[prefix + k] = v
        for e in container.get("env") or ():
            name = e.get("name") or ""
            vf = e.get("valueFrom")
            if vf is None:
                env[name] = expand(str(e.get("value") or ""), env)
            elif vf.get("fieldRef"):
                env[name] = field_ref(pod, vf["fieldRef"].get("fieldPath") or "")
            elif vf.get("resourceFieldRef"):
                env[name] = resource_field_ref(container, vf["resourceFieldRef"], allocatable or {})
            else:
                for kind, key in (("configmap", "configMapKeyRef"), ("secret", "secretKeyRef")):
                    ref = vf.get(key)
                    if not ref:
                        continue
                    optional = bool(ref.get("optional"))
                    data = await self._data(kind, ns, ref.get("name") or "", optional)
                    if data is None:
                        break
                    if ref.get("key") not in data:
                        if optional:
                            break
                        raise ContainerConfigError(f"couldn't find key {ref.get('key')} in {kind.capitalize()} "
                                                   f"{ns}/{ref.get('name')}")
                    env[name] = data[ref["key"]]
        return env
