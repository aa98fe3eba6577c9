"""The `legacy-bridge` command: serve, demo, emulate, hash-token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
import orjson
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge import logs, report
from legacy_bridge.admin import usage_table
from legacy_bridge.app import create_app
from legacy_bridge.auth import TokenFileError, digest
from legacy_bridge.crawl import CrawlError, Side, crawl_compare
from legacy_bridge.crawl import as_json as crawl_json
from legacy_bridge.crawl import report as crawl_report
from legacy_bridge.emulator.app import (
    DEMO_API_KEY,
    DEMO_COMPANY_TOKEN,
    DEMO_PLAN_TOKEN,
    EmulatorConfig,
    create_emulator_app,
)
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, DatasetSpec, empty_plan_id, ensure
from legacy_bridge.emulator.legacy import DRIFTS
from legacy_bridge.errors import BridgeError, ConfigError, MappingError
from legacy_bridge.explain import explain as explain_request
from legacy_bridge.explain import explain_sql, sql_text
from legacy_bridge.mapping import bundled_schema, load_mappings
from legacy_bridge.routes import compile_route, resolve
from legacy_bridge.settings import Settings
from legacy_bridge.sqlcompare import compare_sql, split_statements
from legacy_bridge.sqlmap import load_data_api
from legacy_bridge.sqlplan import plan as plan_sql
from legacy_bridge.store import Store
from legacy_bridge.upstream import LiveSchemas

DATA_DIR = Path(".data")
DEMO_ADMIN_TOKEN = "demo-admin-token"


@click.group()
@click.version_option(package_name="legacy-bridge")
def main() -> None:
    """A legacy-compatibility migration proxy: Learner Progress REST API v2 over GraphQL."""


def _settings_flags(command: Any) -> Any:
    """One `serve` flag per setting, named after it; a flag wins over `BRIDGE_*`."""
    for name, info in reversed(Settings.model_fields.items()):
        command = click.option(f"--{name.replace('_', '-')}", name, default=None,
                               help=f"{info.description} [env BRIDGE_{name.upper()}]")(command)
    return command


@main.command()
@_settings_flags
def serve(**flags: Any) -> None:
    """Serve the legacy routes from the GraphQL upstream."""
    given = {k: v for k, v in flags.items() if v is not None}
    settings = Settings(**given)
    logs.to_stdout(settings.log_level)
    # uvicorn's own access log would repeat our request line without its fields
    # SIGTERM: stop accepting, let in-flight requests finish (bounded), flush, exit
    options: dict[str, Any] = {"host": settings.host, "port": settings.port,
                               "log_level": settings.log_level.lower(), "access_log": False,
                               "timeout_graceful_shutdown": settings.shutdown_timeout}
    if settings.workers == 1:
        uvicorn.run(_start(settings), **options)
        return
    _start(settings)  # fail here, once, on a bad table or setting
    # Worker processes build their own app from the environment: flags go there.
    os.environ.update({f"BRIDGE_{k.upper()}": str(v) for k, v in given.items()})
    uvicorn.run("legacy_bridge.app:from_environment", factory=True,
                workers=settings.workers, **options)


def _start(settings: Settings) -> Starlette:
    """The app, or a clear message and exit 2 for a bad mapping table or setting."""
    try:
        return create_app(settings)
    except (MappingError, ConfigError, TokenFileError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
@click.option("--upstream", "upstream_url", default=None, metavar="URL",
              help="Check against this upstream's live introspection instead of the "
                   "bundled SDL")
@click.option("--api-key", envvar="BRIDGE_UPSTREAM_API_KEY", default="",
              help="Key for --upstream [env BRIDGE_UPSTREAM_API_KEY]")
def check(mappings_dir: Path | None, upstream_url: str | None, api_key: str) -> None:
    """Load and check every mapping table against the GraphQL schemas.

    Exits non-zero, naming the file, the key and the fix, on the first problem.
    """
    directory = mappings_dir or Settings().mappings_dir
    schemas = (LiveSchemas(upstream_url, api_key) if upstream_url
               else contextlib.nullcontext(bundled_schema))
    try:
        with schemas as source:
            routes = load_mappings(directory, source)
            data_api = load_data_api(directory, source)
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    for route in routes:
        joins = f" + joins {', '.join(route.joins)}" if route.joins else ""
        click.echo(f"ok  {route.file}: GET {route.path} -> {route.connection.operation} "
                   f"({len(route.fields)} fields{joins})")
    if data_api is not None:
        tables = ", ".join(f"{t.name} ({len(t.columns)} columns)"
                           for t in data_api.tables.values())
        click.echo(f"ok  {data_api.file}: POST {data_api.path} -> "
                   f"{data_api.connection.operation} over {tables}")


def _dataset_options(command: Any) -> Any:
    command = click.option("--seed", default=42, show_default=True,
                           help="Seed of the generated data")(command)
    command = click.option("--learners", default=1000, show_default=True,
                           help="Learners to generate")(command)
    command = click.option("--plans", default=3, show_default=True,
                           help="Non-empty plans (an empty one is added)")(command)
    return click.option("--data-dir", default=DATA_DIR, type=click.Path(path_type=Path),
                        show_default=True, help="Where generated datasets are kept")(command)


@main.command()
@_dataset_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True)
@click.option("--api-key", "api_keys", multiple=True, default=[DEMO_API_KEY],
              show_default=True, help="Accepted `Authorization: Token` keys")
@click.option("--controls", is_flag=True, help="Serve the /_emulator/ fault and count controls")
@click.option("--drift", default="", metavar="KINDS",
              help="Make the legacy v2 side differ in known ways, comma-separated: "
                   + "; ".join(f"{k} ({v})" for k, v in DRIFTS.items()))
def emulate(seed: int, learners: int, plans: int, data_dir: Path, host: str, port: int,
            api_keys: tuple[str, ...], controls: bool, drift: str) -> None:
    """Serve the emulated upstream: three GraphQL APIs, the catalog and legacy v2."""
    kinds = frozenset(k for k in drift.split(",") if k)
    if kinds - set(DRIFTS):
        raise click.BadParameter(f"use some of {', '.join(DRIFTS)}", param_hint="--drift")
    dataset = ensure(DatasetSpec(seed, learners, plans), data_dir)
    app = create_emulator_app(EmulatorConfig(dataset, tuple(api_keys), controls=controls,
                                             drift=kinds))
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _demo_tokens(data_dir: Path) -> Path:
    path = data_dir / "demo-tokens.toml"
    rows = [("demo-plan", DEMO_PLAN_TOKEN, f'["{DEMO_PLAN_ID}"]'),
            ("demo-company", DEMO_COMPANY_TOKEN, '["*"]')]
    path.write_text("".join(
        f'[[tokens]]\nlabel = "{label}"\nsha256 = "{digest(token)}"\nplans = {plans}\n\n'
        for label, token, plans in rows))
    return path


def _demo_banner(proxy: str, upstream: str, empty_plan: str) -> str:
    auth = f'-H "Authorization: Bearer {DEMO_PLAN_TOKEN}"'
    base = f"{proxy}/api/v2/plans/{DEMO_PLAN_ID}"
    return f"""
