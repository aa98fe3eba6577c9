"""SQL expressions over one table, compiled to Python functions of a row. Pure.

`Scope.compile(node)` turns a sqlglot expression into an `Expr`: a function
of a typed row with Postgres's three-valued logic, its Postgres type, and its
SQL text. Names resolve as Postgres resolves them (unquoted names fold to
lower case; ORDER BY/GROUP BY may name a select item by position or alias).
Anything outside the grammar raises `UnsupportedSql` naming the construct.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NoReturn

from sqlglot import exp

from legacy_bridge.errors import ColumnUnavailable, UnsupportedSql
from legacy_bridge.sqllike import compile_like
from legacy_bridge.sqlmap import Column, SqlTable
from legacy_bridge.sqltypes import parse_date, parse_timestamp

Row = dict[str, Any]  # column name -> typed value (str, int, float, datetime, None)
Fn = Callable[[Row], Any]

CASTS = {
    exp.DataType.Type.DATE: "date",
    exp.DataType.Type.TIMESTAMP: "timestamp",
    exp.DataType.Type.TIMESTAMPTZ: "timestamp",
    exp.DataType.Type.TEXT: "text",
    exp.DataType.Type.VARCHAR: "text",
    exp.DataType.Type.INT: "integer",
    exp.DataType.Type.BIGINT: "integer",
    exp.DataType.Type.SMALLINT: "integer",
}
_COMPARE: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.EQ: lambda a, b: a == b, exp.NEQ: lambda a, b: a != b,
    exp.LT: lambda a, b: a < b, exp.LTE: lambda a, b: a <= b,
    exp.GT: lambda a, b: a > b, exp.GTE: lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Expr:
    fn: Fn
    type: str  # text | timestamp | date | integer | numeric | boolean | unknown | null
    sql: str


def identifier(node: exp.Expression) -> str:
    """Postgres folds unquoted names to lower case and keeps quoted ones."""
    name = node.name
    quoted = (isinstance(node, exp.Identifier) and node.quoted) or (
        isinstance(node.this, exp.Identifier) and node.this.quoted)
    return name if quoted else name.lower()


def output_name(node: exp.Expression) -> str:
    """Postgres's name for a select item: the alias, the column, the function."""
    if isinstance(node, exp.Alias):
        return identifier(node.args["alias"])
    if isinstance(node, exp.Column):
        return identifier(node)
    if isinstance(node, exp.Cast):
        inner = node.this
        if isinstance(inner, exp.Column):
            return identifier(inner)
        return CASTS.get(node.to.this, "?column?")
    if isinstance(node, exp.Count):
        return "count"
    if isinstance(node, exp.Lower | exp.Upper):
        return node.key.lower()
    return "?column?"


@dataclass(frozen=True)
class SortKey:
    expr: Expr  # over a source row, or (for counts) over a (group, count) pair
    desc: bool
    nulls_last: bool


def sort_rows(rows: list[Any], keys: Sequence[SortKey]) -> None:
    """Sort in place by the keys, Postgres's null placement included. Stable."""
    for key in reversed(keys):
        fn = key.expr.fn
        null_rank = 1 if key.nulls_last != key.desc else 0

        def rank(row: Any, fn: Fn = fn, null_rank: int = null_rank) -> tuple[int, Any]:
            value = fn(row)
            return (null_rank, None) if value is None else (1 - null_rank, value)

        rows.sort(key=rank, reverse=key.desc)


BIGINT_DIGITS = 18  # a longer integer literal is refused before Python parses it


def integer_literal(text: str, what: str) -> int:
    """A digits-only literal as an int, refused past bigint as Postgres refuses it."""
    if len(text.lstrip("0")) > BIGINT_DIGITS:
        raise UnsupportedSql(f"{what} is out of range for type bigint")
    return int(text)


def _position(node: exp.Expression) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit():
        return integer_literal(node.this, "the position") - 1
    return None


@dataclass(frozen=True)
class SqlLimits:
    """Bounds on what one statement may ask the proxy to evaluate (settings)."""

    max_in_items: int = 1000  # values in one IN list
    max_like_wildcards: int = 32  # % and _ in one LIKE pattern


