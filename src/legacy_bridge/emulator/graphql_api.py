"""The upstream GraphQL APIs, executed by graphql-core against the contract SDL.

Each API is served at `/api/public/api/v1/<name>/graphql` with exactly the
schema of `legacy_bridge/schemas/<name>.graphql`. Resolvers follow the
contract's upstream rules: `first` 1..100 (else a GraphQL error), opaque
signed cursors, total and stable order, `totalCount` after filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    execute_sync,
    parse,
    validate,
)

from legacy_bridge import schemas
from legacy_bridge.emulator.cursors import CursorCodec, CursorError, fingerprint
from legacy_bridge.emulator.learning_path import LearningPath
from legacy_bridge.emulator.store import (
    ASSESSMENT_PROGRESS,
    LEARNING_PLAN_PROGRESS,
    PROGRAM_PROGRESS,
    Store,
    Table,
)

PATH_TEMPLATE = "/api/public/api/v1/{api}/graphql"
MAX_FIRST = 100


@dataclass(frozen=True)
class ConnectionApi:
    name: str  # e.g. "program-progress"
    root_field: str  # e.g. "programProgress"
    table: Table


CONNECTION_APIS = [
    ConnectionApi("program-progress", "programProgress", PROGRAM_PROGRESS),
    ConnectionApi("learning-plan-progress", "learningPlanProgress", LEARNING_PLAN_PROGRESS),
    ConnectionApi("assessment-progress", "assessmentProgress", ASSESSMENT_PROGRESS),
]
API_NAMES = [api.name for api in CONNECTION_APIS] + ["catalog", "learning-path"]


def _connection_resolver(api: ConnectionApi, store: Store,
                         codec: CursorCodec) -> Callable[..., dict[str, Any]]:
    def resolve(info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        first = input.get("first")
        first = MAX_FIRST if first is None else first
        if not 1 <= first <= MAX_FIRST:
            raise GraphQLError(f"first must be between 1 and {MAX_FIRST}, got {first}")
        filters = {k: v for k, v in (input.get("filter") or {}).items() if v is not None}
        order_by = input.get("orderBy")
        order = input.get("order") or "ASC"
        query_id = fingerprint(api.name, filters, order_by, order)
        after = input.get("after")
        try:
            position = codec.decode(after, query_id) if after is not None else None
        except CursorError as exc:
            raise GraphQLError(f"invalid cursor for `after`: {exc}") from None
        rows, more = store.page(api.table, filters, order_by, order == "DESC", first, position)

        def edge(row: dict[str, Any]) -> dict[str, Any]:
            key = row.pop("_key")
            # Callables are resolved only when selected: cursors cost nothing
            # to a query that does not ask for them.
            return {"cursor": lambda _info: codec.encode(key, query_id), "node": row}

        edges = [edge(r) for r in rows]
        return {
            "totalCount": lambda _info: store.count(api.table, filters),
            "edges": edges,
            "pageInfo": {
                "hasNextPage": more,
                "hasPreviousPage": after is not None,
                "startCursor": edges[0]["cursor"](None) if edges else None,
                "endCursor": edges[-1]["cursor"](None) if edges else None,
            },
        }

    return resolve


def _catalog_resolver(store: Store) -> Callable[..., dict[str, Any]]:
    def resolve(info: Any) -> dict[str, Any]:
        rows = store.query("SELECT key, title, type FROM programs ORDER BY key")
        return {"programs": [{"key": r[0], "title": r[1], "type": r[2]} for r in rows]}

    return resolve


@dataclass
class GraphQLApi:
    """One upstream API: its schema and the root value that resolves it."""

    name: str
    schema: GraphQLSchema
    root: dict[str, Any]

    def run(self, body: Any, context: Any = None) -> tuple[int, dict[str, Any]]:
        """Execute one GraphQL-over-HTTP request body: (HTTP status, response body)."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, {"errors": [{"message": "body must be a JSON object with a query"}]}
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return 400, {"errors": [{"message": "variables must be an object"}]}
        document, errors = _prepare(self.schema, body["query"])
        if document is None:
            return 400, {"errors": errors}
        result = execute_sync(self.schema, document, root_value=self.root,
                              context_value=context, variable_values=variables,
                              operation_name=body.get("operationName"))
        out: dict[str, Any] = {}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        out["data"] = result.data
        return 200, out


@lru_cache(maxsize=512)
def _prepare_cached(schema: GraphQLSchema, query: str) -> tuple[DocumentNode | None, str]:
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, exc.message
    problems = validate(schema, document)
    if problems:
        return None, "\n".join(p.message for p in problems)
    return document, ""


def _prepare(schema: GraphQLSchema, query: str) -> tuple[DocumentNode | None,
                                                         list[dict[str, str]]]:
    document, message = _prepare_cached(schema, query)
    errors = [{"message": line} for line in message.split("\n")] if message else []
    return document, errors


def build_apis(store: Store, codec: CursorCodec,
               learning_path: LearningPath) -> dict[str, GraphQLApi]:
    apis = {
        api.name: GraphQLApi(api.name, schemas.schema(api.name),
                             {api.root_field: _connection_resolver(api, store, codec)})
        for api in CONNECTION_APIS
    }
    apis["catalog"] = GraphQLApi("catalog", schemas.schema("catalog"),
                                 {"catalog": _catalog_resolver(store)})
    apis["learning-path"] = GraphQLApi("learning-path", schemas.schema("learning-path"),
                                       learning_path.root)
    return apis
