"""Mapping + legacy parameters -> GraphQL document and variables. Pure.

Documents are built as graphql-core ASTs and printed once per route at
start-up: a page query selecting exactly the fields the mapping reads, and a
cursor-only query for walking to a deep page. Every value travels as a
variable; nothing from a request is ever spliced into query text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableDefinitionNode,
    VariableNode,
    print_ast,
)

from legacy_bridge.operations import Connection, VariablePath
from legacy_bridge.sqlmap import Column, DataApi


@dataclass(frozen=True)
class Document:
    text: str
    operation_name: str


def _field(name: str, *children: FieldNode, args: Sequence[ArgumentNode] = ()) -> FieldNode:
    selection = SelectionSetNode(selections=tuple(children)) if children else None
    return FieldNode(name=NameNode(value=name), arguments=tuple(args),
                     directives=(), selection_set=selection)


def connection_document(conn: Connection, operation_name: str,
                        node_fields: Sequence[str]) -> Document:
    """`query Name($input: T!) { op(input: $input) { total pageInfo edges { cursor node } } }`.

    With no node fields, the edges carry cursors only: the cheap walk query.
    """
    names = conn.names
    edge = [_field(names.cursor)]
    if node_fields:
        edge.append(_field(names.node, *(_field(f) for f in node_fields)))
    root = _field(
        conn.operation,
        _field(names.total),
        _field(names.page_info, _field(names.has_next), _field(names.end_cursor)),
        _field(names.edges, *edge),
        args=[ArgumentNode(name=NameNode(value=conn.arg_name),
                           value=VariableNode(name=NameNode(value="input")))],
    )
    operation = OperationDefinitionNode(
        operation=OperationType.QUERY,
        name=NameNode(value=operation_name),
        variable_definitions=(VariableDefinitionNode(
            variable=VariableNode(name=NameNode(value="input")),
            type=NonNullTypeNode(type=NamedTypeNode(name=NameNode(value=conn.input_type))),
            directives=()),),
        directives=(),
        selection_set=SelectionSetNode(selections=(root,)),
    )
    return Document(print_ast(DocumentNode(definitions=(operation,))), operation_name)


def set_path(target: dict[str, Any], path: VariablePath, value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def input_variables(base: Mapping[VariablePath, Any], conn: Connection, first: int,
                    after: str | None) -> dict[str, Any]:
    """The `$input` variables of one upstream page request."""
    value: dict[str, Any] = {}
    for path, item in base.items():
        set_path(value, path, item)
    value[conn.first_variable] = first
    if after is not None:
        value[conn.after_variable] = after
    return {"input": value}


# -- the Data API's documents ---------------------------------------------------

def rows_document(api: DataApi, columns: Iterable[Column]) -> Document:
    """The page query selecting only the node fields these columns read."""
    wanted = {f for c in columns for f in (c.field, c.fallback, c.catalog) if f}
    # A node must select something; the first field is the cheapest stand-in.
    fields = tuple(f for f in api.node_fields if f in wanted) or api.node_fields[:1]
    return _document(api.connection, "LegacyDataApiRows", fields)


def count_document(api: DataApi) -> Document:
    """totalCount alone (with one cursor): what COUNT(*) costs."""
    return _document(api.connection, "LegacyDataApiCount", ())


@functools.lru_cache(maxsize=256)
def _document(conn: Connection, name: str, fields: tuple[str, ...]) -> Document:
    return connection_document(conn, name, fields)