@dataclass
class Scope:
    """Name resolution and typed compilation of expressions over one table."""

    table: SqlTable
    limits: SqlLimits = field(default_factory=SqlLimits)
    read: dict[str, Column] = field(default_factory=dict)
    # the select list, `*` expanded: (output name, expression without its alias)
    outputs: list[tuple[str, exp.Expression]] = field(default_factory=list)

    def column(self, node: exp.Column) -> Column:
        qualifier = node.table
        if qualifier and qualifier != self.table.name and (
                node.args["table"].quoted or qualifier.lower() != self.table.name):
            raise UnsupportedSql(f"{node.sql('postgres')}: only {self.table.name} is queried")
        name = identifier(node)
        if name in self.table.unavailable:
            raise ColumnUnavailable(f"column {name} is not available: "
                                    f"{self.table.unavailable[name]}")
        if name not in self.table.columns:
            raise UnsupportedSql(f"column {name} does not exist in {self.table.name}")
        return self.table.columns[name]

    def mark(self, column: Column) -> None:
        self.read[column.name] = column

    def set_outputs(self, items: Sequence[exp.Expression]) -> None:
        self.outputs = []
        for item in items:
            if isinstance(item, exp.Star) or (isinstance(item, exp.Column)
                                              and isinstance(item.this, exp.Star)):
                self.outputs += [(name, exp.column(name)) for name in self.table.columns]
            else:
                self.outputs.append((output_name(item), item.this if isinstance(
                    item, exp.Alias) else item))

    def output_at(self, node: exp.Expression) -> int | None:
        """The select-list index a position (`ORDER BY 2`) names; None if not a position."""
        index = _position(node)
        if index is not None and not 0 <= index < len(self.outputs):
            raise UnsupportedSql(f"position {index + 1} is not in the select list")
        return index

    def outputs_named(self, node: exp.Expression) -> list[int]:
        """Select-list indexes whose output name a bare name matches."""
        if not isinstance(node, exp.Column) or node.table or isinstance(node.this, exp.Star):
            return []
        name = identifier(node)
        return [i for i, (output, _) in enumerate(self.outputs) if output == name]

    def order_key(self, node: exp.Expression) -> exp.Expression:
        """ORDER BY: a position, else an output name (ambiguous when two outputs of that
        name differ), else an expression over the table's columns, as in Postgres."""
        index = self.output_at(node)
        if index is not None:
            return self.outputs[index][1]
        named = self.outputs_named(node)
        if len({self.outputs[i][1].sql("postgres") for i in named}) > 1:
            raise UnsupportedSql(f'ORDER BY "{identifier(node)}" is ambiguous')
        return self.outputs[named[0]][1] if named else node

    def group_key(self, node: exp.Expression) -> exp.Expression:
        """GROUP BY: a position, else a table column, else an output name (Postgres)."""
        index = self.output_at(node)
        if index is not None:
            return self.outputs[index][1]
        if isinstance(node, exp.Column) and identifier(node) in self.table.columns:
            return node
        named = self.outputs_named(node)
        return self.outputs[named[0]][1] if len(named) == 1 else node

    def compile_column(self, column: Column) -> Expr:
        self.mark(column)
        name = column.name
        return Expr(lambda row: row[name], column.type, name)

    def compile(self, node: exp.Expression) -> Expr:
        sql = node.sql("postgres")
        if isinstance(node, exp.Paren):
            return self.compile(node.this)
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise UnsupportedSql("* is only allowed as the whole select list")
            return self.compile_column(self.column(node))
        if isinstance(node, exp.Null):
            return Expr(lambda row: None, "null", sql)
        if isinstance(node, exp.Boolean):
            value = bool(node.this)
            return Expr(lambda row: value, "boolean", sql)
        if isinstance(node, exp.Literal):
            if node.is_string:
                text = str(node.this)
                return Expr(lambda row: text, "unknown", sql)
            if len(node.this) > 2 * BIGINT_DIGITS:
                raise UnsupportedSql(f"the number {node.this[:20]}... is too long")
            number: int | float = (int(node.this) if node.this.isdigit()
                                   and len(node.this) <= BIGINT_DIGITS else float(node.this))
            return Expr(lambda row: number, "integer" if isinstance(number, int)
                        else "numeric", sql)
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            inner = self.compile(node.this)
            if inner.type in ("integer", "numeric"):
                negative = -inner.fn({})
                return Expr(lambda row: negative, inner.type, sql)
        if isinstance(node, exp.Cast):
            return _cast(self.compile(node.this), node, sql)
        if isinstance(node, exp.Lower | exp.Upper):
            inner = _text(self.compile(node.this), f"function {node.key}")
            change = str.lower if isinstance(node, exp.Lower) else str.upper
            return Expr(lambda row: None if (v := inner.fn(row)) is None else change(v),
                        "text", sql)
        if type(node) in _COMPARE:
            left, right = _unify(self.compile(node.this), self.compile(node.expression), sql)
            return _compare(left, right, type(node), sql)
        if isinstance(node, exp.Between):
            subject, low = _unify(self.compile(node.this), self.compile(node.args["low"]), sql)
            subject, high = _unify(subject, self.compile(node.args["high"]), sql)
            return and_([_compare(subject, low, exp.GTE, sql),
                         _compare(subject, high, exp.LTE, sql)], sql)
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise UnsupportedSql(f"{sql}: IN takes a list of values")
            if not node.expressions:
                raise UnsupportedSql(f"{sql}: IN () is a syntax error in PostgreSQL; "
                                     "list at least one value")
            if len(node.expressions) > self.limits.max_in_items:
                raise UnsupportedSql(f"an IN list holds more than {self.limits.max_in_items} "
                                     "values (BRIDGE_SQL_MAX_IN_ITEMS)")
            subject = self.compile(node.this)
            items = [_unify(subject, self.compile(i), sql)[1] for i in node.expressions]
            subject = _unify(subject, items[0], sql)[0]
            if not any(i.find(exp.Column) for i in node.expressions):  # constants: a set
                values = {i.fn({}) for i in items}
                return Expr(lambda row: _in(subject.fn(row), values), "boolean", sql)
            return Expr(lambda row: _in(subject.fn(row), {i.fn(row) for i in items}),
                        "boolean", sql)
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null):
                raise UnsupportedSql(f"{sql}: only IS [NOT] NULL is supported")
            subject = self.compile(node.this)
            negate = bool(node.args.get("negate"))
            return Expr(lambda row: (subject.fn(row) is None) != negate, "boolean", sql)
        if isinstance(node, exp.Like | exp.ILike):
            return self._like(node, "\\", sql)
        if isinstance(node, exp.Escape) and isinstance(node.this, exp.Like | exp.ILike):
            escape = node.expression
            if not isinstance(escape, exp.Literal) or len(str(escape.this)) != 1:
                raise UnsupportedSql(f"{sql}: ESCAPE takes one character")
            return self._like(node.this, str(escape.this), sql)
        if isinstance(node, exp.Not):
            inner = self.compile(node.this)
            _boolean(inner, sql)
            return Expr(lambda row: None if (v := inner.fn(row)) is None else not v,
                        "boolean", sql)
        if isinstance(node, exp.And):
            return and_([self.compile(node.this), self.compile(node.expression)], sql)
        if isinstance(node, exp.Or):
            parts = [self.compile(node.this), self.compile(node.expression)]
            for part in parts:
                _boolean(part, sql)
            return Expr(lambda row: _or([p.fn(row) for p in parts]), "boolean", sql)
        if isinstance(node, exp.AggFunc):
            raise UnsupportedSql(f"aggregate {sql} is not supported here; only COUNT(*) in "
                                 "the select list")
        if isinstance(node, exp.Func):
            raise UnsupportedSql(f"function {sql} is not supported; use LOWER, UPPER or a "
                                 "cast")
        raise UnsupportedSql(f"{sql} is not supported by the Data API translation")

    def _like(self, node: exp.Like | exp.ILike, escape: str, sql: str) -> Expr:
        subject = _text(self.compile(node.this), node.key.upper())
        pattern = node.expression
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            raise UnsupportedSql(f"{sql}: the pattern must be a text literal")
        wildcards = sum(str(pattern.this).count(w) for w in "%_")
        if wildcards > self.limits.max_like_wildcards:
            raise UnsupportedSql(f"a LIKE pattern holds more than "
                                 f"{self.limits.max_like_wildcards} wildcards "
                                 "(BRIDGE_SQL_MAX_LIKE_WILDCARDS)")
        like = compile_like(str(pattern.this), escape, isinstance(node, exp.ILike))
        negate = bool(node.args.get("negate"))
        return Expr(lambda row: None if (v := subject.fn(row)) is None
                    else like.matches(v) != negate, "boolean", sql)


