"""`ketch proxy` (the node's service proxy) and the cluster DNS and proxy inside `ketch up`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys

from ..client.rest import Client

log = logging.getLogger("ketch.cli.proxy")


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    """Register `ketch proxy` (and `ketch up --cluster-dns/--dns-upstream/--proxy`)."""
    p = sub.add_parser("proxy", help="program this node's nftables so service addresses reach their endpoints")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the apiserver")
    p.add_argument("--node-name", default=socket.gethostname(), help="this node's name (default: hostname)")
    p.add_argument("--table", default="ketch", help="nftables table to own (default ketch)")
    p.add_argument("--netns", default="", help="program the rules inside this named network namespace "
                   "(/run/netns/NAME) instead of the host's")
    p.add_argument("--node-port-addresses", default="",
                   help="comma-separated local addresses NodePorts answer on (default: all)")
    p.add_argument("--cluster-dns", default="", help="also serve cluster DNS on ADDR:PORT")
    p.add_argument("--dns-upstream", action="append", help="resolver for other names (default: resolv.conf's)")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--lb-address", action="append",
                   help="run the local LoadBalancer provider, giving LoadBalancer services this address")
    p.add_argument("-v", "--verbose", action="store_true")
    up.add_argument("--cluster-dns", default="",
                    help="serve cluster DNS on ADDR:PORT (default: this host's address, port 53 or a free one "
                         "when 53 is taken)")
    up.add_argument("--no-dns", action="store_true", help="do not run the cluster DNS")
    up.add_argument("--dns-upstream", action="append",
                    help="resolver the cluster DNS forwards other names to (default: resolv.conf's)")
    up.add_argument("--cluster-domain", default="cluster.local", help="cluster DNS domain (default cluster.local)")
    up.add_argument("--proxy", action="store_true",
                    help="run the service proxy even without a node agent (--no-agent)")
    up.add_argument("--no-proxy", action="store_true",
                    help="do not run the service proxy and the local LoadBalancer provider (by default they run "
                         "with the node agent, as root with nftables, and program this host's nftables)")
    up.add_argument("--proxy-table", default="",
                    help="nftables table the proxy owns (default ketch-<hash of the data dir>, one per cluster)")
    up.add_argument("--lb-address", action="append",
                    help="address LoadBalancer services get (default: this host's primary address)")
    return ["proxy"]


async def _run_dns(client: Client, stop: asyncio.Event, args: argparse.Namespace) -> None:
    from ..dns.server import ClusterDNS, host_nameservers, parse_hostport
    upstreams = [parse_hostport(u) for u in args.dns_upstream] if args.dns_upstream else host_nameservers()
    dns = ClusterDNS(client, args.cluster_domain, upstreams)
    if args.cluster_dns:
        candidates = [parse_hostport(args.cluster_dns)]
    else:       # pods reach the node's address (through kube-dns' ClusterIP); 53 when free, else any port
        host = primary_address()
        candidates = [(host, 53), (host, 0)]
    err: OSError | None = None
    for host, port in candidates:
        try:
            bound = await dns.start(host, port)
            break
        except OSError as e:
            err = e
    else:
        where = args.cluster_dns or f"{candidates[0][0]}:53"
        print(f"ketch: cluster DNS cannot listen on {where}: {err.strerror if err else '?'}", file=sys.stderr,
              flush=True)
        await dns.close()
        return
    published = await _publish_dns(client, bound[0], bound[1])
    print(f"cluster DNS on {bound[0]}:{bound[1]} for {args.cluster_domain}"
          f"{f', published as kube-system/kube-dns {published}' if published else ''}", flush=True)
    try:
        await stop.wait()
    finally:
        await dns.close()


async def _publish_dns(client: Client, host: str, port: int) -> str:
    """Publish the DNS server as kube-system/kube-dns (10.43.0.10:53) when pods can reach it."""
    import ipaddress

    from ..api.errors import StatusError
    from ..dns.server import publish_dns_service
    if host in ("0.0.0.0", "::"):
        host = primary_address()
    try:
        if ipaddress.ip_address(host).is_loopback:
            return ""       # Endpoints may not point at loopback: no service for a loopback-only DNS
        svc = await publish_dns_service(client, host, port, "10.43.0.10")
        log.info("cluster DNS published as kube-dns at %s", svc["spec"].get("clusterIP"))
        return svc["spec"].get("clusterIP") or ""
    except (StatusError, ValueError) as e:
        if isinstance(e, StatusError) and e.code == 422:
            try:    # the address is taken, or another service CIDR: let the allocator pick
                svc = await publish_dns_service(client, host, port)
                return svc["spec"].get("clusterIP") or ""
            except StatusError as e2:
                e = e2
        print(f"ketch: cannot publish the kube-dns service: {e}", file=sys.stderr, flush=True)
        return ""


async def _run_proxy(client: Client, stop: asyncio.Event, args: argparse.Namespace, node_name: str,
                     table: str | None = None) -> None:
    from ..proxy.proxier import Proxier
    addrs = [a for a in (getattr(args, "node_port_addresses", "") or "").split(",") if a]
    proxier = Proxier(client, node_name, table=table or getattr(args, "table", "ketch"), node_port_addresses=addrs,
                      netns=getattr(args, "netns", "") or None)
    task = asyncio.ensure_future(proxier.run(stop))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # `ketch up` cancels its components right after `stop`: let the proxy remove its table first.
        if stop.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        else:
            task.cancel()
        raise


def default_table(data_dir: str) -> str:
    """One nftables table per cluster (per data dir), so clusters on one machine keep apart."""
    import hashlib
    import os
    return "ketch-" + hashlib.sha256(os.path.abspath(data_dir).encode()).hexdigest()[:8]


async def proxy_unavailable(table: str) -> str | None:
    """Why the proxy cannot run here, None when it can: root, and nftables that takes our table."""
    import os
    import shutil

    from ..proxy import nft
    if os.geteuid() != 0:
        return "not running as root, which programming nftables needs"
    try:
        runner: list[str] | nft.LibNft = nft.LibNft()
    except OSError:
        if not shutil.which("nft"):
            return "neither libnftables nor the nft command is installed"
        runner = ["nft"]
    try:
        await nft.delete_table(table, runner)       # `add table` + `delete table`: a no-op that needs nftables
    except (nft.NftError, OSError) as e:
        return f"nftables does not work here ({str(e)[:200]})"
    finally:
        if isinstance(runner, nft.LibNft):
            runner.close()
    return None


def primary_address() -> str:
    """This host's address on its default route (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


