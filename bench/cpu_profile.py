"""Where a translated request's CPU goes: py-spy samples of the served proxy (one
worker) under the distinct load of bench/overhead.py, each busy sample given to
the innermost part of the stack it belongs to.

    python bench/cpu_profile.py [--seconds 15] [--cpu-us N] [--source DIR]

`--cpu-us` (CPU per request from bench/overhead.py) adds a µs column; `--source`
profiles another checkout's `src` (a before/after comparison).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # the servers and the load, shared

PARTS = [
    ("upstream HTTP client (http1.py or httpcore, httpx's models, asyncio)",
     ("httpx/", "httpcore/", "h11/", "anyio/", "legacy_bridge/transport.py",
      "legacy_bridge/http1.py", "asyncio/streams.py", "sniffio/", "asyncio/tasks.py")),
    ("reading the upstream answer (orjson parse, size cap, inflate)",
     ("legacy_bridge/upstream.py",)),
    ("rewrite to legacy items (generated function, transforms)",
     ("toml>", "legacy_bridge/transforms.py", "legacy_bridge/rewrite.py")),
    ("ASGI server and framework (uvicorn, starlette)", ("uvicorn/", "starlette/")),
    ("the proxy's middleware (request log, size gate, headers)",
     ("legacy_bridge/middleware.py", "legacy_bridge/logs.py", "structlog/", "uuid.py")),
    ("paging and checkpoints",
     ("legacy_bridge/pagination.py", "legacy_bridge/cursorpack.py", "cachetools/")),
    ("route, parameters, auth, pipeline",
     ("legacy_bridge/rest.py", "legacy_bridge/params.py", "legacy_bridge/paramtypes.py",
      "legacy_bridge/auth.py", "legacy_bridge/pipeline.py", "legacy_bridge/routes.py",
      "legacy_bridge/query.py")),
    ("usage counting", ("legacy_bridge/usage.py",)),
    ("metrics and tracing", ("prometheus_client/", "legacy_bridge/metrics.py",
                             "legacy_bridge/tracing.py", "opentelemetry", "legacy_bridge/app.py")),
    ("writing the answer (orjson dumps, response)", ("legacy_bridge/responses.py",)),
]
OTHER = "event loop, timeouts, other"
IDLE = "Runner.run (asyncio/runners.py"  # the loop waiting: not the request's CPU


def shares(raw: Path) -> dict[str, float]:
    """Each part's share of the busy samples in py-spy's raw (collapsed) output."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        frames = stack.split(";")
        if IDLE in frames[-1]:
            continue
        part = next((name for frame in reversed(frames) for name, keys in PARTS
                     if any(key in frame for key in keys)), OTHER)
        counts[part] += int(n)
    total = sum(counts.values())
    return {name: counts[name] / total for name in [*(n for n, _ in PARTS), OTHER]}


def record(seconds: int, source: Path | None) -> Path:
    work = Path(tempfile.mkdtemp(prefix="bridge-profile-"))
    upstream_url, upstream = overhead.start_upstream()
    base, proxy = overhead.start_proxy(
        work, upstream_url, env={"PYTHONPATH": str(source)} if source is not None else None)
    try:
        target = overhead.Target("proxy", base, proxy.pid,
                                 headers={"Authorization": f"Bearer {overhead.TOKEN}"})
        script = work / "load.lua"
        script.write_text(overhead.wrk_script(target, overhead.legacy_paths(True), None))
        load = subprocess.Popen(["wrk", "-t1", f"-c{overhead.CONNECTIONS}",
                                 f"-d{seconds + 6}s", "-s", str(script), target.base],
                                stdout=subprocess.DEVNULL)
        time.sleep(3)  # warm
        raw = work / "profile.raw"
        subprocess.run([str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                        str(proxy.pid), "-d", str(seconds), "-r", "250", "-f", "raw", "-o",
                        str(raw)], check=True, capture_output=True)
        load.wait()
        return raw
    finally:
        overhead.stop(proxy)
        overhead.stop(upstream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--cpu-us", type=float)
    parser.add_argument("--source", type=Path, help="profile this src folder instead")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("py-spy attaches to another process: run as root (or with ptrace rights)",
              file=sys.stderr)
    found = shares(record(args.seconds, args.source))
    print("| part | share | µs |" if args.cpu_us else "| part | share |")
    print("|---|---:|---:|" if args.cpu_us else "|---|---:|")
    for name, share in found.items():
        micro = f" {share * args.cpu_us:,.0f} |" if args.cpu_us else ""
        print(f"| {name} | {share * 100:.0f}% |{micro}")


if __name__ == "__main__":
    main()