legacy-bridge demo
  proxy     {proxy}
  upstream  {upstream}   (emulated GraphQL APIs + the legacy v2 API, API key {DEMO_API_KEY})
  tokens    {DEMO_PLAN_TOKEN} (plan {DEMO_PLAN_ID}), {DEMO_COMPANY_TOKEN} (every plan)

Try:
  curl -s {proxy}/healthz
  curl -s {auth} "{base}/progress?page=1&per_page=5"
  curl -s {auth} "{base}/users?sort=last_seen&order=desc&per_page=3"
  curl -s {auth} "{base}/assessment-attempts?status=passed,failed&per_page=3"
  curl -s -H "Authorization: Bearer {DEMO_COMPANY_TOKEN}" \\
       "{proxy}/api/v2/plans/{empty_plan}/progress"
The legacy Data API, SQL over roster_v1 (company token):
  curl -s -H "Authorization: Bearer {DEMO_COMPANY_TOKEN}" -H "Content-Type: text/plain" \
       -d "SELECT node_key, COUNT(*) FROM roster_v1 GROUP BY node_key" {proxy}/api/emc/reports/query
The old API itself, for comparison:
  curl -s {auth} "{upstream}/api/v2/plans/{DEMO_PLAN_ID}/progress?per_page=5"
What a legacy call becomes in GraphQL, and who still calls what (admin token):
  curl -s -H "Authorization: Bearer {DEMO_ADMIN_TOKEN}" \
       "{proxy}/_bridge/explain?url=%2Fapi%2Fv2%2Fplans%2F{DEMO_PLAN_ID}%2Fusers%3Fpage%3D3"
  curl -s -H "Authorization: Bearer {DEMO_ADMIN_TOKEN}" "{proxy}/_bridge/usage.json"
  open {proxy}/_bridge/usage in a browser with that header, or: legacy-bridge usage \
       --store-url sqlite:///.data/bridge.sqlite3
