"""How long the emulator takes to serve page 1 and a page 900,000 records deep.

A plan of about a million program-progress records is generated once (cached
under .data/bench, a few minutes the first time). The deep page's cursor is
minted with the emulator's own codec for the record at offset 900,000, so the
figure is the cost of one keyset page, not of the walk that would reach it.
Requests go through the full GraphQL-over-HTTP app in process (ASGI).

    python bench/emulator_paging.py [--learners 520000] [--runs 30] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import httpx

from legacy_bridge.emulator.app import DEMO_API_KEY, EmulatorConfig, create_emulator_app
from legacy_bridge.emulator.cursors import CursorCodec, fingerprint
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, DatasetSpec, ensure
from legacy_bridge.emulator.store import PROGRAM_PROGRESS, Store

DEPTH = 900_000
QUERY = ("query($input: ProgramProgressInput!) { programProgress(input: $input) { totalCount "
         "pageInfo { hasNextPage endCursor } edges { cursor node { userId userEmail "
         "programKey enrollmentStatus lastActiveAt completionPercentage } } } }")
ORDERS = [None, "EMAIL", "ENROLLMENT_STATUS", "LAST_ACTIVE", "LEARNING_TIME"]


def deep_cursor(store: Store, codec: CursorCodec, order_by: str | None, depth: int) -> str:
    column = PROGRAM_PROGRESS.order_keys[order_by] if order_by else "id"
    (row,) = store.query(f"SELECT {column}, id FROM program_progress WHERE plan_id = ? "
                         f"ORDER BY {column}, id LIMIT 1 OFFSET ?", (DEMO_PLAN_ID, depth - 1))
    filters = {"learningPlanId": DEMO_PLAN_ID}
    return codec.encode((row[0], row[1]), fingerprint("program-progress", filters, order_by,
                                                      "ASC"))


async def timed(client: httpx.AsyncClient, variables: dict[str, object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        response = await client.post("/api/public/api/v1/program-progress/graphql",
                                     json={"query": QUERY, "variables": variables},
                                     headers={"Authorization": f"Token {DEMO_API_KEY}"})
        samples.append((time.perf_counter() - start) * 1000)
        edges = response.json()["data"]["programProgress"]["edges"]
        assert len(edges) == 100, response.text[:200]
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=520_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    dataset = ensure(DatasetSpec(seed=42, learners=args.learners, plans=1), Path(".data/bench"))
    secret = b"bench"
    app = create_emulator_app(EmulatorConfig(dataset, cursor_secret=secret))
    store, codec = Store(dataset), CursorCodec(secret)
    total = store.count(PROGRAM_PROGRESS, {"learningPlanId": DEMO_PLAN_ID})
    depth = min(DEPTH, total - 100)
    rows = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://emulator") as client:
        for order_by in ORDERS:
            base: dict[str, object] = {"first": 100, "filter": {"learningPlanId": DEMO_PLAN_ID}}
            if order_by:
                base["orderBy"] = order_by
            await timed(client, {"input": base}, 2)  # warm: parse cache, totalCount
            first = await timed(client, {"input": base}, args.runs)
            after = deep_cursor(store, codec, order_by, depth)
            deep = await timed(client, {"input": {**base, "after": after}}, args.runs)
            rows.append(f"| {order_by or '(identity)'} | {statistics.median(first):.2f} | "
                        f"{max(first):.2f} | {statistics.median(deep):.2f} | {max(deep):.2f} |")
    table = "\n".join([
        f"Plan of {total:,} records; page of 100; {args.runs} runs each; milliseconds.",
        "",
        f"| orderBy | page 1 median | page 1 max | {depth:,} deep median | deep max |",
        "|---|---:|---:|---:|---:|", *rows])
    print(table)
    if args.write_readme:
        from readme import write_section
        write_section("emulator-paging", "make bench-emulator", table)


if __name__ == "__main__":
    asyncio.run(main())
