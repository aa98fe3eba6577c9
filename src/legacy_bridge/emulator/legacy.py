"""The old Learner Progress REST API v2, served from the emulator's dataset.

This is the stand-in for the system being retired, written straight from
`shared/contract/legacy-v2.md` and deliberately independent of the proxy's
mapping tables: side-by-side comparison is only worth something if the two
sides were not built from the same table. Offset paging here is plain SQL
`LIMIT/OFFSET` over the same total order the GraphQL side uses.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from legacy_bridge.emulator.store import (
    ASSESSMENT_PROGRESS,
    LEARNING_PLAN_PROGRESS,
    PROGRAM_PROGRESS,
    Store,
    Table,
)

Item = dict[str, Any]
MAX_PAGE = 2_147_483_647
_DIGITS = re.compile(r"[0-9]+")


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _progress_item(row: Mapping[str, Any]) -> Item:
    item: Item = {
        "learner_email": row["user_email"],
        "program_key": row["program_key"],
        "program_version": row["program_version"],
        "stats": {
            "status": _lower(row["enrollment_status"]),
            "total_projects": row["projects_total"],
            "total_projects_completed": row["projects_completed"],
            "perc_concepts_completed": float(row["completion_percentage"]),
            "assessment_attempted": row["attempted"],
            "assessment_completed": row["passed"],
        },
        "last_seen": row["last_active_at"],
        "enrolled_at": row["enrolled_at"],
    }
    if row["graduated_at"] is not None:
        item["graduated_at"] = row["graduated_at"]
    return item


def _user_item(row: Mapping[str, Any]) -> Item:
    item: Item = {
        "user_key": row["user_id"],
        "learner_email": row["user_email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "status": _lower(row["subscription_status"]),
        "subscribed_at": row["subscribed_at"],
    }
    for key in ("unsubscribed_at", "completed_at"):
        if row[key] is not None:
            item[key] = row[key]
    item["stats"] = {"steps_total": row["steps_total"],
                     "steps_completed": row["steps_completed"]}
    item["last_seen"] = row["last_active_at"]
    return item


def _attempt_item(row: Mapping[str, Any]) -> Item:
    score = row["score"]
    return {
        "attempt_id": row["attempt_id"],
        "user_key": row["user_id"],
        "learner_email": row["user_email"],
        "assessment_key": row["assessment_id"],
        "assessment_title": row["assessment_title"],
        "program_key": row["program_key"],
        "attempt_number": row["attempt_number"],
        "status": _lower(row["status"]),
        "score": float(score) if score is not None else None,
        "passing_score": float(row["passing_score"]),
        "started_at": row["started_at"],
        "submitted_at": row["submitted_at"],
        "graded_at": row["graded_at"],
    }


# The join of /progress: distinct assessments attempted / passed by the
# learner in the record's program and plan.
_JOIN = """,
 (SELECT COUNT(DISTINCT a.assessment_id) FROM assessment_attempts a
   WHERE a.user_id = t.user_id AND a.plan_id = t.plan_id
     AND a.program_key = t.program_key) AS attempted,
 (SELECT COUNT(DISTINCT a.assessment_id) FROM assessment_attempts a
   WHERE a.user_id = t.user_id AND a.plan_id = t.plan_id
     AND a.program_key = t.program_key AND a.status = 'PASSED') AS passed"""


@dataclass(frozen=True)
class LegacyRoute:
    table: Table
    status_filter: str  # the upstream filter key the legacy `status` narrows
    statuses: tuple[str, ...]  # legacy spelling; upstream is the upper case
    sorts: Mapping[str, str]  # legacy sort -> orderBy value
    default_sort: str
    item: Callable[[Any], Item]  # sqlite3.Row -> legacy item
    extra_select: str = ""


LEGACY_ROUTES: dict[str, LegacyRoute] = {
    "progress": LegacyRoute(
        PROGRAM_PROGRESS, "enrollmentStatus",
        ("enrolled", "unenrolled", "graduated", "static_access"),
        {"email": "EMAIL", "last_seen": "LAST_ACTIVE", "status": "ENROLLMENT_STATUS",
         "projects_completed": "COMPLETED_PROJECTS", "learning_time": "LEARNING_TIME",
         "program": "PROGRAM_TITLE"},
        "email", _progress_item, _JOIN),
    "users": LegacyRoute(
        LEARNING_PLAN_PROGRESS, "subscriptionStatus",
        ("subscribed", "unsubscribed", "completed"),
        {"email": "EMAIL", "last_seen": "LAST_ACTIVE",
         "steps_completed": "STEPS_COMPLETED", "subscribed_at": "SUBSCRIBED_AT"},
        "email", _user_item),
    "assessment-attempts": LegacyRoute(
        ASSESSMENT_PROGRESS, "status",
        ("in_progress", "submitted", "passed", "failed"),
        {"started_at": "STARTED_AT", "submitted_at": "SUBMITTED_AT", "email": "EMAIL",
         "score": "SCORE"},
        "started_at", _attempt_item),
}


class LegacyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(exc: LegacyError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": {"status": exc.status, "code": exc.code, "message": exc.message}}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise LegacyError(400, "invalid_parameter", f"{name} may be given only once")
    return values[0] if values else None


def _integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = _single(request, name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise LegacyError(400, "invalid_parameter",
                          f"{name} must be an integer from {low} to {high}")
    return int(raw)


@dataclass(frozen=True)
class LegacyQuery:
    page: int
    per_page: int
    statuses: list[str] | None
    sort: str
    descending: bool


def parse_params(request: Request, route: LegacyRoute) -> LegacyQuery:
    page = _integer(request, "page", 1, 1, MAX_PAGE)
    per_page = _integer(request, "per_page", 50, 1, 100)
    raw_status = _single(request, "status")
    statuses = None
    if raw_status is not None:
        statuses = [s.lstrip(" ") for s in raw_status.split(",")]
        if not all(s in route.statuses for s in statuses):
            raise LegacyError(400, "invalid_parameter",
                              f"status must be a comma-separated list of: "
                              f"{', '.join(route.statuses)}")
    sort = _single(request, "sort")
    if sort is None:
        sort = route.default_sort
    elif sort not in route.sorts:
        raise LegacyError(400, "invalid_parameter",
                          f"sort must be one of: {', '.join(route.sorts)}")
    order = _single(request, "order")
    order = "asc" if order is None else order
    if order not in ("asc", "desc"):
        raise LegacyError(400, "invalid_parameter", "order must be one of: asc, desc")
    return LegacyQuery(page, per_page, statuses, sort, order == "desc")


# Known ways the old API can differ from the new one (`emulate --drift`), so the
# comparison tooling has real mismatches to find:
DRIFTS = {
    "enum": "/progress: stats.status static_access is spelled static-access",
    "timestamp": "/assessment-attempts: started_at is an hour late for every 97th attempt",
    "missing": "/users: the plan's first learner record (lowest id) is missing",
    "integers": "every route: a whole float is written as an integer (53.0 as 53), as a "
                "Node service's JSON writes it",
}
SHIFTED_EVERY = 97


def _whole_floats_as_integers(item: Item) -> Item:
    return {key: _whole_floats_as_integers(value) if isinstance(value, dict)
            else int(value) if isinstance(value, float) and value.is_integer() else value
            for key, value in item.items()}


def _shift_hour(stamp: str) -> str:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class LegacyApi:
    """GET /api/v2/plans/{planId}/<route> with plan-scoped bearer tokens."""

    def __init__(self, store: Store, tokens: Mapping[str, tuple[str, ...]],
                 drift: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.tokens = tokens
        self.drift = drift

    def _token_plans(self, request: Request) -> tuple[str, ...]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        plans = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if plans is None:
            raise LegacyError(401, "unauthorized", "a valid bearer token is required")
        return plans

    async def handle(self, request: Request) -> JSONResponse:
        route = LEGACY_ROUTES[request.url.path.rsplit("/", 1)[1]]
        try:
            plans = self._token_plans(request)
            plan_id = request.path_params["plan_id"]
            try:
                valid_uuid = str(uuid.UUID(plan_id)) == plan_id.lower()
            except ValueError:
                valid_uuid = False
            if not valid_uuid:
                raise LegacyError(400, "invalid_parameter", "planId must be a UUID")
            query = parse_params(request, route)
            if "*" not in plans and plan_id not in plans:
                raise LegacyError(403, "forbidden", "this token may not read this plan")
        except LegacyError as exc:
            return error_response(exc)
        return JSONResponse(self.page(route, plan_id, query))

    def page(self, route: LegacyRoute, plan_id: str, query: LegacyQuery) -> dict[str, Any]:
        filters: dict[str, Any] = {"learningPlanId": plan_id}
        if query.statuses is not None:
            filters[route.status_filter] = sorted({s.upper() for s in query.statuses})
        exclude = ""
        if "missing" in self.drift and route.table.name == "learning_plan_progress":
            exclude = ("id = (SELECT MIN(id) FROM learning_plan_progress "
                       f"WHERE plan_id = '{plan_id}')")  # plan_id is a checked UUID
        total = self.store.count(route.table, filters, exclude)
        offset = (query.page - 1) * query.per_page
        rows = [] if offset >= total else self.store.offset_page(
            route.table, filters, route.sorts[query.sort], query.descending,
            query.per_page, offset, route.extra_select, exclude)
        items = [self._drifted(route, route.item(r)) for r in rows]
        return {"results": items, "total": total, "page": query.page,
                "per_page": query.per_page}

    def _drifted(self, route: LegacyRoute, item: Item) -> Item:
        if "enum" in self.drift and item.get("stats", {}).get("status") == "static_access":
            item["stats"]["status"] = "static-access"
        if "timestamp" in self.drift and "attempt_id" in item \
                and int(item["attempt_id"].removeprefix("att-")) % SHIFTED_EVERY == 0:
            item["started_at"] = _shift_hour(item["started_at"])
        if "integers" in self.drift:
            item = _whole_floats_as_integers(item)
        return item
