"""`legacy-bridge check` with no flags: the whole configuration, as a dry run before a
deploy. One part per line: settings, token table, learners file, store, cursor
cache, upstream. Never prints a token, a key or a password (URLs are shown
without their credentials).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from legacy_bridge.auth import authenticator_from, load_learners
from legacy_bridge.pagination import open_checkpoints
from legacy_bridge.settings import Settings
from legacy_bridge.store import Store


@dataclass(frozen=True)
class Part:
    name: str
    ok: bool
    detail: str  # what was found, or what is wrong and the fix


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _guard(name: str, check: Callable[[], Part]) -> Part:
    try:
        return check()
    except Exception as exc:  # every part reports, whatever its library raises
        return Part(name, False, f"{type(exc).__name__}: {exc}")


def check_configuration(settings: Settings) -> list[Part]:
    def tokens() -> Part:
        auth = authenticator_from(settings)
        if auth.mode == "passthrough":
            return Part("token table", True, "passthrough: clients' bearers are the keys")
        v2 = sum(1 for e in auth.entries if e.plans)
        users = sum(1 for e in auth.entries if e.user_id)
        return Part("token table", True, f"{len(auth.entries)} tokens ({v2} for the v2 "
                                         f"routes, {users} course-progress users)")

    def learners() -> Part:
        found = load_learners(settings.learners_file)
        where = settings.learners_file or "BRIDGE_LEARNERS_FILE unset"
        return Part("learners file", True, f"{len(found.user_ids())} learners ({where})")

    def store() -> Part:
        Store(settings.store_url).close()
        return Part("store", True, without_credentials(settings.store_url))

    def cursor_cache() -> Part:
        if settings.cursor_cache == "memory":
            return Part("cursor cache", True, "memory (per process)")
        cache = open_checkpoints(settings.cursor_cache, 1, 1.0, lambda: 0.0)

        async def ping() -> None:
            try:
                if not await cache.ping():
                    raise ConnectionError("Redis did not answer")
            finally:
                await cache.aclose()

        asyncio.run(ping())
        return Part("cursor cache", True, without_credentials(settings.cursor_cache))

    return [_guard("token table", tokens), _guard("learners file", learners),
            _guard("store", store), _guard("cursor cache", cursor_cache)]


def upstream_reachable(url: str, timeout: float = 3.0) -> bool:
    """Does anything answer at the upstream's base URL (whatever the status)?"""
    try:
        httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return True