Ctrl-C stops both.
"""


@main.command()
@_dataset_options
@click.option("--port", default=8080, show_default=True, help="Proxy port")
@click.option("--upstream-port", default=9000, show_default=True, help="Emulator port")
def demo(seed: int, learners: int, plans: int, data_dir: Path, port: int,
         upstream_port: int) -> None:
    """Start the emulated upstream and the proxy together on loopback."""
    spec = DatasetSpec(seed, learners, plans)
    click.echo(f"generating demo data ({learners} learners, seed {seed}) ...")
    dataset = ensure(spec, data_dir)
    upstream = f"http://127.0.0.1:{upstream_port}"
    settings = Settings(upstream_url=upstream, upstream_api_key=SecretStr(DEMO_API_KEY),
                        tokens_file=_demo_tokens(data_dir), port=port,
                        admin_token=SecretStr(DEMO_ADMIN_TOKEN),
                        store_url=f"sqlite:///{data_dir / 'bridge.sqlite3'}")
    logs.to_stdout("WARNING")
    servers = [
        uvicorn.Server(uvicorn.Config(
            create_emulator_app(EmulatorConfig(dataset, controls=True)),
            host="127.0.0.1", port=upstream_port, log_level="warning")),
        uvicorn.Server(uvicorn.Config(_start(settings), host="127.0.0.1", port=port,
                                      log_level="warning")),
    ]
    click.echo(_demo_banner(f"http://127.0.0.1:{port}", upstream, empty_plan_id(spec)))

    async def run() -> None:
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(run())


@main.command()
@click.argument("url")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
@click.option("--upstream-url", default=None, help="Upstream base URL for the snippets "
              "[env BRIDGE_UPSTREAM_URL]")
def explain(url: str, mappings_dir: Path | None, upstream_url: str | None) -> None:
    """Print what a legacy URL becomes upstream: GraphQL, variables, paging, snippets.

    URL is a legacy path with its query, e.g.
    "/api/v2/plans/<planId>/users?page=3&per_page=50". Without a running proxy no
    cursor is remembered, so the plan walks from the start.
    """
    given: dict[str, Any] = {"mappings_dir": mappings_dir, "upstream_url": upstream_url}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    try:
        routes = [compile_route(r) for r in load_mappings(settings.mappings_dir)]
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        compiled, legacy = resolve(routes, url)
    except BridgeError as exc:
        raise click.ClickException(exc.message) from None
    answer = explain_request(compiled.route, compiled.page, compiled.walk, legacy,
                             (0, None), settings.upstream_url)
    click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())


@main.command("explain-sql")
@click.argument("sql")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
@click.option("--upstream-url", default=None, help="Upstream base URL shown "
              "[env BRIDGE_UPSTREAM_URL]")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text")
def explain_sql_command(sql: str, mappings_dir: Path | None, upstream_url: str | None,
                        as_json: bool) -> None:
    """Print what a Data API SQL statement becomes: GraphQL, variables, proxy work.

    SQL is one statement over roster_v1, as sent to POST /api/emc/reports/query.
    Offline, so the request estimate is a formula of the filter's totalCount
    (POST /_bridge/explain on a running proxy gives the number).
    """
    given: dict[str, Any] = {"mappings_dir": mappings_dir, "upstream_url": upstream_url}
    settings = Settings(**{k: v for k, v in given.items() if v is not None})
    try:
        api = load_data_api(settings.mappings_dir)
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    if api is None:
        raise click.ClickException(f"no Data API table ([data_api]) in {settings.mappings_dir}")
    try:
        answer = explain_sql(plan_sql(sql, api), api, settings.upstream_url)
    except BridgeError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() if as_json
               else sql_text(answer))


@main.command()
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
def usage(store_url: str | None, as_json: bool) -> None:
    """Who still calls the legacy API: per client, route, parameter and field."""
    store = Store(store_url or Settings().store_url)
    rows = store.usage()
    store.close()
    if as_json:
        click.echo(orjson.dumps([r.__dict__ for r in rows], option=orjson.OPT_INDENT_2))
    else:
        click.echo(usage_table(rows))


@main.command()
def healthcheck() -> None:
    """Exit 0 when the local proxy answers /healthz (the container's HEALTHCHECK)."""
    settings = Settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    try:
        response = httpx.get(f"http://{host}:{settings.port}/healthz", timeout=2)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"not healthy: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise click.ClickException(f"not healthy: HTTP {response.status_code}")
    click.echo("healthy")


def _side_options(command: Any) -> Any:
    """--legacy-token, --bridge-url, --bridge-token: the two sides of a comparison."""
    command = click.option("--bridge-token", envvar="BRIDGE_COMPARE_BRIDGE_TOKEN",
                           required=True, help="Bearer token for the proxy "
                           "[env BRIDGE_COMPARE_BRIDGE_TOKEN]")(command)
    command = click.option("--bridge-url", required=True,
                           help="Base URL of the proxy")(command)
    return click.option("--legacy-token", envvar="BRIDGE_COMPARE_LEGACY_TOKEN",
                        required=True, help="Bearer token for the legacy API "
                        "[env BRIDGE_COMPARE_LEGACY_TOKEN]")(command)


@main.group()
def compare() -> None:
    """Side-by-side comparison of the legacy API and the proxy."""


@compare.command("crawl")
@click.option("--legacy-url", required=True, help="Base URL of the legacy v2 API")
@_side_options
@click.option("--plan", "plan", required=True, help="The plan id to crawl")
@click.option("--routes", default=None, help="Comma-separated route names (default: all)")
@click.option("--per-page", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
def compare_crawl(legacy_url: str, legacy_token: str, bridge_url: str, bridge_token: str,
                  plan: str, routes: str | None, per_page: int, as_json: bool,
                  mappings_dir: Path | None) -> None:
    """Read every page of a plan from both sides; exit 1 on any difference.

    Records match by each route's identity fields and compare under its noise
    rules ([compare] in the mapping). E-mails and names are hashed in the output
    unless BRIDGE_COMPARE_PII=keep.
    """
    try:
        loaded = load_mappings(mappings_dir or Settings().mappings_dir)
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    chosen = routes.split(",") if routes else [r.name for r in loaded]
    unknown = set(chosen) - {r.name for r in loaded}
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(sorted(unknown))}",
                                 param_hint="--routes")

    def progress(route: str, done: int, total: int) -> None:
        if not as_json:
            click.echo(f"\r{route}: {done}/{total} pages", nl=False, err=True)
            if done == total:
                click.echo(err=True)

    try:
        results = crawl_compare([r for r in loaded if r.name in chosen],
                                Side(legacy_url, legacy_token), Side(bridge_url, bridge_token),
                                plan, per_page, Settings().compare_pii == "keep",
                                progress)
    except (CrawlError, httpx.HTTPError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(crawl_json(results), option=orjson.OPT_INDENT_2))
    else:
        click.echo(crawl_report(results))
    if not all(r.agrees for r in results):
        sys.exit(1)


