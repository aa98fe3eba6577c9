"""What one SQL statement on the Data API costs: upstream requests and time.

Proxy and emulator in one process (ASGI), a company of ~40,000 progress
records. Each statement is answered by the proxy (SQL translated to GraphQL)
and by the emulator's legacy Data API (the same SQL evaluated directly in
SQLite); the rows must agree (as a multiset, or in order when the ORDER BY is
total) or the bench stops. Upstream requests are counted on the first run
(the catalog is then cached for BRIDGE_CATALOG_TTL); times are medians.

    python bench/data_api.py [--runs 5] [--write-readme]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Any

import httpx

from harness import AUTH, bench_main, company
from legacy_bridge.app import create_app
from legacy_bridge.sqlmap import load_data_api
from legacy_bridge.sqlplan import plan

PATH = "/api/emc/reports/query"
# (label, SQL, whether the order is total so rows compare in order)
STATEMENTS = [
    ("seed 003: graduated since 2026 (filter kept in the proxy)",
     "SELECT email, nd_title, graduated_at::DATE FROM roster_v1 WHERE graduated_at IS NOT NULL "
     "AND graduated_at::date > '2026-01-01'::DATE", False),
    ("seed 003: enrolled by last activity (all pushed down)",
     "SELECT email, last_seen, enrollment_state FROM roster_v1 "
     "WHERE enrollment_state = 'enrolled' ORDER BY last_seen ASC", False),
    ("first 10 enrolled by email (early stop)",
     "SELECT email, node_key FROM roster_v1 WHERE enrollment_state = 'enrolled' "
     "ORDER BY email LIMIT 10", True),
    ("COUNT(*) of two states (totalCount)",
     "SELECT COUNT(*) FROM roster_v1 WHERE enrollment_state IN ('enrolled', 'graduated')", True),
    ("COUNT(*) GROUP BY state (totalCount per group)",
     "SELECT enrollment_state, COUNT(*) FROM roster_v1 GROUP BY enrollment_state "
     "ORDER BY enrollment_state", True),
    ("COUNT(*) GROUP BY program (catalog + totalCount per group)",
     "SELECT node_key, COUNT(*) FROM roster_v1 GROUP BY node_key ORDER BY node_key", True),
    ("two sort keys (sorted in the proxy)",
     "SELECT email, last_seen FROM roster_v1 WHERE enrollment_state = 'enrolled' "
     "ORDER BY last_seen DESC NULLS LAST, email", True),
    ("every column, every row (export)", "SELECT * FROM roster_v1", False),
]


class Timed:
    """The emulator, timed: the sum of its requests' wall time."""

    def __init__(self, app: Any) -> None:
        self.app, self.ms = app, 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.ms += (time.perf_counter() - started) * 1000


async def answer(client: httpx.AsyncClient, sql: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = await client.post(PATH, content=sql, headers={"content-type": "text/plain"})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{sql}\n-> {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def same_rows(ours: dict[str, Any], theirs: dict[str, Any], ordered: bool) -> bool:
    if ours["columns"] != theirs["columns"]:
        return False
    if ordered:
        return bool(ours["rows"] == theirs["rows"])
    return Counter(map(repr, ours["rows"])) == Counter(map(repr, theirs["rows"]))


async def run(args: argparse.Namespace) -> str:
    emulator, settings = company(args.learners)
    api = load_data_api(settings.mappings_dir)
    assert api is not None
    counts = emulator.state.controls.counts
    lines = []
    for label, sql, ordered in STATEMENTS:
        upstream = Timed(emulator)
        proxy = create_app(settings, transport=httpx.ASGITransport(app=upstream))
        async with proxy.router.lifespan_context(proxy), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=proxy), base_url="http://proxy",
                headers=AUTH) as bridged, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=emulator), base_url="http://upstream",
                headers=AUTH) as legacy:
            counts.clear()
            ours_ms, upstream_ms, ours = [], [], []
            for _ in range(args.runs):
                upstream.ms = 0.0
                elapsed, body = await answer(bridged, sql)
                ours_ms.append(elapsed)
                upstream_ms.append(upstream.ms)
                ours.append(body)
                if len(ours) == 1:
                    first_run = dict(counts)
            theirs_ms, theirs = [], {}
            for _ in range(args.runs):
                elapsed, theirs = await answer(legacy, sql)
                theirs_ms.append(elapsed)
        if not same_rows(ours[0], theirs, ordered):
            raise SystemExit(f"the proxy and the legacy Data API disagree on: {sql}")
        query_plan = plan(sql, api)
        pushed = " ".join(query_plan.pushed)
        where = ("proxy" if query_plan.residual is not None
                 else "upstream" if "WHERE" in pushed else "-")
        order = "proxy" if query_plan.sort else "upstream" if "ORDER BY" in pushed else "-"
        pages = first_run.get(api.api, 0)
        lines.append(
            f"| {label} | {ours[0]['row_count']:,} | {pages} | {first_run.get('catalog', 0)} | "
            f"{where} | {order} | "
            f"{statistics.median(ours_ms):.1f} | {statistics.median(upstream_ms):.1f} | "
            f"{statistics.median(theirs_ms):.1f} |")
    return "\n".join([
        f"A company of ~{args.learners * 2:,} progress records; upstream pages of "
        f"{api.max_first}; {args.runs} runs per statement, medians; every answer checked "
        "against the legacy Data API's own rows. Requests are the first run's (the catalog "
        "is cached after it). Upstream time is the sum of the emulator's requests (the "
        "grouped counts send theirs concurrently, so it can exceed the total).",
        "",
        "| statement | rows | program-progress requests | catalog requests | WHERE in "
        "| ORDER BY in | through the proxy, ms | of which upstream GraphQL, ms "
        "| legacy Data API (SQLite), ms |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|",
        *lines])


def main() -> None:
    bench_main(__doc__ or "", "data-api", "make bench-data-api", run,
               runs=5, learners=20_000)


if __name__ == "__main__":
    main()
