"""Legacy Data API SQL -> a query plan over one GraphQL connection. Pure.

`plan(sql, api)` parses one Postgres `SELECT` with sqlglot and splits it into
what the upstream can do and what the proxy must do:

- pushed-down variables: `col = 'v'` / `col IN (...)` / `col <> 'v'` conjuncts
  of the WHERE on columns whose table entry names a `filter`, and a single
  ORDER BY column whose entry names an `order_by` that places nulls the same;
- a residual predicate, compiled to a Python function with Postgres's
  three-valued logic and types (text, timestamp, date, integer);
- a projection, a client-side sort when ORDER BY stays here, OFFSET/LIMIT
  (an early stop when the order is the upstream's), and COUNT(*) answered
  from `totalCount` when its WHERE is pushed down completely.

Anything outside that grammar is refused with `UnsupportedSql` naming the
construct, and the guide's missing columns with `ColumnUnavailable`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from legacy_bridge.errors import ColumnUnavailable, UnsupportedSql
from legacy_bridge.operations import VariablePath
from legacy_bridge.sqlexpr import (
    Expr,
    Scope,
    SortKey,
    SqlLimits,
    and_,
    identifier,
    integer_literal,
)
from legacy_bridge.sqlmap import Column, DataApi, SqlTable
from legacy_bridge.sqltypes import to_json

# Constructs named in refusals: sqlglot class -> the SQL words a user recognises.
_REFUSED = {
    exp.Join: "JOIN", exp.Subquery: "subquery", exp.Window: "window function",
    exp.Union: "UNION", exp.Intersect: "INTERSECT", exp.Except: "EXCEPT",
    exp.With: "WITH", exp.Distinct: "DISTINCT", exp.Having: "HAVING",
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE",
    exp.Create: "CREATE", exp.Drop: "DROP", exp.Alter: "ALTER",
    exp.TableSample: "TABLESAMPLE",
}


@dataclass(frozen=True)
class Output:
    name: str
    expr: Expr


@dataclass(frozen=True)
class Count:
    """COUNT(*), maybe grouped by one column; `from_totals` when no row is read.

    Counts are (group value, count) pairs until `line` writes one as an output row.
    """

    group: Column | None
    count_index: int  # where the count sits in the output row
    group_index: int | None  # where the group value sits; None when not selected
    from_totals: bool

    def line(self, pair: tuple[Any, int]) -> list[Any]:
        out: list[Any] = [None] * (1 + (self.group_index is not None))
        out[self.count_index] = pair[1]
        if self.group_index is not None:
            out[self.group_index] = to_json(pair[0])
        return out


@dataclass(frozen=True)
class Plan:
    sql: str
    outputs: tuple[Output, ...]
    variables: dict[VariablePath, Any]  # pushed down, besides first/after
    pushed: tuple[str, ...]  # what the upstream does, for explain
    residual: Expr | None  # the WHERE left to the proxy
    kept_here: tuple[str, ...]  # what the proxy does and why, for explain
    sort: tuple[SortKey, ...]  # client-side sort (empty: upstream order)
    offset: int
    limit: int | None
    count: Count | None
    columns_read: tuple[Column, ...]
    first: int  # page size of the upstream requests
    empty: bool = False  # pushed-down conditions no row can meet: nothing is sent upstream

    @property
    def early_stop(self) -> int | None:
        """Matching rows after which paging stops (the order is the upstream's)."""
        if self.limit is None or self.sort or self.count is not None:
            return None
        return self.offset + self.limit

    @property
    def needs_catalog(self) -> bool:
        return any(c.catalog for c in self.columns_read) or (
            self.count is not None and self.count.group is not None
            and self.count.group.groups == "catalog" and self.count.from_totals)

    def estimated_requests(self, total: int | None) -> str:
        """Upstream requests, given the pushed-down filter's totalCount if known."""
        if self.empty:
            return "0"
        if self.count is not None and self.count.from_totals:
            return ("1" if self.count.group is None
                    else f"1 per {self.count.group.name} value")
        if self.limit == 0:
            return "0"
        if total is None:
            return f"ceil(N / {self.first}), N = totalCount of the pushed-down filter"
        wanted = total if self.early_stop is None or self.residual else min(
            total, self.early_stop)
        pages = max(1, math.ceil(wanted / self.first))
        return f"{pages}" if self.early_stop is None or not self.residual else f"up to {pages}"


DEFAULT_LIMITS = SqlLimits()
MAX_DEPTH = 200  # expression nesting; keeps parsing and per-row evaluation off the stack limit


def plan(sql: str, api: DataApi, limits: SqlLimits = DEFAULT_LIMITS) -> Plan:
    """The plan of one SQL statement; raises UnsupportedSql or ColumnUnavailable."""
    try:
        return _plan(sql, api, limits)
    except RecursionError:
        raise UnsupportedSql(f"the statement nests more than {MAX_DEPTH} levels deep") from None


def _plan(sql: str, api: DataApi, limits: SqlLimits) -> Plan:
    statement = _parse(sql)
    if _depth(statement) > MAX_DEPTH:
        raise UnsupportedSql(f"the statement nests more than {MAX_DEPTH} levels deep")
    table = _table(statement, api)
    scope = Scope(table, limits)
    outputs = _outputs(statement, scope)
    where = statement.args.get("where")
    conjuncts = _conjuncts(where.this) if where is not None else []
    variables: dict[VariablePath, Any] = {}
    pushed: list[str] = []
    kept: list[str] = []
    residual_parts: list[exp.Expression] = []
    narrowed: dict[str, list[str]] = {}
    for conjunct in conjuncts:
        found = _push_filter(conjunct, scope)
        if isinstance(found, str):
            residual_parts.append(conjunct)
            kept.append(f"WHERE {conjunct.sql('postgres')}: evaluated per row ({found})")
            continue
        column, values = found
        before = narrowed.get(column.name)  # an empty list is a contradiction
        narrowed[column.name] = values if before is None else [v for v in before
                                                               if v in values]
        pushed.append(f"WHERE {conjunct.sql('postgres')} -> "
                      f"{'.'.join(column.filter or ())} {narrowed[column.name]}")
    empty = any(not values for values in narrowed.values())
    if empty:  # an empty list would read as "no filter" upstream: never send one
        kept.append("WHERE: the pushed-down conditions exclude every row; nothing is "
                    "sent upstream")
    for name, values in narrowed.items():
        column = table.columns[name]
        assert column.filter is not None
        if values:
            variables[column.filter] = values
    # _and refuses a part that is not a condition (`WHERE email`)
    residual = and_([scope.compile(p) for p in residual_parts]) if residual_parts else None

    offset, limit = _offset_limit(statement)
    count = _count(statement, scope, residual is None)
    sort: tuple[SortKey, ...] = ()
    order = statement.args.get("order")
    if count is not None:
        sort = _count_sort(order, scope, count)
        if count.from_totals:
            pushed.append("COUNT(*) <- totalCount" + (
                f", one request per {count.group.name} value" if count.group else ""))
        else:
            kept.append("COUNT(*): counted per row while paging (the WHERE is not "
                        "pushed down completely)")
    elif order is not None:
        keys = [_sort_key(o, scope) for o in order.expressions]
        upstream = _push_order(keys, order.expressions, api, scope)
        if isinstance(upstream, str):
            sort = tuple(keys)
            kept.append(f"ORDER BY {', '.join(o.sql('postgres') for o in order.expressions)}"
                        f": sorted in the proxy ({upstream})")
        else:
            variables.update(upstream)
            pushed.append(f"ORDER BY {order.expressions[0].sql('postgres')} -> "
                          + ", ".join(f"{'.'.join(k)} {v}" for k, v in upstream.items()))
    if limit is not None and count is None and not sort:
        pushed.append(f"LIMIT {limit}" + (f" OFFSET {offset}" if offset else "")
                      + ": paging stops after " + f"{offset + limit} matching rows")
    elif limit is not None or offset:
        kept.append("LIMIT/OFFSET applied in the proxy "
                    + ("after counting" if count is not None
                       else "after sorting" if sort else "while paging"))
    first = api.max_first
    if limit is not None and residual is None and count is None and not sort:
        first = max(1, min(api.max_first, offset + limit))
    return Plan(sql, outputs, variables, tuple(pushed), residual, tuple(kept), sort,
                offset, limit, count, tuple(scope.read.values()), first, empty)


# -- the statement ------------------------------------------------------------

def _parse(sql: str) -> exp.Select:
    try:
        statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None) or [{}]
        where = (f" at line {errors[0].get('line')}, column {errors[0].get('col')}"
                 if errors[0].get("line") else "")
        raise UnsupportedSql(f"the SQL could not be parsed{where}: "
                             f"{errors[0].get('description') or 'syntax error'}") from None
    if len(statements) != 1:
        raise UnsupportedSql("send exactly one SELECT statement"
                             + (" (several statements)" if statements else ""))
    statement = statements[0]
    for kind, words in _REFUSED.items():
        if isinstance(statement, kind) or statement.find(kind) is not None:
            raise UnsupportedSql(f"{words} is not supported by the Data API translation")
    if not isinstance(statement, exp.Select):
        raise UnsupportedSql(f"{statement.key.upper()} statements are not supported; "
                             "send one SELECT")
    for key in ("distinct", "having", "qualify", "windows", "joins", "laterals", "locks",
                "into", "connect", "prewhere", "sample", "settings"):
        if statement.args.get(key):
            raise UnsupportedSql(f"{key.upper()} is not supported by the Data API translation")
    return statement


