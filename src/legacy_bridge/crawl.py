"""`legacy-bridge compare crawl`: read every page of a plan from both sides and compare.

The cut-over gate: the legacy API and the proxy are read over HTTP, page by
page, exactly as a legacy client reads them; the records are compared under
each route's noise rules (`compare.py`). Agreement on every field of every
record is exit 0; anything else is exit 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from legacy_bridge.compare import Difference, RouteComparison, compare_records, redact
from legacy_bridge.errors import CrawlError
from legacy_bridge.mapping import Route
from legacy_bridge.progresstable import ProgressTable

Progress = Callable[[str, int, int], None]  # (route, pages read, pages in all)
RETRIES = 3  # extra tries of a page on a connection error or a 502/503/504


@dataclass(frozen=True)
class Side:
    base_url: str
    token: str


@dataclass(frozen=True)
class Crawl:
    """How hard a crawl reads: pages per request, pages in flight per side, retries."""

    per_page: int = 100
    in_flight: int = 4
    retries: int = RETRIES
    backoff: float = 0.5  # seconds before the first retry; doubles
    timeout: float = 60.0


async def _page(client: httpx.AsyncClient, side: Side, url: str, params: dict[str, int],
                how: Crawl) -> dict[str, Any]:
    """One page; transient failures are tried again with backoff, others are fatal."""
    for attempt in range(how.retries + 1):
        try:
            response = await client.get(url, params=params,
                                        headers={"Authorization": f"Bearer {side.token}"})
            if response.status_code not in (502, 503, 504) or attempt == how.retries:
                break
        except httpx.TransportError:
            if attempt == how.retries:
                raise
        await asyncio.sleep(how.backoff * 2 ** attempt)
    if response.status_code != 200:
        raise CrawlError(f"{side.base_url}{urlsplit(url).path} page {params}: HTTP "
                         f"{response.status_code} {response.text[:200]}")
    body: dict[str, Any] = response.json()
    return body


async def _pages(client: httpx.AsyncClient, side: Side, route: Route, path: str, how: Crawl,
                 progress: Progress | None, done_before: int, slots: asyncio.Semaphore
                 ) -> tuple[list[dict[str, Any]], int]:
    """Every page of one route for one plan: page 1 says how many, the rest go out at
    most `how.in_flight` at a time, and come back in page order."""
    page_param = route.param_of_type("page").name
    size_param = route.param_of_type("per_page").name
    url = f"{side.base_url.rstrip('/')}{path}"
    done = 0

    async def fetch(page: int) -> dict[str, Any]:
        nonlocal done
        async with slots:
            body = await _page(client, side, url, {page_param: page, size_param: how.per_page},
                               how)
        done += 1
        if progress is not None:
            progress(route.name, done_before + done, 2 * pages)
        return body

    pages = 1
    first = await fetch(1)
    total = int(first[route.key_of("total")])
    pages = max(1, -(-total // how.per_page))
    rest = await asyncio.gather(*(fetch(p) for p in range(2, pages + 1)))
    items = [item for body in (first, *rest) for item in body[route.key_of("items")]]
    return items, total


def _plan_path(route: Route, plan: str) -> str:
    """The route's path for one plan: its scope parameter filled in."""
    scope = next((p.name for p in route.params.values() if p.scope and p.source == "path"),
                 None)
    if scope is None:
        raise CrawlError(f"{route.name} has no plan parameter in its path to crawl by")
    return route.path.replace(f"{{{scope}}}", plan)


def merge(into: RouteComparison, more: RouteComparison) -> RouteComparison:
    """Two plans' comparisons of one route as one."""
    into.compared += more.compared
    into.legacy_only += more.legacy_only
    into.bridge_only += more.bridge_only
    into.differences += more.differences
    into.notes += more.notes
    for path, (agree, compared) in more.fields.items():
        tally = into.fields.setdefault(path, [0, 0])
        tally[0] += agree
        tally[1] += compared
    if more.totals is not None:
        old = into.totals or (0, 0)
        into.totals = (old[0] + more.totals[0], old[1] + more.totals[1])
    return into


