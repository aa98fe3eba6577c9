"""What the proxy costs over calling GraphQL directly, and over a bare relay.

Three ways to get one page of /users, each against the same upstream, which
answers from a precomputed response so its own cost does not hide the
proxy's:

- direct: the client POSTs the GraphQL query to the upstream itself;
- relay: a Starlette + httpx app that forwards the bytes untouched (the floor
  of this stack);
- proxy: legacy-bridge, translating the legacy GET into GraphQL and back.

For per_page 10 and 100 and 1 and 2 uvicorn workers it reports p50/p99
latency at concurrency 1 (the three paths interleaved request by request, so
a slow moment of the machine lands on all of them alike), requests per second
at concurrency 8, and server CPU microseconds per request from the servers'
own accounting (/proc/PID/stat, children included), the figure that holds on
a noisy machine.

    python bench/overhead.py [--requests 2000] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
PLAN = "fd6f0490-2072-43b0-b1d0-7ee82fe96df2"
TOKEN = "bench-token"
KEY = "bench-key"
ENDPOINT = "/api/public/api/v1/learning-plan-progress/graphql"
TICK = os.sysconf("SC_CLK_TCK")


# -- the servers ----------------------------------------------------------------

def _page(size: int) -> bytes:
    edges = [{"cursor": f"cursor-{i:06d}", "node": {
        "userId": f"7c1e0f5a-0000-4000-8000-{i:012d}", "userEmail": f"learner{i}@acme.example",
        "userFirstName": "Ana", "userLastName": "Garcia",
        "subscriptionStatus": "SUBSCRIBED" if i % 3 else "COMPLETED",
        "subscribedAt": "2025-01-02T03:04:05Z", "unsubscribedAt": None,
        "completedAt": None if i % 3 else "2026-02-03T04:05:06Z",
        "stepsTotal": 12, "stepsCompleted": i % 12,
        "lastActiveAt": None if i % 7 == 0 else "2026-03-10T14:30:00Z"}} for i in range(size)]
    return orjson.dumps({"data": {"learningPlanProgress": {
        "totalCount": 5000, "pageInfo": {"hasNextPage": True, "endCursor": edges[-1]["cursor"]},
        "edges": edges}}})


def upstream_app() -> Any:
    bodies = {10: _page(10), 100: _page(100)}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        big = b'"first":100' in body or b"per_page=100" in scope["query_string"]
        payload = bodies[100 if big else 10]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


def relay_app() -> Any:
    """Starlette + httpx forwarding the bytes untouched: the floor of this stack."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=os.environ["RELAY_UPSTREAM"],
                               limits=httpx.Limits(max_connections=100))

    async def forward(request: Request) -> Response:
        upstream = await client.request(request.method, request.url.path,
                                        params=request.url.query, content=await request.body())
        return Response(upstream.content, upstream.status_code,
                        media_type=upstream.headers.get("content-type"))

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])


# -- measuring --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants."""
    total = 0.0
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total += (int(stat[11]) + int(stat[12])) / TICK
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        total += sum(cpu_seconds(int(child)) for child in children)
    return total


