"""The OpenAPI description of the legacy routes, derived from the mapping tables.

Served at `/openapi.json`. Generated, never written by hand, so it cannot
drift from what the proxy does: parameters from `[params]`, item schemas from
`[fields]` and the GraphQL types they read (nullability included), errors
from the contract's table.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLEnumType, GraphQLNonNull, GraphQLObjectType, get_named_type

from legacy_bridge import __version__, schemas
from legacy_bridge.mapping import FieldRule, Param, Route
from legacy_bridge.paramtypes import PARAM_TYPES
from legacy_bridge.progresstable import ProgressRoute, ProgressTable
from legacy_bridge.sqlmap import DataApi

Schema = dict[str, Any]

_SCALARS: dict[str, Schema] = {"String": {"type": "string"}, "ID": {"type": "string"},
                               "Time": {"type": "string"}, "Int": {"type": "integer"},
                               "Float": {"type": "number"}, "Boolean": {"type": "boolean"}}

# status -> (code, when); the contract's error table
ERRORS = {
    "400": ("invalid_parameter", "a bad parameter, or page_too_deep"),
    "401": ("unauthorized", "missing or unknown token"),
    "403": ("forbidden", "the token was not issued for this plan"),
    "404": ("not_found", "unknown route"),
    "405": ("method_not_allowed", "only GET"),
    "429": ("rate_limited", "the upstream is rate limiting; see Retry-After"),
    "502": ("upstream_error", "the upstream failed"),
    "503": ("upstream_unavailable", "the upstream is down or the proxy's queue is full"),
    "504": ("upstream_timeout", "the upstream did not answer in time"),
}

ERROR_SCHEMA: Schema = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["status", "code", "message"],
        "additionalProperties": False,
        "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                       "message": {"type": "string"}}}},
}


def _parameter(param: Param) -> Schema:
    kind = PARAM_TYPES[param.type]
    extra: Schema = {"style": "form", "explode": False} if kind.list_style else {}
    return {"name": param.name, "in": param.source, "required": param.source == "path",
            "schema": kind.schema(param), **extra}


def _field_schema(rule: FieldRule, node: GraphQLObjectType) -> tuple[Schema, bool]:
    """(schema, required) of one legacy field."""
    if rule.source is None:
        return {"type": "integer", "minimum": 0}, True
    field_type = node.fields[rule.source].type
    named = get_named_type(field_type)
    if isinstance(named, GraphQLEnumType):
        values = [v.lower() if "lower" in rule.transforms else v for v in named.values]
        schema: Schema = {"type": "string", "enum": values}
    else:
        schema = dict(_SCALARS.get(named.name, {}))
    nullable = not isinstance(field_type, GraphQLNonNull)
    omitted = "omit_if_null" in rule.transforms
    if nullable and not omitted:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema, not omitted


def _object() -> Schema:
    return {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


def item_schema(route: Route) -> Schema:
    node = schemas.schema(route.api).get_type(route.connection.node_type)
    assert isinstance(node, GraphQLObjectType)
    root = _object()
    for rule in route.fields:
        target = root
        for part in rule.path[:-1]:
            if part not in target["properties"]:
                target["properties"][part] = _object()
                target["required"].append(part)
            target = target["properties"][part]
        schema, required = _field_schema(rule, node)
        target["properties"][rule.path[-1]] = schema
        if required:
            target["required"].append(rule.path[-1])
    return root


def envelope_schema(route: Route) -> Schema:
    """The page envelope, keys in the table's order."""
    held: dict[str, Schema] = {"items": {"type": "array", "items": item_schema(route)},
                               "total": {"type": "integer", "minimum": 0},
                               "page": {"type": "integer", "minimum": 1},
                               "per_page": {"type": "integer", "minimum": 1}}
    return {"type": "object", "additionalProperties": False,
            "required": [key for key, _ in route.envelope],
            "properties": {key: held[role] for key, role in route.envelope}}


def _errors(table: dict[str, tuple[str, str]]) -> Schema:
    return {status: {"description": f"{code}: {when}",
                     "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for status, (code, when) in table.items()}


_SQL_ERRORS = {
    **ERRORS,
    "400": ("unsupported_sql, column_unavailable or invalid_parameter",
            "SQL outside the translated grammar, a column the GraphQL API lacks, or no SQL"),
    "403": ("forbidden", "a plan-scoped token; the Data API needs a company token"),
    "405": ("method_not_allowed", "only POST"),
    "413": ("result_too_large", "more rows than BRIDGE_SQL_MAX_ROWS; add LIMIT"),
}
# JSON Schema cannot state SQL's grammar: well-formed text outside it is a
# documented 400, not a schema violation.
_SQL_TEXT: Schema = {"type": "string", "minLength": 1,
                     "description": "one SELECT in the grammar README's Data API section "
                                    "lists; other text is answered 400 invalid_sql or "
                                    "unsupported_sql"}
_CELL: Schema = {"type": ["string", "number", "integer", "boolean", "null"]}


def data_api_operation(api: DataApi) -> Schema:
    names = api.response
    answer = {"type": "object", "additionalProperties": False,
              "required": [names.columns, names.rows, names.row_count],
              "properties": {names.columns: {"type": "array", "items": {"type": "string"}},
                             names.rows: {"type": "array",
                                          "items": {"type": "array", "items": _CELL}},
                             names.row_count: {"type": "integer", "minimum": 0}}}
    return {"post": {
        "operationId": "data_api_query",
        "summary": "legacy Data API: one SQL SELECT over "
                   f"{', '.join(api.tables)} (served from the GraphQL "
                   f"{api.connection.operation})",
        "security": [{"legacyToken": []}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {
                "type": "object", "required": ["query"],
                "properties": {"query": _SQL_TEXT}}},
            "text/plain": {"schema": _SQL_TEXT}}},
        "responses": {
            "200": {"description": "the rows (CSV with a header row for Accept: text/csv)",
                    "content": {"application/json": {"schema": answer},
                                "text/csv": {"schema": {"type": "string"}}}},
            **_errors(_SQL_ERRORS),
        },
    }}


