"""Resident memory of the cursor checkpoint cache with 0, 100k and 1M checkpoints.

Each checkpoint is stored as the proxy stores it (query key, offset, and a
distinct cursor made by the emulator's own codec: a signed base64url
`body.signature`, as real upstreams hand out); the figure is the process's RSS
(/proc/self/status) after filling a fresh cache, in a fresh process each.

    python bench/memory.py [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

from legacy_bridge.emulator.cursors import CursorCodec

SIZES = [0, 100_000, 1_000_000]
FINGERPRINT = "5d7a26cd61bd5459"


CODEC = CursorCodec(b"bench")


def cursor(i: int) -> str:
    return CODEC.encode((f"2024-02-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z", i),
                        FINGERPRINT)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fill(count: int) -> tuple[float, float]:
    from legacy_bridge.pagination import MemoryCheckpoints

    before = rss_mib()
    cache = MemoryCheckpoints(size=max(count, 1), ttl=3600)
    queries = [f"scope-{q:04d}|/api/public/api/v1/x/graphql|[[\"filter.learningPlanId\",\"p\"]]"
               for q in range(100)]

    async def run() -> None:
        for i in range(count):
            # 100 queries, each crawled to 10,000 pages: offsets grow per query
            await cache.store(queries[i % 100], (i // 100 + 1) * 100, cursor(i))

    asyncio.run(run())
    assert len(cache) == count
    return before, rss_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        before, after = fill(args.one)
        print(f"{before:.1f} {after:.1f}")
        return
    rows = []
    for size in SIZES:
        out = subprocess.run([sys.executable, __file__, "--one", str(size)], check=True,
                             capture_output=True, text=True).stdout.split()
        before, after = float(out[0]), float(out[1])
        per = f"{(after - before) * 1024 * 1024 / size:.0f}" if size else "-"
        rows.append(f"| {size:,} | {after:.0f} | {after - before:.0f} | {per} |")
    table = "\n".join([
        f"Cursors of about {len(cursor(500_000))} characters (the emulator's signed base64url), "
        "100 queries; RSS of a fresh process after filling the cache.",
        "",
        "| checkpoints | RSS MiB | of which the cache, MiB | bytes per checkpoint |",
        "|---:|---:|---:|---:|", *rows])
    print(table)
    if args.write_readme:
        from readme import write_section
        write_section("memory", "make bench-memory", table)


if __name__ == "__main__":
    main()
