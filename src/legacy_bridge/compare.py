"""Side-by-side comparison of legacy-shaped answers. Pure.

Two sides' records for one route are matched by the mapping's identity
fields (or by position), then diffed field by field under the mapping's
noise rules: ignored paths, float tolerance, timestamps compared as instants.
Values are compared by value: `53` and `53.0`, or two spellings of one
instant, agree, and the spelling is kept as a *representation note* (counted
per field) rather than a difference, as is key order; a path in the table's
`strict` list (or `(key order)`) makes spelling count. Each difference names
the record, the JSON path and both values; personal data is hashed unless the
caller keeps it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from legacy_bridge.mapping import KEY_ORDER, RawCompare

ABSENT = "<absent>"
Verdict = Literal["same", "spelling", "differs"]


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
    # the same value spelled differently (53 / 53.0, key order): never a difference
    notes: list[Difference] = field(default_factory=list)

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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def verdict(left: Any, right: Any, path: str, rules: RawCompare) -> Verdict:
    """"same"; "spelling" (equal values written differently: a note, unless the path is
    strict); or "differs"."""
    if path in rules.timestamps:
        found: Verdict = ("same" if left == right else "spelling"
                          if _instant(left) == _instant(right) else "differs")
    elif _number(left) and _number(right):
        close = math.isclose(left, right, rel_tol=0, abs_tol=rules.float_tolerance)
        found = ("differs" if not close else "same" if type(left) is type(right)
                 else "spelling")
    else:
        found = "same" if left == right and type(left) is type(right) else "differs"
    return "differs" if found == "spelling" and path in rules.strict else found


def same(left: Any, right: Any, path: str, rules: RawCompare) -> bool:
    return verdict(left, right, path, rules) != "differs"


def row_key(row: Sequence[Any]) -> bytes:
    """A result row as compared by value: a whole float is its integer (53.0 is 53), so
    two sides that spell numbers differently match."""
    return orjson.dumps([int(v) if isinstance(v, float) and v.is_integer() else v
                         for v in row])


def leaves(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leaves(value, f"{path}.")
        else:
            yield path, value


def field_comparisons(left: Mapping[str, Any], right: Mapping[str, Any],
                      rules: RawCompare) -> Iterator[tuple[str, Verdict, Any, Any]]:
    """(path, verdict, left value, right value) for every leaf path of either side,
    ignored paths left out; a missing leaf is ABSENT."""
    a, b = dict(leaves(left)), dict(leaves(right))
    for path in dict.fromkeys([*a, *b]):
        if path not in rules.ignore:
            ours, theirs = a.get(path, ABSENT), b.get(path, ABSENT)
            yield path, verdict(ours, theirs, path, rules), ours, theirs


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
        for path, found, left_value, right_value in field_comparisons(theirs, ours, rules):
            tally = result.fields.setdefault(path, [0, 0])
            tally[1] += 1
            seen = Difference(key, path, left_value, right_value)
            if found == "differs":
                result.differences.append(seen)
            else:
                tally[0] += 1
                if found == "spelling":
                    result.notes.append(seen)
        if list(theirs) != list(ours):  # key order is part of the legacy shape
            order = Difference(key, KEY_ORDER, list(theirs), list(ours))
            (result.differences if KEY_ORDER in rules.strict else result.notes).append(order)
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

    def hidden(found: list[Difference]) -> list[Difference]:
        return [Difference(key(d.record), d.path, value(d.path, d.legacy),
                           value(d.path, d.bridge)) for d in found]

    return RouteComparison(
        result.route, result.compared, [key(k) for k in result.legacy_only],
        [key(k) for k in result.bridge_only], hidden(result.differences), result.fields,
        result.totals, hidden(result.notes))
