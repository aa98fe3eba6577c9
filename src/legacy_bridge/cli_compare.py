"""`legacy-bridge compare ...`: the side-by-side checks a team gates a cut-over on.

    crawl   read every page of a plan from the old API and the proxy, compare
    progress  read learners' course progress from the old API and the proxy, compare
    replay  recorded legacy calls (HAR, JSON lines) sent to the proxy, answers compared
    sql     send a file of SQL statements to both Data APIs, compare
    gate    per route, is the stored shadow mismatch rate under a threshold?
    export  stored mismatches as golden test cases
    report  mismatch rates per route, field and hour
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click
import httpx
import orjson

from legacy_bridge import report
from legacy_bridge.auth import load_learners
from legacy_bridge.crawl import Crawl, Side, State, crawl_compare, crawl_progress
from legacy_bridge.crawl import as_json as crawl_json
from legacy_bridge.crawl import report as crawl_report
from legacy_bridge.errors import ConfigError, CrawlError, MappingError
from legacy_bridge.mapping import load_mappings
from legacy_bridge.progresstable import load_progress_table
from legacy_bridge.replay import RecordingError, Router, read_recording, replay
from legacy_bridge.replay import as_json as replay_json
from legacy_bridge.replay import report as replay_report
from legacy_bridge.settings import load_settings
from legacy_bridge.sqlcompare import compare_sql, split_statements
from legacy_bridge.sqlmap import load_data_api
from legacy_bridge.store import Store


def _from_file(variable: str) -> Callable[[], str | None]:
    """A token's default: the file `variable` names (a mounted secret), if set."""
    def read() -> str | None:
        path = os.environ.get(variable)
        return Path(path).read_text().strip() if path else None
    return read


def _token_option(side: str, required: bool = True) -> Callable[[Any], Any]:
    env = f"BRIDGE_COMPARE_{side.upper()}_TOKEN"
    return click.option(f"--{side}-token", envvar=env, default=_from_file(f"{env}_FILE"),
                        required=required, show_default=False,
                        help=f"Bearer token for the {side} side [env {env}, or a file "
                             f"named by {env}_FILE]")


def _side_options(command: Any) -> Any:
    """--legacy-token, --bridge-url, --bridge-token: the two sides of a comparison."""
    command = _token_option("bridge")(command)
    command = click.option("--bridge-url", required=True,
                           help="Base URL of the proxy")(command)
    return _token_option("legacy")(command)


def _could_not_run(exc: Exception) -> NoReturn:
    """Exit 2: no verdict (a side down or refusing), as opposed to 1, the sides differ."""
    reason = str(exc) if isinstance(exc, CrawlError) else f"{type(exc).__name__}: {exc}"
    click.echo(f"error: could not compare: {reason}", err=True)
    sys.exit(2)


@click.group()
def compare() -> None:
    """Side-by-side comparison of the legacy API and the proxy."""


@compare.command("crawl")
@click.option("--legacy-url", required=True, help="Base URL of the legacy v2 API")
@_side_options
@click.option("--plan", "plan_ids", multiple=True, help="A plan id to crawl (repeat it)")
@click.option("--plans", "plans_file", type=click.File(), default=None,
              help="A file of plan ids, one per line (# starts a comment)")
@click.option("--routes", default=None, help="Comma-separated route names (default: all)")
@click.option("--per-page", default=100, show_default=True)
@click.option("--in-flight", default=4, show_default=True, help="Pages read at once per side")
@click.option("--resume", "resume", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="State file: finished plans and routes are kept there, "
              "and a crawl run again with it goes on where it stopped")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
