"""Prometheus metrics at `/metrics`, with prometheus-client.

Labels are route templates, API names, statuses and outcomes: never a token,
a plan id or any other request value, so cardinality stays fixed and nothing
secret can leak into a time series. Cache, coalescing, queue and breaker
figures are kept by their owners and copied into metrics when scraped, so
nothing on the request path counts them twice.

With several worker processes (`BRIDGE_WORKERS`), `serve` points
`PROMETHEUS_MULTIPROC_DIR` at a directory the workers share: counters and
histograms go to per-process files that any worker's scrape adds up, and each
worker copies its owners' figures there every second (the scraped worker at
once), so a scrape answers for the whole server, not one worker at random.
"""

from __future__ import annotations

import asyncio
import glob
import os
import platform
import re
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from legacy_bridge import __version__

BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"
# the owners' running totals, copied into counters by the difference since the last copy
_TOTALS = {"hits": ("bridge_checkpoint_hits", "Pages that started from a remembered cursor"),
           "misses": ("bridge_checkpoint_misses", "Pages past offset 0 that found no "
                      "remembered cursor"),
           "failures": ("bridge_checkpoint_cache_failures", "Checkpoint cache operations "
                        "that failed (Redis down)"),
           "coalesced": ("bridge_upstream_coalesced", "Upstream requests answered by an "
                         "identical one already in flight")}


def shared_dir() -> str | None:
    """The directory workers share metrics through, when prometheus-client was told one."""
    return os.environ.get(SHARED_DIR) or None


def prepare_shared_dir(path: str) -> None:
    """Empty `path` of an earlier server's files, which would add to this one's counts."""
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)


def _forget_dead_workers(path: str) -> None:
    """A worker that died left its live gauges behind: drop them (its counts stay)."""
    for name in os.listdir(path):
        found = re.fullmatch(r"gauge_live\w+_(\d+)\.db", name)
        if found and not _alive(int(found.group(1))):
            mark_process_dead(int(found.group(1)), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Metrics:
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read
        self.shared = shared_dir()
        self.registry = CollectorRegistry()
        self.requests = Counter("bridge_legacy_requests", "Legacy requests answered",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("bridge_legacy_request_seconds", "Time to answer a legacy "
                                 "request", ["route"], buckets=BUCKETS, registry=self.registry)
        self.upstream = Counter("bridge_upstream_requests", "Requests sent upstream",
                                ["api", "outcome"], registry=self.registry)
        self.upstream_latency = Histogram("bridge_upstream_request_seconds", "Time for one "
                                          "upstream answer", ["api"], buckets=BUCKETS,
                                          registry=self.registry)
        self.comparisons = Counter("bridge_comparisons", "Shadow comparisons made",
                                   ["route", "result"], registry=self.registry)
        self.mismatches = Counter("bridge_comparison_mismatches", "Shadow comparisons that "
                                  "differed, by legacy field path", ["route", "field"],
                                  registry=self.registry)
        self.shadow_dropped = Counter("bridge_shadow_dropped", "Shadow comparisons dropped "
                                      "because the queue was full", ["route"],
                                      registry=self.registry)
        self.rate_limited = Counter("bridge_client_rate_limited", "Requests refused 429 by "
                                    "a client's own limit (labels come from the token table)",
                                    ["client", "limit"], registry=self.registry)
        self.fallbacks = Counter("bridge_fallbacks", "Answers taken from the legacy API "
                                 "after the translation failed upstream", ["route"],
                                 registry=self.registry)
        self._totals = {key: Counter(name, text, registry=self.registry)
                        for key, (name, text) in _TOTALS.items()}
        self._copied = dict.fromkeys(_TOTALS, 0)
        # live*: a gauge of a worker that has exited stops counting
        self.checkpoints = Gauge("bridge_checkpoints", "Cursor checkpoints held in memory "
                                 "(0 for a shared Redis cache)", registry=self.registry,
                                 multiprocess_mode="livesum")
        self.shadow_queue = Gauge("bridge_shadow_queue", "Shadow comparisons waiting for a "
                                  "worker", registry=self.registry, multiprocess_mode="livesum")
        self.breaker_open = Gauge("bridge_upstream_breaker_open", "1 while an upstream API's "
                                  "circuit breaker is open (or probing), else 0", ["api"],
                                  registry=self.registry, multiprocess_mode="livemax")
        build = Gauge("bridge_build_info", "The running version", ["version", "python"],
                      registry=self.registry, multiprocess_mode="livemax")
        build.labels(__version__, platform.python_version()).set(1)
        if self.shared is not None:
            _forget_dead_workers(self.shared)

    def legacy(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def upstream_answer(self, api: str, outcome: str, seconds: float) -> None:
        self.upstream.labels(api, outcome).inc()
        self.upstream_latency.labels(api).observe(seconds)

    def copy_figures(self) -> None:
        """Copy the owners' figures (cache, coalescing, queue, breakers) into the metrics."""
        figures = self._read()
        for key, counter in self._totals.items():
            grown = figures[key] - self._copied[key]
            if grown > 0:
                counter.inc(grown)
                self._copied[key] = figures[key]
        self.checkpoints.set(figures["size"])
        self.shadow_queue.set(figures["shadow_queue"])
        for api, state in figures.get("breakers", {}).items():
            self.breaker_open.labels(api).set(0.0 if state == "closed" else 1.0)

    async def run(self, every: float = 1.0) -> None:
        """With shared metrics, keep this worker's figures at most `every` seconds old."""
        while True:
            await asyncio.sleep(every)
            self.copy_figures()

    def exposition(self) -> bytes:
        self.copy_figures()
        if self.shared is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, self.shared)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
