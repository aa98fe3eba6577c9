"""Side-by-side comparison: the shadow queue, the answer diffs, golden cases.

In `shadow` mode one side answers the client and the other is asked in the
background: the job goes into a bounded queue, sampled, and a full queue
drops the comparison (counted), so the client's latency never includes the
second side. The worker diffs the two answers under the route's noise rules
and stores the differences; a v2 mismatch also becomes a golden test case
from the translation's recorded upstream exchanges (its `Tape`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry.trace import Link

from legacy_bridge import logs, tracing
from legacy_bridge.compare import (
    ABSENT,
    compare_records,
    field_comparisons,
    leaves,
    redact,
    row_key,
)
from legacy_bridge.mapping import RawCompare, Route
from legacy_bridge.metrics import Metrics
from legacy_bridge.query import Document
from legacy_bridge.store import ComparisonRow, Store

log = logs.get("legacy_bridge.shadow")


@dataclass
class Tape:
    """What one translation sent upstream and got back, for golden-case export."""

    exchanges: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: tuple[int, str | None] = (0, None)  # where the page read started

    def record(self, endpoint: str, document: Document, variables: dict[str, Any],
               data: dict[str, Any]) -> None:
        self.exchanges.append({"endpoint": endpoint, "operationName": document.operation_name,
                               "variables": variables, "reply": {"data": data}})


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    tape: Tape | None = None  # the translation's upstream exchanges, when recorded


def _status_difference(legacy: Reply, bridge: Reply) -> list[dict[str, Any]]:
    if legacy.status == bridge.status:
        return []
    return [{"record": "", "path": "(status)", "legacy": legacy.status,
             "bridge": bridge.status}]


def diff_answers(route: Route, legacy: Reply, bridge: Reply,
                 keep_pii: bool = False) -> tuple[bool, list[dict[str, Any]]]:
    """Differences between two answers to one request: status, envelope, records."""
    differences = _status_difference(legacy, bridge)
    try:
        theirs, ours = orjson.loads(legacy.body), orjson.loads(bridge.body)
    except orjson.JSONDecodeError:
        same_bytes = legacy.body == bridge.body
        if not same_bytes:
            differences.append({"record": "", "path": "(body)", "legacy": "not JSON",
                                "bridge": "not JSON"})
        return not differences, differences
    items = route.key_of("items")
    if isinstance(theirs, dict) and isinstance(ours, dict) \
            and isinstance(theirs.get(items), list) and isinstance(ours.get(items), list):
        result = compare_records(route.name, theirs.pop(items), ours.pop(items),
                                 route.compare)
        if not keep_pii:
            result = redact(result, route.compare)
        differences += [{"record": k, "path": "(record)", "legacy": "present",
                         "bridge": "absent"} for k in result.legacy_only]
        differences += [{"record": k, "path": "(record)", "legacy": "absent",
                         "bridge": "present"} for k in result.bridge_only]
        differences += [d.__dict__ for d in result.differences]
    for side in (theirs, ours):  # one side answered records, the other did not (an error):
        if isinstance(side, dict) and isinstance(side.get(items), list):  # never store them
            side[items] = f"{len(side[items])} records"
    if isinstance(theirs, dict) and isinstance(ours, dict):  # the envelope
        differences += [{"record": "", "path": path,
                         "legacy": None if left is ABSENT else left,
                         "bridge": None if right is ABSENT else right}
                        for path, found, left, right
                        in field_comparisons(theirs, ours, route.compare)
                        if found == "differs"]
    elif theirs != ours:
        differences.append({"record": "", "path": "(body)", "legacy": _shape(theirs),
                            "bridge": _shape(ours)})
    return not differences, differences


def diff_record_lists(name: str, rules: RawCompare, legacy: Reply, bridge: Reply,
                      keep_pii: bool = False) -> tuple[bool, list[dict[str, Any]]]:
    """Differences between two bare-array answers (course progress): status, then the
    records matched by identity, compared field by field under the table's rules."""
    differences = _status_difference(legacy, bridge)
    try:
        theirs, ours = orjson.loads(legacy.body), orjson.loads(bridge.body)
    except orjson.JSONDecodeError:
        if legacy.body != bridge.body:
            differences.append({"record": "", "path": "(body)", "legacy": "not JSON",
                                "bridge": "not JSON"})
        return not differences, differences
    if isinstance(theirs, list) and isinstance(ours, list):
        result = compare_records(name, theirs, ours, rules)
        if not keep_pii:
            result = redact(result, rules)
        differences += [{"record": k, "path": "(record)", "legacy": "present",
                         "bridge": "absent"} for k in result.legacy_only]
        differences += [{"record": k, "path": "(record)", "legacy": "absent",
                         "bridge": "present"} for k in result.bridge_only]
        differences += [d.__dict__ for d in result.differences]
    elif theirs != ours:  # an error on one side: never store the other side's records
        differences.append({"record": "", "path": "(body)", "legacy": _shape(theirs),
                            "bridge": _shape(ours)})
    return not differences, differences


