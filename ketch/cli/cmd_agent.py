"""`ketch agent`: the node agent, as a client of the apiserver (and inside `ketch up`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys

from ..aioutil import libc_malloc_trim, trim_heap
from ..client.rest import Client

RUNTIMES = ("fake", "process", "containerd")


def _add_tunables(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crash-backoff", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--kubelet-port", type=int, default=10250,
                   help="port of the agent's own HTTPS API for logs/exec/port-forward/metrics (0 = any)")
    p.add_argument("--lease-interval", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--pod-cidr", default="10.89.0.0/16",
                   help="containerd runtime: the pods' subnet on the CNI bridge (default 10.89.0.0/16)")
    p.add_argument("--image-gc-high-threshold", type=int, default=85,
                   help="containerd runtime: percent of the image filesystem used above which unused images are "
                        "removed (default 85; 100 turns image GC off)")
    p.add_argument("--image-gc-low-threshold", type=int, default=80,
                   help="containerd runtime: image GC frees down to this percent (default 80)")
    p.add_argument("--minimum-image-ttl-duration", default="2m",
                   help="containerd runtime: minimum age of an unused image before image GC removes it "
                        "(a Go duration, default 2m)")
    p.add_argument("--image-gc-period", default="5m", help=argparse.SUPPRESS)
    p.add_argument("--oci-runtime", choices=("auto", "runc", "crun"), default="auto",
                   help="containerd runtime: the OCI runtime of ketch's own containerd (default auto: crun "
                        "when installed, runc otherwise)")
    p.add_argument("--cni-bridge", default="ketch0",
                   help="containerd runtime: the CNI bridge's name (default ketch0); agents sharing a "
                        "bridge share its addresses")


def add_parser(sub: argparse._SubParsersAction, up: argparse.ArgumentParser) -> list[str]:
    """Register `ketch agent` (and `ketch up --runtime/--no-agent`)."""
    p = sub.add_parser("agent", help="run the node agent against an apiserver")
    p.add_argument("--kubeconfig", help="kubeconfig of the apiserver (or join with --server and --token)")
    p.add_argument("--server", help="apiserver URL to join (with --token, the cluster's join token)")
    p.add_argument("--token", help="the join token `ketch up` printed")
    p.add_argument("--ca-file", help="CA certificate of the apiserver (default: trust it on first join)")
    p.add_argument("--node-name", default=socket.gethostname(),
                   help="node name (default: hostname); with --nodes N, the prefix of N node names")
    p.add_argument("--runtime", choices=RUNTIMES, default="process", help="container runtime (default process)")
    p.add_argument("--nodes", type=int, default=1, help="simulate this many nodes (runtime fake only)")
    p.add_argument("--data-dir", help="where the agent keeps its state and logs")
    p.add_argument("--containerd-address", help="use this containerd socket instead of starting ketch's own")
    p.add_argument("--no-proxy", action="store_true",
                   help="do not run this node's service proxy (by default it runs as root with nftables, "
                        "except with --runtime fake)")
    p.add_argument("--proxy-table", default="",
                   help="nftables table the proxy owns (default ketch-<hash of the data dir>)")
    p.add_argument("-v", "--verbose", action="store_true")
    _add_tunables(p)
    up.add_argument("--runtime", choices=RUNTIMES, default=None,
                    help="container runtime of the built-in node agent (default process)")
    up.add_argument("--no-agent", action="store_true", help="do not run a node agent inside ketch up")
    up.add_argument("--node-name", default=None, help=argparse.SUPPRESS)
    _add_tunables(up)
    img = sub.add_parser("image", help="local images of this node's containerd")
    isub = img.add_subparsers(dest="image_cmd", required=True)
    imp = isub.add_parser("import", help="load an OCI layout or docker archive into the node's containerd")
    imp.add_argument("file", help="the image archive (.tar)")
    imp.add_argument("--data-dir", help="the ketch up or agent data dir whose containerd to use")
    imp.add_argument("--address", help="containerd socket (default: the one under the data dir)")
    return ["agent", "image"]


def _options(args: argparse.Namespace, data_dir: str, runtime: str, node_name: str, nodes: int = 1):
    from ..node import AgentOptions
    return AgentOptions(node_name=node_name, runtime=runtime, data_dir=data_dir, nodes=nodes,
                        backoff_base=args.crash_backoff, lease_interval=args.lease_interval,
                        workers=16 if runtime == "fake" else 8, kubelet_port=args.kubelet_port,
                        image_gc_high=args.image_gc_high_threshold, image_gc_low=args.image_gc_low_threshold,
                        image_min_age=getattr(args, "image_min_ttl", 120.0),
                        image_gc_period=getattr(args, "image_gc_period_s", 300.0))


def _check_image_gc(args: argparse.Namespace) -> str | None:
    """Validate the image GC flags (durations parsed into args.image_min_ttl / args.image_gc_period_s)."""
    from ..node.imagegc import check_policy, parse_duration
    try:
        args.image_min_ttl = parse_duration(args.minimum_image_ttl_duration)
    except ValueError as e:
        return f"bad --minimum-image-ttl-duration: {e}"
    try:
        args.image_gc_period_s = parse_duration(args.image_gc_period)
    except ValueError as e:
        return f"bad --image-gc-period: {e}"
    return check_policy(args.image_gc_high_threshold, args.image_gc_low_threshold, args.image_min_ttl,
                        args.image_gc_period_s)


def _check_network(args: argparse.Namespace) -> str | None:
    import ipaddress
    try:
        net = ipaddress.ip_network(args.pod_cidr)
    except ValueError as e:
        return f"bad --pod-cidr {args.pod_cidr!r}: {e}"
    if net.version != 4 or net.prefixlen > 28:
        return f"bad --pod-cidr {args.pod_cidr!r}: an IPv4 subnet of at least /28"
    args.pod_cidr = str(net)
    if getattr(args, "oci_runtime", "auto") == "crun" and not shutil.which("crun"):
        return "--oci-runtime crun: crun is not installed (Debian package crun, see scripts/ci-deps-containerd.sh)"
    if not 1 <= len(args.cni_bridge) <= 15 or not all(ch.isalnum() or ch in "-_." for ch in args.cni_bridge):
        return (f"bad --cni-bridge {args.cni_bridge!r}: an interface name of at most 15 letters, digits, "
                "'-', '_' or '.'")
    return None


def _check(runtime: str, nodes: int) -> str | None:
    if runtime == "containerd":
        from ..node.containerd.daemon import missing
        lacks = missing()
        if lacks:
            return f"the containerd runtime needs {', '.join(lacks)} (see scripts/ci-deps-containerd.sh)"
        if os.geteuid() != 0:
            return "the containerd runtime needs root"
    if nodes > 1 and runtime != "fake":
        return "--nodes > 1 simulates nodes and needs --runtime fake"
    if nodes < 1:
        return "--nodes must be at least 1"
    return None


def _default_runtime() -> tuple[str, str]:
    """The runtime `ketch up` picks when none is given, and why."""
    if os.geteuid() != 0:
        return "process", "not running as root, which real containers need; containers run as host processes"
    from ..node.containerd.daemon import missing
    lacks = missing()
    if lacks:
        return "process", (f"no usable container runtime here (missing {', '.join(lacks)}); "
                           "containers run as host processes")
    return "containerd", "containerd, runc and the CNI plugins are installed and ketch runs as root"


async def run_in_up(client: Client, stop: asyncio.Event, args: argparse.Namespace) -> None:
    if getattr(args, "no_agent", False):
        return
    runtime = args.runtime
    if runtime is None:
        runtime, why = _default_runtime()
        print(f"ketch agent: runtime {runtime} ({why}; choose with --runtime)", flush=True)
    else:
        print(f"ketch agent: runtime {runtime} (from --runtime)", flush=True)
    err = _check(runtime, 1) or _check_network(args) or _check_image_gc(args)
    if err:
        print(f"ketch agent: {err}", file=sys.stderr, flush=True)
        return
    from .main import default_data_dir
    data_dir = os.path.join(os.path.abspath(args.data_dir or default_data_dir()), "agent")
    _issue_serving_cert(os.path.dirname(data_dir), data_dir)
    await _run_agent(client, stop, _options(args, data_dir, runtime, args.node_name or socket.gethostname()), args)


async def _run_agent(client: Client, stop: asyncio.Event, opts, args: argparse.Namespace) -> None:
    """Run the agent; the containerd runtime is built here (own containerd, or --containerd-address)."""
    from ..node.agent import Agent
    runtime = None
    if opts.runtime == "containerd":
        from ..node.containerd import ContainerdRuntime
        runtime = ContainerdRuntime(opts.data_dir, getattr(args, "containerd_address", None),
                                    pod_cidr=getattr(args, "pod_cidr", "10.89.0.0/16"),
                                    bridge=getattr(args, "cni_bridge", "ketch0"),
                                    oci_runtime=getattr(args, "oci_runtime", "auto"))
        if runtime.daemon.own:
            print(f"ketch agent: OCI runtime {runtime.oci_runtime} ({runtime.oci_why})", flush=True)
    agent = Agent(client, opts, runtime=runtime)
    agent.prepare.append(lambda: _serving_cert(agent.data_dir))   # while the runtime starts
    await agent.run(stop)


def _containerd_socket(args: argparse.Namespace) -> str:
    if args.address:
        return args.address
    from .main import default_data_dir
    base = os.path.abspath(args.data_dir or default_data_dir())
    for d in (os.path.join(base, "agent"), base):
        sock = os.path.join(d, "containerd", "containerd.sock")
        if os.path.exists(sock):
            return sock
    return os.path.join(base, "agent", "containerd", "containerd.sock")


async def image_import(args: argparse.Namespace) -> int:
    """`ketch image import FILE.tar`: air-gapped images into the local node's containerd."""
    from ..node.containerd import import_image
    sock = _containerd_socket(args)
    if not os.path.exists(sock):
        print(f"ketch image import: no containerd socket at {sock} (is the agent running with --runtime containerd?)",
              file=sys.stderr)
        return 1
    try:
        print((await import_image(sock, args.file)).strip())
    except (OSError, RuntimeError) as e:
        print(f"ketch image import: {e}", file=sys.stderr)
        return 1
    return 0


