"""Offset pages over a cursor connection: properties and exact request counts."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legacy_bridge.errors import PageTooDeep, UpstreamQueryError
from legacy_bridge.pagination import Answer, MemoryCheckpoints, read_page, walk_requests
from support import FakeClock

MAX_FIRST = 100


@dataclass
class FakeConnection:
    """A cursor connection over a list: cursors are positions, as opaque strings."""

    records: list[int]
    calls: list[tuple[int, str | None, bool]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def fetch(self, first: int, after: str | None, with_nodes: bool) -> Answer:
        assert 1 <= first <= MAX_FIRST
        self.calls.append((first, after, with_nodes))
        if after in self.refuse:
            raise UpstreamQueryError("refused cursor")
        start = 0 if after is None else int(after.removeprefix("c")) + 1
        chunk = list(range(start, min(start + first, len(self.records))))
        return Answer(cursors=[f"c{i}" for i in chunk],
                      nodes=[{"n": self.records[i]} for i in chunk] if with_nodes else None,
                      total=len(self.records), has_next=start + first < len(self.records))


def page(connection: FakeConnection, checkpoints: MemoryCheckpoints, number: int,
         per_page: int, max_walk: int = 1000) -> list[Any]:
    result = asyncio.run(read_page(
        (number - 1) * per_page, per_page, max_first=MAX_FIRST, max_walk=max_walk,
        checkpoints=checkpoints, query="q", fetch=connection.fetch))
    assert result.total == len(connection.records)
    return [node["n"] for node in result.nodes]


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 3000), per_page=st.integers(1, 100),
       pages=st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_any_order_of_page_requests_returns_the_dataset_slices(
        size: int, per_page: int, pages: list[int]) -> None:
    connection = FakeConnection(list(range(size)))
    checkpoints = MemoryCheckpoints(10_000, 600)
    for number in pages:
        offset = (number - 1) * per_page
        assert page(connection, checkpoints, number, per_page) == \
            connection.records[offset:offset + per_page]


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 3000), per_page=st.integers(1, 100))
def test_sequential_crawl_concatenates_to_the_dataset_at_one_request_per_page(
        size: int, per_page: int) -> None:
    connection = FakeConnection(list(range(size)))
    checkpoints = MemoryCheckpoints(10_000, 600)
    seen: list[int] = []
    pages = max(1, math.ceil(size / per_page))
    for number in range(1, pages + 1):
        seen += page(connection, checkpoints, number, per_page)
    assert seen == connection.records
    assert len(connection.calls) == pages


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 3000), per_page=st.integers(1, 100), number=st.integers(1, 60))
def test_cold_page_costs_at_most_ceil_skip_over_100_plus_one(
        size: int, per_page: int, number: int) -> None:
    connection = FakeConnection(list(range(size)))
    page(connection, MemoryCheckpoints(10_000, 600), number, per_page)
    skip = (number - 1) * per_page
    assert len(connection.calls) <= math.ceil(skip / MAX_FIRST) + 1


def test_walk_requests_are_cursor_only_and_the_last_carries_nodes() -> None:
    connection = FakeConnection(list(range(1000)))
    assert page(connection, MemoryCheckpoints(100, 600), 4, 100) == list(range(300, 400))
    assert [(first, nodes) for first, _, nodes in connection.calls] == [
        (100, False), (100, False), (100, False), (100, True)]


def test_skip_and_page_within_one_upstream_page_is_one_request() -> None:
    connection = FakeConnection(list(range(1000)))
    assert page(connection, MemoryCheckpoints(100, 600), 3, 20) == list(range(40, 60))
    assert connection.calls == [(60, None, True)]


def test_walk_starts_from_the_nearest_checkpoint() -> None:
    connection = FakeConnection(list(range(1000)))
    checkpoints = MemoryCheckpoints(100, 600)
    page(connection, checkpoints, 3, 100)  # leaves checkpoints at 100, 200, 300
    connection.calls.clear()
    assert page(connection, checkpoints, 6, 100) == list(range(500, 600))
    assert connection.calls == [(100, "c299", False), (100, "c399", False),
                                (100, "c499", True)]


def test_page_past_the_end_costs_one_request_even_without_checkpoints() -> None:
    connection = FakeConnection(list(range(250)))
    assert page(connection, MemoryCheckpoints(100, 600), 900, 100, max_walk=5) == []
    assert len(connection.calls) == 1


def test_walk_beyond_the_cap_is_page_too_deep() -> None:
    connection = FakeConnection(list(range(2000)))
    with pytest.raises(PageTooDeep):
        page(connection, MemoryCheckpoints(100, 600), 10, 100, max_walk=5)
    assert connection.calls == [(1, None, False)]


def test_refused_checkpoint_is_dropped_and_the_page_walked_again_once() -> None:
    connection = FakeConnection(list(range(500)))
    checkpoints = MemoryCheckpoints(100, 600)
    page(connection, checkpoints, 1, 100)
    connection.refuse = {"c99"}
    with pytest.raises(UpstreamQueryError):  # the walk passes the same cursor again
        page(connection, checkpoints, 2, 100)
    connection.refuse = set()
    asyncio.run(checkpoints.store("q", 100, "c98"))  # a cursor that is now wrong...
    connection.refuse = {"c98"}
    assert page(connection, checkpoints, 2, 100) == list(range(100, 200))  # ...walked again


def test_per_page_above_the_upstream_limit_takes_several_requests() -> None:
    connection = FakeConnection(list(range(1000)))
    result = asyncio.run(read_page(0, 250, max_first=MAX_FIRST, max_walk=10,
                                   checkpoints=MemoryCheckpoints(100, 600), query="q",
                                   fetch=connection.fetch))
    assert [n["n"] for n in result.nodes] == list(range(250))
    assert [first for first, _, _ in connection.calls] == [100, 100, 50]


def test_a_full_query_forgets_its_lowest_offsets() -> None:
    checkpoints = MemoryCheckpoints(size=3, ttl=600)
    for offset in (10, 20, 30, 40):
        asyncio.run(checkpoints.store("q", offset, f"c{offset}"))
    assert len(checkpoints) == 3
    assert asyncio.run(checkpoints.nearest("q", 45)) == (40, "c40")
    assert asyncio.run(checkpoints.nearest("q", 15)) == (0, None)


def test_least_recently_used_query_is_evicted_first() -> None:
    checkpoints = MemoryCheckpoints(size=4, ttl=600)
    for query in ("old", "new"):
        for offset in (10, 20):
            asyncio.run(checkpoints.store(query, offset, f"{query}{offset}"))
    asyncio.run(checkpoints.store("newest", 10, "x"))
    assert asyncio.run(checkpoints.nearest("old", 25)) == (0, None)
    assert asyncio.run(checkpoints.nearest("new", 25)) == (20, "new20")
    assert len(checkpoints) == 3


def test_checkpoints_expire_after_the_ttl() -> None:
    clock = FakeClock()
    checkpoints = MemoryCheckpoints(size=10, ttl=600, clock=clock)
    asyncio.run(checkpoints.store("q", 10, "c10"))
    clock.advance(599)
    assert asyncio.run(checkpoints.nearest("q", 15)) == (10, "c10")
    clock.advance(2)
    assert asyncio.run(checkpoints.nearest("q", 15)) == (0, None)


def test_checkpoints_of_one_query_never_serve_another() -> None:
    checkpoints = MemoryCheckpoints(size=10, ttl=600)
    asyncio.run(checkpoints.store("scope-a|q", 50, "a50"))
    assert asyncio.run(checkpoints.nearest("scope-b|q", 60)) == (0, None)


@pytest.mark.parametrize(("skip", "size", "expected"), [
    (0, 50, 0), (50, 50, 0), (51, 50, 1), (100, 100, 1), (250, 50, 2), (900_000, 100, 9000)])
def test_walk_requests(skip: int, size: int, expected: int) -> None:
    assert walk_requests(skip, size, 100) == expected


def test_cache_size_zero_keeps_nothing_and_every_page_walks_from_the_start() -> None:
    connection = FakeConnection(list(range(1000)))
    checkpoints = MemoryCheckpoints(size=0, ttl=600)
    for number in (1, 2, 3):
        page(connection, checkpoints, number, 100)
    assert len(checkpoints) == 0
    assert [after for _, after, _ in connection.calls] == [None, None, "c99", None, "c99",
                                                           "c199"]
