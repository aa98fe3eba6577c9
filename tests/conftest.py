"""Shared fixtures: a generated dataset, the emulator over ASGI, and over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from legacy_bridge.emulator.app import EmulatorConfig, create_emulator_app
from legacy_bridge.emulator.dataset import ensure
from support import SPEC


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure(SPEC, tmp_path_factory.mktemp("data"))


@pytest.fixture
def make_emulator(dataset: Path) -> Callable[..., Starlette]:
    def make(**overrides: Any) -> Starlette:
        return create_emulator_app(EmulatorConfig(dataset, **{"controls": True, **overrides}))

    return make


@pytest.fixture
def emulator_app(make_emulator: Callable[..., Starlette]) -> Starlette:
    return make_emulator()


@pytest.fixture
async def emulator(emulator_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=emulator_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://upstream") as client:
        yield client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def serve_http() -> Iterator[Callable[[Starlette], str]]:
    """Serve an ASGI app with a real uvicorn on loopback; returns its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Starlette) -> str:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="critical", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
