"""The image is really built and run: podman builds the Dockerfile on a Debian base
made with debootstrap, and the container serves a legacy route against the emulator;
the sidecar manifest runs as a pod with `podman kube play`, a curl client beside the proxy.

Needs root, podman and debootstrap (.ci/run installs them); skipped elsewhere
unless CI is set, where a missing tool fails the run. The base image and the
podman storage are kept in /tmp/legacy-bridge-podman between local runs.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import TOKENS, free_port, token_table

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/legacy-bridge-podman")
BASE = "localhost/base:bookworm-curl"  # curl: the pod's client, and httpGet probes
IMAGE = "localhost/legacy-bridge:test"
CA = "/etc/ssl/certs/ca-certificates.crt"
SIDECAR_MANIFEST = ROOT / "deploy/kubernetes/legacy-client-with-bridge.yaml"


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
        if not (rootfs / "usr/bin/curl").exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            subprocess.run(["debootstrap", "--variant=minbase",
                            "--include=python3,python3-venv,ca-certificates,curl", "bookworm",
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



def _podman_secret(env: dict[str, str], name: str, values: dict[str, str],
                   folder: Path) -> None:
    """A Secret in podman's store, as podman 4.3's kube play mounts it: a Kubernetes
    Secret whose `data` values it writes to the files as they are (not base64-decoded)."""
    subprocess.run(["podman", "secret", "rm", name], env=env, capture_output=True)
    path = folder / f"{name}.secret.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": name}, "data": values}))
    _podman(env, "secret", "create", name, str(path))
    path.unlink()


def _as_podman_plays_it(deployment: dict[str, Any], upstream: str, port: int,
                        client_command: list[str]) -> dict[str, Any]:
    """The manifest's Deployment with what podman 4.3 cannot do, or this host cannot give,
    changed, and nothing else: the native sidecar becomes an ordinary container (podman
    runs init containers to completion), env read from a Secret becomes a value (podman
    decodes such a secret differently from one mounted as files), the pod shares the
    host's network (the emulator is on loopback) on a free port, and the images are local.
    """
    pod = copy.deepcopy(deployment)
    pod["spec"]["replicas"] = 1
    spec = pod["spec"]["template"]["spec"]
    (proxy,) = spec.pop("initContainers")
    assert proxy["restartPolicy"] == "Always"  # a native sidecar in the manifest
    del proxy["restartPolicy"]
    spec["hostNetwork"] = True
    proxy["image"] = IMAGE
    for entry in proxy["env"]:
        if entry["name"] == "BRIDGE_UPSTREAM_URL":
            entry["value"] = upstream
        if entry["name"] == "BRIDGE_PORT":
            entry["value"] = str(port)
    del proxy["ports"]  # the host's network: nothing to map
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        proxy[probe]["httpGet"]["port"] = port
    (client,) = spec["containers"]
    client.update(image=BASE, command=client_command)
    client["env"] = [{"name": "PROGRESS_API_BASE_URL", "value": f"http://127.0.0.1:{port}"}]
    client["volumeMounts"] = [{"name": "out", "mountPath": "/out"}]
    spec["volumes"].append({"name": "out", "hostPath": {"path": "/tmp/legacy-bridge-pod-out",
                                                        "type": "DirectoryOrCreate"}})
    spec["containers"] = [proxy, client]
    return pod


def test_the_sidecar_manifest_runs_as_a_pod_with_a_curl_client_beside_the_proxy(
        podman: dict[str, str], image: str, emulator_app: Starlette,
        serve_http: Callable[[Starlette], str], redis_server: str, postgres_server: str,
        tmp_path: Path) -> None:
    upstream = serve_http(emulator_app)
    port = free_port()
    out = Path("/tmp/legacy-bridge-pod-out")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the client runs as 10001, as the manifest says
    route = f"/api/v2/plans/{DEMO_PLAN_ID}/progress?per_page=7&page=2"
    client = ["/bin/sh", "-c",
              "for i in $(seq 1 240); do /usr/bin/curl -sf -o /out/answer.json -H "
              f"'Authorization: Bearer {DEMO_PLAN_TOKEN}' \"$PROGRESS_API_BASE_URL{route}\" "
              "&& exit 0; sleep 0.5; done; exit 1"]
    manifest = [d for d in yaml.safe_load_all(SIDECAR_MANIFEST.read_text()) if d]
    (deployment,) = [d for d in manifest if d["kind"] == "Deployment"]
    pod = _as_podman_plays_it(deployment, upstream, port, client)
    for entry in pod["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "valueFrom" in entry:
            key = entry.pop("valueFrom")["secretKeyRef"]["key"]
            entry["value"] = {"store-url": postgres_server, "redis-url": redis_server}[key]
    subprocess.run(["podman", "volume", "prune", "-f"], env=podman, capture_output=True)
    _podman_secret(podman, "legacy-bridge", {"api-key": DEMO_API_KEY}, tmp_path)
    config = tmp_path / "tokens-configmap.yaml"
    config.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "legacy-bridge-tokens"},
                                      "data": {"tokens.toml": token_table(TOKENS)}}))
    played = tmp_path / "pod.yaml"
    played.write_text(yaml.safe_dump(pod))
    _podman(podman, "kube", "play", "--configmap", str(config), str(played))
    name = f"{deployment['metadata']['name']}-pod-0"  # kube play's name for the pod
    try:
        deadline = time.monotonic() + 120
        while not (out / "answer.json").exists():
            assert time.monotonic() < deadline, _podman(podman, "pod", "logs", name)
            time.sleep(0.5)
        time.sleep(0.2)  # curl writes the file as it reads the body
        theirs = httpx.get(upstream + route,
                           headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
        assert (out / "answer.json").read_bytes() == theirs.content
        proxy = f"{name}-legacy-bridge"
        assert _podman(podman, "exec", proxy, "id", "-u").strip() == "10001"
        denied = subprocess.run(["podman", "exec", proxy, "touch", "/app/x"], env=podman,
                                capture_output=True, text=True)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr
        logs = _podman(podman, "logs", proxy)
        assert '"route":"/api/v2/plans/{planId}/progress"' in logs
        assert DEMO_PLAN_TOKEN not in logs and DEMO_API_KEY not in logs
    finally:
        subprocess.run(["podman", "kube", "down", str(played)], env=podman,
                       capture_output=True)
        subprocess.run(["podman", "secret", "rm", "legacy-bridge"], env=podman,
                       capture_output=True)
        subprocess.run(["podman", "volume", "prune", "-f"], env=podman, capture_output=True)
