"""The Data API table (`mappings/data-api.toml`): SQL columns over GraphQL fields.

Loaded and checked at start-up like the route tables: every field, filter
variable, orderBy value and catalog path is looked up in the GraphQL schemas,
and the first problem stops start-up with a `MappingError` naming the file,
the key and the fix. What it yields is plain data for `sqlplan`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from graphql import (
    GraphQLEnumType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
)
from pydantic import Field

from legacy_bridge.errors import MappingError
from legacy_bridge.modes import Mode
from legacy_bridge.operations import (
    Connection,
    RawOperation,
    SchemaChecks,
    SchemaSource,
    VariablePath,
    _Raw,
    _unwrap,
    bundled_schema,
    is_data_api_table,
    read_table,
)
from legacy_bridge.sqltypes import COLUMN_TRANSFORMS, COLUMN_TYPES


class RawResponse(_Raw):
    columns: str = "columns"
    rows: str = "rows"
    row_count: str = "row_count"


class RawDataApi(RawOperation):
    path: str
    mode: Mode | None = None
    order_variable: str | None = None
    direction_variable: str | None = None
    directions: dict[Literal["asc", "desc"], str] = Field(default_factory=dict)
    response: RawResponse = RawResponse()


class RawCatalog(_Raw):
    api: str
    endpoint: str
    list: str
    key: str
    value: str


class RawColumn(_Raw):
    type: str  # a name in sqltypes.COLUMN_TYPES
    field: str | None = None
    fallback: str | None = Field(None, alias="else")
    catalog: str | None = None
    transform: str | None = None  # a name in sqltypes.COLUMN_TRANSFORMS
    filter: str | None = None
    order_by: str | None = None
    nulls: Literal["last_on_asc", "first_on_asc"] | None = None
    groups: Literal["enum", "catalog"] | None = None
    note: str | None = None


class RawTable(_Raw):
    columns: dict[str, RawColumn]
    unavailable: dict[str, str] = Field(default_factory=dict)


class RawDataApiFile(_Raw):
    data_api: RawDataApi
    catalog: RawCatalog | None = None
    tables: dict[str, RawTable]
    unavailable_tables: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a name in sqltypes.COLUMN_TYPES
    field: str | None  # node field; None for a catalog column
    fallback: str | None  # node field used when `field` is null
    catalog: str | None  # node field looked up in the catalog
    transformed: bool  # the legacy spelling differs from the upstream value
    nullable: bool
    filter: VariablePath | None
    filter_values: Mapping[str, str]  # legacy spelling -> enum value; empty: any text
    order_by: str | None
    nulls_last_on_asc: bool | None  # None: the upstream's null placement is unknown
    groups: str | None
    note: str | None
    read: Callable[[Any], Any] = dataclasses.field(compare=False)  # upstream value -> typed value


@dataclass(frozen=True)
class Catalog:
    api: str
    endpoint: str
    list_path: tuple[str, ...]
    key: str
    value: str
    document: str  # the one query, printed at load


@dataclass(frozen=True)
class SqlTable:
    name: str
    columns: Mapping[str, Column]  # in SELECT * order
    unavailable: Mapping[str, str]  # column -> the guide's alternative


@dataclass(frozen=True)
class DataApi:
    file: str
    path: str
    api: str
    endpoint: str
    connection: Connection
    max_first: int
    order_variable: str | None
    direction_variable: str | None
    directions: Mapping[str, str]
    response: RawResponse
    catalog: Catalog | None
    tables: Mapping[str, SqlTable]
    unavailable_tables: Mapping[str, str]
    node_fields: tuple[str, ...]
    mode: Mode | None = None  # overrides BRIDGE_MODE for the Data API


def load_data_api(directory: Path, source: SchemaSource = bundled_schema) -> DataApi | None:
    """The one Data API table in `directory`, checked; None when there is none."""
    files = [f for f in sorted(directory.glob("*.toml")) if is_data_api_table(f)]
    if not files:
        return None
    if len(files) > 1:
        raise MappingError(str(files[1]), "data_api", f"{files[0]} also has a [data_api]",
                           "keep one Data API table")
    raw = read_table(files[0], RawDataApiFile, "The Data API table")
    return _DataApiChecker(str(files[0]), source, raw).data_api()


class _DataApiChecker(SchemaChecks):
    def __init__(self, file: str, source: SchemaSource, raw: RawDataApiFile) -> None:
        super().__init__(file, source)
        self.raw = raw

    def data_api(self) -> DataApi:
        d = self.raw.data_api
        schema, conn = self.operation("data_api", d)
        input_type = schema.get_type(conn.input_type)
        node = schema.get_type(conn.node_type)
        assert input_type is not None and isinstance(node, GraphQLObjectType)
        order_values: frozenset[str] = frozenset()
        if d.order_variable:
            leaf, _ = self.variable("data_api.order_variable", input_type, d.order_variable)
            order_values = self._enum_values("data_api.order_variable", leaf)
        if d.direction_variable:
            leaf, _ = self.variable("data_api.direction_variable", input_type,
                                    d.direction_variable)
            allowed = self._enum_values("data_api.direction_variable", leaf)
            for word, value in d.directions.items():
                if value not in allowed:
                    raise self.fail(f"data_api.directions.{word}", f"{value!r} is not a value "
                                    f"of {leaf.name}", f"use one of {', '.join(sorted(allowed))}")
        catalog = self._catalog() if self.raw.catalog else None
        tables = {name: self._table(name, table, schema, input_type, node, order_values,
                                    catalog)
                  for name, table in self.raw.tables.items()}
        fields = {f for t in tables.values() for c in t.columns.values()
                  for f in (c.field, c.fallback, c.catalog) if f}
        return DataApi(self.file, d.path, d.api, d.endpoint, conn, d.max_first,
                       d.order_variable, d.direction_variable,
                       {str(k): v for k, v in d.directions.items()}, d.response,
                       catalog, tables, dict(self.raw.unavailable_tables),
                       tuple(f for f in node.fields if f in fields), d.mode)

    def _enum_values(self, key: str, leaf: object) -> frozenset[str]:
        if not isinstance(leaf, GraphQLEnumType):
            raise self.fail(key, "the variable is not an enum", "name an enum input field")
        return frozenset(leaf.values)

    def _catalog(self) -> Catalog:
        raw = self.raw.catalog
        assert raw is not None
        schema = self.schema("catalog.api", raw.api, raw.endpoint)
        current: object = schema.query_type
        path = tuple(raw.list.split("."))
        for part in path:
            if not isinstance(current, GraphQLObjectType) or part not in current.fields:
                raise self.fail("catalog.list", f"no field {part!r} on the way to {raw.list}",
                                "name the path from Query to the list of programs")
            current = _unwrap(current.fields[part].type)[0]
        assert isinstance(current, GraphQLObjectType)
        for key in ("key", "value"):
            self.node_field(f"catalog.{key}", current, getattr(raw, key))
        selection = f"{{ {raw.key} {raw.value} }}"
        for part in reversed(path):
            selection = f"{{ {part} {selection} }}"
        return Catalog(raw.api, raw.endpoint, path, raw.key, raw.value,
                       f"query LegacyDataApiCatalog {selection}")

    def _table(self, name: str, raw: RawTable, schema: GraphQLSchema,
               input_type: GraphQLNamedType,
               node: GraphQLObjectType, order_values: frozenset[str],
               catalog: Catalog | None) -> SqlTable:
        columns = {}
        for col_name, col in raw.columns.items():
            key = f"tables.{name}.columns.{col_name}"
            columns[col_name] = self._column(key, col_name, col, input_type, node,
                                             order_values, catalog)
        return SqlTable(name, columns, dict(raw.unavailable))

    def _column(self, key: str, name: str, raw: RawColumn, input_type: GraphQLNamedType,
                node: GraphQLObjectType, order_values: frozenset[str],
                catalog: Catalog | None) -> Column:
        if raw.type not in COLUMN_TYPES:
            raise self.fail(f"{key}.type", f"unknown column type {raw.type!r}",
                            f"use one of {', '.join(COLUMN_TYPES)}")
        if raw.transform is not None and raw.transform not in COLUMN_TRANSFORMS:
            raise self.fail(f"{key}.transform", f"unknown transform {raw.transform!r}",
                            "use one of: " + "; ".join(
                                f"{n} ({about})" for n, (_, about) in COLUMN_TRANSFORMS.items()))
        read = (COLUMN_TRANSFORMS[raw.transform][0] if raw.transform is not None
                else COLUMN_TYPES[raw.type].read)
        if (raw.field is None) == (raw.catalog is None):
            raise self.fail(key, "a column needs exactly one of field and catalog",
                            'add field = "someNodeField" (or catalog = "keyField")')
        if raw.catalog is not None and catalog is None:
            raise self.fail(f"{key}.catalog", "there is no [catalog] to look it up in",
                            "add a [catalog] table or map the column to a field")
        nullable = raw.catalog is not None
        for part in ("field", "fallback", "catalog"):
            field_name = getattr(raw, part)
            if field_name is not None:
                self.node_field(f"{key}.{part}", node, field_name)
                nullable = nullable or not isinstance(node.fields[field_name].type,
                                                      GraphQLNonNull)
        if raw.fallback is not None:
            nullable = not isinstance(node.fields[raw.fallback].type, GraphQLNonNull)
        filter_path: VariablePath | None = None
        values: dict[str, str] = {}
        if raw.filter is not None:
            if raw.fallback is not None or raw.catalog is not None:
                raise self.fail(f"{key}.filter", "a filter cannot stand for a fallback or "
                                "catalog column", "remove filter")
            leaf, is_list = self.variable(f"{key}.filter", input_type, raw.filter)
            if not is_list:
                raise self.fail(f"{key}.filter", f"{raw.filter} is not a list",
                                "name a list input field: IN (...) pushes down as a list")
            filter_path = tuple(raw.filter.split("."))
            if isinstance(leaf, GraphQLEnumType):
                spell = (COLUMN_TRANSFORMS[raw.transform][0] if raw.transform is not None
                         else str)
                values = {spell(v): v for v in leaf.values}
        if raw.groups == "enum" and not values:
            raise self.fail(f"{key}.groups", "groups = enum needs an enum filter",
                            "set filter to an enum input field, or remove groups")
        if raw.groups == "catalog" and (filter_path is None or catalog is None):
            raise self.fail(f"{key}.groups", "groups = catalog needs a filter and a [catalog]",
                            "set filter, or remove groups")
        if raw.order_by is not None:
            if raw.order_by not in order_values:
                choices = ", ".join(sorted(order_values)) or "(none: set data_api.order_variable)"
                raise self.fail(f"{key}.order_by", f"{raw.order_by!r} is not an orderBy value",
                                f"use one of {choices}")
            if raw.fallback is not None or raw.catalog is not None:
                raise self.fail(f"{key}.order_by", "an orderBy cannot stand for a fallback "
                                "or catalog column", "remove order_by")
        if raw.nulls is not None and raw.order_by is None:
            raise self.fail(f"{key}.nulls", "nulls describes an order_by", "remove nulls")
        return Column(name, raw.type, raw.field, raw.fallback, raw.catalog,
                      raw.transform is not None, nullable, filter_path, values, raw.order_by,
                      None if raw.nulls is None else raw.nulls == "last_on_asc", raw.groups,
                      raw.note, read)
