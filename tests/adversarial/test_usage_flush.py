"""Issue 14, item 8: one failed usage flush must not end usage flushing, nor lose counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from legacy_bridge import usage as usage_module
from legacy_bridge.store import Store, UsageRow
from legacy_bridge.usage import Usage


class FlakyStore(Store):
    """A store whose next `failures` writes fail, as a restarting database's would."""

    failures = 0

    def add_usage(self, rows: list[UsageRow]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("the store is restarting")
        super().add_usage(rows)


def counts(store: Store) -> dict[tuple[str, str], int]:
    return {(r.kind, r.name): r.count for r in store.usage()}


async def test_counts_survive_a_failed_flush(tmp_path: Path) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path}/s.sqlite3", 100, 30)
    usage = Usage(store)
    usage.record("a", "users", ["page"], [])
    store.failures = 1
    with pytest.raises(OSError):
        await usage.flush()
    usage.record("a", "users", ["page"], [])  # counted meanwhile
    await usage.flush()
    assert counts(store) == {("request", ""): 2, ("param", "page"): 2}
    await store.aclose()


async def test_the_flush_loop_backs_off_and_goes_on(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path}/s.sqlite3", 100, 30)
    usage = Usage(store)
    waits: list[float] = []
    written = asyncio.Event()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:  # no waiting, only the record of it
        waits.append(seconds)
        if counts(store):
            written.set()
        await real_sleep(0)

    monkeypatch.setattr(usage_module.asyncio, "sleep", sleep)
    usage.record("a", "users", [], [])
    store.failures = 3
    loop = asyncio.create_task(usage.run(10, most=60))
    await asyncio.wait_for(written.wait(), 5)
    loop.cancel()
    assert waits[:5] == [10, 20, 40, 60, 10]  # doubling to the cap, then the normal pace
    assert counts(store) == {("request", ""): 1}
    await store.aclose()
