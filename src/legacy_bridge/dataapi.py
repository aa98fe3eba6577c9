"""The Data API surface: the legacy SQL route of the Data API table, over GraphQL.

One request, top to bottom, is `DataApiService.translate`:
validate (token, company scope, body) -> plan (sqlplan) -> query upstream
(pages with the pushed-down variables, or one `totalCount` request per COUNT
group) -> rewrite (typed rows, residual WHERE, sort, LIMIT, projection) ->
respond (JSON envelope from the table, or streamed CSV). The migration mode
around it is the pipeline's (pipeline.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from cachetools import TTLCache
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from legacy_bridge import logs
from legacy_bridge.auth import COMPANY_SCOPE, Authenticator, Client
from legacy_bridge.bodies import read_body
from legacy_bridge.errors import (
    BridgeError,
    Forbidden,
    InvalidParameter,
    ResultTooLarge,
    UnsupportedSql,
    UpstreamError,
    UpstreamTimeout,
)
from legacy_bridge.modes import Mode
from legacy_bridge.operations import VariablePath
from legacy_bridge.pagination import Answer, answer_of, read_all
from legacy_bridge.pipeline import Comparison
from legacy_bridge.query import Document, count_document, input_variables, rows_document
from legacy_bridge.responses import json_response
from legacy_bridge.settings import Settings
from legacy_bridge.shadow import Tape, diff_sql_answers
from legacy_bridge.sqlexpr import Row, SqlLimits, sort_rows
from legacy_bridge.sqlmap import Column, DataApi
from legacy_bridge.sqlplan import Plan, plan
from legacy_bridge.sqltypes import to_json
from legacy_bridge.upstream import Upstream
from legacy_bridge.usage import Usage

log = logs.get("legacy_bridge.dataapi")
# evaluation runs this long at most before the event loop serves other requests
YIELD_EVERY = 0.005


class DataApiService:
    """The Data API table as a surface of the pipeline (see pipeline.Surface)."""

    def __init__(self, api: DataApi, upstream: Upstream, auth: Authenticator,
                 settings: Settings, usage: Usage,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.name = Path(api.file).stem  # the table's name, for metrics, usage and the store
        self.mode: Mode | None = api.mode
        self.upstream = upstream
        self.auth = auth
        self.settings = settings
        self.usage = usage
        self.limits = SqlLimits(settings.sql_max_in_items, settings.sql_max_like_wildcards)
        self.count_document = count_document(api)
        self.catalog_document = (Document(api.catalog.document, "LegacyDataApiCatalog")
                                 if api.catalog else None)
        # per credential: in passthrough mode each client's key may see other programs
        self._titles: TTLCache[str, dict[str, str]] = TTLCache(256, settings.catalog_ttl,
                                                               timer=clock)
        self._titles_lock = asyncio.Lock()

    async def receive(self, request: Request) -> bytes:
        return await self.read_body(request)

    def relayable(self, request: Request) -> None:
        return None  # one fixed path

    def relayed_params(self, request: Request) -> list[str]:
        return []

    def comparison(self, request: Request, body: bytes | None) -> Comparison | None:
        if "text/csv" in request.headers.get("accept", ""):  # compared as JSON only
            return None
        sql = body or b""
        keep_pii = self.settings.compare_pii == "keep"
        asked = (sql.decode(errors="replace") if keep_pii
                 else "sql sha256:" + hashlib.sha256(sql).hexdigest()[:16])
        return Comparison(f"POST {self.api.path} {asked}",
                          diff=lambda old, new: diff_sql_answers(old, new, keep_pii))

    def admit(self, request: Request) -> Client:
        """The token and its scope: checked before the body is read."""
        client = self.auth.client(request.headers.get("authorization"))
        request.state.client = client.label
        if COMPANY_SCOPE not in client.plans:
            raise Forbidden("the Data API needs a company-wide token; this one is for plans")
        return client

    async def translate(self, request: Request, body: bytes | None, tape: Tape | None = None,
                        count_usage: bool = True) -> Response:
        # authenticate -> scope -> parse the body: nothing goes upstream before these
        client = self.admit(request)
        sql = sql_of(body or b"", request.headers.get("content-type", ""))
        # plan: what the upstream does, what runs here
        query_plan = plan(sql, self.api, self.limits)
        columns = [o.name for o in query_plan.outputs]
        wants_csv = "text/csv" in request.headers.get("accept", "")
        # query upstream -> rewrite
        rows = self.rows(query_plan, client.upstream_key, bounded=not wants_csv)
        try:
            async with asyncio.timeout(self.settings.total_deadline):
                if wants_csv:  # the first row (or the error) decides the status
                    first = await _first(rows)
                else:
                    answer = [row async for row in rows]
        except TimeoutError:
            await rows.aclose()
            raise UpstreamTimeout("the upstream did not answer in time") from None
        except BaseException:
            await rows.aclose()
            raise
        if count_usage:
            self.usage.record(client.label, self.name, [], columns)
        # respond
        if wants_csv:
            return StreamingResponse(csv_lines(columns, first, rows, self.name,
                                               self.settings.csv_neutralize_formulas),
                                     media_type="text/csv; charset=utf-8")
        names = self.api.response
        return json_response({names.columns: columns, names.rows: answer,
                              names.row_count: len(answer)})

    async def read_body(self, request: Request) -> bytes:
        """The request body, refused past BRIDGE_SQL_MAX_BYTES without reading it all."""
        return await read_body(request, self.settings.sql_max_bytes,
                               self.settings.total_deadline, InvalidParameter, "the SQL")

    async def read_sql(self, request: Request) -> str:
        return sql_of(await self.read_body(request), request.headers.get("content-type", ""))

    # -- query upstream and rewrite ---------------------------------------------

    async def rows(self, query_plan: Plan, key: str,
                   bounded: bool = True) -> AsyncGenerator[list[Any], None]:
        """The legacy answer's rows (JSON values in column order), in order.

        Without a sort in the proxy each row is yielded as its page arrives, so
        a CSV export streams in constant memory (`bounded=False`). A sort, or
        a bounded answer, holds at most BRIDGE_SQL_MAX_ROWS rows (else 413).
        """
        count, limit = query_plan.count, self.settings.sql_max_rows
        if query_plan.limit == 0 or (query_plan.empty and (count is None or count.group)):
            return
        if count is not None:
            pairs = [(None, 0)] if query_plan.empty else await self._counts(query_plan, key)
            if len(pairs) > limit:
                raise ResultTooLarge(f"the answer holds more than {limit} groups; "
                                     "narrow the WHERE")
            sort_rows(pairs, query_plan.sort)
            for pair in _window(pairs, query_plan):
                yield count.line(pair)
            return
        titles = await self.titles(key) if query_plan.needs_catalog else {}
        outputs = [o.expr.fn for o in query_plan.outputs]
        stop = query_plan.early_stop
        kept: list[Row] = []  # only for a sort in the proxy
        matched = held = 0
        async with contextlib.aclosing(self._matching(query_plan, key, titles)) as matching:
            async for row in matching:
                matched += 1
                if not query_plan.sort and matched <= query_plan.offset:
                    continue  # OFFSET without a sort: skipped while paging
                held += 1
                if held > limit and (bounded or query_plan.sort):
                    raise ResultTooLarge(f"the answer holds more than {limit} rows; "
                                         "add a LIMIT or narrow the WHERE")
                if query_plan.sort:
                    kept.append(row)
                else:
                    yield [to_json(fn(row)) for fn in outputs]
                if stop is not None and matched >= stop:
                    break
        if query_plan.sort:
            sort_rows(kept, query_plan.sort)
            for row in _window(kept, query_plan):
                yield [to_json(fn(row)) for fn in outputs]

    async def _matching(self, query_plan: Plan, key: str, titles: dict[str, str],
                        extra: tuple[Column, ...] = ()) -> AsyncGenerator[Row, None]:
        """Typed rows that pass the residual WHERE, page after page."""
        build = _row_builder((*query_plan.columns_read, *extra), titles)
        residual = query_plan.residual.fn if query_plan.residual else None
        pages_of = self._pages(query_plan, key, rows_document(self.api, (
            *query_plan.columns_read, *extra)))
        budget, spent = self.settings.sql_max_cpu_seconds, 0.0
        async with contextlib.aclosing(pages_of) as pages:
            async for nodes in pages:
                started = time.perf_counter()
                for node in nodes:
                    row = build(node)
                    if residual is None or residual(row) is True:
                        yield row
                    now = time.perf_counter()
                    if now - started > YIELD_EVERY:  # let other requests in
                        spent += now - started
                        if spent > budget:
                            raise UnsupportedSql(
                                f"the statement needs more than {budget:g} s of evaluation "
                                "in the proxy (BRIDGE_SQL_MAX_CPU_SECONDS); narrow the WHERE "
                                "with conditions the upstream can filter on")
                        await asyncio.sleep(0)
                        started = time.perf_counter()
                spent += time.perf_counter() - started

    async def _pages(self, query_plan: Plan, key: str,
                     document: Document) -> AsyncGenerator[list[dict[str, Any]], None]:
        async def page(after: str | None) -> Answer:
            data = await self.upstream.query(
                self.api.endpoint, document,
                input_variables(query_plan.variables, self.api.connection, query_plan.first,
                                after), key)
            return answer_of(data, self.api.connection, with_nodes=True)

        async with contextlib.aclosing(read_all(page)) as answers:
            async for answer in answers:
                yield answer.nodes or []

    async def total(self, variables: dict[VariablePath, Any], key: str) -> int:
        """totalCount of a filter: one cursor-only request of one record."""
        data = await self.upstream.query(
            self.api.endpoint, self.count_document,
            input_variables(variables, self.api.connection, 1, None), key)
        return answer_of(data, self.api.connection, with_nodes=False).total

    async def _counts(self, query_plan: Plan, key: str) -> list[tuple[Any, int]]:
        """(group value, count) pairs: from totalCount per group, or counted per row."""
        count = query_plan.count
        assert count is not None
        group = count.group
        titles = await self.titles(key) if query_plan.needs_catalog else {}
        if not count.from_totals:
            found: dict[Any, int] = {}
            matching_rows = self._matching(query_plan, key, titles, (group,) if group else ())
            async with contextlib.aclosing(matching_rows) as matching:
                async for row in matching:
                    value = row[group.name] if group else None
                    found[value] = found.get(value, 0) + 1
            if group is None:
                found.setdefault(None, 0)
            pairs = list(found.items())
        elif group is None:
            pairs = [(None, await self.total(query_plan.variables, key))]
        else:
            assert group.filter is not None
            narrowed = query_plan.variables.get(group.filter)
            domain = (list(group.filter_values.items()) if group.groups == "enum"
                      else [(k, k) for k in titles])
            domain = [(legacy, up) for legacy, up in domain
                      if narrowed is None or up in narrowed]
            totals = await asyncio.gather(*(
                self.total({**query_plan.variables, group.filter: [up]}, key)
                for _, up in domain))
            pairs = [(legacy, n) for (legacy, _), n in zip(domain, totals, strict=True) if n]
        return pairs

    async def titles(self, key: str) -> dict[str, str]:
        """Catalog program titles by key: one request per credential, reused for
        BRIDGE_CATALOG_TTL."""
        catalog, document = self.api.catalog, self.catalog_document
        assert catalog is not None and document is not None
        credential = hashlib.sha256(key.encode()).hexdigest()
        async with self._titles_lock:
            cached = self._titles.get(credential)
            if cached is None:
                data: Any = await self.upstream.query(catalog.endpoint, document, {}, key)
                try:
                    for part in catalog.list_path:
                        data = data[part]
                    cached = {str(p[catalog.key]): p[catalog.value] for p in data}
                except (KeyError, TypeError) as exc:
                    raise UpstreamError("the catalog answered an unexpected shape") from exc
                self._titles[credential] = cached
            return cached


def sql_of(body: bytes, content_type: str) -> str:
    """The SQL of a request body: JSON `{"query": ...}` or the SQL as text/plain."""
    if content_type.startswith("application/json"):
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidParameter("the body is not JSON; send {\"query\": \"<SQL>\"} "
                                   "or the SQL as text/plain") from None
        sql = payload.get("query") if isinstance(payload, dict) else None
    else:
        try:
            sql = body.decode()
        except UnicodeDecodeError:
            raise InvalidParameter("the SQL is not UTF-8 text") from None
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidParameter("send the SQL as {\"query\": \"<SQL>\"} or as text/plain")
    return sql


def _window(rows: list[Any], query_plan: Plan) -> list[Any]:
    end = None if query_plan.limit is None else query_plan.offset + query_plan.limit
    return rows[query_plan.offset:end]


def _row_builder(columns: Iterable[Column],
                 titles: dict[str, str]) -> Callable[[dict[str, Any]], Row]:
    """node -> the typed values of the columns the plan reads."""
    getters: list[tuple[str, Callable[[dict[str, Any]], Any]]] = []
    for column in {c.name: c for c in columns}.values():
        def get(node: dict[str, Any], c: Column = column) -> Any:
            if c.catalog is not None:
                return titles.get(node[c.catalog])
            assert c.field is not None
            value = node[c.field]
            if value is None and c.fallback is not None:
                value = node[c.fallback]
            return None if value is None else c.read(value)

        getters.append((column.name, get))

    def build(node: dict[str, Any]) -> Row:
        try:
            return {name: get(node) for name, get in getters}
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError("the upstream answered an unexpected record") from exc

    return build


async def _first(rows: AsyncIterator[list[Any]]) -> list[Any] | None:
    """The first row, or None for an empty answer."""
    try:
        return await anext(rows)
    except StopAsyncIteration:
        return None


async def csv_lines(columns: list[str], first: list[Any] | None,
                    rest: AsyncGenerator[list[Any], None], route: str,
                    neutralize: bool = False, chunk: int = 500) -> AsyncIterator[str]:
    """CSV with a header row, written out every `chunk` rows as they arrive.

    The status (200) is already sent: a failure from here on ends the body
    without its final chunk, so the client sees a cut-off transfer, never a
    short file that looks complete. `neutralize` (BRIDGE_CSV_NEUTRALIZE_FORMULAS)
    prefixes text cells a spreadsheet would run as a formula with `'`.
    """
    cell = _neutralized if neutralize else _csv_value
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    if first is not None:
        writer.writerow([cell(v) for v in first])
        written = 1
        async with contextlib.aclosing(rest) as rows:
            try:
                async for row in rows:
                    writer.writerow([cell(v) for v in row])
                    written += 1
                    if written % chunk == 0:
                        yield buffer.getvalue()
                        buffer.seek(0)
                        buffer.truncate()
            except BridgeError as exc:
                log.warning("CSV answer cut off after its status was sent", route=route,
                            code=exc.code, rows_written=written)
                raise
    yield buffer.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _neutralized(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate (`=HYPERLINK(...)`), made inert."""
    value = _csv_value(value)
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
