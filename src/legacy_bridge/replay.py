"""`legacy-bridge compare replay`: a cut-over gate from real traffic.

Recorded legacy calls (a HAR file, or JSON lines of `{method, path, query,
status, body}` as an access-log export gives) are sent to the proxy, and each
answer is compared with the recorded one (or with the old API's live answer)
under the same rules as shadow mode: records by identity and value, Data API
rows as multisets of values, course-progress records by user and lesson.
Writes are never replayed (they would be applied again): they are counted as
skipped. The recording's own credentials are never sent, printed or stored;
each side gets the token the operator gives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.routing import compile_path

from legacy_bridge.crawl import Side
from legacy_bridge.mapping import Route
from legacy_bridge.progresstable import ProgressTable
from legacy_bridge.shadow import Reply, diff_answers, diff_record_lists, diff_sql_answers
from legacy_bridge.sqlmap import DataApi

Diff = Callable[[Reply, Reply], tuple[bool, list[dict[str, Any]]]]


class RecordingError(ValueError):
    """The recording cannot be read (not HAR, not JSON lines, a call without a path)."""


@dataclass(frozen=True)
class Call:
    line: int  # where in the recording (entry number or line), for the report
    method: str
    target: str  # path and query
    body: bytes | None
    status: int | None  # what the old API answered, when recorded
    answer: bytes | None


@dataclass
class RouteReplay:
    route: str
    calls: int = 0
    agree: int = 0
    fields: dict[str, int] = field(default_factory=dict)  # path -> calls differing on it
    examples: list[dict[str, Any]] = field(default_factory=list)  # the first differences


@dataclass
class Replay:
    routes: dict[str, RouteReplay] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # why -> calls

    @property
    def agrees(self) -> bool:
        return all(r.agree == r.calls for r in self.routes.values())


def _har(data: dict[str, Any]) -> Iterator[Call]:
    for n, entry in enumerate(data["log"]["entries"], 1):
        request, response = entry["request"], entry.get("response") or {}
        parts = urlsplit(request["url"])
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        text = (request.get("postData") or {}).get("text")
        answer = (response.get("content") or {}).get("text")
        yield Call(n, request["method"].upper(), target,
                   text.encode() if text is not None else None, response.get("status"),
                   answer.encode() if answer is not None else None)


def _lines(text: str) -> Iterator[Call]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            path = row["path"]
        except (ValueError, KeyError, TypeError):
            raise RecordingError(f"line {n}: not a JSON object with a path") from None
        query = row.get("query") or ""
        if isinstance(query, dict):
            query = urlencode(query, doseq=True)
        body = row.get("body")
        yield Call(n, str(row.get("method", "GET")).upper(), path + (f"?{query}" if query else ""),
                   row["request_body"].encode() if isinstance(row.get("request_body"), str)
                   else None, row.get("status"),
                   None if body is None else (body if isinstance(body, str)
                                              else json.dumps(body)).encode())


def read_recording(path: Path) -> list[Call]:
    """The calls of a HAR file or of JSON lines."""
    text = path.read_text()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    try:
        if isinstance(data, dict) and "log" in data:
            return list(_har(data))
        return list(_lines(text))
    except (KeyError, TypeError, AttributeError) as exc:
        raise RecordingError(f"{path}: not a HAR file ({type(exc).__name__})") from None


class Router:
    """Which table a recorded call belongs to, and how its answers compare."""

    def __init__(self, routes: list[Route], data_api: DataApi | None,
                 progress: ProgressTable | None, keep_pii: bool) -> None:
        self.keep_pii = keep_pii
        self._paths: list[tuple[re.Pattern[str], str, Diff, tuple[str, ...]]] = []
        for route in routes:
            self._paths.append((compile_path(route.path)[0], route.name,
                                partial(diff_answers, route, keep_pii=keep_pii), ("GET",)))
        if data_api is not None:
            self._paths.append((compile_path(data_api.path)[0], "data-api",
                                partial(diff_sql_answers, keep_pii=keep_pii), ("POST",)))
        for p in progress.routes if progress is not None else ():
            assert progress is not None
            self._paths.append((compile_path(p.path)[0], p.name, partial(
                diff_record_lists, p.name, progress.compare, keep_pii=keep_pii), ("GET",)))

    def match(self, call: Call) -> tuple[str, Diff] | str:
        """(route, diff), or why the call is not replayed."""
        path = urlsplit(call.target).path
        for pattern, name, diff, reads in self._paths:
            if pattern.fullmatch(path):
                return (name, diff) if call.method in reads else "a write (never replayed)"
        return "not a legacy route of the tables"


def replay(calls: list[Call], router: Router, bridge: Side, legacy: Side | None = None,
           timeout: float = 60.0) -> Replay:
    """Each call to the proxy, compared with the recorded answer or the old API's."""
    result = Replay()
    with httpx.Client(timeout=timeout) as client:
        for call in calls:
            found = router.match(call)
            if isinstance(found, str):
                result.skipped[found] = result.skipped.get(found, 0) + 1
                continue
            if legacy is None and (call.status is None or call.answer is None):
                result.skipped["no recorded answer"] = result.skipped.get(
                    "no recorded answer", 0) + 1
                continue
            name, diff = found
            expected = (_send(client, legacy, call) if legacy is not None
                        else Reply(int(call.status or 0), call.answer or b""))
            agrees, differences = diff(expected, _send(client, bridge, call))
            route = result.routes.setdefault(name, RouteReplay(name))
            route.calls += 1
            route.agree += agrees
            for path in {d["path"] for d in differences}:
                route.fields[path] = route.fields.get(path, 0) + 1
            if differences and len(route.examples) < 20:
                route.examples.append({"call": call.line, "method": call.method,
                                       "path": urlsplit(call.target).path,
                                       "differences": differences[:5]})
    return result


def _send(client: httpx.Client, side: Side, call: Call) -> Reply:
    headers = {"Authorization": f"Bearer {side.token}"}
    if call.body is not None:
        headers["Content-Type"] = "application/json"
    response = client.request(call.method, side.base_url.rstrip("/") + call.target,
                              content=call.body, headers=headers)
    return Reply(response.status_code, response.content)


def report(result: Replay) -> str:
    lines = []
    for r in result.routes.values():
        lines.append(f"{r.route}: {'agree' if r.agree == r.calls else 'DIFFER'} - "
                     f"{r.agree} of {r.calls} calls agree")
        lines += [f"  {path:<34} {count:>6} calls differ"
                  for path, count in sorted(r.fields.items(), key=lambda kv: -kv[1])]
        for example in r.examples[:5]:
            first = example["differences"][0]
            lines.append(f"  call {example['call']} {example['method']} {example['path']}: "
                         f"{first['path']} legacy {first.get('legacy')!r} != "
                         f"bridge {first.get('bridge')!r}")
    lines += [f"skipped: {count} ({why})" for why, count in result.skipped.items()]
    return "\n".join(lines) or "no calls replayed"


def as_json(result: Replay) -> dict[str, Any]:
    return {"agrees": result.agrees, "skipped": result.skipped,
            "routes": [r.__dict__ for r in result.routes.values()]}
