"""`compare sql`: statements sent to the legacy Data API and the proxy, answers compared."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
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


def compare(tmp_path: Path, upstream: str, bridge: str, *extra: str) -> Result:
    statements = tmp_path / "exports.sql"
    statements.write_text(STATEMENTS)
    return CliRunner().invoke(main, [
        "compare", "sql", str(statements), "--legacy-url", upstream, "--bridge-url", bridge,
        *extra],
        env={"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
             "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN})


def test_statements_split_at_semicolons_at_line_ends() -> None:
    assert split_statements(STATEMENTS) == [SEED_003_GRADUATED, SEED_003_ENROLLED,
                                            "SELECT node_key, COUNT(*) FROM roster_v1 "
                                            "GROUP BY node_key"]


@pytest.mark.parametrize(("text", "statements"), [
    ("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
    ("SELECT 'a;b' FROM t;", ["SELECT 'a;b' FROM t"]),
    ("SELECT 1 /* ; */ ;\n-- only a comment;\n", ["SELECT 1"]),  # comments around drop
    ("SELECT 'ends with;'\n;SELECT 3;;", ["SELECT 'ends with;'", "SELECT 3"]),
    ("SELECT $$ ; $$", ["SELECT $$ ; $$"]),
    ("-- nothing\n;  ;", []),
])
def test_statements_split_where_the_sql_tokenizer_sees_a_semicolon(
        text: str, statements: list[str]) -> None:
    assert split_statements(text) == statements


def test_text_that_cannot_be_tokenized_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        split_statements("SELECT 'unterminated")


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


def test_compare_sql_json_prints_one_object_per_statement(
        tmp_path: Path, make_emulator: Callable[..., Starlette],
        make_proxy: Callable[..., Starlette], serve_http: Serve) -> None:
    upstream = serve_http(make_emulator())
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    result = compare(tmp_path, upstream, bridge, "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [set(line) for line in lines] == [{"sql", "agrees", "detail"}] * 3
    assert all(line["agrees"] for line in lines)


@pytest.mark.parametrize(("text", "bridge"), [
    ("SELECT email FROM roster_v1", "http://127.0.0.1:9"),  # the proxy is down
    ("-- nothing to run\n", None),
    ("SELECT 'unterminated", None),
])
def test_compare_sql_exits_2_when_there_is_no_verdict(
        tmp_path: Path, make_emulator: Callable[..., Starlette], serve_http: Serve,
        text: str, bridge: str | None) -> None:
    upstream = serve_http(make_emulator())
    statements = tmp_path / "one.sql"
    statements.write_text(text)
    result = CliRunner().invoke(main, [
        "compare", "sql", str(statements), "--legacy-url", upstream,
        "--bridge-url", bridge or upstream, "--mappings-dir", str(MAPPINGS)],
        env={"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
             "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN})
    assert result.exit_code == 2
    assert "could not compare" in result.output
