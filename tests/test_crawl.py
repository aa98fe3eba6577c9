"""`compare crawl`: full agreement without drift; each kind of drift named exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from starlette.applications import Starlette

from legacy_bridge.cli import main
from legacy_bridge.compare import compare_records
from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.emulator.legacy import SHIFTED_EVERY
from legacy_bridge.mapping import RawCompare
from support import MAPPINGS, OTHER_PLAN

Serve = Callable[[Starlette], str]


def crawl(make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
          serve_http: Serve, drift: frozenset[str], *extra: str,
          env: dict[str, str] | None = None) -> tuple[Result, list[dict[str, Any]]]:
    upstream = serve_http(make_emulator(drift=drift))
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    result = CliRunner().invoke(main, [
        "compare", "crawl", "--legacy-url", upstream, "--bridge-url", bridge,
        "--plan", DEMO_PLAN_ID, "--per-page", "100", "--mappings-dir", str(MAPPINGS),
        "--json", *extra], env={"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
                                "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN, **(env or {})})
    return result, json.loads(result.output)


def by_route(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["route"]: row for row in rows}


def test_without_drift_every_route_agrees_on_every_field(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    result, rows = crawl(make_emulator, make_proxy, serve_http, frozenset())
    assert result.exit_code == 0
    for row in rows:
        assert row["agrees"] and row["compared"] > 0
        assert all(f["agree"] == f["compared"] for f in row["fields"].values())
    assert set(by_route(rows)) == {"progress", "users", "assessment-attempts"}


def test_renamed_enum_value_is_named_on_its_path_and_records_only(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    result, rows = crawl(make_emulator, make_proxy, serve_http, frozenset({"enum"}),
                         env={"BRIDGE_COMPARE_PII": "keep"})
    routes = by_route(rows)
    assert result.exit_code == 1
    assert routes["users"]["agrees"] and routes["assessment-attempts"]["agrees"]
    progress = routes["progress"]
    assert {d["path"] for d in progress["differences"]} == {"stats.status"}
    assert {(d["legacy"], d["bridge"]) for d in progress["differences"]} == {
        ("static-access", "static_access")}
    drifted = progress["fields"]["stats.status"]
    assert drifted["compared"] - drifted["agree"] == len(progress["differences"]) > 0
    assert not progress["legacy_only"] and not progress["bridge_only"]


def test_shifted_timestamp_is_named_on_its_path_and_records_only(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    result, rows = crawl(make_emulator, make_proxy, serve_http, frozenset({"timestamp"}))
    routes = by_route(rows)
    assert result.exit_code == 1
    assert routes["users"]["agrees"] and routes["progress"]["agrees"]
    differences = routes["assessment-attempts"]["differences"]
    assert {d["path"] for d in differences} == {"started_at"}
    assert differences and all(int(d["record"].removeprefix("att-")) % SHIFTED_EVERY == 0
                               for d in differences)


def test_missing_record_is_named_and_nothing_else(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    result, rows = crawl(make_emulator, make_proxy, serve_http, frozenset({"missing"}))
    routes = by_route(rows)
    assert result.exit_code == 1
    assert routes["progress"]["agrees"] and routes["assessment-attempts"]["agrees"]
    users = routes["users"]
    assert users["legacy_only"] == [] and len(users["bridge_only"]) == 1
    assert users["differences"] == []
    assert users["totals"][1] - users["totals"][0] == 1


def test_personal_data_is_hashed_in_the_report_by_default(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    _, rows = crawl(make_emulator, make_proxy, serve_http, frozenset({"enum"}),
                    "--routes", "progress")
    (progress,) = rows
    assert all(d["record"].startswith("sha256:") and "@" not in d["record"]
               for d in progress["differences"])


def test_table_output_and_unknown_route(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    upstream = serve_http(make_emulator())
    result = CliRunner().invoke(main, [
        "compare", "crawl", "--legacy-url", upstream, "--bridge-url", upstream,
        "--legacy-token", DEMO_COMPANY_TOKEN, "--bridge-token", DEMO_COMPANY_TOKEN,
        "--plan", DEMO_PLAN_ID, "--routes", "users", "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0
    assert "users: agree" in result.output and "100.00%" in result.output
    bad = CliRunner().invoke(main, [
        "compare", "crawl", "--legacy-url", upstream, "--bridge-url", upstream,
        "--legacy-token", "t", "--bridge-token", "t", "--plan", DEMO_PLAN_ID,
        "--routes", "nope", "--mappings-dir", str(MAPPINGS)])
    assert bad.exit_code == 2


@pytest.mark.parametrize(("left", "right", "path", "equal", "noted"), [
    ("2026-03-10T14:30:00Z", "2026-03-10T14:30:00+00:00", "t", True, True),
    ("2026-03-10T14:30:00Z", "2026-03-10T14:30:00.000Z", "t", True, True),
    ("2026-03-10T14:30:00Z", "2026-03-10T14:30:00Z", "t", True, False),
    ("2026-03-10T14:30:00Z", "2026-03-10T14:30:01Z", "t", False, False),
    (65.0, 65.0000000001, "x", True, False),
    (65.0, 65, "x", True, True),  # a Node old API writes whole floats as integers
    (53, 53.5, "x", False, False),
    (None, "<absent>", "x", False, False),
    (True, 1, "x", False, False),  # a boolean is not a number
])
def test_values_compare_by_value_and_spelling_is_a_note(
        left: Any, right: Any, path: str, equal: bool, noted: bool) -> None:
    rules = RawCompare(timestamps=["t"], float_tolerance=1e-6)
    result = compare_records("r", [{path: left}], [{path: right}], rules)
    assert result.agrees is equal
    assert bool(result.notes) is noted
    assert result.fields[path] == [int(equal), 1]


def test_a_strict_path_counts_spelling_as_a_difference() -> None:
    rules = RawCompare(strict=["score"])
    result = compare_records("r", [{"score": 65.0, "other": 1.0}],
                             [{"score": 65, "other": 1}], rules)
    assert [d.path for d in result.differences] == ["score"]
    assert [d.path for d in result.notes] == ["other"]


def test_key_order_is_a_note_unless_strict() -> None:
    loose = compare_records("r", [{"a": 1, "b": 2}], [{"b": 2, "a": 1}], RawCompare())
    assert loose.agrees and [d.path for d in loose.notes] == ["(key order)"]
    strict = compare_records("r", [{"a": 1, "b": 2}], [{"b": 2, "a": 1}],
                             RawCompare(strict=["(key order)"]))
    assert [d.path for d in strict.differences] == ["(key order)"]


def test_an_old_api_writing_whole_floats_as_integers_agrees_with_notes(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    result, rows = crawl(make_emulator, make_proxy, serve_http, frozenset({"integers"}))
    assert result.exit_code == 0
    routes = by_route(rows)
    assert all(row["agrees"] and row["differences"] == [] for row in rows)
    attempts = routes["assessment-attempts"]
    assert attempts["notes"] > 0 and attempts["fields"]["passing_score"]["notes"] > 0
    assert {(type(n["legacy"]), type(n["bridge"])) for n in attempts["note_examples"]} == {
        (int, float)}


def test_a_real_drift_beside_number_spelling_still_exits_1_and_names_the_field(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    result, rows = crawl(make_emulator, make_proxy, serve_http,
                         frozenset({"integers", "enum"}), "--routes", "progress")
    assert result.exit_code == 1
    assert {d["path"] for d in rows[0]["differences"]} == {"stats.status"}
    assert rows[0]["notes"] > 0


def test_a_side_that_is_down_exits_2_not_1(
        make_emulator: Callable[..., Starlette], serve_http: Serve) -> None:
    upstream = serve_http(make_emulator())
    result = CliRunner().invoke(main, [
        "compare", "crawl", "--legacy-url", upstream, "--bridge-url", "http://127.0.0.1:9",
        "--plan", DEMO_PLAN_ID, "--routes", "users", "--mappings-dir", str(MAPPINGS)],
        env={"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
             "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN})
    assert result.exit_code == 2
    assert "could not compare" in result.output


def test_the_text_report_shows_notes_per_field(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    upstream = serve_http(make_emulator(drift=frozenset({"integers"})))
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    result = CliRunner().invoke(main, [
        "compare", "crawl", "--legacy-url", upstream, "--bridge-url", bridge,
        "--plan", DEMO_PLAN_ID, "--routes", "assessment-attempts",
        "--mappings-dir", str(MAPPINGS)],
        env={"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
             "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN})
    assert result.exit_code == 0
    assert "representation notes (equal values spelled differently" in result.output


def test_progress_in_a_log_is_plain_lines_and_nothing_with_json(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    upstream = serve_http(make_emulator())
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    args = ["compare", "crawl", "--legacy-url", upstream, "--bridge-url", bridge,
            "--plan", DEMO_PLAN_ID, "--routes", "users", "--mappings-dir", str(MAPPINGS)]
    env = {"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
           "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN}
    text = CliRunner().invoke(main, args, env=env)  # stderr is not a terminal here
    assert "\r" not in text.output
    assert "users: 4/4 pages, " in text.output  # 2 pages a side, one line at the end
    quiet = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert "pages" not in quiet.output


def test_compare_tokens_can_come_from_files(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve, tmp_path: Path) -> None:
    upstream = serve_http(make_emulator())
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    token = tmp_path / "company-token"
    token.write_text(DEMO_COMPANY_TOKEN + "\n")
    result = CliRunner().invoke(main, [
        "compare", "crawl", "--legacy-url", upstream, "--bridge-url", bridge,
        "--plan", DEMO_PLAN_ID, "--routes", "users", "--mappings-dir", str(MAPPINGS)],
        env={"BRIDGE_COMPARE_LEGACY_TOKEN_FILE": str(token),
             "BRIDGE_COMPARE_BRIDGE_TOKEN_FILE": str(token)})
    assert result.exit_code == 0, result.output


class Flaky:
    """An old API in front of the emulator that fails the first `failures` page reads
    (or every read of `broken_plan`), and counts the reads."""

    def __init__(self, app: Starlette, failures: int = 0, status: int = 503,
                 broken_plan: str | None = None) -> None:
        self.app, self.failures, self.status = app, failures, status
        self.broken_plan, self.reads = broken_plan, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/v2/"):
            self.reads += 1
            if self.failures > 0 or (self.broken_plan and self.broken_plan in scope["path"]):
                self.failures -= 1
                await send({"type": "http.response.start", "status": self.status,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": b'{"error": {}}'})
                return
        await self.app(scope, receive, send)


def crawl_plans(legacy: str, bridge: str, *extra: str) -> Result:
    return CliRunner().invoke(main, [
        "compare", "crawl", "--legacy-url", legacy, "--bridge-url", bridge, "--routes",
        "users", "--per-page", "50", "--mappings-dir", str(MAPPINGS), "--json", *extra],
        env={"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
             "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN})


def test_several_plans_from_a_file_are_compared_as_one_route(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve, tmp_path: Path) -> None:
    upstream = serve_http(make_emulator())
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    plans = tmp_path / "plans.txt"
    plans.write_text(f"# the plans of one customer\n{DEMO_PLAN_ID}\n{OTHER_PLAN}\n")
    both = crawl_plans(upstream, bridge, "--plans", str(plans))
    one = crawl_plans(upstream, bridge, "--plan", DEMO_PLAN_ID)
    assert both.exit_code == 0, both.output
    (users,) = json.loads(both.output)
    assert users["agrees"] and users["compared"] > json.loads(one.output)[0]["compared"]


def test_a_page_failing_transiently_is_read_again(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve) -> None:
    emulator = make_emulator()
    flaky = Flaky(emulator, failures=2)
    legacy = serve_http(flaky)
    bridge = serve_http(make_proxy(over_http=True, upstream_url=serve_http(emulator)))
    result = crawl_plans(legacy, bridge, "--plan", DEMO_PLAN_ID)
    assert result.exit_code == 0, result.output
    pages = -(-json.loads(result.output)[0]["compared"] // 50)
    assert flaky.reads == pages + 2  # two failures, each read again


def test_a_stopped_crawl_resumes_without_reading_finished_plans_again(
        make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
        serve_http: Serve, tmp_path: Path) -> None:
    emulator = make_emulator()
    broken = Flaky(emulator, status=500, broken_plan=OTHER_PLAN)
    bridge = serve_http(make_proxy(over_http=True, upstream_url=serve_http(emulator)))
    state = tmp_path / "crawl-state.json"
    plans = ["--plan", DEMO_PLAN_ID, "--plan", OTHER_PLAN, "--resume", str(state)]
    stopped = crawl_plans(serve_http(broken), bridge, *plans)
    assert stopped.exit_code == 2 and state.exists()
    healthy = Flaky(emulator)
    resumed = crawl_plans(serve_http(healthy), bridge, *plans)
    assert resumed.exit_code == 0, resumed.output
    finished_first = json.loads(state.read_text())
    assert set(finished_first) == {f"{DEMO_PLAN_ID} users", f"{OTHER_PLAN} users"}
    # only the unfinished plan was read from the old API again
    assert 0 < healthy.reads <= -(-finished_first[f"{OTHER_PLAN} users"]["compared"] // 50)
