"""The proxy's nftables ruleset as data: desired state from services and endpoints, rendered as
one nft transaction, with incremental diffs between syncs.

Layout of the table (IPv4, one table the proxy owns and nothing else):
  services      nat chains at prerouting/output jump here; `daddr . proto . dport` vmap to a
                service-port chain, and NodePorts on local addresses to an external chain
  svc-*         one per service port: affinity checks, then `numgen random` over endpoint chains
  ext-*         NodePort and LoadBalancer entry: mark for masquerade, then the service-port chain
  ep-*          one per endpoint: hairpin mark, affinity update, dnat
  aff-*         per-endpoint ClientIP affinity sets (sessionAffinity: ClientIP)
  no-endpoints  filter chains reject service ports with no ready endpoint
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import hashlib
import ipaddress
import os
from dataclasses import dataclass, field

MASQ_MARK = 0x4000


class NftError(RuntimeError):
    """nft refused a transaction."""


def _h(*parts: object) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()[:16].upper()


@dataclass
class Ruleset:
    """What the table should hold: chains (name -> rules), map elements, affinity sets."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    service_ips: dict[str, str] = field(default_factory=dict)       # "ip . tcp . port" -> verdict
    node_ports: dict[str, str] = field(default_factory=dict)        # "tcp . port" -> verdict
    no_endpoints: dict[str, str] = field(default_factory=dict)      # "ip . tcp . port" -> verdict
    no_endpoint_node_ports: dict[str, str] = field(default_factory=dict)
    affinity_sets: dict[str, int] = field(default_factory=dict)     # set name -> timeout seconds


def _ipv4(ip: str | None) -> str | None:
    try:
        return str(ipaddress.IPv4Address(ip)) if ip else None
    except ValueError:
        return None