def _shape(body: Any) -> Any:
    """A body that is not an envelope, as stored: its kind and size, never its values."""
    if isinstance(body, list | dict):
        return f"a JSON {type(body).__name__} of {len(body)}"
    return body if body is None or isinstance(body, bool | int | float) else "a JSON value"


def golden_case(route: Route, request: str, legacy: Reply, bridge: Reply,
                keep_pii: bool) -> str | None:
    """A mismatch as a golden test case (tests/golden/): the legacy answer is the
    expectation, the translation's recorded upstream exchanges the replay. No token
    travels: the case says it is replayed with a company-scope token of the
    replaying suite. Personal values are hashed alike everywhere, so the case
    stays whole."""
    if bridge.tape is None or not bridge.tape.exchanges:
        return None
    expected: Any = orjson.loads(legacy.body) if legacy.body else None
    case: dict[str, Any] = {
        "about": f"exported from a shadow mismatch on /{route.name}",
        "request": {"url": request, "scope": "company"},
        "upstream": bridge.tape.exchanges,
        "response": {"status": legacy.status, "body": expected},
    }
    if bridge.tape.checkpoint[1] is not None:
        offset, after = bridge.tape.checkpoint
        case["checkpoint"] = {"offset": offset, "after": after}
    if not keep_pii:
        values = _personal_values(route, expected, bridge)
        case = _replace(case, {v: "sha256:" + hashlib.sha256(v.encode()).hexdigest()[:16]
                               for v in values})
    return orjson.dumps(case).decode()


def _personal_values(route: Route, expected: Any, bridge: Reply) -> set[str]:
    """Every personal value the case holds, whatever either side answered: the `pii`
    fields of both sides' records, and the GraphQL fields they come from in the
    recorded upstream replies."""
    items = route.key_of("items")
    bodies = [expected]
    with contextlib.suppress(orjson.JSONDecodeError):
        bodies.append(orjson.loads(bridge.body))
    values = {str(v) for body in bodies if isinstance(body, dict)
              for item in body.get(items) or [] if isinstance(item, dict)
              for path, v in leaves(item) if path in route.compare.pii and v}
    sources = {rule.source for rule in route.fields
               if rule.source and ".".join(rule.path) in route.compare.pii}

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in sources and isinstance(inner, str) and inner:
                    values.add(inner)
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    collect(bridge.tape.exchanges if bridge.tape else [])
    return values


def _replace(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, table) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, table) for v in value]
    return table.get(value, value) if isinstance(value, str) else value


