"""How many upstream requests (and bytes) one legacy page costs.

Proxy and emulator in one process (ASGI), one plan of ~40,000 records. For
each route: a sequential crawl of --pages pages, and cold single pages at
several depths (a fresh proxy each, so no checkpoint helps), with the
checkpoint cache on, and with it off (the naive strategy: every page walks
from the start). /progress join requests are counted separately.

    python bench/upstream_efficiency.py [--pages 40] [--per-page 50] [--write-readme]
"""

from __future__ import annotations

import argparse
import math

import httpx
from starlette.applications import Starlette

from harness import AUTH, bench_main, company
from legacy_bridge.app import create_app
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.settings import Settings

ROUTES = {"progress": "program-progress", "users": "learning-plan-progress",
          "assessment-attempts": "assessment-progress"}
DEPTHS = [2, 10, 50, 200]


async def crawl(emulator: Starlette, settings: Settings, route: str,
                pages: list[int], per_page: int) -> tuple[int, int, int]:
    """(main API requests, join requests, bytes received) for reading `pages` in order."""
    proxy = create_app(settings, transport=httpx.ASGITransport(app=emulator))
    controls = emulator.state.controls
    controls.counts.clear()
    async with proxy.router.lifespan_context(proxy), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=proxy), base_url="http://proxy",
            headers=AUTH) as client:
        for page in pages:
            response = await client.get(f"/api/v2/plans/{DEMO_PLAN_ID}/{route}"
                                        f"?page={page}&per_page={per_page}")
            assert response.status_code == 200 and response.json()["results"], response.text
        received = proxy.state.bridge.upstream.received_bytes
    main = controls.counts[ROUTES[route]]
    joins = sum(controls.counts.values()) - main
    return main, joins, received


async def run(args: argparse.Namespace) -> str:
    emulator, base = company(args.learners)
    strategies = {"checkpoints": base,
                  "naive (no checkpoints)": base.model_copy(update={"cursor_cache_size": 0})}
    n = args.per_page
    rows = []
    for route in ROUTES:
        for name, settings in strategies.items():
            main, joins, received = await crawl(emulator, settings, route,
                                                list(range(1, args.pages + 1)), n)
            cold = [(await crawl(emulator, settings, route, [k], n))[0] for k in DEPTHS]
            join_text = f"{joins / args.pages:.2f}" if joins else "-"
            rows.append(f"| /{route} | {name} | {main / args.pages:.2f} | {join_text} | "
                        f"{received / args.pages / 1024:.1f} | "
                        + " | ".join(str(c) for c in cold) + " |")
    bound = " / ".join(str(math.ceil((k - 1) * n / 100) + 1) for k in DEPTHS)
    return "\n".join([
        f"Plan of ~{args.learners * 2:,} records; per_page {n}; sequential crawl of "
        f"{args.pages} pages; cold page k read by a fresh proxy. Bound for cold pages, "
        f"ceil((k-1)·{n}/100)+1: {bound}.",
        "",
        "| route | strategy | upstream requests per page (crawl) | join requests per page "
        "| KiB fetched per page | " + " | ".join(f"cold page {k}" for k in DEPTHS) + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(DEPTHS),
        *rows])


def main() -> None:
    bench_main(__doc__ or "", "upstream-efficiency", "make bench-efficiency", run,
               pages=40, per_page=50, learners=20_000)


if __name__ == "__main__":
    main()
