"""Mapping tables: `mappings/*.toml` loaded into frozen routes, checked against the SDL.

One file per legacy route. Loading is the only time a table is interpreted:
every name in it (operation, variable path, enum value, field, transform,
join) is checked against the GraphQL schema here, and the first problem
stops start-up with a `MappingError` naming the file, the key and the fix.
See README "The mapping language" for an annotated example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Literal

from graphql import (
    GraphQLEnumType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)
from pydantic import Field

from legacy_bridge.coursemap import COURSE_MAP_FILE
from legacy_bridge.errors import MappingError
from legacy_bridge.modes import Mode
from legacy_bridge.operations import (
    Connection,
    RawOperation,
    SchemaChecks,
    SchemaSource,
    VariablePath,
    _Raw,
    bundled_schema,
    is_data_api_table,
    is_progress_table,
    read_table,
)
from legacy_bridge.paramtypes import PAGING, PARAM_TYPES, Variable
from legacy_bridge.transforms import TRANSFORMS

# -- the file format, as pydantic models (structure only) ---------------------

class RawDeprecation(_Raw):
    """RFC 9745 Deprecation, RFC 8594 Sunset, and a Link to the migration guide."""

    since: datetime
    sunset: datetime | None = None
    link: str | None = None


class RawRoute(RawOperation):
    path: str
    # the answer's keys, in order, and what each holds
    envelope: dict[str, Literal["items", "total", "page", "per_page"]]
    deprecation: RawDeprecation | None = None
    mode: Mode | None = None


class RawParam(_Raw):
    source: Literal["path", "query"] = Field("query", alias="from")
    type: str  # a name in paramtypes.PARAM_TYPES
    variable: str | None = None
    default: str | int | None = None
    max: int | None = Field(None, ge=1)
    values: dict[str, str] = Field(default_factory=dict)
    scope: bool = False


class RawBatch(_Raw):
    variable: str
    field: str


class RawAggregate(_Raw):
    count_distinct: str
    where: dict[str, str] = Field(default_factory=dict)


class RawJoin(RawOperation):
    batch: RawBatch
    variables: dict[str, str] = Field(default_factory=dict)
    match: dict[str, str]
    aggregates: dict[str, RawAggregate]


KEY_ORDER = "(key order)"  # in `strict`: key order counts as a difference


class RawCompare(_Raw):
    """Noise rules for side-by-side comparison; every entry is a legacy field path."""

    identity: list[str] = Field(default_factory=list)  # match records by these, not by position
    ignore: list[str] = Field(default_factory=list)  # never compared
    # compared as instants: Z == +00:00, .000 == none
    timestamps: list[str] = Field(default_factory=list)
    float_tolerance: float = Field(1e-9, ge=0)
    pii: list[str] = Field(default_factory=list)  # hashed in reports unless BRIDGE_COMPARE_PII=keep
    # equal values spelled differently (53 / 53.0, "Z" / "+00:00") differ here only;
    # "(key order)" makes key order a difference too
    strict: list[str] = Field(default_factory=list)


class RawMapping(_Raw):
    route: RawRoute
    params: dict[str, RawParam]
    fields: dict[str, str]
    joins: dict[str, RawJoin] = Field(default_factory=dict)
    compare: RawCompare = Field(default_factory=RawCompare)


# -- what the rest of the proxy sees -----------------------------------------

@dataclass(frozen=True)
class Param:
    name: str
    source: Literal["path", "query"]
    type: str  # a name in paramtypes.PARAM_TYPES
    variable: VariablePath | None
    default: str | int | None
    max: int | None
    values: Mapping[str, str]
    scope: bool


@dataclass(frozen=True)
class FieldRule:
    path: tuple[str, ...]  # legacy dotted path, split
    source: str | None  # GraphQL node field, or None for a join value
    join: tuple[str, str] | None  # (join name, aggregate name)
    transforms: tuple[str, ...]
    is_float: bool  # a GraphQL Float: written as a JSON float


@dataclass(frozen=True)
class Join:
    name: str
    api: str
    endpoint: str
    connection: Connection
    max_first: int
    batch_variable: VariablePath
    batch_field: str
    variables: Mapping[VariablePath, str]  # variable path <- legacy param name
    match: Mapping[str, str]  # join node field -> main node field
    aggregates: Mapping[str, RawAggregate]
    node_fields: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    file: str
    name: str  # the file's stem: "progress"
    path: str
    api: str
    endpoint: str
    connection: Connection
    max_first: int
    params: Mapping[str, Param]
    fields: tuple[FieldRule, ...]
    joins: Mapping[str, Join]
    node_fields: tuple[str, ...] = field(default=())  # every node field the route reads
    headers: tuple[tuple[str, str], ...] = ()  # added to every answer of the route
    compare: RawCompare = field(default_factory=RawCompare)
    mode: Mode | None = None  # overrides BRIDGE_MODE for this route
    envelope: tuple[tuple[str, str], ...] = ()  # (legacy key, what it holds), in order

    def key_of(self, role: str) -> str:
        """The legacy key of an envelope role: items, total, page or per_page."""
        return next(key for key, held in self.envelope if held == role)

    def param_of_type(self, kind: str) -> Param:
        return next(p for p in self.params.values() if p.type == kind)


# -- loading and checking -----------------------------------------------------

def is_route_table(path: Path) -> bool:
    """A paged route table: not the Data API's, the course-progress one or the course map."""
    return not (path.name == COURSE_MAP_FILE or is_data_api_table(path)
                or is_progress_table(path))


