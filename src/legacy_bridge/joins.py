"""Joined values of a page: one batched upstream query for all of its records.

`/progress` items carry counts from the Assessment Progress API. The page's
learners go upstream together (`filter.userIds`), paged through to the end,
and the counts are computed here: never one request per learner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from legacy_bridge.mapping import Join
from legacy_bridge.operations import VariablePath

Node = Mapping[str, Any]
# fetch(variables without first/after) -> every node of the connection
FetchAll = Callable[[dict[VariablePath, Any]], Awaitable[Sequence[Node]]]


async def join_values(join: Join, nodes: Sequence[Node], values: Mapping[str, Any],
                      fetch_all: FetchAll) -> list[dict[tuple[str, str], Any]]:
    """For each node, {(join name, aggregate name): value}."""
    batch = sorted({n[join.batch_field] for n in nodes if n.get(join.batch_field) is not None})
    others: Sequence[Node] = ()
    if batch:
        variables = {path: values[param] for path, param in join.variables.items()}
        variables[join.batch_variable] = batch
        others = await fetch_all(variables)
    theirs = list(join.match)
    ours = list(join.match.values())
    seen: dict[tuple[str, tuple[Any, ...]], set[Any]] = defaultdict(set)
    for other in others:
        key = tuple(other.get(f) for f in theirs)
        for name, aggregate in join.aggregates.items():
            if all(other.get(f) == v for f, v in aggregate.where.items()):
                seen[(name, key)].add(other.get(aggregate.count_distinct))
    return [{(join.name, name): len(seen.get((name, tuple(n.get(f) for f in ours)), ()))
             for name in join.aggregates} for n in nodes]