def diff_sql_answers(legacy: Reply, bridge: Reply,
                     keep_pii: bool = False) -> tuple[bool, list[dict[str, Any]]]:
    """Differences between two Data API answers: status, columns, rows as a multiset.

    Postgres leaves rows tied under ORDER BY in any order, so order is not compared.
    Unless personal values are kept, a differing row is shown as a hash.
    """
    differences = _status_difference(legacy, bridge)
    try:
        theirs, ours = orjson.loads(legacy.body), orjson.loads(bridge.body)
        columns = (theirs["columns"], ours["columns"])
        rows = (Counter(map(row_key, theirs["rows"])), Counter(map(row_key, ours["rows"])))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        if legacy.body != bridge.body and legacy.status == bridge.status == 200:
            differences.append({"record": "", "path": "(body)", "legacy": "not rows",
                                "bridge": "not rows"})
        return not differences, differences
    if columns[0] != columns[1]:
        differences.append({"record": "", "path": "(columns)", "legacy": columns[0],
                            "bridge": columns[1]})

    def shown(row: bytes) -> str:
        return row.decode() if keep_pii else "sha256:" + hashlib.sha256(row).hexdigest()[:16]

    for side, only in (("legacy", rows[0] - rows[1]), ("bridge", rows[1] - rows[0])):
        other = "bridge" if side == "legacy" else "legacy"
        differences += [{"record": shown(row), "path": "(row)", side: f"present x{n}",
                         other: "absent"} for row, n in only.items()]
    return not differences, differences


@dataclass(frozen=True)
class ShadowJob:
    name: str  # the route's name, for metrics and the store
    request: str  # what was asked (path and query, or a hash of the SQL): never a token
    primary: str  # "legacy" or "graphql"
    answer: Reply
    other: Callable[[], Awaitable[Reply]]
    diff: Callable[[Reply, Reply], tuple[bool, list[dict[str, Any]]]]  # (legacy, bridge)
    golden: Callable[[Reply, Reply], str | None] | None = None  # a mismatch as a test case
    link: Link | None = None  # the request's span, for the comparison's span


class Shadow:
    """The bounded background queue of shadow comparisons and its worker."""

    def __init__(self, store: Store, metrics: Metrics, size: int, sample_rate: float,
                 max_body_bytes: int = 16 * 1024 * 1024) -> None:
        self.store = store
        self.max_body_bytes = max_body_bytes  # an answer held for comparison, at most
        self.metrics = metrics
        self.sample_rate = sample_rate
        self.queue: asyncio.Queue[ShadowJob] = asyncio.Queue(maxsize=max(size, 1))
        self.dropped = 0
        self.done = 0

    def offer(self, job: ShadowJob) -> None:
        """Queue a comparison; a full queue or an answer past the size cap drops it (counted):
        the queue holds at most its size times the cap."""
        if random.random() >= self.sample_rate:
            return
        if len(job.answer.body) > self.max_body_bytes:
            self._drop(job.name)
            return
        if job.link is None:
            job = replace(job, link=tracing.current_link())
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self._drop(job.name)

    def _drop(self, name: str) -> None:
        self.dropped += 1
        self.metrics.shadow_dropped.labels(name).inc()

    async def run(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._compare(job)
            except Exception as exc:  # a failed comparison must not stop the worker
                log.warning("shadow comparison failed", route=job.name,
                            error=type(exc).__name__)
            finally:
                self.queue.task_done()

    async def _compare(self, job: ShadowJob) -> None:
        with tracing.comparison_span(job.name, job.link):
            await self._compare_in_span(job)

    async def _compare_in_span(self, job: ShadowJob) -> None:
        other = await job.other()
        legacy, bridge = ((job.answer, other) if job.primary == "legacy"
                          else (other, job.answer))
        agrees, differences = job.diff(legacy, bridge)
        self.metrics.comparisons.labels(job.name, "agree" if agrees else "differ").inc()
        for path in {d["path"] for d in differences}:
            self.metrics.mismatches.labels(job.name, path).inc()
        golden = None if agrees or job.golden is None else job.golden(legacy, bridge)
        row = ComparisonRow(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                            job.name, job.request, legacy.status, bridge.status,
                            agrees, orjson.dumps(differences[:100]).decode(), golden)
        await self.store.later(self.store.add_comparison, row)
        self.done += 1

    async def drain(self, within: float) -> None:
        """Finish queued comparisons at shutdown, but never wait past `within` seconds."""
        try:
            await asyncio.wait_for(self.queue.join(), within)
        except TimeoutError:
            log.warning("shadow queue not drained at shutdown", left=self.queue.qsize())
