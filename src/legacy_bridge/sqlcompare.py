"""`legacy-bridge compare sql`: the same SQL statements to the legacy Data API and the proxy.

For a team whose nightly exports send fixed statements: run each through both
sides and see whether the answers agree before pointing the export at the
proxy. Columns must match exactly and rows as a multiset of values (53 and 53.0
are one value; the spelling is reported as a note): Postgres leaves rows tied
under ORDER BY in any order, so order alone is not held against the proxy (the
statement tests pin the order itself).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from sqlglot import TokenType
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import TokenError

from legacy_bridge.compare import row_key
from legacy_bridge.crawl import Side
from legacy_bridge.sqlmap import DataApi


@dataclass(frozen=True)
class SqlComparison:
    sql: str
    agrees: bool
    detail: str  # what differs, or the common row count


def split_statements(text: str) -> list[str]:
    """The statements of a file, split where the SQL tokenizer the Data API uses sees a
    `;`: never inside a string, a dollar-quoted body or a comment; a part holding only
    comments is no statement. Raises ValueError on text that cannot be tokenized."""
    try:
        tokens = Postgres().tokenize(text)
    except TokenError as exc:
        raise ValueError(f"the SQL cannot be read: {exc}") from None
    parts: list[str] = []
    first = last = None  # the statement's first and last token: comments around it drop
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if first is not None and last is not None:
                parts.append(text[first.start:last.end + 1])
            first = last = None
        else:
            first, last = first or token, token
    if first is not None and last is not None:
        parts.append(text[first.start:last.end + 1])
    return parts


def _answer(client: httpx.Client, api: DataApi, side: Side, sql: str) -> tuple[int, Any]:
    response = client.post(side.base_url.rstrip("/") + api.path, json={"query": sql},
                           headers={"Authorization": f"Bearer {side.token}"})
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text[:200]


def compare_one(client: httpx.Client, api: DataApi, legacy: Side, bridge: Side,
                sql: str) -> SqlComparison:
    old_status, old = _answer(client, api, legacy, sql)
    new_status, new = _answer(client, api, bridge, sql)
    columns, rows = api.response.columns, api.response.rows
    if old_status != 200 or new_status != 200:
        same = old_status == new_status
        return SqlComparison(sql, same, f"legacy HTTP {old_status}, proxy HTTP {new_status}")
    if old[columns] != new[columns]:
        return SqlComparison(sql, False, f"columns: legacy {old[columns]}, "
                                         f"proxy {new[columns]}")
    old_rows, new_rows = Counter(map(row_key, old[rows])), Counter(map(row_key, new[rows]))
    if old_rows != new_rows:
        missing = sum((old_rows - new_rows).values())
        extra = sum((new_rows - old_rows).values())
        return SqlComparison(sql, False, f"{missing} legacy rows missing from the proxy, "
                                         f"{extra} proxy rows not in legacy")
    spelled = sum((Counter(map(orjson.dumps, old[rows]))
                   - Counter(map(orjson.dumps, new[rows]))).values())
    note = f" ({spelled} spell a number differently: a note)" if spelled else ""
    return SqlComparison(sql, True, f"{len(new[rows])} rows agree{note}")


def compare_sql(statements: list[str], api: DataApi, legacy: Side, bridge: Side,
                timeout: float = 120.0) -> Iterator[SqlComparison]:
    """Each statement's comparison as soon as both sides answered it."""
    with httpx.Client(timeout=timeout) as client:
        for sql in statements:
            yield compare_one(client, api, legacy, bridge, sql)