_PROGRESS_ERRORS = {
    **ERRORS,
    "400": ("invalid_parameter, invalid_body, missing_field, invalid_field, unknown_lesson "
            "or course_id_required", "a bad courseId or learnerId, or a bad write body"),
    "403": ("forbidden", "not a course-progress user, not an admin on the admin route, or "
            "no platform identity"),
    "404": ("not_found", "unknown route, or an unknown learner on the admin route"),
    "405": ("method_not_allowed", "a verb the route does not take (see Allow)"),
    "500": ("internal_error", "the proxy's progress store failed"),
}
_LEGACY_ID: Schema = {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}
_SECONDS: Schema = {"type": "number", "minimum": 0}


def progress_record_schema(table: ProgressTable) -> Schema:
    """One course-progress record, keys in the table's order."""
    held: dict[str, Schema] = {
        "user_id": {"type": "string", "format": "uuid"}, "course_id": _LEGACY_ID,
        "lesson_id": _LEGACY_ID, "completed": {"type": "boolean"},
        "video_progress": _SECONDS, "last_position": _SECONDS,
        "completed_at": {"anyOf": [{"type": "string", "format": "date-time"},
                                   {"type": "null"}]}}
    return {"type": "object", "additionalProperties": False, "required": list(table.keys),
            "properties": {key: held[key] for key in table.keys}}


def progress_operations(table: ProgressTable, route: ProgressRoute) -> Schema:
    record = progress_record_schema(table)
    course: Schema = {"name": table.course_param, "in": "query", "required": False,
                      "schema": _LEGACY_ID}
    params = [course]
    if route.path_param is not None:
        params.insert(0, {"name": route.path_param, "in": "path", "required": True,
                          "schema": {"type": "string", "format": "uuid"}})
    common: Schema = {"security": [{"legacyToken": []}]}
    errors = _errors(_PROGRESS_ERRORS)
    operations: Schema = {"get": {
        **common, "operationId": route.name.replace("-", "_") + "_read",
        "summary": f"{route.name}: the learner's lesson records (Learning Path API)",
        "parameters": params,
        "responses": {"200": {"description": "the records, sorted by course then lesson",
                              "content": {"application/json": {"schema": {
                                  "type": "array", "items": record}}}}, **errors}}}
    body: Schema = {"type": "object", "required": ["course_id", "lesson_id"], "properties": {
        "course_id": {"anyOf": [_LEGACY_ID, {"type": "string", "pattern": "^[0-9]+$"}]},
        "lesson_id": {"anyOf": [_LEGACY_ID, {"type": "string", "pattern": "^[0-9]+$"}]},
        "completed": {"type": ["boolean", "null"]},
        "video_progress": {"anyOf": [_SECONDS, {"type": "null"}]},
        "last_position": {"anyOf": [_SECONDS, {"type": "null"}]}},
        "description": "a lesson of the course map; another lesson is 400 unknown_lesson"}
    for verb in ("post", "put"):
        if verb.upper() in route.methods:
            operations[verb] = {
                **common, "operationId": f"{route.name.replace('-', '_')}_{verb}",
                "summary": f"{route.name}: upsert one lesson record",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": body}}},
                "responses": {"200": {
                    "description": "the record after the write (Warning: 299 when a "
                                   "completed lesson was sent completed: false)",
                    "content": {"application/json": {"schema": record}}}, **errors}}
    return operations


def document(routes: list[Route], data_api: DataApi | None = None,
             progress: ProgressTable | None = None) -> Schema:
    paths: Schema = {}
    for route in routes:
        errors = _errors(ERRORS)
        paths[route.path] = {"get": {
            "operationId": route.name.replace("-", "_"),
            "summary": f"{route.name} (served from the GraphQL {route.connection.operation})",
            "parameters": [_parameter(p) for p in route.params.values()],
            "security": [{"legacyToken": []}],
            "responses": {
                "200": {"description": "one page", "content": {"application/json": {
                    "schema": envelope_schema(route)}}},
                **errors,
            },
        }}
    if data_api is not None:
        paths[data_api.path] = data_api_operation(data_api)
    if progress is not None:
        for progress_route in progress.routes:
            paths[progress_route.path] = progress_operations(progress, progress_route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Learner Progress API v2 and Course Progress API "
                          "(served by legacy-bridge)",
                 "version": __version__},
        "components": {"securitySchemes": {"legacyToken": {"type": "http",
                                                           "scheme": "bearer"}}},
        "paths": paths,
    }
