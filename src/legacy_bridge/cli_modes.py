"""`legacy-bridge mode ...`: set a route's migration mode while every replica serves.

Writes go to the store (BRIDGE_STORE_URL), which every replica reads every
BRIDGE_MODE_REFRESH_SECONDS; each change is audited (who, when, from, to).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path

import click
import orjson

from legacy_bridge.errors import MappingError
from legacy_bridge.mapping import load_mappings
from legacy_bridge.modes import MODES
from legacy_bridge.progresstable import load_progress_table
from legacy_bridge.settings import load_settings
from legacy_bridge.sqlmap import load_data_api
from legacy_bridge.store import Store


def _store(store_url: str | None) -> Store:
    return Store(store_url or load_settings().store_url)


def _routes(mappings_dir: Path | None) -> list[str]:
    """The names a mode can be set for: every surface of the tables."""
    folder = mappings_dir or load_settings().mappings_dir
    try:
        names = [r.name for r in load_mappings(folder)]
        if load_data_api(folder) is not None:
            names.append("data-api")
        table = load_progress_table(folder)
        names += [r.name for r in table.routes] if table is not None else []
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    return names


_common = [click.option("--store-url", default=None, help="[env BRIDGE_STORE_URL]"),
           click.option("--mappings-dir", type=click.Path(path_type=Path), default=None,
                        help="Folder of mapping tables [env BRIDGE_MAPPINGS_DIR]")]


def _options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_common):
        command = option(command)
    return command


@click.group()
def mode() -> None:
    """Migration modes set while serving, obeyed by every replica within seconds."""


@mode.command("set")
@click.argument("route")
@click.argument("new_mode", metavar="MODE", type=click.Choice(MODES))
@click.option("--percent", default=100, show_default=True, type=click.IntRange(0, 100),
              help="Share of clients (sticky per client) in MODE; the rest go to the old API")
@click.option("--by", "who", default=None, help="Who is changing it [default: the OS user]")
@_options
def mode_set(route: str, new_mode: str, percent: int, who: str | None,
             store_url: str | None, mappings_dir: Path | None) -> None:
    """Put ROUTE in MODE (for --percent of clients)."""
    if route not in _routes(mappings_dir):
        raise click.BadParameter(f"no route {route!r}", param_hint="ROUTE")
    store = _store(store_url)
    store.set_route_mode(route, new_mode, percent, who or getpass.getuser())
    store.close()
    click.echo(f"{route}: {new_mode}" + (f" for {percent}% of clients" if percent < 100 else ""))


@mode.command("clear")
@click.argument("route")
@click.option("--by", "who", default=None, help="Who is changing it [default: the OS user]")
@_options
def mode_clear(route: str, who: str | None, store_url: str | None,
               mappings_dir: Path | None) -> None:
    """Back to the mode ROUTE's table (or BRIDGE_MODE) says."""
    store = _store(store_url)
    store.set_route_mode(route, None, 100, who or getpass.getuser())
    store.close()
    click.echo(f"{route}: the table's mode")


@mode.command("rollback")
@click.argument("route")
@click.option("--by", "who", default=None, help="Who is changing it [default: the OS user]")
@_options
def mode_rollback(route: str, who: str | None, store_url: str | None,
                  mappings_dir: Path | None) -> None:
    """Undo ROUTE's last change: back to the mode it had before."""
    store = _store(store_url)
    changes = store.mode_changes(route, limit=1)
    if not changes:
        store.close()
        click.echo(f"error: {route} has no change to undo", err=True)
        sys.exit(1)
    last = changes[0]
    store.set_route_mode(route, last.from_mode, last.from_percent or 100,
                         who or getpass.getuser())
    store.close()
    click.echo(f"{route}: back to " + (f"{last.from_mode} ({last.from_percent}%)"
                                       if last.from_mode else "the table's mode"))


@mode.command("list")
@click.option("--json", "as_json", is_flag=True, help="{routes: {...}, changes: [...]}")
@_options
def mode_list(as_json: bool, store_url: str | None, mappings_dir: Path | None) -> None:
    """The modes set while serving, and the latest changes (who, when, from, to)."""
    store = _store(store_url)
    settings, changes = store.route_modes(), store.mode_changes(limit=20)
    store.close()
    if as_json:
        click.echo(orjson.dumps({"routes": {s.route: s.__dict__ for s in settings},
                                 "changes": [c.__dict__ for c in changes]}).decode())
        return
    for s in settings:
        click.echo(f"{s.route:<24} {s.mode:<17} {s.percent:>3}%  set {s.changed_at} "
                   f"by {s.changed_by}")
    if not settings:
        click.echo("no route has a mode set while serving: the tables' modes apply")
    for c in changes:
        click.echo(f"  {c.at} {c.who}: {c.route} {c.from_mode or 'table'} -> "
                   f"{c.to_mode or 'table'}")
