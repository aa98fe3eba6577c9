"""The image is really built and run: podman builds the Dockerfile on a Debian base
made with debootstrap, and the container serves a legacy route against the emulator.

Needs root, podman and debootstrap (.ci/run installs them); skipped elsewhere
unless CI is set, where a missing tool fails the run. The base image and the
podman storage are kept in /tmp/legacy-bridge-podman between local runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import TOKENS, token_table

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/legacy-bridge-podman")
BASE = "localhost/base:bookworm"
IMAGE = "localhost/legacy-bridge:test"
CA = "/etc/ssl/certs/ca-certificates.crt"


def _mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        found = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.M)
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def _podman(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    result = subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"podman {args[0]}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="session")
def podman() -> Iterator[dict[str, str]]:
    missing = [t for t in ("podman", "debootstrap", "runc") if shutil.which(t) is None]
    if missing or os.geteuid() != 0:
        why = f"needs root and {', '.join(missing) or 'podman'}"
        if os.environ.get("CI"):
            pytest.fail(f"container test {why} (.ci/run installs them)")
        pytest.skip(f"container test {why}")
    WORK.mkdir(exist_ok=True)
    (WORK / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    (WORK / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\nrunroot = "{WORK}/run"\ngraphroot = "{WORK}/storage"\n')
    env = {**os.environ, "CONTAINERS_CONF": str(WORK / "containers.conf"),
           "CONTAINERS_STORAGE_CONF": str(WORK / "storage.conf")}
    if subprocess.run(["podman", "image", "exists", BASE], env=env).returncode != 0:
        rootfs = WORK / "rootfs"
        if not (rootfs / "usr/bin/python3").exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            subprocess.run(["debootstrap", "--variant=minbase",
                            "--include=python3,python3-venv,ca-certificates", "bookworm",
                            str(rootfs), _mirror()], check=True, capture_output=True,
                           timeout=900)
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."],
                              stdout=subprocess.PIPE) as tar:
            subprocess.run(["podman", "import", "-", BASE], env=env, stdin=tar.stdout,
                           check=True, capture_output=True, timeout=600)
    yield env


@pytest.fixture(scope="session")
def image(podman: dict[str, str]) -> str:
    _podman(podman, "build", "--format", "docker", "--network=host",
            "-v", f"{CA}:{CA}:ro", "--build-arg", f"BASE_IMAGE={BASE}",
            "--build-arg", f"PIP_CERT={CA}", "-t", IMAGE, str(ROOT), timeout=1200)
    size = int(_podman(podman, "image", "inspect", IMAGE, "--format", "{{.Size}}"))
    print(f"\nimage {IMAGE}: {size / 1e6:.0f} MB on a debootstrap bookworm base")
    return IMAGE


def test_image_serves_ready_and_a_legacy_route(
        podman: dict[str, str], image: str, emulator_app: Starlette,
        serve_http: Callable[[Starlette], str], tmp_path: Path) -> None:
    upstream = serve_http(emulator_app)
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(token_table(TOKENS))
    tokens.chmod(0o644)
    port = int(upstream.rsplit(":", 1)[1]) + 1
    name = f"legacy-bridge-test-{os.getpid()}"
    _podman(podman, "run", "-d", "--name", name, "--network=host",
            "-e", f"BRIDGE_PORT={port}", "-e", f"BRIDGE_UPSTREAM_URL={upstream}",
            "-e", f"BRIDGE_UPSTREAM_API_KEY={DEMO_API_KEY}",
            "-e", "BRIDGE_TOKENS_FILE=/etc/legacy-bridge/tokens.toml",
            "-v", f"{tokens}:/etc/legacy-bridge/tokens.toml:ro", image)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, _podman(podman, "logs", name)
                time.sleep(0.5)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        route = f"/api/v2/plans/{DEMO_PLAN_ID}/progress?per_page=7&page=2"
        ours = httpx.get(base + route, headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
        theirs = httpx.get(upstream + route,
                           headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
        assert ours.status_code == 200 and ours.content == theirs.content
        assert _podman(podman, "healthcheck", "run", name).strip() in ("", "healthy")
        user = _podman(podman, "exec", name, "id", "-u").strip()
        assert user == "10001"  # not root
    finally:
        subprocess.run(["podman", "rm", "-f", name], env=podman, capture_output=True)

