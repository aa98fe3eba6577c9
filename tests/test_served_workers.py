"""`legacy-bridge serve` as a real process with two workers: a scrape answered by
either worker counts both, and every line the process writes is JSON."""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import MAPPINGS, free_port

USERS = f"/api/v2/plans/{DEMO_PLAN_ID}/users?per_page=5"
ROUTE = "/api/v2/plans/{planId}/users"


@dataclass
class Served:
    base: str
    metrics_dir: Path
    stdout: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def two_workers(emulator_app: Starlette, serve_http: Callable[[Starlette], str],
                tokens_file: Path, tmp_path: Path) -> Iterator[Served]:
    upstream = serve_http(emulator_app)
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    env = {**os.environ, "BRIDGE_UPSTREAM_URL": upstream, "BRIDGE_UPSTREAM_API_KEY": DEMO_API_KEY,
           "BRIDGE_TOKENS_FILE": str(tokens_file), "BRIDGE_MAPPINGS_DIR": str(MAPPINGS),
           "BRIDGE_PORT": str(port), "BRIDGE_STORE_URL": f"sqlite:///{tmp_path}/s.sqlite3",
           "BRIDGE_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    stdout = tmp_path / "stdout"
    with stdout.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "legacy_bridge", "serve"], env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", metrics_dir, stdout, process)
    try:
        deadline = time.monotonic() + 60
        while len(glob.glob(f"{metrics_dir}/counter_*.db")) < 2:  # both workers are up
            assert time.monotonic() < deadline and process.poll() is None, stdout.read_text()
            time.sleep(0.1)
        while True:
            try:
                httpx.get(f"{served.base}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        yield served
    finally:
        served.stop()


def _answered_per_worker(metrics_dir: Path) -> dict[str, float]:
    """Each worker's own count of answered /users requests, read from its own file."""
    counts = {}
    for path in glob.glob(f"{metrics_dir}/counter_*.db"):
        pid = re.findall(r"\d+", Path(path).name)[0]
        counts[pid] = sum(sample.value for metric in MultiProcessCollector.merge([path])
                          for sample in metric.samples
                          if sample.name == "bridge_legacy_requests_total"
                          and sample.labels["route"] == ROUTE)
    return counts


def _scraped(base: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base}/metrics").text  # a new connection: either worker may answer
    total = 0.0
    for line in text.splitlines():
        named = line.split("{")[0].split(" ")[0] == name
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_scrape_of_either_worker_counts_the_requests_both_answered(
        two_workers: Served) -> None:
    sent = 0
    # new connections land on either worker; go on until both have answered some
    while sum(1 for n in _answered_per_worker(two_workers.metrics_dir).values() if n) < 2:
        assert sent < 400, "one worker took every connection"
        for _ in range(10):
            response = httpx.get(two_workers.base + USERS,
                                 headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
            assert response.status_code == 200
        sent += 10
    scrapes = {_scraped(two_workers.base, "bridge_legacy_requests_total", route=ROUTE,
                        status="200") for _ in range(12)}
    assert scrapes == {float(sent)}


def test_figures_each_worker_keeps_are_added_up_within_a_second(two_workers: Served) -> None:
    # each worker remembers checkpoints in its own memory; the gauge is their sum
    for page in (2, 3, 4, 5, 6, 7, 8, 9):
        httpx.get(f"{two_workers.base}{USERS}&page={page}",
                  headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
    time.sleep(1.5)
    held = {_scraped(two_workers.base, "bridge_checkpoints") for _ in range(8)}
    assert len(held) == 1 and held.pop() > 0


def test_every_line_the_server_writes_is_json_uvicorns_included(two_workers: Served) -> None:
    httpx.get(two_workers.base + USERS, headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
    two_workers.stop()
    lines = two_workers.stdout.read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]  # raises on any line that is not JSON
    loggers = {record.get("logger") for record in records}
    assert {"uvicorn.error"} <= loggers
    events = " ".join(str(record["event"]) for record in records)
    assert "Uvicorn running on" in events and "Finished server process" in events
    assert any(record["event"] == "request" and record["route"] == ROUTE for record in records)
    assert DEMO_PLAN_TOKEN not in two_workers.stdout.read_text()