def _issue_serving_cert(cluster_dir: str, data_dir: str) -> None:
    """Inside `ketch up`: the agent's serving certificate from the cluster CA, and the CA to check callers."""
    from ..apiserver.pki import PKI, _write, default_hosts
    from ..node import machine
    pki = PKI(os.path.join(cluster_dir, "pki"))
    hosts = default_hosts("127.0.0.1") + [machine.host_ip()]
    if not os.path.exists(pki.ca_cert):
        pki.ensure(hosts)     # with --http too: the apiserver-to-agent link is always TLS
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    cert_pem, key_pem = pki.issue("ketch-agent", [], server_hosts=hosts)
    _write(os.path.join(data_dir, "kubelet.key"), key_pem)
    _write(os.path.join(data_dir, "kubelet.crt"), cert_pem, 0o644)
    with open(pki.ca_cert, "rb") as f:
        _write(os.path.join(data_dir, "ca.crt"), f.read(), 0o644)


async def _serving_cert(data_dir: str) -> None:
    """A self-signed serving certificate when the data dir has none, made in a child process.

    cryptography's native library costs ~10 MB of RSS for as long as a process lives; the agent needs
    it only for this one certificate, so it never imports it itself."""
    cert, key = os.path.join(data_dir, "kubelet.crt"), os.path.join(data_dir, "kubelet.key")
    if os.path.exists(cert) and os.path.exists(key):
        return
    from ..node import machine
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    # ketch.selfsigned imports cryptography alone (importing ketch.node would bring aiohttp too:
    # 0.5 s of CPU instead of 0.1 s, while the agent starts)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ketch.selfsigned", cert, key, "localhost",
                                                "127.0.0.1", machine.host_ip())
    if await proc.wait() != 0:   # the agent then makes it itself
        print("ketch agent: could not make a serving certificate in a child process", file=sys.stderr)


