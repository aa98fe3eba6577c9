"""Migration modes changed while serving, shared by every replica through the store.

An operator sets a route's mode (and, for a gradual cut-over, the percentage
of clients it applies to) with `legacy-bridge mode set` or `POST
/_bridge/modes`. The setting lands in the store with an audit row (who, when,
from, to); every replica reads the store every BRIDGE_MODE_REFRESH_SECONDS,
so all of them follow within that delay. A setting overrides the table's
`mode` and BRIDGE_MODE; `mode rollback` restores what was set before.

Canary: `percent = 20` sends 20% of clients to the route's mode and the rest
to the old API (`legacy`), sticky per client label (the same client always
lands on the same side, so its pages stay consistent).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from legacy_bridge import logs
from legacy_bridge.modes import MODES, Mode
from legacy_bridge.progressrows import ModeSetting
from legacy_bridge.store import Store

log = logs.get("legacy_bridge.runtime")


@dataclass(frozen=True)
class Chosen:
    mode: Mode
    percent: int  # of clients, 0..100


def bucket(label: str, route: str) -> int:
    """A client's fixed place 0..99 on a route: the same every time, on every replica."""
    return int.from_bytes(hashlib.sha256(f"{route}\n{label}".encode()).digest()[:4]) % 100


class ModeBoard:
    def __init__(self, store: Store, refresh: float) -> None:
        self.store, self.refresh = store, refresh
        self.settings: dict[str, ModeSetting] = {}

    def mode_for(self, route: str, label: str, default: Mode) -> Mode:
        """The mode this client's request runs in: the runtime setting, its canary share,
        or the table's (or BRIDGE_MODE's) default."""
        setting = self.settings.get(route)
        if setting is None:
            return default
        chosen: Mode = setting.mode
        return chosen if setting.percent >= 100 or bucket(label, route) < setting.percent \
            else "legacy"

    async def load(self) -> None:
        try:
            found = await self.store.later(self.store.route_modes)
        except Exception as exc:  # the store is away: keep what was read last
            log.warning("route modes not refreshed", error=type(exc).__name__)
            return
        self.settings = {s.route: s for s in found if s.mode in MODES}

    async def run(self) -> None:
        while True:
            await self.load()
            await asyncio.sleep(self.refresh)