def _depth(root: exp.Expression) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack += [(child, depth + 1) for child in node.iter_expressions()]
    return deepest


def _table(statement: exp.Select, api: DataApi) -> SqlTable:
    source = statement.args.get("from_") or statement.args.get("from")
    if source is None:
        raise UnsupportedSql("a SELECT without FROM is not supported; select FROM "
                             + " or ".join(sorted(api.tables)))
    target = source.this
    if not isinstance(target, exp.Table) or not isinstance(target.this, exp.Identifier):
        raise UnsupportedSql("FROM must name one table (no subquery or function)")
    name = identifier(target)
    if name in api.unavailable_tables:
        raise ColumnUnavailable(f"table {name} is not available: "
                                f"{api.unavailable_tables[name]}")
    if name not in api.tables:
        raise UnsupportedSql(f"table {name} is not served; use "
                             f"{', '.join(sorted(api.tables))}")
    return api.tables[name]


def _offset_limit(statement: exp.Select) -> tuple[int, int | None]:
    def number(node: exp.Expression | None, word: str) -> int | None:
        if node is None:
            return None
        value = node.args.get("expression")
        if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
            raise UnsupportedSql(f"{word} must be a non-negative integer literal")
        return integer_literal(value.this, word)

    return (number(statement.args.get("offset"), "OFFSET") or 0,
            number(statement.args.get("limit"), "LIMIT"))


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


