"""`legacy-bridge compare crawl`: read every page of a plan from both sides and compare.

The cut-over gate: the legacy API and the proxy are read over HTTP, page by
page, exactly as a legacy client reads them; the records are compared under
each route's noise rules (`compare.py`). Agreement on every field of every
record is exit 0; anything else is exit 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from legacy_bridge.compare import RouteComparison, compare_records, redact
from legacy_bridge.errors import CrawlError
from legacy_bridge.mapping import Route
from legacy_bridge.progresstable import ProgressTable

Progress = Callable[[str, int, int], None]  # (route, pages read, pages in all)


@dataclass(frozen=True)
class Side:
    base_url: str
    token: str


def _pages(client: httpx.Client, side: Side, route: Route, path: str, per_page: int,
           progress: Progress | None, done_before: int) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    page_param = route.param_of_type("page").name
    size_param = route.param_of_type("per_page").name
    page = 1
    while True:
        response = client.get(f"{side.base_url.rstrip('/')}{path}",
                              params={page_param: page, size_param: per_page},
                              headers={"Authorization": f"Bearer {side.token}"})
        if response.status_code != 200:
            raise CrawlError(f"{side.base_url}{path} page {page}: HTTP {response.status_code} "
                             f"{response.text[:200]}")
        body = response.json()
        found = body[route.key_of("items")]
        items += found
        total = int(body[route.key_of("total")])
        pages = max(1, -(-total // per_page))
        if progress is not None:
            progress(route.name, done_before + page, 2 * pages)
        if page >= pages or not found:
            return items, total
        page += 1


def _plan_path(route: Route, plan: str) -> str:
    """The route's path for one plan: its scope parameter filled in."""
    scope = next((p.name for p in route.params.values() if p.scope and p.source == "path"),
                 None)
    if scope is None:
        raise CrawlError(f"{route.name} has no plan parameter in its path to crawl by")
    return route.path.replace(f"{{{scope}}}", plan)


def crawl_compare(routes: list[Route], legacy: Side, bridge: Side, plan: str,
                  per_page: int = 100, keep_pii: bool = False,
                  progress: Progress | None = None, timeout: float = 60.0,
                  ) -> list[RouteComparison]:
    results = []
    with httpx.Client(timeout=timeout) as client:
        for route in routes:
            path = _plan_path(route, plan)
            theirs, their_total = _pages(client, legacy, route, path, per_page, progress, 0)
            done = max(1, -(-their_total // per_page))
            ours, our_total = _pages(client, bridge, route, path, per_page, progress, done)
            result = compare_records(route.name, theirs, ours, route.compare)
            if their_total != our_total:
                result.totals = (their_total, our_total)
            results.append(result if keep_pii else redact(result, route.compare))
    return results


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
