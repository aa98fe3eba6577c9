"""The paged legacy routes, compiled once at start-up from their mapping tables.

A `CompiledRoute` holds everything a request needs that does not depend on
the request: the printed GraphQL documents, the compiled rewriter, which
fields every item carries. `resolve` finds the route of a legacy URL given
as data (explain, golden cases), as the router would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.routing import compile_path

from legacy_bridge import params
from legacy_bridge.errors import NotFound
from legacy_bridge.mapping import Route
from legacy_bridge.query import Document, connection_document
from legacy_bridge.rewrite import Rewriter, compile_rewriter


def operation_name(*parts: str) -> str:
    return "".join(p.replace("-", " ").title().replace(" ", "") for p in ("legacy", *parts))


@dataclass(frozen=True)
class CompiledRoute:
    """A route with everything a request needs prepared at start-up."""

    route: Route
    page: Document  # records of a page
    walk: Document  # cursors only, for reaching a deep page
    joins: dict[str, Document]
    rewriter: Rewriter
    always_fields: tuple[str, ...]  # legacy fields in every item
    optional_fields: tuple[tuple[tuple[str, ...], str], ...]  # omitted when null

    def returned_fields(self, items: list[dict[str, Any]]) -> list[str]:
        """The legacy fields this answer actually carried, for the usage report."""
        if not items:
            return []
        present = [name for path, name in self.optional_fields
                   if any(_has(item, path) for item in items)]
        return [*self.always_fields, *present]


def _has(item: dict[str, Any], path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(item, dict) or part not in item:
            return False
        item = item[part]
    return True


def compile_route(route: Route) -> CompiledRoute:
    return CompiledRoute(
        route,
        connection_document(route.connection, operation_name(route.name), route.node_fields),
        connection_document(route.connection, operation_name(route.name, "walk"), ()),
        {name: connection_document(join.connection, operation_name(route.name, name),
                                   join.node_fields)
         for name, join in route.joins.items()},
        compile_rewriter(route),
        tuple(".".join(f.path) for f in route.fields if "omit_if_null" not in f.transforms),
        tuple((f.path, ".".join(f.path)) for f in route.fields
              if "omit_if_null" in f.transforms),
    )


def resolve(routes: list[CompiledRoute], url: str) -> tuple[CompiledRoute, params.Request]:
    """The route a legacy path-and-query names, and its parsed parameters.

    For tools that take a legacy URL as data (explain, golden cases); raises
    NotFound or InvalidParameter like the route itself would.
    """
    parts = urlsplit(url)
    for compiled in routes:
        found = compile_path(compiled.route.path)[0].match(parts.path)
        if found:
            return compiled, params.parse(compiled.route, found.groupdict(),
                                          parse_qs(parts.query, keep_blank_values=True))
    raise NotFound(f"no legacy route matches {parts.path!r}")