# -- push-down ----------------------------------------------------------------

def _literal_strings(nodes: Sequence[exp.Expression]) -> list[str] | None:
    if all(isinstance(n, exp.Literal) and n.is_string for n in nodes):
        return [str(n.this) for n in nodes]
    return None


def _push_filter(node: exp.Expression, scope: Scope) -> tuple[Column, list[str]] | str:
    """(column, upstream values) when the conjunct is exactly a filter; else why not."""
    for referenced in node.find_all(exp.Column):
        if not isinstance(referenced.this, exp.Star):
            noted = scope.column(referenced)
            if noted.note:
                return noted.note
    negate = False
    if isinstance(node, exp.Not):
        negate, node = True, node.this
    if isinstance(node, exp.EQ | exp.NEQ):
        left, right = node.this, node.expression
        if isinstance(right, exp.Column):
            left, right = right, left
        target, literals = left, _literal_strings([right])
        negate = negate != isinstance(node, exp.NEQ)
    elif isinstance(node, exp.In) and not node.args.get("query") and node.expressions:
        target, literals = node.this, _literal_strings(node.expressions)
    else:
        return "only =, <> and IN on a filter column reach the upstream"
    if not isinstance(target, exp.Column) or literals is None:
        return "only a column compared with text literals reaches the upstream"
    column = scope.column(target)
    if column.filter is None:
        return f"{column.name} has no upstream filter in the Data API table"
    if column.filter_values:
        if any(v not in column.filter_values for v in literals) and not negate:
            return f"a value is not one of {column.name}'s {sorted(column.filter_values)}"
        chosen = [up for legacy, up in column.filter_values.items()
                  if (legacy in literals) != negate]
    elif negate or column.transformed:
        return f"{column.name} can only be narrowed to listed values upstream"
    else:
        chosen = list(dict.fromkeys(literals))
    return column, chosen


