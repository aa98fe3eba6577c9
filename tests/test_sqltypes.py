"""Data API values: upstream JSON in, Postgres types in the proxy, the legacy spelling out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from legacy_bridge.sqltypes import (
    COLUMN_TRANSFORMS,
    COLUMN_TYPES,
    parse_date,
    parse_timestamp,
    to_json,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-10T14:30:00Z", datetime(2026, 3, 10, 14, 30, tzinfo=UTC)),
    ("2026-03-10T16:30:00+02:00", datetime(2026, 3, 10, 14, 30, tzinfo=UTC)),
    ("2026-03-10 14:30:00", datetime(2026, 3, 10, 14, 30, tzinfo=UTC)),  # no zone: UTC
])
def test_timestamps_are_instants_in_utc(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_a_date_may_be_written_as_a_timestamp() -> None:
    assert parse_date("2026-03-10T23:00:00Z") == date(2026, 3, 10)


@pytest.mark.parametrize(("value", "spelled"), [
    (datetime(2026, 3, 10, 14, 30, tzinfo=UTC), "2026-03-10T14:30:00Z"),
    (datetime(2026, 3, 10, 14, 30, 0, 120000, tzinfo=UTC), "2026-03-10T14:30:00.12Z"),
    (date(2026, 3, 10), "2026-03-10"),
    (3, 3), (None, None), ("x", "x"),
])
def test_values_leave_in_the_legacy_spelling(value: object, spelled: object) -> None:
    assert to_json(value) == spelled


def test_each_column_type_reads_its_upstream_value() -> None:
    assert COLUMN_TYPES["integer"].read("7") == 7
    assert COLUMN_TYPES["text"].read("Ana") == "Ana"
    assert COLUMN_TYPES["timestamp"].read("2026-03-10T14:30:00Z").tzinfo is UTC
    assert COLUMN_TRANSFORMS["lower"][0]("STATIC_ACCESS") == "static_access"