def compare_crawl(legacy_url: str, legacy_token: str, bridge_url: str, bridge_token: str,
                  plan_ids: tuple[str, ...], plans_file: Any, routes: str | None,
                  per_page: int, in_flight: int, resume: Path | None, as_json: bool,
                  mappings_dir: Path | None) -> None:
    """Read every page of a plan from both sides. Exit 0: they agree (equal values
    spelled differently are representation notes, not differences); 1: they differ;
    2: no verdict (a side down or refusing).

    Records match by each route's identity fields and compare under its noise
    rules ([compare] in the mapping). E-mails and names are hashed in the output
    unless BRIDGE_COMPARE_PII=keep. Pages that fail with a connection error or a
    502/503/504 are tried again, with backoff, three times.
    """
    plans = list(plan_ids) + ([line.split("#")[0].strip() for line in plans_file
                               if line.split("#")[0].strip()] if plans_file else [])
    if not plans:
        raise click.BadParameter("give --plan ID (repeatable) or --plans FILE",
                                 param_hint="--plan")
    try:
        loaded = load_mappings(mappings_dir or load_settings().mappings_dir)
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    chosen = routes.split(",") if routes else [r.name for r in loaded]
    unknown = set(chosen) - {r.name for r in loaded}
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(sorted(unknown))}",
                                 param_hint="--routes")

    started = last = time.monotonic()
    interactive = sys.stderr.isatty()

    def progress(route: str, done: int, total: int) -> None:
        """On a terminal a line redrawn in place; in a log a line every 10 s and at the
        end of each route; with --json nothing."""
        nonlocal last
        now = time.monotonic()
        line = (f"{route}: {done}/{total} pages, {now - started:.0f} s, "
                f"{done / max(now - started, 1e-9):.1f} pages/s")
        if as_json:
            return
        if interactive:
            click.echo(f"\r{line}", nl=False, err=True)
            if done == total:
                click.echo(err=True)
        elif done == total or now - last >= 10:
            last = now
            click.echo(line, err=True)

    try:
        results = crawl_compare([r for r in loaded if r.name in chosen],
                                Side(legacy_url, legacy_token), Side(bridge_url, bridge_token),
                                plans, per_page, load_settings().compare_pii == "keep",
                                progress, how=Crawl(per_page=per_page, in_flight=in_flight),
                                state=State(resume))
    except (CrawlError, httpx.HTTPError) as exc:
        _could_not_run(exc)
    if as_json:
        click.echo(orjson.dumps(crawl_json(results), option=orjson.OPT_INDENT_2))
    else:
        click.echo(crawl_report(results))
    if not all(r.agrees for r in results):
        sys.exit(1)


