"""`legacy-bridge progress import FILE.csv`: the one-time load of the legacy progress table."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from legacy_bridge.auth import authenticator_from, load_learners
from legacy_bridge.coursemap import COURSE_MAP_FILE, load_course_map
from legacy_bridge.errors import ConfigError, MappingError, TokenFileError
from legacy_bridge.progress import Progress
from legacy_bridge.progress_import import ImportFileError, Summary, count_rows, run_import
from legacy_bridge.progresstable import load_progress_table
from legacy_bridge.settings import load_settings
from legacy_bridge.store import Store
from legacy_bridge.upstream import Policy, Upstream


@click.group()
def progress() -> None:
    """Course progress: load the legacy table at cut-over."""


@progress.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--restart", is_flag=True, help="Start at the first row, not after the line "
              "a previous run of this file committed (safe: rows present are kept, "
              "completions already upstream are not sent again)")
@click.option("--no-forward", is_flag=True, help="Only load the store; do not complete the "
              "imported completions upstream")
def import_(csv_file: Path, restart: bool, no_forward: bool) -> None:
    """Load a CSV export of the legacy progress table into the store and forward its
    completions upstream as each learner. Settings come from BRIDGE_* (store, mappings
    folder, upstream, API key, learners file).

    Exit status: 0 every row imported; 1 some rows skipped or completions not
    forwarded (listed); 2 the import could not run.
    """
    try:
        summary = asyncio.run(_run(csv_file, restart, no_forward))
    except (ConfigError, MappingError, TokenFileError, ImportFileError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for line in summary.lines():
        click.echo(line)
    sys.exit(0 if summary.clean else 1)


async def _run(path: Path, restart: bool, no_forward: bool) -> Summary:
    settings = load_settings()
    table = load_progress_table(settings.mappings_dir)
    courses = load_course_map(settings.mappings_dir)
    if table is None or courses is None:
        raise ConfigError(f"{settings.mappings_dir} has no course-progress table or no "
                          f"{COURSE_MAP_FILE}")
    store = Store(settings.store_url)
    upstream = Upstream(settings.upstream_url, Policy(
        timeout=settings.upstream_timeout, retries=settings.upstream_retries,
        backoff=settings.upstream_backoff), ca_file=settings.upstream_ca_file)
    engine = None
    if not no_forward:
        auth = authenticator_from(settings)
        engine = Progress(table, courses, store, upstream, auth.api_key,
                          settings.progress_ryw_seconds, settings.progress_max_courses)
    learners = load_learners(settings.learners_file)
    total = count_rows(path)
    try:
        if sys.stderr.isatty():
            with click.progressbar(length=total, label="importing", file=sys.stderr,
                                   show_pos=True, show_eta=True) as bar:
                return await run_import(path, store, courses, engine, learners, restart,
                                        bar.update)
        return await run_import(path, store, courses, engine, learners, restart)
    finally:
        await upstream.aclose()
        await store.aclose()
