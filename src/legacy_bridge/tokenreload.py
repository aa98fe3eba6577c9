"""The token table, reloaded while serving: adding a client restarts nothing.

The file is read again on SIGHUP and when it changes (checked every
BRIDGE_TOKENS_RELOAD_SECONDS). A new table replaces the old one in one
assignment, so a request in flight finishes under the table it started with
and none is dropped; the clients' limits follow the table. A file that does not
load keeps the old table, and the log says why (never a token: the file holds
digests).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
from pathlib import Path

from legacy_bridge import logs
from legacy_bridge.auth import Authenticator, load_tokens
from legacy_bridge.errors import TokenFileError
from legacy_bridge.ratelimits import ClientLimits, rule

log = logs.get("legacy_bridge.tokenreload")


class TokenReloader:
    def __init__(self, path: Path, auth: Authenticator, limits: ClientLimits) -> None:
        self.path, self.auth, self.limits = path, auth, limits
        self._seen = self._fingerprint()
        self.reloads = 0

    def _fingerprint(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def reload(self, why: str) -> bool:
        """Load the file again if it changed; True when a new table is in use."""
        seen = self._fingerprint()
        if seen is None or seen == self._seen:
            return False
        self._seen = seen  # a broken file is reported once, not at every check
        try:
            entries = load_tokens(self.path)
        except TokenFileError as exc:
            log.warning("token table not reloaded; the old one stays in use", why=why,
                        error=str(exc))
            return False
        self.auth.entries = entries
        self.limits.rules = {e.label: r for e in entries if (r := rule(e.rate, e.concurrent))}
        self.reloads += 1
        log.info("token table reloaded", why=why, tokens=len(entries))
        return True

    async def watch(self, every: float) -> None:
        """Reload on SIGHUP, and when the file changes, until cancelled."""
        loop = asyncio.get_running_loop()
        # not the main thread (an embedding server): file changes still count
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
        try:
            while every > 0:
                await asyncio.sleep(every)
                self.reload("file changed")
            await asyncio.Event().wait()  # SIGHUP only
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