@compare.command("progress")
@click.option("--legacy-url", required=True, help="Base URL of the old course-progress API")
@_side_options
@click.option("--learner", "learners", multiple=True, help="A learner's UUID (repeat it); "
              "default: every learner of BRIDGE_LEARNERS_FILE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
def compare_progress(legacy_url: str, legacy_token: str, bridge_url: str, bridge_token: str,
                     learners: tuple[str, ...], as_json: bool,
                     mappings_dir: Path | None) -> None:
    """Read learners' course progress from both sides (the admin route, with admin
    tokens on both); exit 1 on any difference. Records match by user and lesson."""
    settings = load_settings()
    try:
        table = load_progress_table(mappings_dir or settings.mappings_dir)
        chosen = list(learners) or load_learners(settings.learners_file).user_ids()
    except (MappingError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if table is None:
        raise click.ClickException("no course-progress table in the mappings folder")
    if not chosen:
        raise click.BadParameter("name learners, or set BRIDGE_LEARNERS_FILE",
                                 param_hint="--learner")
    try:
        result = crawl_progress(table, Side(legacy_url, legacy_token),
                                Side(bridge_url, bridge_token), chosen,
                                settings.compare_pii == "keep")
    except (CrawlError, httpx.HTTPError) as exc:
        _could_not_run(exc)
    if as_json:
        click.echo(orjson.dumps(crawl_json([result]), option=orjson.OPT_INDENT_2))
    else:
        click.echo(crawl_report([result]))
    if not result.agrees:
        sys.exit(1)


@compare.command("replay")
@click.argument("recording", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bridge-url", required=True, help="Base URL of the proxy")
@_token_option("bridge")
@click.option("--legacy-url", default=None, help="Compare with the old API's live answers "
              "instead of the recorded ones")
@_token_option("legacy", required=False)
@click.option("--json", "as_json", is_flag=True, help="{agrees, skipped, routes: [{route, "
              "calls, agree, fields, examples}]}")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
def compare_replay(recording: Path, bridge_url: str, bridge_token: str,
                   legacy_url: str | None, legacy_token: str | None, as_json: bool,
                   mappings_dir: Path | None) -> None:
    """Replay recorded legacy calls (a HAR file, or JSON lines of {method, path, query,
    status, body}) against the proxy and compare each answer with the recorded one.

    Writes are never replayed. The recording's own credentials are never sent,
    printed or stored. Exit 0: every replayed call agrees; 1: some differ; 2: no
    verdict (an unreadable recording, a side unreachable).
    """
    settings = load_settings()
    folder = mappings_dir or settings.mappings_dir
    if legacy_url is not None and legacy_token is None:
        raise click.BadParameter("needed with --legacy-url", param_hint="--legacy-token")
    try:
        router = Router(load_mappings(folder), load_data_api(folder),
                        load_progress_table(folder), settings.compare_pii == "keep")
        calls = read_recording(recording)
        result = replay(calls, router, Side(bridge_url, bridge_token),
                        Side(legacy_url, legacy_token or "") if legacy_url else None)
    except (MappingError, RecordingError, httpx.HTTPError, UnicodeDecodeError) as exc:
        _could_not_run(exc)
    if as_json:
        click.echo(orjson.dumps(replay_json(result), option=orjson.OPT_INDENT_2))
    else:
        click.echo(replay_report(result))
    sys.exit(0 if result.agrees and result.routes else 1 if result.routes else 2)


@compare.command("sql")
@click.argument("file", type=click.File())
@click.option("--legacy-url", required=True, help="Base URL of the legacy Data API")
@_side_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per statement, as "
              "it is compared: {sql, agrees, detail}")
@click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")
def compare_sql_command(file: Any, legacy_url: str, legacy_token: str, bridge_url: str,
                        bridge_token: str, as_json: bool, mappings_dir: Path | None) -> None:
    """Send each SQL statement of FILE to both Data APIs and compare the answers.

    Statements are split where the SQL tokenizer sees a `;` (never inside a
    string or a comment). Rows compare as a multiset of values (row order among
    ORDER BY ties is free in Postgres; 53 and 53.0 are one value). Each line is
    printed as its statement is answered. Exit 0: every statement agrees; 1:
    some differ; 2: no verdict (no table, no statement, a side unreachable).
    """
    folder = mappings_dir or load_settings().mappings_dir
    try:
        api = load_data_api(folder)
        if api is None:
            raise ConfigError(f"no Data API table ([data_api]) in {folder}")
        statements = split_statements(file.read())
        if not statements:
            raise ConfigError("the file holds no SQL statement")
    except (MappingError, ConfigError, ValueError) as exc:
        _could_not_run(exc)
    differ = total = 0
    try:
        for result in compare_sql(statements, api, Side(legacy_url, legacy_token),
                                  Side(bridge_url, bridge_token)):
            total += 1
            differ += not result.agrees
            if as_json:
                click.echo(orjson.dumps(result.__dict__).decode())
            else:
                click.echo(f"{'ok  ' if result.agrees else 'DIFF'}  {result.detail:<48}  "
                           f"{' '.join(result.sql.split())[:90]}")
    except httpx.HTTPError as exc:
        _could_not_run(exc)
    if not as_json:
        click.echo(f"{total - differ} of {total} statements agree")
    sys.exit(1 if differ else 0)


@compare.command("gate")
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--window", default=3600.0, show_default=True, help="Seconds to look back")
@click.option("--threshold", default=0.0, show_default=True,
              help="Highest mismatch rate that passes (0.001 = 0.1%)")
@click.option("--min-comparisons", default=1, show_default=True,
              help="Fewer comparisons than this in the window fail the route")
@click.option("--routes", default=None, help="Comma-separated routes (default: all seen)")
@click.option("--json", "as_json", is_flag=True, help="{passed, routes: [{route, compared, "
              "differ, rate, passed}]}")
def compare_gate(store_url: str | None, window: float, threshold: float,
                 min_comparisons: int, routes: str | None, as_json: bool) -> None:
    """Per route, is the shadow mismatch rate over the window under the threshold?

    Exit 0 when every route passes, 1 when one fails, 2 when the store cannot be
    read: a team can script the promotion legacy -> shadow -> graphql-fallback ->
    graphql on it.
    """
    since = (datetime.now(UTC) - timedelta(seconds=window)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tally: dict[str, list[int]] = {}  # route -> [compared, differ], one pass over the store
    url = store_url or load_settings().store_url
    try:
        store = Store(url)
        for row in store.iter_comparisons(since):
            counts = tally.setdefault(row.route, [0, 0])
            counts[0] += 1
            counts[1] += not row.agrees
        store.close()
    except Exception as exc:  # the store's drivers raise their own kinds
        _could_not_run(exc)
    names = routes.split(",") if routes else sorted(tally)
    verdicts: list[dict[str, Any]] = []
    for name in names:
        compared, differ = tally.get(name, [0, 0])
        rate = differ / compared if compared else 1.0
        verdicts.append({"route": name, "compared": compared, "differ": differ, "rate": rate,
                         "passed": compared >= min_comparisons and rate <= threshold})
    passed = bool(names) and all(v["passed"] for v in verdicts)
    if as_json:
        click.echo(orjson.dumps({"passed": passed, "threshold": threshold,
                                 "window_seconds": window, "routes": verdicts}).decode())
    else:
        for v in verdicts:
            click.echo(f"{'PASS' if v['passed'] else 'FAIL'}  {v['route']:<22} "
                       f"{v['compared']:>7} comparisons  {v['differ']:>6} differ  "
                       f"{100 * v['rate']:7.3f}% (threshold {100 * threshold:g}%)")
        if not names:
            click.echo("FAIL  no comparisons in the window")
    sys.exit(0 if passed else 1)


@compare.command("export")
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("tests/golden"),
              show_default=True, help="Folder of golden cases")
@click.option("--route", default=None, help="Only this route")
@click.option("--limit", default=20, show_default=True, help="Cases written at most")
@click.option("--json", "as_json", is_flag=True, help="{written: [paths]}")
def compare_export(store_url: str | None, out: Path, route: str | None, limit: int,
                   as_json: bool) -> None:
    """Write stored mismatches as golden test cases, so a fixed mismatch stays fixed.

    Each case replays the translation's recorded upstream exchanges and expects
    the legacy answer; it fails until the mapping (or code) is fixed. No token is
    written; personal values are hashed unless BRIDGE_COMPARE_PII=keep.
    """
    url = store_url or load_settings().store_url
    try:
        store = Store(url)
        rows = store.golden_cases(route, limit)
        store.close()
    except Exception as exc:  # the store's drivers raise their own kinds
        _could_not_run(exc)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for row in rows:
        stamp = row.at.replace(":", "").replace("-", "").replace(".", "")
        path = out / f"shadow-{row.route}-{stamp}.json"
        path.write_text(json.dumps(json.loads(row.golden or "{}"), indent=2) + "\n")
        written.append(str(path))
    if as_json:
        click.echo(orjson.dumps({"written": written}).decode())
    else:
        click.echo("\n".join(f"wrote {path}" for path in written)
                   or "no stored mismatches to export")


@compare.command("report")
@click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]")
@click.option("--window", default=None, type=float, help="Seconds to look back (default: all)")
@click.option("--json", "as_json", is_flag=True, help="[{route, compared, differ, rate, "
              "fields, hours, examples}]")
def compare_report(store_url: str | None, window: float | None, as_json: bool) -> None:
    """Mismatch rates per route, per field and per hour, and the latest examples.

    Exit 0, or 2 when the store cannot be read.
    """
    since = "" if window is None else (datetime.now(UTC) - timedelta(seconds=window)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    url = store_url or load_settings().store_url
    try:
        store = Store(url)
        summaries = report.summarize(store.iter_comparisons(since))
        store.close()
    except Exception as exc:  # the store's drivers raise their own kinds
        _could_not_run(exc)
    if as_json:
        click.echo(orjson.dumps([{**s.__dict__, "rate": s.rate} for s in summaries]).decode())
    else:
        click.echo(report.text(summaries))
