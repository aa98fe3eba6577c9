"""Shared fixtures: a generated dataset, the emulator over ASGI, and over real HTTP."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.emulator.app import DEMO_API_KEY, EmulatorConfig, create_emulator_app
from legacy_bridge.emulator.dataset import ensure
from legacy_bridge.settings import Settings
from support import (
    ADMIN_TOKEN,
    COURSE_USERS,
    LEARNERS,
    MAPPINGS,
    SPEC,
    TOKENS,
    free_port,
    learners_table,
    token_table,
)


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


@pytest.fixture
def serve_http() -> Iterator[Callable[[Starlette], str]]:
    """Serve an ASGI app with a real uvicorn on loopback; returns its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Starlette) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="critical", lifespan="on"))
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


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.toml"
    path.write_text(token_table(TOKENS, COURSE_USERS))
    return path


@pytest.fixture
def learners_file(tmp_path: Path) -> Path:
    path = tmp_path / "learners.toml"
    path.write_text(learners_table(LEARNERS))
    return path


@pytest.fixture
def make_proxy(emulator_app: Starlette, tokens_file: Path, learners_file: Path,
               tmp_path: Path) -> Callable[..., Starlette]:
    """A proxy app whose upstream is the emulator, over ASGI (or real HTTP at upstream_url,
    or the given transport)."""

    def make(over_http: bool = False, clock: Callable[[], float] = time.monotonic,
             transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> Starlette:
        settings = Settings(**{
            "upstream_url": "http://upstream", "upstream_api_key": SecretStr(DEMO_API_KEY),
            "tokens_file": tokens_file, "learners_file": learners_file,
            "mappings_dir": MAPPINGS,
            "store_url": f"sqlite:///{tmp_path}/store.sqlite3",
            "admin_token": SecretStr(ADMIN_TOKEN), **overrides})
        emulated = None if over_http or transport else httpx.ASGITransport(app=emulator_app)
        return create_app(settings, transport=transport or emulated, legacy_transport=emulated,
                          clock=clock)

    return make


@pytest.fixture
async def proxy(make_proxy: Callable[..., Starlette]) -> AsyncIterator[httpx.AsyncClient]:
    app = make_proxy()
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as client:
        yield client


@pytest.fixture
def upstream_counts(emulator_app: Starlette) -> Callable[[], dict[str, int]]:
    """Requests the emulator has received so far, per API."""
    return lambda: dict(emulator_app.state.controls.counts)


# -- log secrecy over the whole run -----------------------------------------------

class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.args!r}")


_COLLECTED = _Collect()


def pytest_configure(config: pytest.Config) -> None:
    for name in ("legacy_bridge", "uvicorn", "httpx"):
        logger = logging.getLogger(name)
        logger.addHandler(_COLLECTED)
        logger.setLevel(logging.DEBUG if name == "legacy_bridge" else logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every log line the whole run produced is searched for tokens and keys."""
    secrets = [*TOKENS, *COURSE_USERS, *LEARNERS.values(), DEMO_API_KEY, ADMIN_TOKEN,
               "wrong-key", "not-a-known-token"]
    leaks = [line for line in _COLLECTED.lines if any(s in line for s in secrets)]
    if leaks:
        print(f"\nlog secrecy: {len(leaks)} log line(s) carry a token or key, e.g.:\n{leaks[0]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif _COLLECTED.lines:
        print(f"\nlog secrecy: {len(_COLLECTED.lines)} log lines checked, no token or key")


# -- a real redis-server -----------------------------------------------------------

@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port, stopped by PID; its redis:// URL.

    .ci/run installs redis-server; elsewhere the Redis tests skip without it.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


# -- a real PostgreSQL server ---------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server on a free loopback port in a temp data directory; its URL.

    .ci/run installs postgresql; elsewhere the PostgreSQL tests skip without it.
    As root, the server runs as the `postgres` user (it refuses to run as root).
    """
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    initdb = shutil.which("initdb") or (str(bins[-1]) if bins else None)
    if initdb is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs it)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pg_ctl = str(Path(initdb).resolve().with_name("pg_ctl"))
    # not under pytest's private temp folder: the postgres user must reach it
    base = Path(tempfile.mkdtemp(prefix="legacy-bridge-postgres-"))
    data = base / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        base.chmod(0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    port = free_port()
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
                   capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
