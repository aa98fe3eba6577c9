"""The SQL planner alone: what goes upstream as variables, what stays in the proxy."""

from __future__ import annotations

import pytest

from legacy_bridge.errors import UnsupportedSql
from legacy_bridge.sqlmap import load_data_api
from legacy_bridge.sqlplan import plan
from support import MAPPINGS

API = load_data_api(MAPPINGS)
assert API is not None
FILTER, STATUS = ("filter", "programKey"), ("filter", "enrollmentStatus")


def test_equality_and_in_on_a_filter_column_are_pushed_down() -> None:
    found = plan("SELECT email FROM roster_v1 WHERE node_key IN ('nd025', 'nd089') "
                 "AND enrollment_state = 'enrolled'", API)
    assert found.variables == {FILTER: ["nd025", "nd089"], STATUS: ["ENROLLED"]}
    assert found.residual is None


@pytest.mark.parametrize("condition", ["node_key <> 'nd025'", "NOT (node_key = 'nd025')",
                                       "node_key NOT IN ('nd025')"])
def test_a_negation_of_free_text_stays_in_the_proxy(condition: str) -> None:
    found = plan(f"SELECT email FROM roster_v1 WHERE {condition}", API)
    assert FILTER not in found.variables
    assert found.residual is not None


def test_a_negation_of_an_enum_pushes_down_the_other_values() -> None:
    found = plan("SELECT email FROM roster_v1 WHERE enrollment_state <> 'enrolled'", API)
    assert found.variables[STATUS] == ["UNENROLLED", "GRADUATED", "STATIC_ACCESS"]


@pytest.mark.parametrize(("order", "pushed"), [
    ("", True), ("ASC NULLS LAST", True), ("DESC", True),   # where the upstream puts nulls
    ("NULLS FIRST", False), ("DESC NULLS LAST", False),     # elsewhere: sorted here
])
def test_order_by_is_pushed_down_only_where_nulls_land_alike(order: str, pushed: bool) -> None:
    found = plan(f"SELECT email FROM roster_v1 ORDER BY last_seen {order}", API)
    assert (("orderBy",) in found.variables) is pushed
    assert bool(found.sort) is not pushed


def test_limit_without_a_proxy_sort_stops_paging_early() -> None:
    found = plan("SELECT email FROM roster_v1 WHERE node_key = 'nd025' LIMIT 10 OFFSET 5", API)
    assert (found.early_stop, found.first) == (15, 15)


def test_count_with_a_pushed_down_where_is_answered_from_totals() -> None:
    found = plan("SELECT enrollment_state, COUNT(*) FROM roster_v1 "
                 "WHERE node_key = 'nd025' GROUP BY enrollment_state", API)
    assert found.count is not None and found.count.from_totals
    assert found.count.group is not None and found.count.group.name == "enrollment_state"


def test_count_with_a_residual_where_counts_rows_in_the_proxy() -> None:
    found = plan("SELECT COUNT(*) FROM roster_v1 WHERE email LIKE 'a%'", API)
    assert found.count is not None and not found.count.from_totals


def test_only_the_columns_a_statement_reads_are_selected_upstream() -> None:
    found = plan("SELECT email FROM roster_v1 WHERE last_seen IS NULL", API)
    assert {c.name for c in found.columns_read} == {"email", "last_seen"}


def test_a_statement_without_from_names_the_served_tables() -> None:
    with pytest.raises(UnsupportedSql, match="roster_v1"):
        plan("SELECT 1", API)
