"""Course progress: what a position save, a completion and a read cost.

Proxy and the emulator's Learning Path API in one process (ASGI), the proxy's
store a SQLite file, as one replica runs it. Upstream requests per legacy call
are counted from the emulator's own log; latencies are medians and 99th
percentiles over the calls. Completions run on a fresh emulator each time (a
lesson completes once).

    python bench/course_progress.py [--saves 2000] [--completions 30] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from harness import ROOT, bench_main
from legacy_bridge.app import create_app
from legacy_bridge.auth import digest
from legacy_bridge.emulator.app import (
    DEMO_API_KEY,
    DEMO_LEARNER2_TOKEN,
    DEMO_LEARNER_TOKEN,
    EmulatorConfig,
    create_emulator_app,
)
from legacy_bridge.emulator.dataset import DatasetSpec, ensure
from legacy_bridge.emulator.learning_path import ANA, AUTH_TOKENS, BEN
from legacy_bridge.settings import Settings

USERS = {DEMO_LEARNER_TOKEN: ANA, DEMO_LEARNER2_TOKEN: BEN}
LESSONS = [(42, 101), (42, 102), (42, 103), (43, 201)]


def _settings(work: Path) -> Settings:
    tokens, learners = work / "tokens.toml", work / "learners.toml"
    tokens.write_text("".join(f'[[tokens]]\nlabel = "u{n}"\nsha256 = "{digest(token)}"\n'
                              f'user_id = "{user}"\n\n'
                              for n, (token, user) in enumerate(USERS.items())))
    learners.write_text("".join(f'[[learners]]\nuser_id = "{user}"\nauth_token = "{token}"\n\n'
                                for token, user in AUTH_TOKENS.items()))
    return Settings(upstream_url="http://upstream", upstream_api_key=SecretStr(DEMO_API_KEY),
                    tokens_file=tokens, learners_file=learners,
                    mappings_dir=ROOT / "mappings",
                    store_url=f"sqlite:///{work}/store-{time.monotonic_ns()}.sqlite3")


class Rig:
    """A fresh emulator and proxy; `calls` times each call and counts upstream requests."""

    def __init__(self, dataset: Path, work: Path) -> None:
        self.emulator: Starlette = create_emulator_app(EmulatorConfig(dataset))
        self.app = create_app(_settings(work), transport=httpx.ASGITransport(app=self.emulator))

    def requests(self) -> int:
        return int(self.emulator.state.controls.counts["learning-path"])

    async def calls(self, send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
                    count: int, concurrency: int = 1, warm: bool = True
                    ) -> tuple[list[float], int, float]:
        """(latencies ms, upstream requests, wall seconds) of `count` calls."""
        async with self.app.router.lifespan_context(self.app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app), base_url="http://proxy") as c:
            if warm:
                await send(c, -1)  # a warm-up call, also creating rows the calls need
            before, latencies = self.requests(), []
            queue = iter(range(count))

            async def worker() -> None:
                for n in queue:
                    started = time.perf_counter()
                    answer = await send(c, n)
                    latencies.append((time.perf_counter() - started) * 1000)
                    if answer.status_code != 200:
                        raise SystemExit(f"{answer.status_code} {answer.text[:200]}")

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, self.requests() - before, time.perf_counter() - started


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def save(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
    """Position saves of Ana's and Ben's lessons in turn (rows exist after the warm-up)."""
    token = DEMO_LEARNER_TOKEN if n % 2 else DEMO_LEARNER2_TOKEN
    course, lesson = LESSONS[(n // 2) % len(LESSONS)]
    return client.post("/api/progress", headers=_auth(token), json={
        "course_id": course, "lesson_id": lesson, "video_progress": n + 0.5,
        "last_position": n})


def read(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
    return client.get("/api/progress?courseId=42", headers=_auth(DEMO_LEARNER_TOKEN))


def read_all(client: httpx.AsyncClient, n: int) -> Awaitable[httpx.Response]:
    return client.get("/api/progress", headers=_auth(DEMO_LEARNER_TOKEN))


def _row(label: str, latencies: list[float], requests: int, seconds: float) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"| {label} | {requests / len(latencies):.2f} | {len(latencies) / seconds:,.0f} | "
            f"{statistics.median(latencies):.2f} | {p99:.2f} |")


async def run(args: argparse.Namespace) -> str:
    dataset = ensure(DatasetSpec(seed=42, learners=50, plans=1), ROOT / ".data")
    work = Path(tempfile.mkdtemp(prefix="bridge-bench-progress-"))

    async def warm_saves(client: httpx.AsyncClient, n: int) -> httpx.Response:
        if n >= 0:
            return await save(client, n)
        for k in range(2 * len(LESSONS)):  # every (learner, lesson) row exists
            await save(client, k)
        return httpx.Response(200)

    lines = []
    for label, send, count, concurrency in [
            ("position save, known row (sequential)", warm_saves, args.saves, 1),
            ("position save, known row (16 concurrent)", warm_saves, args.saves, 16),
            ("GET ?courseId=42", read, args.saves // 4, 1),
            ("GET without courseId (2 mapped courses)", read_all, args.saves // 4, 1)]:
        latencies, requests, seconds = await Rig(dataset, work).calls(send, count, concurrency)
        lines.append(_row(label, latencies, requests, seconds))

    new_rows, completions = [], []
    new_requests = completion_requests = 0

    async def new_row(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.post("/api/progress", headers=_auth(DEMO_LEARNER_TOKEN),
                                 json={"course_id": 42, "lesson_id": 103, "video_progress": 1})

    async def complete(client: httpx.AsyncClient, n: int) -> httpx.Response:
        return await client.post("/api/progress", headers=_auth(DEMO_LEARNER_TOKEN),
                                 json={"course_id": 42, "lesson_id": 101, "completed": True})

    for _ in range(args.completions):  # a row is new, and a lesson completes, once
        latencies, requests, _ = await Rig(dataset, work).calls(new_row, 1, warm=False)
        new_rows += latencies
        new_requests += requests
        latencies, requests, _ = await Rig(dataset, work).calls(complete, 1, warm=False)
        completions += latencies
        completion_requests += requests
    seconds = sum(new_rows) / 1000
    lines.append(_row("position save, new row", new_rows, new_requests, seconds))
    lines.append(_row("completion of a 2-topic lesson (1 read + 2 mutations)", completions,
                      completion_requests, sum(completions) / 1000))
    return "\n".join([
        f"In-process (ASGI) emulator and proxy, SQLite store; {args.saves:,} saves, "
        f"{args.completions} completions on fresh rigs. Upstream requests are exact counts "
        "from the emulator's log; calls/s of the sequential rows is 1 / latency.",
        "",
        "| legacy call | upstream requests per call | calls/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
        *lines])


def main() -> None:
    bench_main(__doc__ or "", "course-progress", "make bench-course-progress", run,
               saves=2000, completions=30)


if __name__ == "__main__":
    main()
