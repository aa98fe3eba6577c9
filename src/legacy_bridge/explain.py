"""What a legacy request becomes upstream, written out for a client to copy. Pure.

`explain(...)` answers `/_bridge/explain` and `legacy-bridge explain`: the
GraphQL document and variables of the data request, the upstream endpoint,
how the page is reached (from a remembered cursor or from the start, how many
cursor-only requests), the field table, and runnable curl and Python (httpx)
snippets with the cursor loop written out. Following `pagination` with
`query` and `variables` returns exactly the legacy page's records.
"""

from __future__ import annotations

import json
import math
from typing import Any

from legacy_bridge.errors import PageTooDeep
from legacy_bridge.mapping import FieldRule, Route
from legacy_bridge.pagination import walk_requests, walk_steps
from legacy_bridge.params import Request
from legacy_bridge.query import Document, count_document, input_variables, rows_document
from legacy_bridge.sqlmap import DataApi
from legacy_bridge.sqlplan import Plan


def _source(rule: FieldRule) -> str:
    return f"@{rule.join[0]}.{rule.join[1]}" if rule.join else str(rule.source)


def explain(route: Route, page: Document, walk: Document, legacy: Request,
            checkpoint: tuple[int, str | None], upstream_url: str,
            max_walk: int) -> dict[str, Any]:
    """Raises PageTooDeep, as the route does, for a page past BRIDGE_MAX_WALK_REQUESTS:
    the answer's size is bounded by that setting, never by the page number."""
    start, cursor = checkpoint
    skip = legacy.offset - start
    needed = walk_requests(skip, legacy.per_page, route.max_first)
    if needed > max_walk:
        raise PageTooDeep(f"reaching offset {legacy.offset} takes {needed} upstream "
                          f"requests, more than the {max_walk} allowed; read this far with "
                          f"the {route.api} GraphQL API and its cursors")
    steps, drop = walk_steps(skip, legacy.per_page, route.max_first)
    wanted = drop + legacy.per_page
    first = min(wanted, route.max_first)
    variables = input_variables(legacy.variables, route.connection, first,
                                None if steps else cursor)
    endpoint = upstream_url.rstrip("/") + route.endpoint
    pagination = {
        "offset": legacy.offset,
        "per_page": legacy.per_page,
        "start": {"offset": start, "after": cursor,
                  "from": "a remembered cursor" if cursor else "the start"},
        "cursor_only_requests": len(steps),
        "cursor_only": {"query": walk.text, "requests": len(steps), "first": steps[0],
                        "last_first": steps[-1],
                        "note": "each request's `after` is the last edge cursor of the one "
                                "before; every `first` is `first` but the last"}
        if steps else None,
        "then": {"first": first, "drop": drop,
                 "note": "the page is the edges after dropping the first `drop`"},
        "upstream_requests": len(steps) + math.ceil(wanted / route.max_first),
    }
    return {
        "route": route.path,
        "endpoint": endpoint,
        "query": page.text,
        "variables": variables,
        "pagination": pagination,
        "fields": [{"legacy": ".".join(f.path), "graphql": _source(f),
                    "transforms": list(f.transforms)} for f in route.fields],
        "joins": {name: {"endpoint": upstream_url.rstrip("/") + join.endpoint,
                         "operation": join.connection.operation,
                         "batch": {"variable": ".".join(join.batch_variable),
                                   "from": join.batch_field},
                         "aggregates": {k: a.model_dump() for k, a in join.aggregates.items()}}
                  for name, join in route.joins.items()},
        "curl": _curl(endpoint, page, variables),
        "python": _python(endpoint, page, walk, route, variables, steps, drop,
                          legacy.per_page, cursor),
    }


def _curl(endpoint: str, page: Document, variables: dict[str, Any]) -> str:
    body = json.dumps({"query": page.text, "variables": variables,
                       "operationName": page.operation_name})
    return (f"curl -s -X POST '{endpoint}' \\\n"
            "  -H \"Authorization: Token $API_KEY\" -H 'Content-Type: application/json' \\\n"
            f"  -d '{body.replace(chr(39), chr(39) + chr(92) + chr(39) + chr(39))}'")


