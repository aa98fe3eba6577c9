"""Trace context: a client's traceparent continues upstream; spans exported over OTLP."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge import tracing
from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.errors import ConfigError

USERS = f"/api/v2/plans/{DEMO_PLAN_ID}/users?per_page=2"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


async def test_a_clients_traceparent_reaches_the_upstream(
        proxy: httpx.AsyncClient, emulator_app: Starlette) -> None:
    answer = await proxy.get(USERS, headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}",
                                             "traceparent": TRACEPARENT})
    assert answer.status_code == 200
    sent = [r["traceparent"] for r in emulator_app.state.controls.log]
    assert sent and all(t is not None and t.split("-")[1] == TRACE for t in sent)


async def test_without_a_trace_nothing_is_added(
        proxy: httpx.AsyncClient, emulator_app: Starlette) -> None:
    await proxy.get(USERS, headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
    assert [r["traceparent"] for r in emulator_app.state.controls.log] == [None]


class Collector:
    """An OTLP/HTTP receiver: counts the trace exports it is sent."""

    def __init__(self) -> None:
        self.exports: list[int] = []  # body sizes of POST /v1/traces

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/v1/traces":
            self.exports.append(len(body))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": b""})


def test_spans_are_exported_when_an_otlp_endpoint_is_set(
        serve_http: Callable[[Any], str], emulator_app: Starlette, tokens_file: Path,
        tmp_path: Path) -> None:
    """In a process of its own: the tracer provider is set once per process."""
    collector = Collector()
    endpoint = serve_http(collector)
    upstream = serve_http(emulator_app)
    script = textwrap.dedent(f"""
        import asyncio, httpx
        from pydantic import SecretStr
        from opentelemetry import trace
        from legacy_bridge.app import create_app
        from legacy_bridge.settings import Settings
        app = create_app(Settings(upstream_url={upstream!r},
            upstream_api_key=SecretStr("demo-company-key"), tokens_file={str(tokens_file)!r},
            store_url="sqlite:///{tmp_path}/s.sqlite3"))
        async def main():
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
                auth = {{"Authorization": "Bearer {DEMO_COMPANY_TOKEN}"}}
                r = await c.get({USERS!r}, headers=auth)
                assert r.status_code == 200, r.text
        asyncio.run(main())
        trace.get_tracer_provider().force_flush()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, env={**os.environ,
                                             "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    assert result.returncode == 0, result.stderr
    assert collector.exports and max(collector.exports) > 100  # request and upstream spans
    log = emulator_app.state.controls.log
    assert log and log[-1]["traceparent"] is not None  # a trace started by the proxy


def test_an_otlp_endpoint_without_the_exporter_names_the_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter",
                        None)
    monkeypatch.setattr(tracing, "_configured", False)
    with pytest.raises(ConfigError, match=r"pip install 'legacy-bridge\[otlp\]'"):
        tracing.setup()
