"""The Data API table loads, and every mistake fails at start-up with file, key, fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from legacy_bridge.errors import MappingError
from legacy_bridge.mapping import load_mappings
from legacy_bridge.sqlmap import load_data_api
from support import MAPPINGS

DATA_API = (MAPPINGS / "data-api.toml").read_text()


def test_the_shipped_data_api_table_loads_in_the_legacy_column_order() -> None:
    api = load_data_api(MAPPINGS)
    assert api is not None
    roster = api.tables["roster_v1"]
    assert list(roster.columns)[:5] == ["email", "first_name", "last_name", "user_key",
                                        "nd_title"]
    assert roster.columns["enrollment_state"].filter_values["enrolled"] == "ENROLLED"
    assert roster.columns["graduated_at"].nullable
    assert "projects_v1" in api.unavailable_tables


def test_route_tables_do_not_include_the_data_api_table() -> None:
    assert all(route.name != "data-api" for route in load_mappings(MAPPINGS))


def test_a_folder_without_a_data_api_table_has_no_data_api(tmp_path: Path) -> None:
    assert load_data_api(tmp_path) is None


def broken(tmp_path: Path, old: str, new: str) -> MappingError:
    assert old in DATA_API, old
    path = tmp_path / "data-api.toml"
    path.write_text(DATA_API.replace(old, new, 1))
    with pytest.raises(MappingError) as caught:
        load_data_api(tmp_path)
    assert caught.value.file == str(path)
    return caught.value


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('email = { field = "userEmail"', 'email = { field = "userMail"',
     "tables.roster_v1.columns.email.field", "userEmail"),
    ('filter = "filter.programKey"', 'filter = "filter.programKeys"',
     "tables.roster_v1.columns.node_key.filter", "programKey"),
    ('order_by = "LAST_ACTIVE"', 'order_by = "LAST_SEEN"',
     "tables.roster_v1.columns.last_seen.order_by", "LAST_ACTIVE"),
    ('desc = "DESC"', 'desc = "DESCENDING"', "data_api.directions.desc", "DESC"),
    ('list = "catalog.programs"', 'list = "catalog.program"', "catalog.list", "path"),
    ('value = "title"', 'value = "name"', "catalog.value", "title"),
    ('operation = "programProgress"', 'operation = "programs"', "data_api.operation",
     "programProgress"),
    ('type = "timestamp", order_by', 'type = "datetime", order_by',
     "tables.roster_v1.columns.last_seen.type", "text, timestamp, integer"),
    ('transform = "lower", filter', 'transform = "lowercase", filter',
     "tables.roster_v1.columns.enrollment_state.transform", "lower ("),
    ('nd_title = { catalog = "programKey"', 'nd_title = { field = "x", catalog = "programKey"',
     "tables.roster_v1.columns.nd_title", "exactly one"),
    ('groups = "enum"', 'groups = "enums"', "tables.roster_v1.columns.enrollment_state.groups",
     "README"),
    ('transform = "lower", filter', 'tranform = "lower", filter',
     "tables.roster_v1.columns.enrollment_state.tranform", "spelling"),
])
def test_a_mistake_names_the_key_and_the_fix(tmp_path: Path, old: str, new: str, key: str,
                                             fix: str) -> None:
    error = broken(tmp_path, old, new)
    assert error.key == key
    assert fix in error.fix or fix in error.problem
