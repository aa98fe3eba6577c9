"""The old Data API (`POST /api/emc/reports/query`), evaluating SQL in SQLite.

The stand-in for the system being retired: `roster_v1` is a view over the
emulator's dataset written straight from the contract's column table, and the
SQL runs in SQLite after sqlglot transpiles it from Postgres - deliberately not
through the proxy's mapping table or planner, so that comparing the two says
something. Postgres semantics SQLite lacks are restored here: case-sensitive
LIKE with `\\` as escape, nulls last on ASC (sqlglot writes NULLS FIRST/LAST),
and timestamp comparisons as instants (both sides through `datetime()`).
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from starlette.requests import Request
from starlette.responses import Response

ROSTER_VIEW = """
CREATE TEMP VIEW roster_v1 AS
SELECT p.user_email AS email, p.first_name AS first_name, p.last_name AS last_name,
       p.user_id AS user_key, c.title AS nd_title, p.program_key AS node_key,
       lower(p.enrollment_status) AS enrollment_state, p.enrolled_at AS enrolled_at,
       coalesce(p.graduated_at, p.completed_at) AS graduated_at,
       p.last_active_at AS last_seen, lower(p.on_track_status) AS on_track_status,
       lower(p.program_type) AS program_type,
       p.projects_completed AS core_projects_passed,
       p.projects_total AS total_core_projects
FROM program_progress p LEFT JOIN programs c ON c.key = p.program_key
ORDER BY p.id
"""
TIMESTAMP_COLUMNS = frozenset({"enrolled_at", "graduated_at", "last_seen"})
COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)


class DataApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _kind(node: exp.Expression) -> str | None:
    """timestamp, date or None: what Postgres would compare this side as."""
    if isinstance(node, exp.Column) and node.name.lower() in TIMESTAMP_COLUMNS:
        return "timestamp"
    if isinstance(node, exp.Cast):
        if node.to.this == exp.DataType.Type.DATE:
            return "date"
        if node.to.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ):
            return "timestamp"
    return None


def _operands(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Between):
        return [node.this, node.args["low"], node.args["high"]]
    if isinstance(node, exp.In):
        return [node.this, *node.expressions]
    return [node.this, node.expression]


def _rewrite(node: exp.Expression) -> exp.Expression:
    """Postgres meanings on SQLite: instants and dates compare as such, not as text;
    LIKE escapes with a backslash."""
    if isinstance(node, (*COMPARISONS, exp.Between, exp.In)):
        operands = _operands(node)
        kinds = {_kind(o) for o in operands}
        if kinds & {"timestamp", "date"}:
            wrap = "datetime" if "timestamp" in kinds else "date"
            for operand in operands:
                operand.replace(exp.Anonymous(this=wrap, expressions=[operand.copy()]))
            return node
    if isinstance(node, exp.Like | exp.ILike) and not isinstance(node.parent, exp.Escape):
        return exp.Escape(this=node.copy(), expression=exp.Literal.string("\\"))
    return node


def _folded(identifier: exp.Expression) -> str:
    quoted = isinstance(identifier, exp.Identifier) and identifier.quoted
    return identifier.name if quoted else identifier.name.lower()


def _name(item: exp.Expression) -> str:
    """Postgres's output column name of a select item."""
    if isinstance(item, exp.Alias):
        return _folded(item.args["alias"])
    if isinstance(item, exp.Column):
        return _folded(item.this)
    if isinstance(item, exp.Cast) and isinstance(item.this, exp.Column):
        return _folded(item.this.this)
    if isinstance(item, exp.Count):
        return "count"
    if isinstance(item, exp.Lower | exp.Upper):
        return item.key.lower()
    return "?column?"


class LegacyDataApi:
    def __init__(self, dataset: Path, tokens: Mapping[str, tuple[str, ...]]) -> None:
        self.tokens = tokens
        self._db = sqlite3.connect(f"file:{dataset}?mode=ro", uri=True,
                                   check_same_thread=False)
        self._db.execute("PRAGMA case_sensitive_like = ON")
        self._db.execute(ROSTER_VIEW)

    def evaluate(self, sql: str) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows of one SELECT over roster_v1; raises DataApiError."""
        try:
            statements = sqlglot.parse(sql, read="postgres")
        except SqlglotError as exc:
            raise DataApiError(400, "syntax_error", str(exc).splitlines()[0]) from None
        if len(statements) != 1 or not isinstance(statements[0], exp.Select):
            raise DataApiError(400, "syntax_error", "one SELECT statement, please")
        statement = statements[0]
        for item in statement.expressions:  # Postgres's column names, spelled out
            if not isinstance(item, exp.Star):
                inner = item.this if isinstance(item, exp.Alias) else item
                item.replace(exp.alias_(inner.copy(), _name(item), quoted=True))
        try:
            cursor = self._db.execute(statement.transform(_rewrite).sql("sqlite"))
        except sqlite3.Error as exc:
            raise DataApiError(400, "sql_error", str(exc)) from None
        columns = [d[0] for d in cursor.description]
        return columns, [list(row) for row in cursor.fetchall()]

    async def handle(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        plans = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        try:
            if plans is None:
                raise DataApiError(401, "unauthorized", "a valid bearer token is required")
            if "*" not in plans:
                raise DataApiError(403, "forbidden", "the Data API needs a company token")
            body = await request.body()
            if request.headers.get("content-type", "").startswith("application/json"):
                sql = orjson.loads(body).get("query", "")
            else:
                sql = body.decode()
            columns, rows = self.evaluate(sql)
        except DataApiError as exc:
            return Response(orjson.dumps({"error": {"status": exc.status, "code": exc.code,
                                                    "message": exc.message}}),
                            exc.status, media_type="application/json")
        if "text/csv" in request.headers.get("accept", ""):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow(columns)
            writer.writerows(["" if v is None else v for v in row] for row in rows)
            return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8")
        return Response(orjson.dumps({"columns": columns, "rows": rows,
                                      "row_count": len(rows)}),
                        media_type="application/json")