def _python(endpoint: str, page: Document, walk: Document, route: Route,
            variables: dict[str, Any], steps: list[int], drop: int, per_page: int,
            cursor: str | None) -> str:
    conn = route.connection
    names = conn.names
    walk_loop = ""
    if steps:
        walk_loop = f'''
# Walk to the page with cursor-only requests, `first` as listed.
WALK = {walk.text!r}
after = {cursor!r}
for first in [{steps[0]}] * {len(steps) - 1} + [{steps[-1]}]:
    step = {{**variables["input"], {conn.first_variable!r}: first}}
    if after is not None:
        step[{conn.after_variable!r}] = after
    after = post(WALK, {{"input": step}})[{names.edges!r}][-1][{names.cursor!r}]
variables["input"][{conn.after_variable!r}] = after
'''
    return f'''import os

import httpx

ENDPOINT = {endpoint!r}
QUERY = {page.text!r}
variables = {variables!r}
client = httpx.Client(headers={{"Authorization": f"Token {{os.environ['API_KEY']}}"}})


def post(query, variables):
    response = client.post(ENDPOINT, json={{"query": query, "variables": variables}})
    response.raise_for_status()
    return response.json()["data"][{conn.operation!r}]

{walk_loop}
records = []
while len(records) < {drop + per_page}:
    data = post(QUERY, variables)
    records += [edge[{names.node!r}] for edge in data[{names.edges!r}]]
    if not data[{names.page_info!r}][{names.has_next!r}]:
        break
    variables["input"][{conn.after_variable!r}] = data[{names.page_info!r}][{names.end_cursor!r}]
client.close()
records = records[{drop}:{drop + per_page}]
print(len(records), "records")
'''


def explain_sql(query_plan: Plan, api: DataApi, upstream_url: str,
                total: int | None = None) -> dict[str, Any]:
    """What one Data API statement becomes: the GraphQL sent, what runs in the proxy.

    `total` is the pushed-down filter's totalCount when known (the admin page asks
    the upstream for it; the offline CLI cannot), for the request estimate.
    """
    rows, count = rows_document(api, query_plan.columns_read), count_document(api)
    base = upstream_url.rstrip("/")
    counting = query_plan.count is not None and query_plan.count.from_totals
    group = query_plan.count.group if query_plan.count else None
    if counting:
        paging = (f"one request per {group.name} value, with "
                  f"{'.'.join(group.filter or ())} = [that value]; totalCount is the count"
                  if group is not None else "one request; totalCount is the count")
    else:
        stop = query_plan.early_stop
        paging = ("repeat with `after` = the last edge cursor while hasNextPage"
                  + (f", stopping after {stop} matching rows" if stop is not None else ""))
    kept_here = [*query_plan.kept_here,
                 f"SELECT {', '.join(o.expr.sql for o in query_plan.outputs)}: "
                 "projected in the proxy from the node fields"]
    catalog = api.catalog
    return {
        "sql": query_plan.sql,
        "columns": [o.name for o in query_plan.outputs],
        "upstream": {
            "endpoint": base + api.endpoint,
            "query": (count if counting else rows).text,
            "variables": input_variables(query_plan.variables, api.connection,
                                         1 if counting else query_plan.first, None),
            "paging": paging,
        },
        "catalog": {"endpoint": base + catalog.endpoint, "query": catalog.document,
                    "note": "one request (program titles, program keys), reused for "
                            "BRIDGE_CATALOG_TTL seconds"}
        if query_plan.needs_catalog and catalog else None,
        "pushed_down": list(query_plan.pushed),
        "in_the_proxy": kept_here,
        "estimated_upstream_requests": query_plan.estimated_requests(total)
        + (" (+1 catalog request when not cached)" if query_plan.needs_catalog else ""),
    }


def sql_text(answer: dict[str, Any]) -> str:
    """explain_sql's answer for a terminal."""
    upstream = answer["upstream"]
    lines = [f"SQL: {' '.join(answer['sql'].split())}",
             f"Columns: {', '.join(answer['columns'])}", "",
             f"Upstream: POST {upstream['endpoint']}", upstream["query"],
             f"variables: {json.dumps(upstream['variables'])}",
             f"paging: {upstream['paging']}", ""]
    if answer["catalog"]:
        lines += [f"Catalog: POST {answer['catalog']['endpoint']}", answer["catalog"]["query"],
                  answer["catalog"]["note"], ""]
    lines.append("Pushed down to GraphQL:")
    lines += [f"  - {line}" for line in answer["pushed_down"]] or ["  (nothing)"]
    lines.append("In the proxy:")
    lines += [f"  - {line}" for line in answer["in_the_proxy"]]
    lines += ["", f"Estimated upstream requests: {answer['estimated_upstream_requests']}"]
    return "\n".join(lines)
