"""GraphQL node -> legacy item, by a function compiled from the mapping at start-up. Pure.

The field table is turned once into the source of one Python function, the
way the standard library's dataclasses builds `__init__`: straight-line code
that reads each node field, applies its transforms and stores the legacy key,
so a request runs no table interpretation at all (this is the proxy's hot
loop: per_page items per request). Nested legacy objects (`stats`) appear
where their first key is declared, so the legacy key order is the table's.
Names in the source come from the checked mapping and enter only as
`repr()` literals; the generated text is kept on `Rewriter.source`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from legacy_bridge.mapping import FieldRule, Route
from legacy_bridge.transforms import TRANSFORMS

# Values of joined aggregates for one item: {(join, aggregate): value}
Joined = Mapping[tuple[str, str], Any]


@dataclass(frozen=True)
class Rewriter:
    item: Callable[[Mapping[str, Any], Joined], dict[str, Any]]
    source: str


def _value(rule: FieldRule) -> str:
    expr = (f"joined[{rule.join!r}]" if rule.join is not None
            else f"node.get({rule.source!r})")
    names = rule.transforms + (("float",) if rule.is_float else ())
    for name in names:
        if name != "omit_if_null":  # a condition on the store, not a function call
            expr = f"_{name}({expr})"
    return expr


def _source(route: Route) -> str:
    lines = ["def item(node, joined):", "    out = {}"]
    objects: dict[tuple[str, ...], str] = {(): "out"}  # legacy path -> local name
    for index, rule in enumerate(route.fields):
        for depth in range(1, len(rule.path)):
            prefix = rule.path[:depth]
            if prefix not in objects:
                objects[prefix] = f"obj{len(objects)}"
                lines.append(f"    {objects[prefix]} = {objects[prefix[:-1]]}"
                             f"[{prefix[-1]!r}] = {{}}")
        target = objects[rule.path[:-1]]
        value = f"v{index}"
        lines.append(f"    {value} = {_value(rule)}")
        store = f"{target}[{rule.path[-1]!r}] = {value}"
        if "omit_if_null" in rule.transforms:
            lines.append(f"    if {value} is not None:")
            lines.append(f"        {store}")
        else:
            lines.append(f"    {store}")
    lines.append("    return out")
    return "\n".join(lines)


def compile_rewriter(route: Route) -> Rewriter:
    source = _source(route)
    namespace: dict[str, Any] = {f"_{name}": fn for name, (fn, _) in TRANSFORMS.items()}
    exec(compile(source, f"<rewrite {route.file}>", "exec"), namespace)
    return Rewriter(namespace["item"], source)
