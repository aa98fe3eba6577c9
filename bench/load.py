"""Bounded load test: concurrent legacy clients, upstream latency, a fault burst mid-run.

Starts the emulator and the proxy as real processes on loopback, runs
`--clients` concurrent clients for `--seconds` (each crawling routes page by
page with random page sizes, plus cold deep pages), injects a burst of
upstream faults at one third, and reports requests, errors by kind, p50/p99,
how soon after the burst the proxy answered 200 again, and its RSS. Clients
honour Retry-After on 429 and 503, as well-behaved integrations do. Loopback
only; every loop is bounded by time and count; it stops by itself.

    python bench/load.py [--clients 20] [--seconds 30] [--latency-ms 5] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from legacy_bridge.auth import digest
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_COMPANY_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from overhead import free_port

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ["progress", "users", "assessment-attempts"]
# The burst: back-to-back windows in which every upstream request fails this way.
BURST = [("http_502", 1.0), ("drop", 0.5), ("http_500", 0.5), ("timeout", 0.5),
         ("malformed_json", 0.5), ("http_429", 0.5), ("http_503", 2.0)]
MAX_REQUESTS_PER_CLIENT = 100_000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


async def client(base: str, stop_at: float, stats: Counter[str],
                 latencies: list[float], oks: list[float], seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        sent = 0
        while time.monotonic() < stop_at and sent < MAX_REQUESTS_PER_CLIENT:
            route, per_page = rng.choice(ROUTES), rng.choice([10, 25, 50, 100])
            pages = [rng.randint(1, 30)] if rng.random() < 0.2 else range(1, 6)
            for page in pages:
                if time.monotonic() >= stop_at:
                    break
                url = f"/api/v2/plans/{DEMO_PLAN_ID}/{route}?page={page}&per_page={per_page}"
                started = time.perf_counter()
                try:
                    response = await http.get(url)
                    kind = (str(response.status_code) if response.status_code == 200 else
                            f"{response.status_code} {response.json()['error']['code']}")
                except httpx.HTTPError as exc:
                    kind = f"client error {type(exc).__name__}"
                latencies.append((time.perf_counter() - started) * 1000)
                stats[kind] += 1
                if kind == "200":
                    oks.append(time.monotonic())
                elif kind.startswith(("429", "503")):
                    wait = float(response.headers.get("retry-after", "1"))
                    await asyncio.sleep(min(wait, max(0.0, stop_at - time.monotonic())))
                sent += 1


async def run(args: argparse.Namespace, proxy: str, upstream: str,
              proxy_pid: int) -> tuple[Counter[str], list[float], float, float]:
    stats: Counter[str] = Counter()
    latencies: list[float] = []
    oks: list[float] = []
    await asyncio.to_thread(httpx.post, f"{upstream}/_emulator/latency",
                            json={"ms": args.latency_ms})
    stop_at = time.monotonic() + args.seconds
    clients = [asyncio.create_task(client(proxy, stop_at, stats, latencies, oks, seed))
               for seed in range(args.clients)]
    await asyncio.sleep(args.seconds / 3)
    start_in = 0.0
    async with httpx.AsyncClient() as http:
        for kind, seconds in BURST:
            await http.post(f"{upstream}/_emulator/faults", json={
                "kind": kind, "seconds": seconds, "start_in": start_in, "timeout_seconds": 3})
            start_in += seconds
    burst_end = time.monotonic() + start_in
    await asyncio.sleep(start_in)
    peak = rss_mib(proxy_pid)
    await asyncio.gather(*clients)
    recovered = min((t for t in oks if t > burst_end), default=float("nan")) - burst_end
    return stats, latencies, peak, recovered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--latency-ms", type=float, default=5)
    parser.add_argument("--learners", type=int, default=3000)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bridge-load-"))
    tokens = work / "tokens.toml"
    tokens.write_text(f'[[tokens]]\nlabel = "load"\nsha256 = "{digest(DEMO_COMPANY_TOKEN)}"\n'
                      'plans = ["*"]\n')
    up_port, proxy_port = free_port(), free_port()
    upstream, proxy = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{proxy_port}"
    cli = [sys.executable, "-m", "legacy_bridge"]
    emulator = subprocess.Popen(
        [*cli, "emulate", "--port", str(up_port), "--controls", "--learners",
         str(args.learners), "--data-dir", str(ROOT / ".data")], cwd=ROOT,
        stderr=subprocess.DEVNULL)  # the emulator logs each dropped connection it fakes
    env = {**os.environ, "BRIDGE_UPSTREAM_URL": upstream, "BRIDGE_UPSTREAM_API_KEY": DEMO_API_KEY,
           "BRIDGE_TOKENS_FILE": str(tokens), "BRIDGE_PORT": str(proxy_port),
           "BRIDGE_UPSTREAM_TIMEOUT": "1", "BRIDGE_LOG_LEVEL": "WARNING"}
    bridge = subprocess.Popen([*cli, "serve"], cwd=ROOT, env=env)
    try:
        wait_ready(f"{upstream}/healthz", emulator)
        wait_ready(f"{proxy}/healthz", bridge)
        before = rss_mib(bridge.pid)
        stats, latencies, peak, recovered = asyncio.run(run(args, proxy, upstream, bridge.pid))
        after = rss_mib(bridge.pid)
    finally:
        for process in (bridge, emulator):
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    total = sum(stats.values())
    errors = "; ".join(f"{kind}: {n}" for kind, n in sorted(stats.items()) if kind != "200")
    q = statistics.quantiles(latencies, n=100)
    table = "\n".join([
        f"{args.clients} clients for {args.seconds:.0f} s, upstream latency "
        f"{args.latency_ms:.0f} ms; at one third, a burst in which every upstream request "
        "fails, back to back: " + ", ".join(f"{k} {s:g} s" for k, s in BURST) + ".",
        "",
        "| requests | answered 200 | other answers (status code: count) | p50 ms | p99 ms "
        "| first 200 after the burst | proxy RSS before → peak → after (MiB) |",
        "|---:|---:|---|---:|---:|---:|---|",
        f"| {total:,} | {stats['200']:,} | {errors or 'none'} | {q[49]:.1f} | {q[98]:.1f} "
        f"| {recovered:.1f} s | {before:.0f} → {peak:.0f} → {after:.0f} |",
    ])
    print(table)
    if args.write_readme:
        from readme import write_section
        write_section("reliability-load", "python bench/load.py --write-readme", table)


if __name__ == "__main__":
    main()
