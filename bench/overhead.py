"""What the proxy costs over calling GraphQL directly, and over a bare relay,
on distinct requests (the honest load) and on one page asked by everyone at once.

Targets, each against the same upstream, which answers from precomputed pages
so its own cost does not hide theirs:

- direct: the client POSTs the GraphQL query to the upstream itself;
- relay: a Starlette + httpx app that forwards the bytes untouched (the floor
  of this stack: no parsing, no rewriting);
- proxy: legacy-bridge, translating the legacy GET into GraphQL and back, with
  1 and 2 workers;
- the Node peer (bench/node-peer, versions pinned in its package-lock.json):
  sofa-api serving a REST GET from the same GraphQL query, once with a plain
  `fetch` resolver and once the standard way (a remote schema through
  @graphql-tools/wrap). It answers the GraphQL shape, not the legacy one: less
  work than the proxy's rewrite.

Load: wrk, one thread, 16 connections. **distinct**: 400 different pages in
turn (`per_page` 51..100 x 4 sorts x 2 orders of /users), so no two requests
in flight are identical and nothing is coalesced; **coalesced**: every
connection asks for the same page, so identical in-flight upstream requests
are sent once. Each cell is the median of 3 runs; CPU is the server's own
accounting (/proc/PID/stat, its worker processes included) per request, the
figure that holds on a noisy machine; upstream requests per client request
are read from the proxy's /metrics.

    python bench/overhead.py [--seconds 10] [--runs 3] [--write-readme]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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
SIZES = range(51, 101)
SORTS = ("email", "last_seen", "steps_completed", "subscribed_at")
ORDERS = ("asc", "desc")
CONNECTIONS = 16


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
    bodies = {size: _page(size) for size in (*SIZES, 10)}
    first = re.compile(rb'"first":(\d+)|per_page=(\d+)')

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        found = first.search(body) or first.search(scope["query_string"])
        size = int(next(g for g in found.groups() if g)) if found else 10
        payload = bodies.get(size) or _page(size)
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
    rps: float
    p50: float
    p99: float
    cpu_us: float
    upstream_per_request: float | None


@dataclass
class Target:
    name: str
    base: str
    pid: int
    method: str = "GET"
    headers: dict[str, str] | None = None
    metrics: str | None = None  # the proxy's /metrics, for its upstream requests
    sofa: bool = False  # asks sofa-api's REST route, not the legacy one


def combos(distinct: bool) -> list[tuple[int, str, str]]:
    if not distinct:
        return [(100, "email", "asc")]
    return [(size, sort, order) for size in SIZES for sort in SORTS for order in ORDERS]


SORT_ENUM = {"email": "EMAIL", "last_seen": "LAST_ACTIVE", "steps_completed": "STEPS_COMPLETED",
             "subscribed_at": "SUBSCRIBED_AT"}


def sofa_paths(distinct: bool) -> list[str]:
    from urllib.parse import quote
    return ["/api/learning-plan-progress?input=" + quote(orjson.dumps({
        "filter": {"learningPlanId": PLAN}, "orderBy": SORT_ENUM[sort],
        "order": order.upper(), "first": size}).decode()) for size, sort, order in combos(distinct)]


def start_upstream() -> tuple[str, subprocess.Popen[bytes]]:
    """The precomputed upstream, 2 workers: (its URL, its process)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return url, start([sys.executable, str(Path(__file__)), "--serve", "upstream", "--port",
                       str(port), "--workers", "2"], {}, url)


def start_proxy(work: Path, upstream_url: str, workers: int = 1,
                env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """legacy-bridge serving TOKEN from `upstream_url`: (its URL, its process)."""
    from legacy_bridge.auth import digest

    tokens = work / "tokens.toml"
    tokens.write_text(
        f'[[tokens]]\nlabel = "bench"\nsha256 = "{digest(TOKEN)}"\nplans = ["*"]\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    return url, start([sys.executable, "-m", "legacy_bridge", "serve"], {
        "BRIDGE_UPSTREAM_URL": upstream_url, "BRIDGE_UPSTREAM_API_KEY": KEY,
        "BRIDGE_TOKENS_FILE": str(tokens), "BRIDGE_PORT": str(port),
        "BRIDGE_WORKERS": str(workers), "BRIDGE_LOG_LEVEL": "WARNING",
        "BRIDGE_STORE_URL": f"sqlite:///{work}/store-{workers}.sqlite3", **(env or {})},
        f"{url}/healthz")