def _text(expr: Expr, what: str) -> Expr:
    """Text for LOWER, UPPER and LIKE: Postgres has no implicit cast from other types."""
    if expr.type in ("unknown", "null"):
        return _coerce(expr, "text")
    if expr.type != "text":
        raise UnsupportedSql(f"{expr.sql}: {what} takes text, not {expr.type} (cast it: "
                             f"{expr.sql}::TEXT)")
    return expr


def _boolean(expr: Expr, sql: str) -> None:
    if expr.type not in ("boolean", "null"):
        raise UnsupportedSql(f"{sql}: AND, OR and NOT take conditions")


def and_(parts: list[Expr], sql: str = "") -> Expr:
    for part in parts:
        _boolean(part, sql)
    if len(parts) == 1:
        return parts[0]
    fns = [p.fn for p in parts]

    def both(row: Row) -> bool | None:
        unknown = False
        for fn in fns:
            value = fn(row)
            if value is False:
                return False
            unknown = unknown or value is None
        return None if unknown else True

    return Expr(both, "boolean", sql or " AND ".join(p.sql for p in parts))


def _or(values: list[Any]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _compare(left: Expr, right: Expr, kind: type[exp.Expression], sql: str) -> Expr:
    op, a, b = _COMPARE[kind], left.fn, right.fn
    return Expr(lambda row: None if (x := a(row)) is None or (y := b(row)) is None
                else op(x, y), "boolean", sql)


def _in(value: Any, items: set[Any]) -> bool | None:
    if value is None:
        return None
    if value in items:
        return True
    return None if None in items else False


def _converter(source: str, target: str, sql: str, echo: bool) -> Callable[[Any], Any]:
    """How a value of type `source` becomes `target` (Postgres's casts, in brief).

    `echo`: a value that fails may be quoted in the error (the client's own literal);
    a stored value never is (it may be a learner's).
    """
    if source in (target, "null"):
        return lambda v: v
    if source in ("unknown", "text"):
        parsers: dict[str, Callable[[str], Any]] = {
            "date": parse_date, "timestamp": parse_timestamp, "integer": int,
            "numeric": float, "text": str}
        if target not in parsers:
            _no_cast(sql, source, target)
        parse = parsers[target]

        def checked(value: str) -> Any:
            try:
                return parse(value)
            except ValueError:
                shown = repr(value) if echo else "a stored value"
                raise UnsupportedSql(f"{sql}: {shown} is not a valid {target}") from None

        return checked
    if source == "timestamp" and target == "date":
        return lambda v: v.date()
    if source == "date" and target == "timestamp":
        return lambda v: datetime(v.year, v.month, v.day, tzinfo=UTC)
    if source == "integer" and target == "numeric":
        return float
    if target == "text" and source in ("integer", "numeric", "date"):
        return lambda v: v.isoformat() if isinstance(v, date) else str(v)
    return _no_cast(sql, source, target)


def _no_cast(sql: str, source: str, target: str) -> NoReturn:
    raise UnsupportedSql(f"{sql}: cannot use {source} as {target}")


def _coerce(expr: Expr, target: str) -> Expr:
    if expr.type == target:
        return expr
    convert = _converter(expr.type, target, expr.sql, echo=expr.type == "unknown")
    fn = expr.fn
    if expr.type == "unknown":  # a literal: convert once, now
        value = convert(fn({}))
        return Expr(lambda row: value, target, expr.sql)
    return Expr(lambda row: None if (v := fn(row)) is None else convert(v), target, expr.sql)


def _cast(inner: Expr, node: exp.Cast, sql: str) -> Expr:
    target = CASTS.get(node.to.this)
    if target is None:
        raise UnsupportedSql(f"{sql}: cast to {node.to.sql('postgres')} is not supported; "
                             "use DATE, TIMESTAMP, TEXT or INTEGER")
    return _coerce(inner, target)


_RANK = {"integer": 0, "numeric": 1, "date": 2, "timestamp": 3}


def _unify(left: Expr, right: Expr, sql: str) -> tuple[Expr, Expr]:
    """Both sides of a comparison in one type: literals take the other side's."""
    if left.type == right.type or "null" in (left.type, right.type):
        return left, right
    if left.type == "unknown":
        return _coerce(left, right.type), right
    if right.type == "unknown":
        return left, _coerce(right, left.type)
    if left.type in _RANK and right.type in _RANK and (
            (left.type in ("date", "timestamp")) == (right.type in ("date", "timestamp"))):
        wider = max(left.type, right.type, key=_RANK.__getitem__)
        return _coerce(left, wider), _coerce(right, wider)
    raise UnsupportedSql(f"{sql}: cannot compare {left.type} with {right.type}")
