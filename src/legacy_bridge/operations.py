"""A table's GraphQL operation: its raw form, its checked shape, and the schema checks.

Every kind of mapping table (the paged routes, their joins, the Data API) names
a paginated operation (`RawOperation`); `SchemaChecks` looks each name up in the
GraphQL schema at load and fails with a `MappingError` naming the file, the key
and the fix. The table loaders (mapping.py, sqlmap.py) build on these.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    get_named_type,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from legacy_bridge import schemas
from legacy_bridge.errors import MappingError, SchemaUnavailable, UpstreamUnreachable

M = TypeVar("M", bound=BaseModel)


class _Raw(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RawConnection(_Raw):
    """Relay connection field names; override for an upstream that differs."""

    total: str = "totalCount"
    page_info: str = "pageInfo"
    has_next: str = "hasNextPage"
    end_cursor: str = "endCursor"
    edges: str = "edges"
    cursor: str = "cursor"
    node: str = "node"


class RawOperation(_Raw):
    """A paginated GraphQL operation: where it is and how its connection is named."""

    api: str
    endpoint: str
    operation: str
    max_first: int = Field(100, ge=1)
    first_variable: str = "first"
    after_variable: str = "after"
    connection: RawConnection = RawConnection()


VariablePath = tuple[str, ...]


@dataclass(frozen=True)
class Connection:
    """Where an operation's answer keeps its records and paging facts."""

    operation: str
    arg_name: str
    input_type: str
    first_variable: str
    after_variable: str
    names: RawConnection
    node_type: str


# (api name, endpoint path) -> the schema to check against
SchemaSource = Callable[[str, str], GraphQLSchema]


def bundled_schema(api: str, endpoint: str) -> GraphQLSchema:
    """The project's copy of the contract SDL (src/legacy_bridge/schemas/)."""
    return schemas.schema(api)


def read_table(path: Path, model: type[M], readme_section: str) -> M:
    """One TOML table read into its model; a syntax or structure mistake as a MappingError
    naming the file, the key and the fix."""
    file = str(path)
    try:
        return model.model_validate(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(file, "(syntax)", str(exc), "fix the TOML syntax") from None
    except ValidationError as exc:
        raise invalid_table(file, exc, readme_section) from None


def invalid_table(file: str, exc: ValidationError, readme_section: str) -> MappingError:
    """A table's structural mistake (pydantic's first error) as file, key and fix."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    fix = ("remove it or check its spelling" if error["type"] == "extra_forbidden"
           else f"see README, {readme_section}")
    return MappingError(file, key, error["msg"], fix)


def _unwrap(type_: GraphQLType) -> tuple[GraphQLNamedType, bool]:
    """The named type under NonNull/List wrappers, and whether a list is among them."""
    is_list = False
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return get_named_type(type_), is_list


class SchemaChecks:
    """Checks of one table's names against the GraphQL schemas, failing with the file."""

    def __init__(self, file: str, source: SchemaSource) -> None:
        self.file, self.source = file, source

    def fail(self, key: str, problem: str, fix: str) -> MappingError:
        return MappingError(self.file, key, problem, fix)

    def schema(self, key: str, api: str, endpoint: str) -> GraphQLSchema:
        if api not in schemas.names():
            raise self.fail(key, f"unknown API {api!r}",
                            f"use one of {', '.join(schemas.names())}")
        try:
            return self.source(api, endpoint)
        except UpstreamUnreachable:
            raise  # no verdict on the table
        except SchemaUnavailable as exc:
            raise self.fail(key.replace(".api", ".endpoint"), str(exc),
                            "check the endpoint path and that the upstream allows "
                            "introspection") from None

    def operation(self, key: str, raw: RawOperation) -> tuple[GraphQLSchema, Connection]:
        """The schema of a table's operation and its checked connection."""
        schema = self.schema(f"{key}.api", raw.api, raw.endpoint)
        return schema, self.connection(key, schema, raw.operation, raw.first_variable,
                                       raw.after_variable, raw.connection)

    def connection(self, key: str, schema: GraphQLSchema, operation: str,
                   first: str, after: str, names: RawConnection) -> Connection:
        query = schema.query_type
        assert query is not None
        if operation not in query.fields:
            raise self.fail(f"{key}.operation", f"Query has no field {operation!r}",
                            f"use one of {', '.join(query.fields)}")
        op = query.fields[operation]
        inputs = [(n, _unwrap(a.type)[0]) for n, a in op.args.items()]
        if len(inputs) != 1 or not isinstance(inputs[0][1], GraphQLInputObjectType):
            raise self.fail(f"{key}.operation", f"{operation} does not take one input object",
                            "map an operation of the form op(input: SomeInput!)")
        arg_name, input_type = inputs[0]
        for var_key, var in ((f"{key}.first_variable", first), (f"{key}.after_variable", after)):
            self.variable(var_key, input_type, var)
        def child(parent: GraphQLNamedType, name: str) -> GraphQLNamedType:
            if not isinstance(parent, GraphQLObjectType) or name not in parent.fields:
                raise self.fail(f"{key}.connection", f"{parent.name} has no field {name!r}",
                                "set [route.connection] to the upstream's connection names")
            return _unwrap(parent.fields[name].type)[0]

        conn_type = _unwrap(op.type)[0]
        child(conn_type, names.total)
        page_info = child(conn_type, names.page_info)
        child(page_info, names.has_next)
        child(page_info, names.end_cursor)
        edge = child(conn_type, names.edges)
        child(edge, names.cursor)
        node = child(edge, names.node)
        return Connection(operation, arg_name, input_type.name, first, after, names,
                          node.name)

    def variable(self, key: str, input_type: GraphQLNamedType,
                 dotted: str) -> tuple[GraphQLNamedType, bool]:
        current: GraphQLNamedType = input_type
        is_list = False
        for part in dotted.split("."):
            if not isinstance(current, GraphQLInputObjectType) or part not in current.fields:
                options = (", ".join(current.fields)
                           if isinstance(current, GraphQLInputObjectType) else "none")
                raise self.fail(key, f"{input_type.name} has no input field {dotted!r}",
                                f"at {part!r} use one of: {options}")
            current, is_list = _unwrap(current.fields[part].type)
        return current, is_list

    def node_field(self, key: str, node: GraphQLObjectType, name: str) -> GraphQLNamedType:
        if name not in node.fields:
            raise self.fail(key, f"{node.name} has no field {name!r}",
                            f"use one of: {', '.join(node.fields)}")
        return _unwrap(node.fields[name].type)[0]


PROGRESS_TABLE_KEY = "course_progress"


def is_progress_table(path: Path) -> bool:
    """The course-progress table (`[course_progress]`, see progresstable.py)."""
    try:
        return PROGRESS_TABLE_KEY in tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError:
        return False  # the route loader reports the syntax error


def is_data_api_table(path: Path) -> bool:
    """A SQL Data API table (`[data_api]`, see sqlmap.py) rather than a route table."""
    try:
        return "data_api" in tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError:
        return False  # the route loader reports the syntax error