def build_ruleset(services: list[dict], endpoints: dict[str, dict]) -> Ruleset:
    """The desired ruleset for services and their Endpoints objects (keyed ns/name)."""
    rs = Ruleset()
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        cluster_ip = _ipv4(spec.get("clusterIP"))
        if cluster_ip is None:
            continue       # headless (or IPv6): nothing to program
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        ep = endpoints.get(key) or {}
        lb_ips = [ip for ip in (_ipv4(i.get("ip")) for i in
                                ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
                                if isinstance(i, dict)) if ip] if spec.get("type") == "LoadBalancer" else []
        affinity = spec.get("sessionAffinity") == "ClientIP"
        timeout = int((((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds"))
                      or 10800)
        for port in spec.get("ports") or ():
            proto = (port.get("protocol") or "TCP").lower()
            if proto not in ("tcp", "udp", "sctp"):
                continue
            pname = port.get("name") or ""
            targets: list[tuple[str, int]] = []
            for subset in ep.get("subsets") or ():
                for p in subset.get("ports") or ():
                    if (p.get("name") or "") == pname and (p.get("protocol") or "TCP").lower() == proto:
                        for a in subset.get("addresses") or ():
                            ip = _ipv4(a.get("ip"))
                            if ip:
                                targets.append((ip, int(p["port"])))
            targets.sort()
            svc_chain = f"svc-{_h(key, pname, proto)}"
            ext_chain = f"ext-{_h(key, pname, proto)}"
            cip_key = f"{cluster_ip} . {proto} . {port['port']}"
            node_port = port.get("nodePort")
            np_key = f"{proto} . {node_port}" if node_port else ""
            lb_keys = [f"{ip} . {proto} . {port['port']}" for ip in lb_ips]
            if not targets:
                rs.no_endpoints[cip_key] = "goto reject-chain"
                for k in lb_keys:
                    rs.no_endpoints[k] = "goto reject-chain"
                if np_key:
                    rs.no_endpoint_node_ports[np_key] = "goto reject-chain"
                continue
            rules: list[str] = []
            ep_chains = []
            for ip, tport in targets:
                ep_chain = f"ep-{_h(key, pname, proto, ip, tport)}"
                ep_chains.append(ep_chain)
                ep_rules = [f"ip saddr {ip} meta mark set meta mark | {MASQ_MARK:#x}"]
                if affinity:
                    aff = f"aff-{_h(key, pname, proto, ip, tport)}"
                    rs.affinity_sets[aff] = timeout
                    rules.append(f"ip saddr @{aff} goto {ep_chain}")
                    ep_rules.append(f"update @{aff} {{ ip saddr }}")
                ep_rules.append(f"meta l4proto {proto} dnat ip to {ip}:{tport}")
                rs.chains[ep_chain] = ep_rules
            if len(ep_chains) == 1:
                rules.append(f"goto {ep_chains[0]}")
            else:
                vmap = ", ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
                rules.append(f"numgen random mod {len(ep_chains)} vmap {{ {vmap} }}")
            rs.chains[svc_chain] = rules
            rs.service_ips[cip_key] = f"goto {svc_chain}"
            if np_key or lb_keys:
                rs.chains[ext_chain] = [f"meta mark set meta mark | {MASQ_MARK:#x}", f"goto {svc_chain}"]
            if np_key:
                rs.node_ports[np_key] = f"goto {ext_chain}"
            for k in lb_keys:
                rs.service_ips[k] = f"goto {ext_chain}"
    return rs


def base_table(table: str, node_port_addresses: list[str] | None = None) -> list[str]:
    """The fixed part of the table: maps, hooks, masquerade, reject."""
    local = "fib daddr type local" if not node_port_addresses else \
        "ip daddr { " + ", ".join(node_port_addresses) + " }"
    return [
        f"add table ip {table}",
        f"delete table ip {table}",
        f"add table ip {table}",
        f"add map ip {table} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add map ip {table} service-nodeports {{ type inet_proto . inet_service : verdict ; }}",
        f"add map ip {table} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add map ip {table} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; }}",
        f"add chain ip {table} reject-chain",
        f"add rule ip {table} reject-chain reject",
        f"add chain ip {table} services",
        f"add rule ip {table} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule ip {table} services {local} meta l4proto . th dport vmap @service-nodeports",
        f"add chain ip {table} nat-prerouting {{ type nat hook prerouting priority -100 ; }}",
        f"add rule ip {table} nat-prerouting jump services",
        f"add chain ip {table} nat-output {{ type nat hook output priority -100 ; }}",
        f"add rule ip {table} nat-output jump services",
        f"add chain ip {table} nat-postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"add rule ip {table} nat-postrouting meta mark & {MASQ_MARK:#x} != 0 "
        f"meta mark set meta mark & {~MASQ_MARK & 0xffffffff:#x} masquerade",
        f"add chain ip {table} filter-endpoints",
        f"add rule ip {table} filter-endpoints ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        f"add rule ip {table} filter-endpoints {local} meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add chain ip {table} filter-output {{ type filter hook output priority -110 ; }}",
        f"add rule ip {table} filter-output ct state new jump filter-endpoints",
        f"add chain ip {table} filter-forward {{ type filter hook forward priority -110 ; }}",
        f"add rule ip {table} filter-forward ct state new jump filter-endpoints",
        f"add chain ip {table} filter-input {{ type filter hook input priority -110 ; }}",
        f"add rule ip {table} filter-input ct state new jump filter-endpoints",
    ]


_MAPS = (("service_ips", "service-ips"), ("node_ports", "service-nodeports"),
         ("no_endpoints", "no-endpoint-services"), ("no_endpoint_node_ports", "no-endpoint-nodeports"))


def render(table: str, new: Ruleset, old: Ruleset | None, node_port_addresses: list[str] | None = None) -> list[str]:
    """nft commands taking the table from `old` (None: unknown, rebuild) to `new`, as one transaction."""
    cmds: list[str] = []
    if old is None:
        cmds += base_table(table, node_port_addresses)
        old = Ruleset()
    # Sets and chains first (elements may point at them), element removals before chain deletions.
    for name, timeout in new.affinity_sets.items():
        if name not in old.affinity_sets:
            cmds.append(f"add set ip {table} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}")
    for name, rules in new.chains.items():
        if name not in old.chains:
            cmds.append(f"add chain ip {table} {name}")
        elif old.chains[name] == rules:
            continue
        else:
            cmds.append(f"flush chain ip {table} {name}")
        cmds += [f"add rule ip {table} {name} {r}" for r in rules]
    for attr, mapname in _MAPS:
        want, have = getattr(new, attr), getattr(old, attr)
        for k, v in have.items():
            if want.get(k) != v:
                cmds.append(f"delete element ip {table} {mapname} {{ {k} }}")
        for k, v in want.items():
            if have.get(k) != v:
                cmds.append(f"add element ip {table} {mapname} {{ {k} : {v} }}")
    for name in old.chains:
        if name not in new.chains:
            cmds.append(f"flush chain ip {table} {name}")
    for name in old.chains:
        if name not in new.chains:
            cmds.append(f"delete chain ip {table} {name}")
    for name in old.affinity_sets:
        if name not in new.affinity_sets:
            cmds.append(f"delete set ip {table} {name}")
    return cmds


CLONE_NEWNET = 0x40000000


class LibNft:
    """nft transactions through libnftables in one dedicated thread (no process per sync).

    With `netns`, the thread first joins /run/netns/<netns> (setns affects only that thread), so
    the rules land in that namespace and nowhere else."""

    def __init__(self, netns: str | None = None):
        path = ctypes.util.find_library("nftables") or "libnftables.so.1"
        self.lib = ctypes.CDLL(path, use_errno=True)
        self.lib.nft_ctx_new.restype = ctypes.c_void_p
        self.lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        self.lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        self.lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        self.lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self.lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        self.lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        self.lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        self.netns = netns
        self.ctx: int | None = None
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ketch-nft")

    def _init(self) -> None:
        if self.netns:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise NftError(f"setns into {self.netns}: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        self.ctx = self.lib.nft_ctx_new(0)
        self.lib.nft_ctx_buffer_output(self.ctx)
        self.lib.nft_ctx_buffer_error(self.ctx)

    def _run(self, text: str) -> None:
        if self.ctx is None:
            self._init()
        rc = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
        if rc != 0:
            err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace")
            raise NftError(f"nft failed: {err.strip()[:2000]}")

    async def run(self, text: str) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._run, text)

    def close(self) -> None:
        if self.ctx is not None:
            ctx, self.ctx = self.ctx, None
            self.pool.submit(self.lib.nft_ctx_free, ctx).result()
        self.pool.shutdown()


async def apply(cmds: list[str], nft: list[str] | LibNft) -> None:
    """Run one nft transaction (libnftables, or `nft -f -`); NftError with nft's message if refused."""
    if not cmds:
        return
    if isinstance(nft, LibNft):
        await nft.run("\n".join(cmds) + "\n")
        return
    proc = await asyncio.create_subprocess_exec(*nft, "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(("\n".join(cmds) + "\n").encode())
    if proc.returncode != 0:
        raise NftError(f"nft failed ({proc.returncode}): {err.decode(errors='replace').strip()[:2000]}")


async def delete_table(table: str, nft: list[str] | LibNft) -> None:
    """Remove the proxy's table (nothing else is touched)."""
    await apply([f"add table ip {table}", f"delete table ip {table}"], nft)
