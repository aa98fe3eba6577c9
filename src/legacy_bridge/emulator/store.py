"""Keyset reads over the emulator's SQLite dataset.

Each upstream record type is described once, as data (`Table`): which column
backs each GraphQL field, which sort column backs each `orderBy` value, and
which column each filter key narrows. One query builder serves them all.
Pages are keyset pages - `(sort_key, id) > (?, ?)` on a `(plan_id, sort_key,
id)` index - so a page a million records deep costs what page one costs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    name: str
    fields: Mapping[str, str]  # GraphQL field -> column
    order_keys: Mapping[str, str]  # orderBy value -> non-null sort column
    filters: Mapping[str, str]  # filter key -> column (lists mean IN, scalars =)
    default_order: str = "id"


PROGRAM_PROGRESS = Table(
    name="program_progress",
    fields={
        "userId": "user_id", "userEmail": "user_email", "userFirstName": "first_name",
        "userLastName": "last_name", "enrollmentStatus": "enrollment_status",
        "enrolledAt": "enrolled_at", "unenrolledAt": "unenrolled_at",
        "graduatedAt": "graduated_at", "completedAt": "completed_at",
        "programKey": "program_key", "programVersion": "program_version",
        "programType": "program_type", "lastActiveAt": "last_active_at",
        "learnerHours": "learner_hours", "completionPercentage": "completion_percentage",
        "projectsRequiredTotal": "projects_total",
        "projectsRequiredCompleted": "projects_completed",
        "onTrackStatus": "on_track_status", "learningPlanId": "plan_id",
    },
    order_keys={
        "EMAIL": "user_email", "PROGRAM_TITLE": "program_title",
        "ENROLLMENT_STATUS": "enrollment_status", "LAST_ACTIVE": "k_last_active",
        "COMPLETED_PROJECTS": "projects_completed", "LEARNING_TIME": "learner_hours",
    },
    filters={"learningPlanId": "plan_id", "enrollmentStatus": "enrollment_status",
             "programKey": "program_key"},
)

LEARNING_PLAN_PROGRESS = Table(
    name="learning_plan_progress",
    fields={
        "userId": "user_id", "userEmail": "user_email", "userFirstName": "first_name",
        "userLastName": "last_name", "learningPlanId": "plan_id",
        "subscriptionStatus": "subscription_status", "subscribedAt": "subscribed_at",
        "unsubscribedAt": "unsubscribed_at", "completedAt": "completed_at",
        "stepsTotal": "steps_total", "stepsCompleted": "steps_completed",
        "lastActiveAt": "last_active_at",
    },
    order_keys={"EMAIL": "user_email", "LAST_ACTIVE": "k_last_active",
                "STEPS_COMPLETED": "steps_completed", "SUBSCRIBED_AT": "subscribed_at"},
    filters={"learningPlanId": "plan_id", "subscriptionStatus": "subscription_status"},
)

ASSESSMENT_PROGRESS = Table(
    name="assessment_attempts",
    fields={
        "attemptId": "attempt_id", "userId": "user_id", "userEmail": "user_email",
        "assessmentId": "assessment_id", "assessmentTitle": "assessment_title",
        "programKey": "program_key", "learningPlanId": "plan_id",
        "attemptNumber": "attempt_number", "status": "status", "score": "score",
        "passingScore": "passing_score", "startedAt": "started_at",
        "submittedAt": "submitted_at", "gradedAt": "graded_at",
    },
    order_keys={"STARTED_AT": "started_at", "SUBMITTED_AT": "k_submitted",
                "EMAIL": "user_email", "SCORE": "k_score"},
    filters={"learningPlanId": "plan_id", "userIds": "user_id",
             "programKey": "program_key", "status": "status"},
)


@dataclass
class Store:
    """Read-only access to one dataset file; safe to share within one thread."""

    path: Path
    _db: sqlite3.Connection = field(init=False)
    _counts: dict[tuple[str, str], int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        self._db.close()

    def _where(self, table: Table, filters: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in sorted(filters.items()):
            if value is None:
                continue
            column = table.filters[key]
            if isinstance(value, list):
                clauses.append(f"{column} IN ({','.join('?' * len(value))})"
                               if value else "0")
                params.extend(value)
            else:
                clauses.append(f"{column} = ?")
                params.append(value)
        return clauses, params

    def count(self, table: Table, filters: Mapping[str, Any], exclude: str = "") -> int:
        """totalCount after filters; memoised, since the dataset never changes.

        `exclude` is a trusted SQL condition of rows to leave out (legacy drift).
        """
        cache_key = (table.name, repr(sorted(filters.items())) + exclude)
        if cache_key not in self._counts:
            clauses, params = self._where(table, filters)
            if exclude:
                clauses.append(f"NOT ({exclude})")
            where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM {table.name}{where}",
                                    params).fetchone()
            self._counts[cache_key] = n
        return self._counts[cache_key]

    def page(self, table: Table, filters: Mapping[str, Any], order_by: str | None,
             descending: bool, first: int,
             after: Sequence[Any] | None) -> tuple[list[Row], bool]:
        """Up to `first` rows after the keyset position `after`, and whether more follow.

        Each row carries `_key`, the `(sort value, id)` pair a cursor encodes.
        """
        sort = table.order_keys[order_by] if order_by else table.default_order
        clauses, params = self._where(table, filters)
        direction, op = ("DESC", "<") if descending else ("ASC", ">")
        select = f"SELECT {sort} AS _sort, * FROM {table.name} WHERE "
        order = f" ORDER BY {sort} {direction}, id {direction} LIMIT ?"
        if after is None:
            rows = self._db.execute(select + " AND ".join([*clauses, "1"]) + order,
                                    [*params, first + 1]).fetchall()
        else:
            # Two index seeks instead of one row-value range: SQLite seeks a
            # row-value range on its first column only, which would scan every
            # record tied with the cursor (a quarter of a plan for a status).
            sort_value, row_id = after
            rows = []
            if sort != "id":
                rows = self._db.execute(
                    select + " AND ".join([*clauses, f"{sort} = ?", f"id {op} ?"]) + order,
                    [*params, sort_value, row_id, first + 1]).fetchall()
                row_id = None
            if len(rows) <= first:
                tail = f"{sort} {op} ?"
                rows += self._db.execute(
                    select + " AND ".join([*clauses, tail]) + order,
                    [*params, sort_value if row_id is None else row_id,
                     first + 1 - len(rows)]).fetchall()
        out = []
        for row in rows[:first]:
            record = {gql: row[col] for gql, col in table.fields.items()}
            record["_key"] = (row["_sort"], row["id"])
            out.append(record)
        return out, len(rows) > first

    def offset_page(self, table: Table, filters: Mapping[str, Any], order_by: str,
                    descending: bool, limit: int, offset: int,
                    extra_select: str = "", exclude: str = "") -> list[sqlite3.Row]:
        """Rows by OFFSET in the same total order as `page`: the legacy API's way."""
        sort = table.order_keys[order_by]
        clauses, params = self._where(table, filters)
        if exclude:
            clauses.append(f"NOT ({exclude})")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        direction = "DESC" if descending else "ASC"
        sql = (f"SELECT t.*{extra_select} FROM {table.name} t{where} "
               f"ORDER BY {sort} {direction}, id {direction} LIMIT ? OFFSET ?")
        return self._db.execute(sql, [*params, limit, offset]).fetchall()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A raw read, for the legacy emulation."""
        return self._db.execute(sql, params).fetchall()

    def plans(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT id FROM plans ORDER BY rowid")]
