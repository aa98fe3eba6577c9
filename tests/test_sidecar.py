"""Running as a sidecar: graceful shutdown and the container health check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import MAPPINGS, free_port

ROOT = Path(__file__).resolve().parent.parent
# what the image's HEALTHCHECK runs, with this interpreter
HEALTHCHECK = [sys.executable, "-m", "legacy_bridge.healthcheck"]


def test_sigterm_lets_in_flight_requests_finish_then_exits(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str], tokens_file: Path,
        tmp_path: Path) -> None:
    upstream = serve_http(emulator_app)
    httpx.post(f"{upstream}/_emulator/latency", json={"ms": 800})
    port = free_port()
    env = {**os.environ, "BRIDGE_UPSTREAM_URL": upstream, "BRIDGE_UPSTREAM_API_KEY": DEMO_API_KEY,
           "BRIDGE_TOKENS_FILE": str(tokens_file), "BRIDGE_MAPPINGS_DIR": str(MAPPINGS),
           "BRIDGE_PORT": str(port), "BRIDGE_STORE_URL": f"sqlite:///{tmp_path}/s.sqlite3",
           "BRIDGE_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "legacy_bridge", "serve"], env=env)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(HEALTHCHECK, env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        answers: list[httpx.Response] = []
        url = f"http://127.0.0.1:{port}/api/v2/plans/{DEMO_PLAN_ID}/users"
        request = threading.Thread(target=lambda: answers.append(httpx.get(
            url, headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}, timeout=10)))
        request.start()
        while not httpx.get(f"{upstream}/_emulator/counts").json():  # reached the upstream
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        request.join(timeout=10)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert answers[0].status_code == 200
    assert len(answers[0].json()["results"]) == 50


def test_healthcheck_fails_when_nothing_listens() -> None:
    env = {**os.environ, "BRIDGE_PORT": str(free_port())}
    for command in (HEALTHCHECK, [sys.executable, "-m", "legacy_bridge", "healthcheck"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        assert result.returncode == 1
        assert "not healthy: " in result.stderr


def test_the_image_healthcheck_is_the_standard_library_probe() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "legacy_bridge.healthcheck"]' in dockerfile


def test_healthcheck_imports_neither_the_cli_nor_the_app(
        serve_http: Callable[[Starlette], str], make_proxy: Callable[..., Starlette]) -> None:
    port = serve_http(make_proxy()).rsplit(":", 1)[1]
    result = subprocess.run([*HEALTHCHECK[:1], "-X", "importtime", *HEALTHCHECK[1:]],
                            env={**os.environ, "BRIDGE_PORT": port}, capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stdout == "healthy\n"
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "legacy_bridge" in imported  # the package, then the probe runs as __main__
    assert not {"click", "legacy_bridge.cli", "legacy_bridge.app", "starlette", "httpx",
                "pydantic"} & imported