async def join(server: str, token: str, node: str, ca_file: str | None, kubeconfig: str) -> None:
    """Trade the join token for this node's own credentials and write them to a kubeconfig.

    The token pins the cluster CA (K10<sha256>::secret): the CA is trusted only if it matches, or,
    with --ca-file, only that CA is."""
    from ..client.join import JoinError
    from ..client.join import join as join_cluster
    if ca_file:
        from ..client.join import ca_hash
        with open(ca_file, "rb") as f:
            pinned = ca_hash(f.read())
        secret = token.split("::", 1)[1] if "::" in token else token
        token = f"K10{pinned}::{secret}"
    try:
        await join_cluster(server, token, node, kubeconfig)
    except JoinError as e:
        raise ValueError(str(e)) from None


def _small_heap() -> object | None:
    """The standalone agent's RSS, kept near what it uses: glibc gives each thread that allocates an
    arena of its own (up to 8 per core) and keeps what is freed; the agent's few worker threads
    (volume writes, probes, DNS) cost it ~5 MiB of idle RSS that way. Two arenas are plenty for a
    process whose Python runs under one GIL (set before any thread starts); `trim_heap` hands freed
    pages back. Not inside `ketch up`, whose store threads share the process. None: not glibc."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)     # M_ARENA_MAX
    except (OSError, AttributeError):
        return None
    return libc_malloc_trim()


async def run(args: argparse.Namespace) -> int:
    if args.cmd == "image":
        return await image_import(args)
    malloc_trim = _small_heap()
    err = _check(args.runtime, args.nodes) or _check_network(args) or _check_image_gc(args)
    if err:
        print(f"ketch agent: {err}", file=sys.stderr)
        return 1
    from .main import default_data_dir
    data_dir = os.path.abspath(args.data_dir or os.path.join(default_data_dir(), "agent"))
    kubeconfig = args.kubeconfig
    if not kubeconfig:
        kubeconfig = os.path.join(data_dir, "kubeconfig")
        if args.server and args.token:
            try:
                await join(args.server, args.token, args.node_name, args.ca_file, kubeconfig)
            except (OSError, ValueError, KeyError) as e:
                print(f"ketch agent: cannot join {args.server}: {e}", file=sys.stderr)
                return 1
        elif not os.path.exists(kubeconfig):
            print("ketch agent: give --kubeconfig, or --server and --token to join a cluster", file=sys.stderr)
            return 1
    from .common import client_from_kubeconfig, stop_on_signals
    client = client_from_kubeconfig(kubeconfig, "agent")
    if client is None:
        return 1
    stop = stop_on_signals()
    print(f"ketch agent: node {args.node_name}{f' (+{args.nodes - 1} more)' if args.nodes > 1 else ''}, "
          f"runtime {args.runtime}, data in {data_dir}", flush=True)
    tasks = [trim_heap(malloc_trim, stop),
             _run_agent(client, stop, _options(args, data_dir, args.runtime, args.node_name, args.nodes), args)]
    proxy = await _node_proxy(client, stop, args, data_dir)
    if proxy is not None:
        tasks.append(proxy)
    try:
        await asyncio.gather(*tasks)
    finally:
        await client.close()
    return 0


async def _node_proxy(client: Client, stop: asyncio.Event, args: argparse.Namespace, data_dir: str):
    """This node's service proxy (a coroutine to run), or None with one line saying why it is off."""
    from .cmd_proxy import _run_proxy, default_table, proxy_unavailable
    why = None
    if args.no_proxy:
        why = "--no-proxy"
    elif args.runtime == "fake":
        why = "the fake runtime's pods have no network"
    table = args.proxy_table or default_table(data_dir)
    if why is None:
        why = await proxy_unavailable(table)
    if why is not None:
        print(f"ketch agent: proxy off ({why}): service addresses do not reach pods from this node", flush=True)
        return None
    print(f"ketch agent: proxy on, nftables table ip {table} (turn off with --no-proxy)", flush=True)
    return _run_proxy(client, stop, args, args.node_name, table)