async def _run_lb(client: Client, stop: asyncio.Event, addresses: list[str]) -> None:
    from ..proxy.loadbalancer import LoadBalancerProvider
    await LoadBalancerProvider(client, addresses).run(stop)


async def run_in_up(client: Client, stop: asyncio.Event, args: argparse.Namespace) -> None:
    from .main import default_data_dir
    tasks = []
    if not getattr(args, "no_dns", False):
        tasks.append(_run_dns(client, stop, args))
    why = None
    if getattr(args, "no_proxy", False):
        why = "--no-proxy"
    elif getattr(args, "no_agent", False) and not getattr(args, "proxy", False):
        why = "no node agent in this ketch up (--no-agent); the agents that join run their own, or use --proxy"
    elif getattr(args, "runtime", None) == "fake":
        why = "the fake runtime's pods have no network"
    table = getattr(args, "proxy_table", "") or default_table(args.data_dir or default_data_dir())
    if why is None:
        why = await proxy_unavailable(table)
    if why is None:
        print(f"ketch proxy: on, nftables table ip {table} (turn off with --no-proxy)", flush=True)
        tasks.append(_run_proxy(client, stop, args, getattr(args, "node_name", None) or socket.gethostname(), table))
        tasks.append(_run_lb(client, stop, getattr(args, "lb_address", None) or [primary_address()]))
    else:
        print(f"ketch proxy: off ({why}): service addresses do not reach pods from this host", flush=True)
    if tasks:
        await asyncio.gather(*tasks)


async def run(args: argparse.Namespace) -> int:
    import os
    if args.netns and not os.path.exists(f"/run/netns/{args.netns}"):
        print(f"ketch proxy: no network namespace {args.netns!r} (see `ip netns list`)", file=sys.stderr)
        return 1
    from .common import client_from_kubeconfig, stop_on_signals
    client = client_from_kubeconfig(args.kubeconfig, "proxy")
    if client is None:
        return 1
    stop = stop_on_signals()
    from ..proxy.nft import NftError
    try:
        tasks = [_run_proxy(client, stop, args, args.node_name)]
        if args.lb_address:
            tasks.append(_run_lb(client, stop, args.lb_address))
        if args.cluster_dns:
            tasks.append(_run_dns(client, stop, args))
        await asyncio.gather(*tasks)
    except NftError as e:
        print(f"ketch proxy: {e}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0