def load_mappings(directory: Path, schema_source: SchemaSource = bundled_schema) -> list[Route]:
    """Every `*.toml` in `directory`, checked; raises MappingError on the first problem."""
    files = [f for f in sorted(directory.glob("*.toml")) if is_route_table(f)]
    if not files:
        raise MappingError(str(directory), "(folder)", "no mapping tables (*.toml) found",
                           "point BRIDGE_MAPPINGS_DIR at the folder holding the tables")
    routes = [load_mapping(f, schema_source) for f in files]
    seen: dict[str, str] = {}
    for route in routes:
        if route.path in seen:
            raise MappingError(route.file, "route.path", f"{route.path} is also mapped by "
                               f"{seen[route.path]}", "keep one table per legacy route")
        seen[route.path] = route.file
    return routes


def load_mapping(path: Path, schema_source: SchemaSource = bundled_schema) -> Route:
    raw = read_table(path, RawMapping, "The mapping language")
    return _Checker(str(path), path.stem, raw, schema_source).route()


class _Checker(SchemaChecks):
    def __init__(self, file: str, name: str, raw: RawMapping, source: SchemaSource) -> None:
        super().__init__(file, source)
        self.name, self.raw = name, raw

    def params(self, schema: GraphQLSchema, conn: Connection) -> dict[str, Param]:
        input_type = schema.get_type(conn.input_type)
        assert input_type is not None
        out: dict[str, Param] = {}
        for name, raw in self.raw.params.items():
            key = f"params.{name}"
            kind = PARAM_TYPES.get(raw.type)
            if kind is None:
                raise self.fail(f"{key}.type", f"unknown parameter type {raw.type!r}",
                                "use one of: " + "; ".join(
                                    f"{n} ({t.about})" for n, t in PARAM_TYPES.items()))
            for need in kind.needs:
                if not getattr(raw, need):
                    raise self.fail(key, f"a {raw.type} parameter needs {need}",
                                    f"add {need} = ... (see README, The mapping language)")
            variable: VariablePath | None = None
            if kind.variable is not None:
                if raw.variable is None:
                    raise self.fail(key, f"a {raw.type} parameter needs a variable",
                                    'add variable = "filter.someField"')
                leaf, is_list = self.variable(f"{key}.variable", input_type, raw.variable)
                variable = tuple(raw.variable.split("."))
                if is_list != kind.variable.is_list:
                    fitting = [n for n, t in PARAM_TYPES.items() if t.variable == Variable(
                        kind.variable.leaf, is_list)]
                    raise self.fail(f"{key}.type", f"{raw.variable} is "
                                    f"{'a' if is_list else 'not a'} list",
                                    f"use type = {' or '.join(map(repr, fitting)) or '...'}, "
                                    "or a variable of the type's shape")
                if kind.variable.leaf == "enum":
                    self.enum_values(key, raw, leaf)
                elif not isinstance(leaf, GraphQLScalarType):
                    raise self.fail(f"{key}.variable", f"{raw.variable} is not a scalar",
                                    f"map a {raw.type} parameter to a String or ID variable")
            out[name] = Param(name, raw.source, raw.type, variable, raw.default, raw.max,
                              raw.values, raw.scope)
        for paging in PAGING:
            if sum(p.type == paging for p in out.values()) != 1:
                raise self.fail("params", f"a paged route needs exactly one {paging} "
                                "parameter", f'add [params.{paging}] with type = "{paging}"')
        placeholders = set(re.findall(r"{(\w+)}", self.raw.route.path))
        in_path = {n for n, p in out.items() if p.source == "path"}
        if placeholders != in_path:
            raise self.fail("route.path", f"path placeholders {sorted(placeholders)} differ "
                            f"from the path parameters {sorted(in_path)}",
                            'declare each {name} as [params.name] with from = "path"')
        return out

    def enum_values(self, key: str, raw: RawParam, leaf: GraphQLNamedType) -> None:
        if not isinstance(leaf, GraphQLEnumType):
            raise self.fail(f"{key}.variable", f"{raw.variable} is not an enum",
                            "map enum parameters to enum variables")
        for legacy, value in raw.values.items():
            if value not in leaf.values:
                raise self.fail(f"{key}.values.{legacy}", f"{value!r} is not a value of "
                                f"{leaf.name}", f"use one of {', '.join(leaf.values)}")
        targets = list(raw.values.values())
        if len(set(targets)) != len(targets):
            raise self.fail(f"{key}.values", "two legacy values map to one GraphQL value",
                            "make the table one-to-one so it round-trips")
        if raw.default is not None and raw.default not in raw.values:
            raise self.fail(f"{key}.default", f"{raw.default!r} is not one of the values",
                            f"use one of {', '.join(raw.values)}")

    def fields(self, node: GraphQLObjectType, params: Mapping[str, Param],
               schema: GraphQLSchema, joins: Mapping[str, Join]) -> tuple[FieldRule, ...]:
        rules = []
        for legacy, spec in self.raw.fields.items():
            key = f"fields.{legacy}"
            source, *transforms = [part.strip() for part in spec.split("|")]
            for transform in transforms:
                if transform not in TRANSFORMS:
                    raise self.fail(key, f"unknown transform {transform!r}",
                                    "use one of: " + "; ".join(
                                        f"{n} ({d})" for n, (_, d) in TRANSFORMS.items()))
            if source.startswith("@"):
                join, _, aggregate = source[1:].partition(".")
                if join not in joins or aggregate not in joins[join].aggregates:
                    raise self.fail(key, f"no join aggregate {source!r}",
                                    "declare it under [joins.<name>.aggregates]")
                rules.append(FieldRule(tuple(legacy.split(".")), None, (join, aggregate),
                                       tuple(transforms), False))
                continue
            leaf = self.node_field(key, node, source)
            if "lower" in transforms and isinstance(leaf, GraphQLEnumType):
                self.round_trip(key, leaf, params)
            rules.append(FieldRule(tuple(legacy.split(".")), source, None, tuple(transforms),
                                   leaf.name == "Float"))
        return tuple(rules)

    def round_trip(self, key: str, enum: GraphQLEnumType, params: Mapping[str, Param]) -> None:
        """A status table must read back: legacy -> GraphQL -> lower() -> legacy."""
        for param in params.values():
            if not param.values or set(param.values.values()) - set(enum.values):
                continue
            for legacy, value in param.values.items():
                if value.lower() != legacy:
                    raise self.fail(f"params.{param.name}.values.{legacy}",
                                    f"{value} reads back as {value.lower()!r}, not {legacy!r}",
                                    f"spell the legacy value {value.lower()!r}")

    def join(self, name: str, raw: RawJoin, main_node: GraphQLObjectType,
             params: Mapping[str, Param]) -> Join:
        key = f"joins.{name}"
        schema, conn = self.operation(key, raw)
        input_type = schema.get_type(conn.input_type)
        node = schema.get_type(conn.node_type)
        assert isinstance(node, GraphQLObjectType) and input_type is not None
        _, is_list = self.variable(f"{key}.batch.variable", input_type, raw.batch.variable)
        if not is_list:
            raise self.fail(f"{key}.batch.variable", f"{raw.batch.variable} is not a list",
                            "batch through a list filter such as filter.userIds")
        self.node_field(f"{key}.batch.field", main_node, raw.batch.field)
        variables: dict[VariablePath, str] = {}
        for variable, param in raw.variables.items():
            self.variable(f"{key}.variables.{variable}", input_type, variable)
            if param not in params:
                raise self.fail(f"{key}.variables.{variable}", f"no parameter {param!r}",
                                f"use one of {', '.join(params)}")
            variables[tuple(variable.split("."))] = param
        for theirs, ours in raw.match.items():
            self.node_field(f"{key}.match.{theirs}", node, theirs)
            self.node_field(f"{key}.match.{theirs}", main_node, ours)
        needed = {raw.batch.field, *raw.match}
        for agg_name, agg in raw.aggregates.items():
            self.node_field(f"{key}.aggregates.{agg_name}.count_distinct", node,
                            agg.count_distinct)
            needed.add(agg.count_distinct)
            for where_field, value in agg.where.items():
                leaf = self.node_field(f"{key}.aggregates.{agg_name}.where.{where_field}",
                                       node, where_field)
                if isinstance(leaf, GraphQLEnumType) and value not in leaf.values:
                    raise self.fail(f"{key}.aggregates.{agg_name}.where.{where_field}",
                                    f"{value!r} is not a value of {leaf.name}",
                                    f"use one of {', '.join(leaf.values)}")
                needed.add(where_field)
        return Join(name, raw.api, raw.endpoint, conn, raw.max_first,
                    tuple(raw.batch.variable.split(".")), raw.batch.field, variables,
                    raw.match, raw.aggregates,
                    tuple(sorted(f for f in needed if f in node.fields)))

    def route(self) -> Route:
        r = self.raw.route
        schema, conn = self.operation("route", r)
        node = schema.get_type(conn.node_type)
        assert isinstance(node, GraphQLObjectType)
        params = self.params(schema, conn)
        joins = {n: self.join(n, j, node, params) for n, j in self.raw.joins.items()}
        fields = self.fields(node, params, schema, joins)
        needed = [f.source for f in fields if f.source]
        for join in joins.values():
            needed += [join.batch_field, *join.match.values()]
        legacy_paths = {".".join(f.path) for f in fields}
        for key in ("identity", "ignore", "timestamps", "pii", "strict"):
            for path in getattr(self.raw.compare, key):
                if path not in legacy_paths and not (key == "strict" and path == KEY_ORDER):
                    raise self.fail(f"compare.{key}", f"{path!r} is not a legacy field of "
                                    "this route", f"use one of: {', '.join(legacy_paths)}")
        roles = list(r.envelope.values())
        for role in ("items", "total", "page", "per_page"):
            if roles.count(role) != 1:
                raise self.fail("route.envelope", f"{role} is held by {roles.count(role)} keys",
                                f'name exactly one key for it, e.g. {role} = "{role}"'
                                if role != "items" else 'e.g. results = "items"')
        return Route(self.file, self.name, r.path, r.api, r.endpoint, conn, r.max_first,
                     params, fields, joins, tuple(dict.fromkeys(needed)),
                     self.deprecation_headers(), self.raw.compare, r.mode,
                     tuple(r.envelope.items()))

    def deprecation_headers(self) -> tuple[tuple[str, str], ...]:
        notice = self.raw.route.deprecation
        if notice is None:
            return ()
        for key, moment in (("since", notice.since), ("sunset", notice.sunset)):
            if moment is not None and moment.tzinfo is None:
                raise self.fail(f"route.deprecation.{key}", "the date has no time zone",
                                "write it as 2026-01-01T00:00:00Z")
        headers = [("Deprecation", f"@{int(notice.since.timestamp())}")]
        if notice.sunset is not None:
            headers.append(("Sunset", format_datetime(notice.sunset.astimezone(UTC),
                                                      usegmt=True)))
        if notice.link is not None:
            headers.append(("Link", f'<{notice.link}>; rel="deprecation"'))
        return tuple(headers)
