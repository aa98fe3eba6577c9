"""`compare sql`: statements sent to the legacy Data API and the proxy, answers compared."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result
from starlette.applications import Starlette

from legacy_bridge.cli import main
from legacy_bridge.compare import row_key
from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from legacy_bridge.shadow import Reply, diff_sql_answers
from legacy_bridge.sqlcompare import split_statements
from support import MAPPINGS
from test_dataapi import SEED_003_ENROLLED, SEED_003_GRADUATED

Serve = Callable[[Starlette], str]
STATEMENTS = f"""-- the migration guide's two examples
{SEED_003_GRADUATED};
{SEED_003_ENROLLED};
SELECT node_key, COUNT(*) FROM roster_v1 GROUP BY node_key;
"""


def compare(tmp_path: Path, upstream: str, bridge: str) -> Result:
    statements = tmp_path / "exports.sql"
    statements.write_text(STATEMENTS)
    return CliRunner().invoke(main, [
        "compare", "sql", str(statements), "--legacy-url", upstream, "--bridge-url", bridge],
        env={"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
             "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN})


def test_statements_split_at_semicolons_at_line_ends() -> None:
    assert split_statements(STATEMENTS) == [SEED_003_GRADUATED, SEED_003_ENROLLED,
                                            "SELECT node_key, COUNT(*) FROM roster_v1 "
                                            "GROUP BY node_key"]


def test_the_shipped_table_agrees_with_the_legacy_data_api(
        tmp_path: Path, make_emulator: Callable[..., Starlette],
        make_proxy: Callable[..., Starlette], serve_http: Serve) -> None:
    upstream = serve_http(make_emulator())
    result = compare(tmp_path, upstream,
                     serve_http(make_proxy(over_http=True, upstream_url=upstream)))
    assert result.exit_code == 0, result.output
    assert "3 of 3 statements agree" in result.output


def test_the_guides_shortcut_for_graduated_at_is_caught(
        tmp_path: Path, make_emulator: Callable[..., Starlette],
        make_proxy: Callable[..., Starlette], serve_http: Serve) -> None:
    shortcut = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, shortcut)
    table = shortcut / "data-api.toml"
    table.write_text(table.read_text().replace('else = "completedAt", ', ""))
    upstream = serve_http(make_emulator())
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream,
                                   mappings_dir=shortcut))
    result = compare(tmp_path, upstream, bridge)
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith("DIFF") and "legacy rows missing from the proxy" in first


def test_rows_compare_by_value_so_number_spelling_is_not_a_difference() -> None:
    assert row_key(["a", 53.0, 1.5, None, True]) == row_key(["a", 53, 1.5, None, True])
    assert row_key([53.5]) != row_key([53])
    assert row_key([True]) != row_key([1])  # a boolean is not a number


def test_a_shadowed_sql_answer_spelling_numbers_differently_agrees() -> None:
    legacy = Reply(200, b'{"columns": ["n"], "rows": [[53], [1.5]], "row_count": 2}')
    bridge = Reply(200, b'{"columns": ["n"], "rows": [[1.5], [53.0]], "row_count": 2}')
    assert diff_sql_answers(legacy, bridge) == (True, [])
    moved = Reply(200, b'{"columns": ["n"], "rows": [[1.5], [54.0]], "row_count": 2}')
    assert diff_sql_answers(legacy, moved)[0] is False
