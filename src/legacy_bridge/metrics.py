"""Prometheus metrics at `/metrics`, with prometheus-client.

Labels are route templates, API names, statuses and outcomes: never a token,
a plan id or any other request value, so cardinality stays fixed and nothing
secret can leak into a time series. Cache and coalescing figures are read
from their owners at scrape time rather than counted twice.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from legacy_bridge import __version__

BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Read(Collector):
    """Figures kept by other parts (cache, upstream), read when scraped."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        figures = self._read()
        yield CounterMetricFamily("bridge_checkpoint_hits", "Pages that started from a "
                                  "remembered cursor", value=figures["hits"])
        yield CounterMetricFamily("bridge_checkpoint_misses", "Pages past offset 0 that found "
                                  "no remembered cursor", value=figures["misses"])
        yield GaugeMetricFamily("bridge_checkpoints", "Cursor checkpoints held in this "
                                "process (0 for a shared Redis cache)", value=figures["size"])
        yield CounterMetricFamily("bridge_checkpoint_cache_failures", "Checkpoint cache "
                                  "operations that failed (Redis down)",
                                  value=figures["failures"])
        yield CounterMetricFamily("bridge_upstream_coalesced", "Upstream requests answered by "
                                  "an identical one already in flight",
                                  value=figures["coalesced"])
        yield GaugeMetricFamily("bridge_shadow_queue", "Shadow comparisons waiting for a "
                                "worker", value=figures["shadow_queue"])
        breakers = GaugeMetricFamily("bridge_upstream_breaker_open", "1 while an upstream "
                                     "API's circuit breaker is open (or probing), else 0",
                                     labels=["api"])
        for api, state in sorted(figures.get("breakers", {}).items()):
            breakers.add_metric([api], 0.0 if state == "closed" else 1.0)
        yield breakers
        build = GaugeMetricFamily("bridge_build_info", "The running version",
                                  labels=["version", "python"])
        build.add_metric([__version__, platform.python_version()], 1.0)
        yield build


class Metrics:
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
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
        self.registry.register(_Read(read))

    def legacy(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def upstream_answer(self, api: str, outcome: str, seconds: float) -> None:
        self.upstream.labels(api, outcome).inc()
        self.upstream_latency.labels(api).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