def start_node_peers(upstream_url: str) -> list[tuple[str, subprocess.Popen[bytes], str]]:
    """The sofa-api peers, installed from their lock on first use; none without Node."""
    peer = Path(__file__).resolve().parent / "node-peer"
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("no Node.js: the sofa-api rows are left out", file=sys.stderr)
        return []
    if not (peer / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=peer,
                       check=True)
    peers = []
    for mode, name in (("fetch", "sofa-api (Node), plain fetch resolver"),
                       ("remote", "sofa-api (Node), standard remote schema")):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start(["node", str(peer / "server.mjs"), str(port), upstream_url, mode], {},
                        base + sofa_paths(False)[0])
        peers.append((name, process, base))
    return peers


def legacy_paths(distinct: bool) -> list[str]:
    return [f"/api/v2/plans/{PLAN}/users?per_page={size}&sort={sort}&order={order}"
            for size, sort, order in combos(distinct)]


def graphql_bodies(query: str, distinct: bool) -> list[bytes]:
    return [orjson.dumps({"query": query, "operationName": "LegacyUsers", "variables": {
        "input": {"filter": {"learningPlanId": PLAN}, "orderBy": SORT_ENUM[sort],
                  "order": order.upper(), "first": size}}})
            for size, sort, order in combos(distinct)]


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk_script(target: Target, paths: list[str], bodies: list[bytes] | None) -> str:
    """A wrk script that sends each of the requests in turn (made in `init`, once wrk
    knows the Host header: Node refuses a request without one)."""
    lines = ["local requests = {}", "init = function(args)"]
    headers = ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}"
                        for k, v in (target.headers or {}).items())
    for i, path in enumerate(paths):
        body = _lua_string(bodies[i].decode()) if bodies else "nil"
        lines.append(f"  requests[{i + 1}] = wrk.format({_lua_string(target.method)}, "
                     f"{_lua_string(path)}, {{{headers}}}, {body})")
    lines += ["end", "local i = 0", "request = function()", "  i = i % #requests + 1",
              "  return requests[i]", "end"]
    return "\n".join(lines) + "\n"


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(target: Target, script: Path, seconds: int) -> tuple[float, float, float, int]:
    """(req/s, p50 ms, p99 ms, requests) of one wrk run."""
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
                          "-s", str(script), target.base], capture_output=True, text=True,
                         check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"{target.name}: failed requests\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, p50, p99, done


def upstream_sent(metrics: str) -> float:
    text = httpx.get(metrics).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("bridge_upstream_requests_total{"))