@compare.command("sql")
@click.argument("file", type=click.File())
@click.option("--legacy-url", required=True, help="Base URL of the legacy Data API")
@_side_options
def compare_sql_command(file: Any, legacy_url: str, legacy_token: str, bridge_url: str,
                        bridge_token: str) -> None:
    """Send each SQL statement of FILE (`;` ends one) to both Data APIs; exit 1 on a difference.

    Rows compare as a multiset (row order among ORDER BY ties is free in Postgres).
    """
    statements = split_statements(file.read())
    results = compare_sql(statements, Side(legacy_url, legacy_token),
                          Side(bridge_url, bridge_token))
    for result in results:
        click.echo(f"{'ok  ' if result.agrees else 'DIFF'}  {result.detail:<48}  "
                   f"{' '.join(result.sql.split())[:90]}")
    differ = sum(not r.agrees for r in results)
    click.echo(f"{len(results) - differ} of {len(results)} statements agree")
    if differ or not results:
        sys.exit(1)


@compare.command("gate")
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--window", default=3600.0, show_default=True, help="Seconds to look back")
@click.option("--threshold", default=0.0, show_default=True,
              help="Highest mismatch rate that passes (0.001 = 0.1%)")
@click.option("--min-comparisons", default=1, show_default=True,
              help="Fewer comparisons than this in the window fail the route")
