"""The `legacy-bridge` command line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from legacy_bridge.cli import main
from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.settings import PACKAGED_MAPPINGS
from support import free_port


def test_hash_token_prints_the_sha256_digest() -> None:
    result = CliRunner().invoke(main, ["hash-token", "s3cret"])
    assert result.output.strip() == hashlib.sha256(b"s3cret").hexdigest()


def test_hash_token_reads_stdin_so_the_token_stays_out_of_history() -> None:
    result = CliRunner().invoke(main, ["hash-token"], input="s3cret\n")
    assert result.output.strip() == hashlib.sha256(b"s3cret").hexdigest()


def test_serve_has_a_flag_for_every_setting() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    for flag in ("--upstream-url", "--upstream-api-key-file", "--tokens-file", "--auth-mode",
                 "--mappings-dir", "--host", "--port", "--cursor-cache-size"):
        assert flag in result.output


def test_demo_starts_the_upstream_and_the_proxy(tmp_path: Path) -> None:
    proxy_port, upstream_port = free_port(), free_port()
    command = [sys.executable, "-m", "legacy_bridge", "demo", "--learners", "50",
               "--port", str(proxy_port), "--upstream-port", str(upstream_port),
               "--data-dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{proxy_port}/healthz")
                route = f"/api/v2/plans/{DEMO_PLAN_ID}/progress?per_page=5"
                auth = {"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}
                legacy = httpx.get(f"http://127.0.0.1:{upstream_port}{route}", headers=auth)
                proxied = httpx.get(f"http://127.0.0.1:{proxy_port}{route}", headers=auth)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        assert legacy.json()["total"] > 0
        assert proxied.json() == legacy.json()
        # the banner's course-progress lines: a save, and the admin reading Ben
        saved = httpx.post(f"http://127.0.0.1:{proxy_port}/api/progress",
                           headers={"Authorization": "Bearer demo-learner-token"},
                           content=b'{"course_id": 42, "lesson_id": 101, "video_progress": 180}')
        assert saved.json()["video_progress"] == 180
        bens = httpx.get(f"http://127.0.0.1:{proxy_port}/api/admin/progress/"
                         "0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e02",
                         headers={"Authorization": "Bearer demo-admin-token"})
        assert [r["completed"] for r in bens.json()] == [True]
        # /users is shadowed against the lightly drifting old API from the start
        while "users: " not in (page := httpx.get(
                f"http://127.0.0.1:{proxy_port}/_bridge/compare",
                headers={"Authorization": "Bearer demo-bridge-admin-token"}).text):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "mode <b class=mode>shadow</b>" in page and "(record)" in page
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert f"curl -s -H \"Authorization: Bearer {DEMO_PLAN_TOKEN}\"" in output
    assert (tmp_path / "demo-tokens.toml").exists()


def _from_empty_folder(tmp_path: Path, *args: str, env: dict[str, str] | None = None
                       ) -> subprocess.CompletedProcess[str]:
    """The installed command, run where no mapping folder is, as a pip user would."""
    settings = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    settings.update({"BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_COMPANY_TOKEN,
                     "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_COMPANY_TOKEN, **(env or {})})
    empty = tmp_path / "elsewhere"
    empty.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "legacy_bridge", *args], cwd=empty,
                          env=settings, capture_output=True, text=True, timeout=120)


def test_check_works_from_any_folder_with_the_installed_tables(tmp_path: Path) -> None:
    result = _from_empty_folder(tmp_path, "check", "--mappings-dir", str(PACKAGED_MAPPINGS))
    assert result.returncode == 0, result.stderr
    assert "(installed with the package)" in result.stdout
    assert result.stdout.count("ok  ") == 7  # v2 routes, Data API, course progress, map


def test_check_without_flags_is_a_dry_run_of_the_whole_configuration(
        tmp_path: Path, tokens_file: Path, learners_file: Path,
        make_emulator: Callable[..., Starlette], serve_http: Callable[[Starlette], str]
        ) -> None:
    upstream = serve_http(make_emulator())
    result = _from_empty_folder(tmp_path, "check", env={
        "BRIDGE_TOKENS_FILE": str(tokens_file), "BRIDGE_LEARNERS_FILE": str(learners_file),
        "BRIDGE_UPSTREAM_API_KEY": "demo-company-key", "BRIDGE_UPSTREAM_URL": upstream,
        "BRIDGE_STORE_URL": f"sqlite:///{tmp_path}/bridge.sqlite3"})
    assert result.returncode == 0, result.stderr
    parts = [line.split(":")[0] for line in result.stdout.splitlines()
             if line.startswith("ok  ") and "/" not in line.split(":")[0]]
    assert parts == ["ok  token table", "ok  learners file", "ok  store", "ok  cursor cache"]
    assert "(as the platform requires)" in result.stdout  # the live upstream was used


@pytest.mark.parametrize(("env", "says"), [
    ({}, "error: token table: ConfigError: BRIDGE_TOKENS_FILE is required"),
    ({"BRIDGE_CURSOR_CACHE": "redis://127.0.0.1:9/0"}, "error: cursor cache: "),
    ({"BRIDGE_STORE_URL": "postgresql://bridge:hunter2@127.0.0.1:9/bridge"}, "error: store: "),
])
def test_check_names_the_part_of_the_configuration_that_is_wrong(
        tmp_path: Path, tokens_file: Path, env: dict[str, str], says: str) -> None:
    base = {"BRIDGE_TOKENS_FILE": str(tokens_file), "BRIDGE_UPSTREAM_API_KEY": "k",
            "BRIDGE_UPSTREAM_URL": "http://127.0.0.1:9",
            "BRIDGE_STORE_URL": f"sqlite:///{tmp_path}/bridge.sqlite3"}
    if not env:
        del base["BRIDGE_TOKENS_FILE"]
    result = _from_empty_folder(tmp_path, "check", env={**base, **env})
    assert result.returncode == 1
    assert says in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_compare_crawl_works_from_any_folder_with_the_installed_tables(
        tmp_path: Path, make_emulator: Callable[..., Starlette],
        make_proxy: Callable[..., Starlette], serve_http: Callable[[Starlette], str]) -> None:
    upstream = serve_http(make_emulator())
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    result = _from_empty_folder(tmp_path, "compare", "crawl", "--legacy-url", upstream,
                                "--bridge-url", bridge, "--plan", DEMO_PLAN_ID,
                                "--routes", "users", "--json")
    assert result.returncode == 0, result.stderr
    assert '"agrees": true' in result.stdout


@pytest.mark.parametrize(("args", "env", "says"), [
    (["serve", "--port", "x"], {}, "BRIDGE_PORT: Input should be a valid integer"),
    (["check"], {"BRIDGE_MODE": "sideways"},
     "BRIDGE_MODE: Input should be 'graphql', 'legacy', 'shadow' or 'graphql-fallback'"),
    (["compare", "gate"], {"BRIDGE_SHADOW_SAMPLE_RATE": "2"},
     "BRIDGE_SHADOW_SAMPLE_RATE: Input should be less than or equal to 1"),
])
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
        args: list[str], env: dict[str, str], says: str) -> None:
    result = subprocess.run([sys.executable, "-m", "legacy_bridge", *args],
                            env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: " + says)
    assert "Traceback" not in result.stderr


def test_a_bad_secret_setting_is_named_without_its_value() -> None:
    result = subprocess.run([sys.executable, "-m", "legacy_bridge", "serve",
                             "--upstream-api-key-file", "/nonexistent", "--workers",
                             "not-a-secret-but-bad"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "not-a-secret-but-bad" not in result.stderr


def test_serve_help_shows_each_settings_default() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert "[env BRIDGE_PORT; default: 8080]" in result.output
    assert "[env BRIDGE_LEGACY_URL; default: unset]" in result.output


def test_the_compare_commands_run_from_an_empty_folder(
        tmp_path: Path, make_emulator: Callable[..., Starlette],
        make_proxy: Callable[..., Starlette], serve_http: Callable[[Starlette], str]) -> None:
    upstream = serve_http(make_emulator())
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream))
    recording = tmp_path / "calls.jsonl"
    users = f"/api/v2/plans/{DEMO_PLAN_ID}/users"
    answer = httpx.get(f"{upstream}{users}?per_page=3",
                       headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
    recording.write_text(json.dumps({"method": "GET", "path": users, "query": "per_page=3",
                                     "status": 200, "body": answer.text}))
    statements = tmp_path / "one.sql"
    statements.write_text("SELECT COUNT(*) FROM roster_v1;")
    runs = {
        "replay": _from_empty_folder(tmp_path, "compare", "replay", str(recording),
                                     "--bridge-url", bridge),
        "sql": _from_empty_folder(tmp_path, "compare", "sql", str(statements),
                                  "--legacy-url", upstream, "--bridge-url", bridge),
        "report": _from_empty_folder(tmp_path, "compare", "report", "--json"),
        "export": _from_empty_folder(tmp_path, "compare", "export", "--json", "--out",
                                     str(tmp_path / "golden")),
    }
    assert {name: run.returncode for name, run in runs.items()} == {
        "replay": 0, "sql": 0, "report": 0, "export": 0}, {n: r.stderr for n, r in runs.items()}
    assert json.loads(runs["export"].stdout) == {"written": []}
    gate = _from_empty_folder(tmp_path, "compare", "gate")
    assert gate.returncode == 1 and "no comparisons in the window" in gate.stdout


def test_check_tables_skips_the_configuration_as_the_image_build_does(
        tmp_path: Path) -> None:
    result = _from_empty_folder(tmp_path, "check", "--tables")  # no token table set
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok  ") == 7
    assert "RUN legacy-bridge check --tables" in (
        Path(__file__).resolve().parent.parent / "Dockerfile").read_text()


def test_an_unreadable_key_file_stops_serve_with_one_line_naming_the_setting(
        tokens_file: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "legacy_bridge", "serve"], env={
        **os.environ, "BRIDGE_TOKENS_FILE": str(tokens_file),
        "BRIDGE_UPSTREAM_API_KEY_FILE": "/nonexistent/api-key"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "BRIDGE_UPSTREAM_API_KEY_FILE: cannot read /nonexistent/api-key (No such file " \
        "or directory)" in result.stderr
