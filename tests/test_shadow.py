"""The shadow queue: comparisons run on BRIDGE_SHADOW_WORKERS workers, bounded, counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from legacy_bridge.metrics import Metrics
from legacy_bridge.shadow import Reply, Shadow, ShadowJob
from legacy_bridge.store import Store


def figures(shadow: list[Shadow]) -> dict[str, float]:
    return {"hits": 0, "misses": 0, "size": 0, "failures": 0, "coalesced": 0,
            "shadow_queue": shadow[0].queue.qsize() if shadow else 0}


async def test_comparisons_run_on_as_many_workers_as_set(tmp_path: Path) -> None:
    """Each comparison waits on the other side's answer: with 3 workers, 3 wait at once."""
    held: list[Shadow] = []
    store = Store(f"sqlite:///{tmp_path}/s.sqlite3")
    shadow = Shadow(store, Metrics(lambda: figures(held)), size=10, sample_rate=1.0)
    held.append(shadow)
    waiting, release = 0, asyncio.Event()

    async def other() -> Reply:
        nonlocal waiting
        waiting += 1
        await release.wait()
        return Reply(200, b"{}")

    for n in range(5):
        shadow.offer(ShadowJob("users", f"/r{n}", "legacy", Reply(200, b"{}"), other,
                               lambda a, b: (True, [])))
    workers = [asyncio.create_task(shadow.run()) for _ in range(3)]
    while waiting < 3:
        await asyncio.sleep(0)
    for _ in range(20):  # let any fourth worker (there is none) reach the queue
        await asyncio.sleep(0)
    assert waiting == 3 and shadow.queue.qsize() == 2
    assert b"bridge_shadow_queue 2.0" in shadow.metrics.exposition()
    release.set()
    await shadow.queue.join()
    for worker in workers:
        worker.cancel()
    assert shadow.done == 5 and len(store.comparisons()) == 5
    store.close()