@click.option("--routes", default=None, help="Comma-separated routes (default: all seen)")
def compare_gate(store_url: str | None, window: float, threshold: float,
                 min_comparisons: int, routes: str | None) -> None:
    """Per route, is the shadow mismatch rate over the window under the threshold?

    Exit 0 when every route passes: a team can script the promotion
    legacy -> shadow -> graphql-fallback -> graphql on it.
    """
    store = Store(store_url or Settings().store_url)
    since = (datetime.now(UTC) - timedelta(seconds=window)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = store.comparisons(since)
    store.close()
    names = routes.split(",") if routes else sorted({r.route for r in rows})
    failed = not names
    for name in names:
        mine = [r for r in rows if r.route == name]
        differ = sum(not r.agrees for r in mine)
        rate = differ / len(mine) if mine else 1.0
        ok = len(mine) >= min_comparisons and rate <= threshold
        failed |= not ok
        click.echo(f"{'PASS' if ok else 'FAIL'}  {name:<22} {len(mine):>7} comparisons  "
                   f"{differ:>6} differ  {100 * rate:7.3f}% (threshold {100 * threshold:g}%)")
    if not names:
        click.echo("FAIL  no comparisons in the window")
    sys.exit(1 if failed else 0)


@compare.command("export")
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("tests/golden"),
              show_default=True, help="Folder of golden cases")
@click.option("--route", default=None, help="Only this route")
@click.option("--limit", default=20, show_default=True, help="Cases written at most")
def compare_export(store_url: str | None, out: Path, route: str | None, limit: int) -> None:
    """Write stored mismatches as golden test cases, so a fixed mismatch stays fixed.

    Each case replays the translation's recorded upstream exchanges and expects
    the legacy answer; it fails until the mapping (or code) is fixed. No token is
    written; personal values are hashed unless BRIDGE_COMPARE_PII=keep.
    """
    store = Store(store_url or Settings().store_url)
    rows = [r for r in store.comparisons(route=route) if r.golden][-limit:]
    store.close()
    out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        stamp = row.at.replace(":", "").replace("-", "").replace(".", "")
        path = out / f"shadow-{row.route}-{stamp}.json"
        path.write_text(json.dumps(json.loads(row.golden or "{}"), indent=2) + "\n")
        click.echo(f"wrote {path}")
    if not rows:
        click.echo("no stored mismatches to export")


@compare.command("report")
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--window", default=None, type=float, help="Seconds to look back (default: all)")
def compare_report(store_url: str | None, window: float | None) -> None:
    """Mismatch rates per route, per field and per hour, and the latest examples."""
    store = Store(store_url or Settings().store_url)
    since = "" if window is None else (datetime.now(UTC) - timedelta(seconds=window)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    rows = store.comparisons(since)
    store.close()
    click.echo(report.text(report.summarize(rows)))


@main.command("hash-token")
@click.argument("token", required=False)
def hash_token(token: str | None) -> None:
    """Print the SHA-256 digest of a legacy token for the token table.

    Reads the token from standard input when not given, so it stays out of
    shell history.
    """
    if token is None:
        token = sys.stdin.readline().strip()
    click.echo(digest(token))