def start(command: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{command} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class Result:
    p50: float
    p99: float
    rps: float
    cpu_us: float


def latencies(requests: dict[str, httpx.Request], count: int) -> dict[str, list[float]]:
    """Concurrency-1 latency of each setup, interleaved request by request.

    Taking one sample of each setup in turn means a slow moment of the machine
    lands on all of them alike, instead of on whichever setup ran then.
    """
    samples: dict[str, list[float]] = {name: [] for name in requests}
    clients = {name: httpx.Client() for name in requests}
    try:
        for _ in range(50):  # warm up connections, caches, lazy imports
            for name, request in requests.items():
                clients[name].send(request).raise_for_status()
        for _ in range(count):
            for name, request in requests.items():
                started = time.perf_counter()
                clients[name].send(request).raise_for_status()
                samples[name].append((time.perf_counter() - started) * 1000)
    finally:
        for client in clients.values():
            client.close()
    return samples


def throughput(request: httpx.Request, server_pid: int, requests: int) -> tuple[float, float]:
    """(requests per second at concurrency 8, server CPU microseconds per request)."""
    async def concurrent() -> float:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=8)) as client:
            async def worker(n: int) -> None:
                for _ in range(n):
                    (await client.send(request)).raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker(requests // 8) for _ in range(8)))
            return time.perf_counter() - started

    cpu_before = cpu_seconds(server_pid)
    elapsed = asyncio.run(concurrent())
    cpu = cpu_seconds(server_pid) - cpu_before
    done = requests // 8 * 8
    return done / elapsed, cpu / done * 1e6


def measure(setups: dict[str, tuple[httpx.Request, int]], requests: int) -> dict[str, Result]:
    timings = latencies({name: request for name, (request, _) in setups.items()}, requests)
    results = {}
    for name, (request, pid) in setups.items():
        q = statistics.quantiles(timings[name], n=100)
        rps, cpu_us = throughput(request, pid, requests)
        results[name] = Result(q[49], q[98], rps, cpu_us)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--serve", choices=["upstream", "relay"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvicorn
        factory = "upstream_app" if args.serve == "upstream" else "relay_app"
        uvicorn.run(f"overhead:{factory}", factory=True, host="127.0.0.1", port=args.port,
                    workers=args.workers, log_level="error", access_log=False,
                    app_dir=str(Path(__file__).parent))
        return
    table = run(args.requests)
    print(table)
    if args.write_readme:
        from readme import write_section
        write_section("proxy-overhead", "make bench-overhead", table)


def run(requests: int) -> str:
    from legacy_bridge.auth import digest
    from legacy_bridge.mapping import load_mappings
    from legacy_bridge.query import connection_document

    users = next(r for r in load_mappings(ROOT / "mappings") if r.name == "users")
    query = connection_document(users.connection, "LegacyUsers", users.node_fields).text
    work = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    (work / "tokens.toml").write_text(
        f'[[tokens]]\nlabel = "bench"\nsha256 = "{digest(TOKEN)}"\nplans = ["*"]\n')
    me = [sys.executable, str(Path(__file__))]
    up_port = free_port()
    upstream_url = f"http://127.0.0.1:{up_port}"
    upstream = start([*me, "--serve", "upstream", "--port", str(up_port), "--workers", "2"],
                     {}, upstream_url)
    rows: list[str] = []
    try:
        for workers in (1, 2):
            relay_port, proxy_port = free_port(), free_port()
            relay = start([*me, "--serve", "relay", "--port", str(relay_port), "--workers",
                           str(workers)], {"RELAY_UPSTREAM": upstream_url},
                          f"http://127.0.0.1:{relay_port}/x")
            proxy = start([sys.executable, "-m", "legacy_bridge", "serve"], {
                "BRIDGE_UPSTREAM_URL": upstream_url, "BRIDGE_UPSTREAM_API_KEY": KEY,
                "BRIDGE_TOKENS_FILE": str(work / "tokens.toml"),
                "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"), "BRIDGE_PORT": str(proxy_port),
                "BRIDGE_WORKERS": str(workers), "BRIDGE_LOG_LEVEL": "WARNING"},
                f"http://127.0.0.1:{proxy_port}/healthz")
            try:
                for per_page in (10, 100):
                    legacy = f"/api/v2/plans/{PLAN}/users?per_page={per_page}"
                    variables = {"input": {"filter": {"learningPlanId": PLAN},
                                           "orderBy": "EMAIL", "order": "ASC",
                                           "first": per_page}}
                    graphql = orjson.dumps({"query": query, "variables": variables,
                                            "operationName": "LegacyUsers"})
                    setups = {
                        "direct": (httpx.Request("POST", upstream_url + ENDPOINT,
                                                 content=graphql, headers={
                                                     "Authorization": f"Token {KEY}",
                                                     "Content-Type": "application/json"}),
                                   upstream.pid),
                        "relay": (httpx.Request("GET", f"http://127.0.0.1:{relay_port}"
                                                + legacy), relay.pid),
                        "proxy": (httpx.Request("GET", f"http://127.0.0.1:{proxy_port}" + legacy,
                                                headers={"Authorization": f"Bearer {TOKEN}"}),
                                  proxy.pid),
                    }
                    results = measure(setups, requests)
                    direct = results["direct"]
                    for name, r in results.items():
                        added = f"{r.p50 - direct.p50:.2f}" if name != "direct" else "-"
                        rows.append(f"| {per_page} | {workers} | {name} | {r.p50:.2f} | "
                                    f"{r.p99:.2f} | {added} | {r.rps:,.0f} | {r.cpu_us:,.0f} |")
                    relay_r, proxy_r = results["relay"], results["proxy"]
                    rows.append(
                        f"| {per_page} | {workers} | **proxy / relay** | | | "
                        f"**{(proxy_r.p50 - direct.p50) / (relay_r.p50 - direct.p50):.2f}×** | "
                        f"| **{proxy_r.cpu_us / relay_r.cpu_us:.2f}×** |")
            finally:
                stop(relay)
                stop(proxy)
    finally:
        stop(upstream)
    table = "\n".join([
        f"{requests:,} requests per cell at concurrency 1 (latency; the three paths "
        f"interleaved request by request), then {requests // 8 * 8:,} at concurrency 8 "
        "(throughput, CPU). Upstream: precomputed answer, 2 workers. CPU is the server's "
        "own (all its worker processes), per request.",
        "",
        "| per_page | workers | path | p50 ms | p99 ms | added over direct, p50 ms "
        "| req/s at c=8 | server CPU µs/req |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
        *rows])
    return table


if __name__ == "__main__":
    main()
