"""Run inside a test network namespace: `serve NAME=IP:PORT ...` starts HTTP "pods" answering
their name; `get HOST PORT N [SOURCE_IP|-] [INTERVAL]` makes N requests on new connections and prints a JSON tally;
`loop HOST PORT STOPFILE INTERVAL` makes requests until STOPFILE exists, then prints the tally."""

from __future__ import annotations

import http.client
import http.server
import json
import socketserver
import sys
import threading
import time


def serve(specs: list[str]) -> None:
    for spec in specs:
        name, _, addr = spec.partition("=")
        ip, _, port = addr.rpartition(":")

        class Handler(http.server.BaseHTTPRequestHandler):
            body = name.encode()

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(self.body)))
                self.end_headers()
                self.wfile.write(self.body)

            def log_message(self, *a) -> None:
                pass
        # Not http.server.HTTPServer: its server_bind looks up the address's name (a DNS query).
        srv = socketserver.ThreadingTCPServer((ip, int(port)), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("serving", flush=True)
    sys.stdin.read()      # until the test closes our stdin


def get(host: str, port: int, n: int, source: str = "", interval: float = 0.0, stop_file: str = "") -> None:
    import os
    tally: dict[str, int] = {}
    i = 0
    while (i < n) if not stop_file else not os.path.exists(stop_file):
        if interval and i:
            time.sleep(interval)
        i += 1
        try:
            c = http.client.HTTPConnection(host, port, timeout=2, source_address=(source, 0) if source else None)
            c.request("GET", "/")
            key = c.getresponse().read().decode()
            c.close()
        except OSError as e:
            key = f"error:{type(e).__name__}" if type(e) is not OSError else f"error:{e}"
        tally[key] = tally.get(key, 0) + 1
    print(json.dumps(tally), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2:])
    elif sys.argv[1] == "loop":
        get(sys.argv[2], int(sys.argv[3]), 0, interval=float(sys.argv[5]), stop_file=sys.argv[4])
    else:
        source = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "-" else ""
        get(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), source, float(sys.argv[6]) if len(sys.argv) > 6 else 0.0)
