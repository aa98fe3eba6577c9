"""Values of the Data API: Postgres types in Python, and the column-type registry. Pure.

A column's `type` in the Data API table names an entry of `COLUMN_TYPES`, its
`transform` an entry of `COLUMN_TRANSFORMS`: one line each, as `transforms.py`
does for route fields. Adding a column type is adding a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any


def parse_timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return parse_timestamp(text).date()


@dataclass(frozen=True)
class ColumnType:
    """How an upstream JSON value becomes the typed value SQL compares."""

    read: Callable[[Any], Any]
    about: str


COLUMN_TYPES: dict[str, ColumnType] = {
    "text": ColumnType(lambda value: value, "Postgres text"),
    "timestamp": ColumnType(parse_timestamp, "timestamptz; RFC 3339 upstream, UTC here"),
    "integer": ColumnType(int, "Postgres integer"),
}

# A column transform replaces the type's read: the legacy spelling of an upstream value.
COLUMN_TRANSFORMS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "lower": (lambda value: str(value).lower(), "the legacy spelling of an UPPER_CASE enum"),
}


def to_json(value: Any) -> Any:
    """A typed value in the legacy answer's spelling: RFC 3339, YYYY-MM-DD."""
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
        return text + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return value