def _push_order(keys: list[SortKey], ordered: list[exp.Ordered], api: DataApi,
                scope: Scope) -> dict[VariablePath, str] | str:
    if len(keys) != 1:
        return "the upstream sorts by one orderBy value"
    node = scope.order_key(ordered[0].this)
    if not isinstance(node, exp.Column):
        return "only a bare column can be sorted upstream"
    column = scope.column(node)
    key = keys[0]
    if column.order_by is None or api.order_variable is None:
        return f"{column.name} has no orderBy value in the Data API table"
    direction = api.directions.get("desc" if key.desc else "asc")
    if direction is None or api.direction_variable is None:
        return "the table has no direction for this order"
    if column.nullable:
        if column.nulls_last_on_asc is None:
            return (f"{column.name} is nullable and the table does not say where "
                    f"{column.order_by} puts nulls")
        upstream_nulls_last = column.nulls_last_on_asc != key.desc
        if upstream_nulls_last != key.nulls_last:
            return f"{column.order_by} puts nulls {'last' if upstream_nulls_last else 'first'}"
    return {(api.order_variable,): column.order_by, (api.direction_variable,): direction}


# -- select list, COUNT(*), ORDER BY -------------------------------------------

def _outputs(statement: exp.Select, scope: Scope) -> tuple[Output, ...]:
    scope.set_outputs(statement.expressions)
    return tuple(Output(name, Expr(lambda row: None, "integer", "count(*)")
                        if isinstance(node, exp.Count) else scope.compile(node))
                 for name, node in scope.outputs)


def _count(statement: exp.Select, scope: Scope, where_pushed: bool) -> Count | None:
    items = [node for _, node in scope.outputs]
    counts = [i for i, node in enumerate(items) if isinstance(node, exp.Count)]
    group_by = statement.args.get("group")
    if not counts and group_by is None:
        for node in items:
            if node.find(exp.AggFunc) is not None:
                raise UnsupportedSql(f"aggregate {node.sql('postgres')} is not supported; "
                                     "only COUNT(*)")
        return None
    for i in counts:
        if not isinstance(items[i].this, exp.Star) or items[i].args.get("distinct"):
            raise UnsupportedSql(f"{items[i].sql('postgres')} is not supported; only COUNT(*)")
    if len(counts) != 1:
        raise UnsupportedSql("select COUNT(*) once, optionally with the GROUP BY column")
    group: Column | None = None
    if group_by is not None:
        keys = [scope.group_key(k) for k in group_by.expressions]
        if len(keys) != 1 or not isinstance(keys[0], exp.Column):
            raise UnsupportedSql("GROUP BY supports one column")
        group = scope.column(keys[0])
        scope.mark(group)
    others = [i for i in range(len(items)) if i != counts[0]]
    selected = [items[i] for i in others]
    if len(selected) > 1 or any(not isinstance(n, exp.Column) or group is None
                                or scope.column(n) != group for n in selected):
        raise UnsupportedSql("with COUNT(*) select only the GROUP BY column")
    from_totals = where_pushed and (group is None or (
        group.groups is not None and group.filter is not None))
    return Count(group, counts[0], others[0] if others else None, from_totals)


def _count_sort(order: exp.Order | None, scope: Scope, count: Count) -> tuple[SortKey, ...]:
    """ORDER BY over (group value, count) pairs: by position, COUNT(*), an output name
    or the GROUP BY column, selected or not."""
    if order is None:
        return ()
    keys = []
    group_type = count.group.type if count.group else "null"
    for ordered in order.expressions:
        node = ordered.this
        index = scope.output_at(node)
        named = scope.outputs_named(node)
        if index is None and named:
            index = named[0]
        if isinstance(node, exp.Count) or (index is not None and index == count.count_index):
            key = Expr(operator.itemgetter(1), "integer", "count")
        elif index is not None or (count.group is not None and isinstance(node, exp.Column)
                                   and scope.column(node) == count.group):
            key = Expr(operator.itemgetter(0), group_type, "group")
        else:
            raise UnsupportedSql(f"ORDER BY {node.sql('postgres')}: with COUNT(*) order by "
                                 "the count or the GROUP BY column")
        keys.append(SortKey(key, bool(ordered.args.get("desc")),
                            not ordered.args.get("nulls_first")))
    return tuple(keys)


def _sort_key(ordered: exp.Ordered, scope: Scope) -> SortKey:
    return SortKey(scope.compile(scope.order_key(ordered.this)),
                   bool(ordered.args.get("desc")), not ordered.args.get("nulls_first"))
