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
import asyncio
import math
import tempfile
from pathlib import Path

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.auth import digest
from legacy_bridge.emulator.app import (
    DEMO_API_KEY,
    DEMO_COMPANY_TOKEN,
    EmulatorConfig,
    create_emulator_app,
)
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, DatasetSpec, ensure
from legacy_bridge.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
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
            headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}) as client:
        for page in pages:
            response = await client.get(f"/api/v2/plans/{DEMO_PLAN_ID}/{route}"
                                        f"?page={page}&per_page={per_page}")
            assert response.status_code == 200 and response.json()["results"], response.text
        received = proxy.state.bridge.upstream.received_bytes
    main = controls.counts[ROUTES[route]]
    joins = sum(controls.counts.values()) - main
    return main, joins, received


async def run(args: argparse.Namespace) -> str:
    dataset = ensure(DatasetSpec(seed=42, learners=args.learners, plans=1), ROOT / ".data")
    emulator = create_emulator_app(EmulatorConfig(dataset, controls=True))
    tokens = Path(tempfile.mkdtemp()) / "tokens.toml"
    tokens.write_text(f'[[tokens]]\nlabel = "bench"\nsha256 = "{digest(DEMO_COMPANY_TOKEN)}"\n'
                      'plans = ["*"]\n')
    base = Settings(upstream_url="http://upstream", upstream_api_key=SecretStr(DEMO_API_KEY),
                    tokens_file=tokens, mappings_dir=ROOT / "mappings")
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--learners", type=int, default=20_000)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    table = asyncio.run(run(args))
    print(table)
    if args.write_readme:
        from readme import write_section
        write_section("upstream-efficiency", "make bench-efficiency", table)


if __name__ == "__main__":
    main()
