"""Side-by-side comparison of legacy-shaped answers. Pure.

Two sides' records for one route are matched by the mapping's identity
fields (or by position), then diffed field by field under the mapping's
noise rules: ignored paths, float tolerance, timestamps compared as instants.
Each difference names the record, the JSON path and both values; personal
data is hashed unless the caller keeps it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from legacy_bridge.mapping import RawCompare

ABSENT = "<absent>"


@dataclass(frozen=True)
class Difference:
    record: str  # the record's identity, or its position
    path: str  # legacy path inside the record, e.g. "stats.status"
    legacy: Any
    bridge: Any


@dataclass
class RouteComparison:
    route: str
    compared: int = 0  # records present on both sides
    legacy_only: list[str] = field(default_factory=list)
    bridge_only: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    fields: dict[str, list[int]] = field(default_factory=dict)  # path -> [agreeing, compared]
    totals: tuple[int, int] | None = None  # (legacy total, bridge total) when they differ

    @property
    def agrees(self) -> bool:
        return not (self.legacy_only or self.bridge_only or self.differences or self.totals)


def _instant(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def same(left: Any, right: Any, path: str, rules: RawCompare) -> bool:
    if path in rules.timestamps:
        return bool(_instant(left) == _instant(right))
    if isinstance(left, float | int) and isinstance(right, float | int) \
            and not isinstance(left, bool) and not isinstance(right, bool):
        return math.isclose(left, right, rel_tol=0, abs_tol=rules.float_tolerance) \
            and type(left) is type(right)
    return bool(left == right) and type(left) is type(right)


def leaves(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leaves(value, f"{path}.")
        else:
            yield path, value


def field_comparisons(left: Mapping[str, Any], right: Mapping[str, Any],
                      rules: RawCompare) -> Iterator[tuple[str, bool, Any, Any]]:
    """(path, agrees, left value, right value) for every leaf path of either side,
    ignored paths left out; a missing leaf is ABSENT."""
    a, b = dict(leaves(left)), dict(leaves(right))
    for path in dict.fromkeys([*a, *b]):
        if path not in rules.ignore:
            ours, theirs = a.get(path, ABSENT), b.get(path, ABSENT)
            yield path, same(ours, theirs, path, rules), ours, theirs


def _identity(record: Mapping[str, Any], rules: RawCompare, position: int) -> str:
    if not rules.identity:
        return f"#{position}"
    values = dict(leaves(record))
    return "|".join(str(values.get(path)) for path in rules.identity)


def compare_records(route: str, legacy: Sequence[Mapping[str, Any]],
                    bridge: Sequence[Mapping[str, Any]], rules: RawCompare) -> RouteComparison:
    """Every difference between two sides' records of one route."""
    result = RouteComparison(route)
    left = {_identity(r, rules, i): r for i, r in enumerate(legacy)}
    right = {_identity(r, rules, i): r for i, r in enumerate(bridge)}
    result.legacy_only = [key for key in left if key not in right]
    result.bridge_only = [key for key in right if key not in left]
    for key, theirs in left.items():
        ours = right.get(key)
        if ours is None:
            continue
        result.compared += 1
        for path, agrees, left_value, right_value in field_comparisons(theirs, ours, rules):
            tally = result.fields.setdefault(path, [0, 0])
            tally[1] += 1
            if agrees:
                tally[0] += 1
            else:
                result.differences.append(Difference(key, path, left_value, right_value))
        if list(theirs) != list(ours):  # key order is part of the legacy shape
            result.differences.append(Difference(key, "(key order)", list(theirs), list(ours)))
    return result


def redact(result: RouteComparison, rules: RawCompare) -> RouteComparison:
    """Personal data hashed: identities built from PII, and PII values."""
    def hashed(value: Any) -> str:
        return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()[:12]

    def key(identity: str) -> str:
        if not set(rules.identity) & set(rules.pii):
            return identity
        parts = identity.split("|")
        return "|".join(hashed(p) if path in rules.pii else p
                        for path, p in zip(rules.identity, parts, strict=False))

    def value(path: str, v: Any) -> Any:
        return hashed(v) if path in rules.pii and v not in (None, ABSENT) else v

    return RouteComparison(
        result.route, result.compared, [key(k) for k in result.legacy_only],
        [key(k) for k in result.bridge_only],
        [Difference(key(d.record), d.path, value(d.path, d.legacy), value(d.path, d.bridge))
         for d in result.differences], result.fields, result.totals)
