"""GraphQL node -> legacy item, by a plan compiled from the mapping at start-up. Pure.

The field table is turned once into a list of (key path, getter) steps, so a
request runs no table interpretation: each item is built by walking the list.
Nested legacy objects (`stats`) appear where their first key is declared, so
the legacy key order is the table's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from legacy_bridge.mapping import FieldRule, Route
from legacy_bridge.transforms import OMIT, compose

# Values of joined aggregates for one item: {(join, aggregate): value}
Joined = Mapping[tuple[str, str], Any]
Getter = Callable[[Mapping[str, Any], Joined], Any]


def _getter(rule: FieldRule) -> Getter:
    transform = compose(rule.transforms + (("float",) if rule.is_float else ()))
    if rule.join is not None:
        join_key = rule.join
        return lambda node, joined: transform(joined[join_key])
    source = rule.source or ""
    return lambda node, joined: transform(node.get(source))


@dataclass(frozen=True)
class Rewriter:
    steps: tuple[tuple[tuple[str, ...], Getter], ...]

    def item(self, node: Mapping[str, Any], joined: Joined) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, get in self.steps:
            value = get(node, joined)
            if value is OMIT:
                continue
            target = out
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = value
        return out


def compile_rewriter(route: Route) -> Rewriter:
    return Rewriter(tuple((rule.path, _getter(rule)) for rule in route.fields))
