"""The `legacy-bridge` command: serve, check, demo, emulate, explain, usage, hash-token.

`compare ...` lives in cli_compare.py. The emulator is imported only by the
commands that run it (emulate, demo), so the proxy's own commands stay light.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import click
import orjson
import uvicorn
from starlette.applications import Starlette

from legacy_bridge import logs, metrics
from legacy_bridge.admin import usage_table
from legacy_bridge.app import create_app, out_of_the_collectors_way
from legacy_bridge.auth import digest, load_learners
from legacy_bridge.cli_compare import compare
from legacy_bridge.cli_modes import mode
from legacy_bridge.cli_progress import progress
from legacy_bridge.configcheck import check_configuration, upstream_reachable, without_credentials
from legacy_bridge.coursecheck import check_course_map
from legacy_bridge.coursemap import CourseMap, load_course_map
from legacy_bridge.errors import (
    BridgeError,
    ConfigError,
    MappingError,
    TokenFileError,
    UpstreamUnreachable,
)
from legacy_bridge.explain import explain as explain_request
from legacy_bridge.explain import explain_sql, sql_text
from legacy_bridge.mapping import load_mappings
from legacy_bridge.operations import bundled_schema
from legacy_bridge.progresstable import ProgressTable, load_progress_table
from legacy_bridge.routes import compile_route, resolve
from legacy_bridge.settings import PACKAGED_MAPPINGS, Settings, SettingsError, load_settings
from legacy_bridge.sqlexpr import SqlLimits
from legacy_bridge.sqlmap import load_data_api
from legacy_bridge.sqlplan import plan as plan_sql
from legacy_bridge.store import Store
from legacy_bridge.upstream import LiveSchemas


class _Commands(click.Group):
    """The commands that run the emulator load it when called, not at every start."""

    lazy: ClassVar[dict[str, str]] = {"demo": "legacy_bridge.cli_demo:demo",
                                      "emulate": "legacy_bridge.cli_demo:emulate"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def invoke(self, ctx: click.Context) -> Any:
        """A setting that cannot be used is one clear line per setting and exit 2,
        whichever command read the settings."""
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            click.echo(f"error: {exc}".replace("\n", "\nerror: "), err=True)
            ctx.exit(2)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, name = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.version_option(package_name="legacy-bridge")
def main() -> None:
    """A legacy-compatibility migration proxy: Learner Progress REST API v2 over GraphQL."""


main.add_command(compare)
main.add_command(progress)
main.add_command(mode)


def _settings_flags(command: Any) -> Any:
    """One `serve` flag per setting, named after it; a flag wins over `BRIDGE_*`."""
    for name, info in reversed(Settings.model_fields.items()):
        default = "unset" if info.default is None else info.default
        command = click.option(f"--{name.replace('_', '-')}", name, default=None,
                               help=f"{info.description} [env BRIDGE_{name.upper()}; "
                                    f"default: {default}]")(command)
    return command


@main.command()
@_settings_flags
def serve(**flags: Any) -> None:
    """Serve the legacy routes from the GraphQL upstream."""
    given = {k: v for k, v in flags.items() if v is not None}
    settings = load_settings(**given)
    logs.to_stdout(settings.log_level)
    # uvicorn's own access log would repeat our request line without its fields
    # SIGTERM: stop accepting, let in-flight requests finish (bounded), flush, exit
    options: dict[str, Any] = {"host": settings.host, "port": settings.port,
                               "log_config": logs.uvicorn_config(settings.log_level),
                               "log_level": settings.log_level.lower(), "access_log": False,
                               "timeout_graceful_shutdown": settings.shutdown_timeout}
    # With several workers a scrape of any one counts them all, through files in a
    # directory they share (prometheus-client's multiprocess mode).
    shared = metrics.shared_dir()
    own = settings.workers > 1 and shared is None
    if own:
        shared = os.environ[metrics.SHARED_DIR] = tempfile.mkdtemp(prefix="legacy-bridge-metrics-")
    if shared is not None:
        metrics.prepare_shared_dir(shared)
    try:
        if settings.workers == 1:
            uvicorn.run(out_of_the_collectors_way(_start(settings)), **options)
            return
        _start(settings)  # fail here, once, on a bad table or setting
        # Worker processes build their own app from the environment: flags go there.
        os.environ.update({f"BRIDGE_{k.upper()}": str(v) for k, v in given.items()})
        uvicorn.run("legacy_bridge.app:from_environment", factory=True,
                    workers=settings.workers, **options)
    finally:
        if own and shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _start(settings: Settings) -> Starlette:
    """The app, or a clear message and exit 2 for a bad mapping table or setting."""
    try:
        return create_app(settings)
    except (MappingError, ConfigError, TokenFileError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
@click.option("--upstream-url", "--upstream", "upstream_url", default=None, metavar="URL",
              help="Check against this upstream's live introspection instead of the "
                   "bundled SDL")
@click.option("--api-key", envvar="BRIDGE_UPSTREAM_API_KEY", default="",
              help="Key for --upstream [env BRIDGE_UPSTREAM_API_KEY]")
@click.option("--learners-file", envvar="BRIDGE_LEARNERS_FILE", default=None,
              type=click.Path(path_type=Path), help="With --upstream, the course map is "
              "checked as the first learner listed [env BRIDGE_LEARNERS_FILE]")
@click.option("--json", "as_json", is_flag=True, help="{ok, folder, tables: [{file, "
              "checked}], problems: [...]}")
@click.option("--tables", "tables_only", is_flag=True, help="The mapping tables only, "
              "not the configuration (an image build checks its tables this way)")
def check(mappings_dir: Path | None, upstream_url: str | None, api_key: str,
          learners_file: Path | None, as_json: bool, tables_only: bool) -> None:
    """Load and check every mapping table against the GraphQL schemas.

    With no flags, a dry run of the whole configuration first (settings, token
    table, learners file, store, cursor cache), then the tables against the
    upstream's live introspection when it answers. With --upstream-url, against
    that upstream, and the course map against the platform's required topics.
    Exit 0: all is right; 1: a problem, named with its file or part and the
    fix; 2: no verdict (the upstream named did not answer, a setting is wrong).
    """
    tables: list[tuple[str, str]] = []  # (part, what was checked)
    problems: list[str] = []
    if mappings_dir is None and upstream_url is None and not tables_only:  # everything
        settings = load_settings()
        for part in check_configuration(settings):
            if part.ok:
                tables.append((part.name, part.detail))
            else:
                problems.append(f"{part.name}: {part.detail}")
        if upstream_reachable(settings.upstream_url):
            upstream_url, api_key = settings.upstream_url, settings.api_key() or api_key
            learners_file = learners_file or settings.learners_file
        else:
            tables.append(("upstream", f"{without_credentials(settings.upstream_url)} did not "
                                       "answer: tables checked against the bundled schemas"))
    directory = mappings_dir or load_settings().mappings_dir
    live = LiveSchemas(upstream_url, api_key) if upstream_url else None
    try:
        with live or contextlib.nullcontext(bundled_schema) as source:
            for route in load_mappings(directory, source):
                joins = f" + joins {', '.join(route.joins)}" if route.joins else ""
                tables.append((route.file, f"GET {route.path} -> {route.connection.operation}"
                                           f" ({len(route.fields)} fields{joins})"))
            data_api = load_data_api(directory, source)
            if data_api is not None:
                over = ", ".join(f"{t.name} ({len(t.columns)} columns)"
                                 for t in data_api.tables.values())
                tables.append((data_api.file, f"POST {data_api.path} -> "
                                              f"{data_api.connection.operation} over {over}"))
            progress = load_progress_table(directory, source)
            if progress is not None:
                tables += [(progress.file, f"{', '.join(r.methods)} {r.path} -> "
                            f"{progress.done_field}, {progress.complete.operation_name}")
                           for r in progress.routes]
            courses = load_course_map(directory)
            if live is not None and progress and courses:
                problems = _check_courses(live, api_key, learners_file, progress, courses)
            if courses is not None:
                platform = " (as the platform requires)" if live and progress else ""
                tables.append((courses.file, f"{len(courses.courses)} courses, "
                                             f"{len(courses.lessons)} lessons{platform}"))
    except MappingError as exc:
        problems.append(str(exc))
    except (ConfigError, UpstreamUnreachable) as exc:
        click.echo(f"error: could not check: {exc}", err=True)
        sys.exit(2)
    ok = not problems
    if as_json:
        click.echo(orjson.dumps({"ok": ok, "folder": str(directory.resolve()),
                                 "tables": [{"file": f, "checked": c} for f, c in tables],
                                 "problems": problems}).decode())
    else:
        click.echo(f"tables from {directory.resolve()}"
                   + (" (installed with the package)" if directory == PACKAGED_MAPPINGS
                      else ""))
        for file, checked in tables if ok else ():
            click.echo(f"ok  {file}: {checked}")
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
    sys.exit(0 if ok else 1)


def _check_courses(live: LiveSchemas, key: str, learners_file: Path | None,
                   table: ProgressTable, courses: CourseMap) -> list[str]:
    token = load_learners(learners_file).any_token()
    if token is None:
        raise ConfigError("checking the course map upstream reads as a learner: set "
                          "BRIDGE_LEARNERS_FILE (or --learners-file)")
    return check_course_map(live.client, key, token, table, courses)


@main.command()
@click.argument("url")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
@click.option("--upstream-url", default=None, help="Upstream base URL for the snippets "
              "[env BRIDGE_UPSTREAM_URL]")
def explain(url: str, mappings_dir: Path | None, upstream_url: str | None) -> None:
    """Print what a legacy URL becomes upstream: GraphQL, variables, paging, snippets.

    URL is a legacy path with its query, as a client sends it to a route of the
    mapping tables (quote it for the shell). Without a running proxy no cursor
    is remembered, so the plan walks from the start.
    """
    given: dict[str, Any] = {"mappings_dir": mappings_dir, "upstream_url": upstream_url}
    settings = load_settings(**{k: v for k, v in given.items() if v is not None})
    try:
        routes = [compile_route(r) for r in load_mappings(settings.mappings_dir)]
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        compiled, legacy = resolve(routes, url)
        answer = explain_request(compiled.route, compiled.page, compiled.walk, legacy,
                                 (0, None), settings.upstream_url, settings.max_walk_requests)
    except BridgeError as exc:
        raise click.ClickException(exc.message) from None
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

    SQL is one statement over a table of the Data API table, as a client sends it.
    Offline, so the request estimate is a formula of the filter's totalCount
    (POST /_bridge/explain on a running proxy gives the number).
    """
    given: dict[str, Any] = {"mappings_dir": mappings_dir, "upstream_url": upstream_url}
    settings = load_settings(**{k: v for k, v in given.items() if v is not None})
    try:
        api = load_data_api(settings.mappings_dir)
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    if api is None:
        raise click.ClickException(f"no Data API table ([data_api]) in {settings.mappings_dir}")
    try:
        limits = SqlLimits(settings.sql_max_in_items, settings.sql_max_like_wildcards)
        answer = explain_sql(plan_sql(sql, api, limits), api, settings.upstream_url)
    except BridgeError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    click.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() if as_json
               else sql_text(answer))


@main.command()
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table")
def usage(store_url: str | None, as_json: bool) -> None:
    """Who still calls the legacy API: per client, route, parameter and field."""
    store = Store(store_url or load_settings().store_url)
    rows = store.usage()
    store.close()
    if as_json:
        click.echo(orjson.dumps([r.__dict__ for r in rows], option=orjson.OPT_INDENT_2))
    else:
        click.echo(usage_table(rows))


@main.command()
def healthcheck() -> None:
    """Exit 0 when the local proxy answers /healthz.

    The container runs `python -m legacy_bridge.healthcheck`, which does the
    same without importing the CLI.
    """
    from legacy_bridge import healthcheck as probe

    problem = probe.check()
    if problem:
        raise click.ClickException(problem)
    click.echo("healthy")


@main.command("hash-token")
@click.argument("token", required=False)
def hash_token(token: str | None) -> None:
    """Print the SHA-256 digest of a legacy token for the token table.

    Reads the token from standard input when not given, so it stays out of
    shell history.
    """
    if token is None:
        token = (click.prompt("token", hide_input=True, err=True) if sys.stdin.isatty()
                 else sys.stdin.readline()).strip()  # typed on a terminal: not echoed
    click.echo(digest(token))