class State:
    """`--resume`: each finished (plan, route) comparison in a JSON file, so a crawl
    stopped half-way goes on where it stopped. Holds hashed or kept values exactly
    as the report would print them; never a token."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            self.done = json.loads(path.read_text())

    def get(self, plan: str, route: str) -> RouteComparison | None:
        found = self.done.get(f"{plan} {route}")
        if found is None:
            return None
        return RouteComparison(
            found["route"], found["compared"], found["legacy_only"], found["bridge_only"],
            [Difference(**d) for d in found["differences"]], found["fields"],
            tuple(found["totals"]) if found["totals"] else None,
            [Difference(**d) for d in found["notes"]])

    def put(self, plan: str, result: RouteComparison) -> None:
        if self.path is None:
            return
        self.done[f"{plan} {result.route}"] = {
            **result.__dict__, "differences": [d.__dict__ for d in result.differences],
            "notes": [d.__dict__ for d in result.notes]}
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.done))
        partial.replace(self.path)  # never a half-written state


def crawl_compare(routes: list[Route], legacy: Side, bridge: Side, plans: list[str] | str,
                  per_page: int = 100, keep_pii: bool = False,
                  progress: Progress | None = None, timeout: float = 60.0,
                  how: Crawl | None = None, state: State | None = None,
                  ) -> list[RouteComparison]:
    """Every page of every plan from both sides, compared per route (plans merged)."""
    how = how or Crawl(per_page=per_page, timeout=timeout)
    return asyncio.run(_crawl(routes, legacy, bridge,
                              [plans] if isinstance(plans, str) else plans, keep_pii,
                              progress, how, state or State(None)))


async def _crawl(routes: list[Route], legacy: Side, bridge: Side, plans: list[str],
                 keep_pii: bool, progress: Progress | None, how: Crawl, state: State
                 ) -> list[RouteComparison]:
    merged: dict[str, RouteComparison] = {}
    slots = {"legacy": asyncio.Semaphore(how.in_flight),
             "bridge": asyncio.Semaphore(how.in_flight)}
    async with httpx.AsyncClient(timeout=how.timeout) as client:
        for plan in plans:
            for route in routes:
                result = state.get(plan, route.name)
                if result is None:
                    path = _plan_path(route, plan)
                    theirs, their_total = await _pages(client, legacy, route, path, how,
                                                       progress, 0, slots["legacy"])
                    done = max(1, -(-their_total // how.per_page))
                    ours, our_total = await _pages(client, bridge, route, path, how,
                                                   progress, done, slots["bridge"])
                    result = compare_records(route.name, theirs, ours, route.compare)
                    if their_total != our_total:
                        result.totals = (their_total, our_total)
                    result = result if keep_pii else redact(result, route.compare)
                    state.put(plan, result)
                merged[route.name] = (merge(merged[route.name], result)
                                      if route.name in merged else result)
    return list(merged.values())


def crawl_progress(table: ProgressTable, legacy: Side, bridge: Side, learners: list[str],
                   keep_pii: bool = False, timeout: float = 60.0) -> RouteComparison:
    """Every listed learner's course-progress records from both sides' admin route
    (both tokens an admin's), compared under the table's [course_progress.compare]."""
    route = next((r for r in table.routes if r.path_param is not None), None)
    if route is None or route.path_param is None:
        raise CrawlError("the course-progress table has no admin route to read learners by")
    theirs: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    with httpx.Client(timeout=timeout) as client:
        for learner in learners:
            path = route.path.replace(f"{{{route.path_param}}}", learner)
            for side, records in ((legacy, theirs), (bridge, ours)):
                response = client.get(f"{side.base_url.rstrip('/')}{path}",
                                      headers={"Authorization": f"Bearer {side.token}"})
                if response.status_code != 200:
                    raise CrawlError(f"{side.base_url}{route.path} for a learner: HTTP "
                                     f"{response.status_code} {response.text[:200]}")
                records += response.json()
    result = compare_records(route.name, theirs, ours, table.compare)
    return result if keep_pii else redact(result, table.compare)


def report(results: list[RouteComparison]) -> str:
    """Per route and per field agreement, then the first differences."""
    lines = []
    for r in results:
        verdict = "agree" if r.agrees else "DIFFER"
        lines.append(f"{r.route}: {verdict} - {r.compared} records compared, "
                     f"{len(r.legacy_only)} only in legacy, {len(r.bridge_only)} only in "
                     "bridge" + (f", total {r.totals[0]} (legacy) vs {r.totals[1]} (bridge)"
                                 if r.totals else ""))
        noted = _noted(r)
        lines.append(f"  {'field':<34} {'agree':>8} / {'compared':<8} rate     notes")
        for path, (agree, compared) in r.fields.items():
            mark = "" if agree == compared else "  <-"
            spelled = f"{noted[path]:>6}" if path in noted else " " * 6
            lines.append(f"  {path:<34} {agree:>8} / {compared:<8} "
                         f"{100 * agree / compared:6.2f}% {spelled}{mark}")
        if r.notes:
            lines.append(f"  {len(r.notes)} representation notes (equal values spelled "
                         "differently; not differences), e.g.:")
            lines += [f"    {d.record} {d.path}: legacy {d.legacy!r}, bridge {d.bridge!r}"
                      for d in r.notes[:3]]
        for key in r.legacy_only[:10]:
            lines.append(f"  only in legacy: {key}")
        for key in r.bridge_only[:10]:
            lines.append(f"  only in bridge: {key}")
        for d in r.differences[:20]:
            lines.append(f"  {d.record} {d.path}: legacy {d.legacy!r} != bridge {d.bridge!r}")
        if len(r.differences) > 20:
            lines.append(f"  ... {len(r.differences) - 20} more differences")
    return "\n".join(lines)


def _noted(result: RouteComparison) -> dict[str, int]:
    """Representation notes per field path."""
    counts: dict[str, int] = {}
    for note in result.notes:
        counts[note.path] = counts.get(note.path, 0) + 1
    return counts


def as_json(results: list[RouteComparison]) -> list[dict[str, Any]]:
    """One object per route: `agrees`, counts, per field `agree`/`compared`/`notes`,
    every difference, and the first 100 representation notes."""
    out = []
    for r in results:
        noted = _noted(r)
        out.append({
            "route": r.route, "agrees": r.agrees, "compared": r.compared,
            "legacy_only": r.legacy_only, "bridge_only": r.bridge_only,
            "totals": list(r.totals) if r.totals else None,
            "fields": {p: {"agree": a, "compared": c, "notes": noted.get(p, 0)}
                       for p, (a, c) in r.fields.items()},
            "differences": [d.__dict__ for d in r.differences],
            "notes": len(r.notes), "note_examples": [d.__dict__ for d in r.notes[:100]]})
    return out