def measure(target: Target, script: Path, seconds: int, runs: int) -> Result:
    wrk(target, script, 2)  # warm up: connections, caches, lazy imports
    samples = []
    for _ in range(runs):
        cpu_before = cpu_seconds(target.pid)
        sent_before = upstream_sent(target.metrics) if target.metrics else 0.0
        rps, p50, p99, done = wrk(target, script, seconds)
        cpu = cpu_seconds(target.pid) - cpu_before
        sent = (upstream_sent(target.metrics) - sent_before) / done if target.metrics else None
        samples.append(Result(rps, p50, p99, cpu / done * 1e6, sent))
    mid = statistics.median
    sent_all = [s.upstream_per_request for s in samples if s.upstream_per_request is not None]
    return Result(mid(s.rps for s in samples), mid(s.p50 for s in samples),
                  mid(s.p99 for s in samples), mid(s.cpu_us for s in samples),
                  mid(sent_all) if sent_all else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
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
    if shutil.which("wrk") is None:
        raise SystemExit("the load generator is wrk: apt-get install wrk")
    table = run(args.seconds, args.runs)
    print(table)
    if args.write_readme:
        from readme import write_section
        write_section("proxy-overhead", "make bench-overhead", table)


def run(seconds: int, runs: int) -> str:
    from legacy_bridge.mapping import load_mappings
    from legacy_bridge.query import connection_document

    users = next(r for r in load_mappings(ROOT / "mappings") if r.name == "users")
    query = connection_document(users.connection, "LegacyUsers", users.node_fields).text
    work = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    me = [sys.executable, str(Path(__file__))]
    upstream_url, upstream = start_upstream()
    processes = [upstream]
    targets = [Target("direct GraphQL call", upstream_url, upstream.pid, "POST",
                      {"Authorization": f"Token {KEY}", "Content-Type": "application/json"})]
    try:
        relay_port = free_port()
        relay = start([*me, "--serve", "relay", "--port", str(relay_port)],
                      {"RELAY_UPSTREAM": upstream_url}, f"http://127.0.0.1:{relay_port}/x")
        processes.append(relay)
        targets.append(Target("bare Starlette + httpx relay", f"http://127.0.0.1:{relay_port}",
                              relay.pid))
        for name, process, base in start_node_peers(upstream_url):
            processes.append(process)
            targets.append(Target(name, base, process.pid, sofa=True))
        for workers in (1, 2):
            base, proxy = start_proxy(work, upstream_url, workers)
            processes.append(proxy)
            targets.append(Target(f"legacy-bridge, {workers} worker{'s' * (workers > 1)}",
                                  base, proxy.pid,
                                  headers={"Authorization": f"Bearer {TOKEN}"},
                                  metrics=f"{base}/metrics"))
        rows: list[str] = []
        results: dict[tuple[str, str], Result] = {}
        for mode in ("distinct", "coalesced"):
            distinct = mode == "distinct"
            for target in targets:
                script = work / "load.lua"
                if target.method == "POST":
                    bodies = graphql_bodies(query, distinct)
                    script.write_text(wrk_script(target, [ENDPOINT] * len(bodies), bodies))
                elif target.sofa:
                    script.write_text(wrk_script(target, sofa_paths(distinct), None))
                else:
                    script.write_text(wrk_script(target, legacy_paths(distinct), None))
                r = results[(mode, target.name)] = measure(target, script, seconds, runs)
                per = "1.00 (by construction)" if r.upstream_per_request is None else \
                    f"{r.upstream_per_request:.2f}"
                rows.append(f"| {mode} | {target.name} | {r.rps:,.0f} | {r.p50:.1f} | "
                            f"{r.p99:.1f} | {r.cpu_us:,.0f} | {per} |")
        ours = results[("distinct", "legacy-bridge, 1 worker")]
        ratios = "\n".join(
            f"| legacy-bridge (1 worker) / {name} | {ours.rps / r.rps:.2f}× | "
            f"{ours.p99 / r.p99:.2f}× | {ours.cpu_us / r.cpu_us:.2f}× |"
            for (mode, name), r in results.items()
            if mode == "distinct" and not name.startswith(("legacy-bridge", "direct")))
    finally:
        for process in processes:
            stop(process)
    return "\n".join([
        f"wrk, 1 thread, {CONNECTIONS} connections, {seconds} s per run, median of {runs} "
        "runs. distinct: 400 different pages in turn (per_page 51..100 × 4 sorts × 2 "
        "orders of /users); coalesced: one page (per_page 100) for everyone. Upstream: "
        "precomputed answers, 2 workers; the relay and the Node peers 1 process each. CPU is "
        "the server's own (all its worker processes), per request.",
        "",
        "| load | target | req/s | p50 ms | p99 ms | server CPU µs/req | upstream requests "
        "per request |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Distinct load, ratios (req/s: higher is better; p99 and CPU: lower is better):",
        "",
        "| | req/s | p99 | server CPU per request |",
        "|---|---:|---:|---:|",
        ratios])


if __name__ == "__main__":
    main()
