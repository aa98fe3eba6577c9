"""The deploy kit: the Helm chart renders (Helm's own engine) into objects that the
Kubernetes schemas accept, locked down, wired to what they name, and refuses values
that would deploy something broken, naming the key."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from helm_python.errors import HelmError

from legacy_bridge.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "deploy/helm/examples").glob("*.yaml"))
SIDECAR_MANIFEST = ROOT / "deploy/kubernetes/legacy-client-with-bridge.yaml"


def _load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render", ROOT / "deploy/helm/render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render"] = module
    spec.loader.exec_module(module)
    return module


render = _load_render()


def values(name: str, **over: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / f"deploy/helm/examples/{name}.yaml")
                                            .read_text())
    merged: dict[str, Any] = render.merge(loaded, over)
    return merged


def objects(name: str, **over: Any) -> list[dict[str, Any]]:
    rendered: list[dict[str, Any]] = render.render(values(name, **over))
    return rendered


def of_kind(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in found if o["kind"] == kind]


def pod_specs(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["spec"]["template"] for o in found if o["kind"] in ("Deployment", "StatefulSet")]


def proxy_container(found: list[dict[str, Any]]) -> dict[str, Any]:
    for template in pod_specs(found):
        spec = template["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["name"] == "legacy-bridge":
                return dict(container)
    raise AssertionError("no legacy-bridge container")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_renders_into_objects_the_kubernetes_schemas_accept(
        example: Path) -> None:
    found = objects(example.stem)
    assert found
    render.validate(found)  # strict: an unknown or misspelt field fails too


def test_the_sidecar_manifest_is_the_chart_rendered_and_valid() -> None:
    expected = render.manifest([ROOT / "deploy/helm/examples/sidecar.yaml"])
    assert SIDECAR_MANIFEST.read_text() == expected, \
        "stale: python deploy/helm/render.py -f deploy/helm/examples/sidecar.yaml " \
        "--out deploy/kubernetes/legacy-client-with-bridge.yaml"
    render.validate([d for d in yaml.safe_load_all(SIDECAR_MANIFEST.read_text()) if d])


def test_in_sidecar_mode_the_proxy_is_a_native_sidecar_of_the_clients_pod() -> None:
    (pod,) = pod_specs(objects("sidecar"))
    (proxy,) = pod["spec"]["initContainers"]
    assert proxy["name"] == "legacy-bridge" and proxy["restartPolicy"] == "Always"
    assert proxy["startupProbe"]["httpGet"]["path"] == "/healthz"  # the client waits for it
    assert [c["name"] for c in pod["spec"]["containers"]] == ["legacy-client"]
    assert env_of(pod["spec"]["containers"][0])["PROGRESS_API_BASE_URL"] == \
        "http://127.0.0.1:8080"


@pytest.mark.parametrize(("example", "client_seconds", "prestop"),
                         [("sidecar", 15, 0), ("gateway-trial", 0, 5)])
def test_the_grace_period_covers_drain_shadow_drain_flush_and_the_client(
        example: str, client_seconds: int, prestop: int) -> None:
    found = objects(example)
    (pod, *_) = pod_specs(found)
    drain = 20  # BRIDGE_SHUTDOWN_TIMEOUT
    assert env_of(proxy_container(found))["BRIDGE_SHUTDOWN_TIMEOUT"] == str(drain)
    assert pod["spec"]["terminationGracePeriodSeconds"] == \
        client_seconds + prestop + drain + drain // 2 + 10


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_pod_runs_locked_down(example: Path) -> None:
    for template in pod_specs(objects(example.stem)):
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_services_budgets_and_monitors_select_the_pods_that_run_the_proxy(
        example: Path) -> None:
    found = objects(example.stem, podMonitor={"enabled": True})
    proxy_pods = [t["metadata"]["labels"] for t in pod_specs(found)
                  if any(c["name"] == "legacy-bridge" for c in
                         t["spec"].get("initContainers", []) + t["spec"]["containers"])]
    assert len(proxy_pods) == 1
    selectors = [o["spec"]["selector"]["matchLabels"]
                 for o in of_kind(found, "PodDisruptionBudget") + of_kind(found, "PodMonitor")]
    selectors += [o["spec"]["selector"] for o in of_kind(found, "Service")
                  if "redis" not in o["metadata"]["name"]
                  and "postgresql" not in o["metadata"]["name"]]
    assert selectors
    for selector in selectors:
        assert selector.items() <= proxy_pods[0].items()
    (monitor,) = of_kind(found, "PodMonitor")
    ports = {p["name"] for p in proxy_container(found)["ports"]}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports
    assert monitor["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"


def test_with_external_services_no_secret_is_rendered_and_every_one_is_referenced() -> None:
    found = objects("gateway-production")
    assert not of_kind(found, "Secret")
    env = env_of(proxy_container(found))
    assert env["BRIDGE_STORE_URL"] == {"secretKeyRef": {"name": "legacy-bridge",
                                                        "key": "store-url"}}
    assert env["BRIDGE_CURSOR_CACHE"] == env["BRIDGE_RATE_LIMIT_STORAGE"] == \
        {"secretKeyRef": {"name": "legacy-bridge", "key": "redis-url"}}
    assert env["BRIDGE_UPSTREAM_API_KEY_FILE"].startswith("/var/run/secrets/")
    assert "BRIDGE_UPSTREAM_API_KEY" not in env and "BRIDGE_ADMIN_TOKEN" not in env
    assert env["BRIDGE_ADMIN_TOKEN_FILE"].startswith("/var/run/secrets/")
    assert env["BRIDGE_UPSTREAM_CA_FILE"].startswith("/var/run/secrets/")
    assert env["BRIDGE_MODE"] == "shadow" and env["HTTPS_PROXY"].startswith("http://")


def test_the_bundled_store_and_redis_are_what_the_proxy_is_pointed_at() -> None:
    found = objects("gateway-trial")
    env = env_of(proxy_container(found))
    services = {o["metadata"]["name"]: o for o in of_kind(found, "Service")}
    (secret,) = of_kind(found, "Secret")
    assert env["BRIDGE_STORE_URL"]["secretKeyRef"] == {"name": secret["metadata"]["name"],
                                                       "key": "store-url"}
    assert secret["metadata"]["name"] in services  # the URL's host is the Service
    redis_host = env["BRIDGE_CURSOR_CACHE"].split("//")[1].split(":")[0]
    assert redis_host in services
    assert env["BRIDGE_RATE_LIMIT_STORAGE"].startswith(f"redis://{redis_host}:6379/")
    (tokens,) = of_kind(found, "ConfigMap")
    assert 'label = "acme-lms"' in tokens["data"]["tokens.toml"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_setting_an_example_names_is_a_real_setting(example: Path) -> None:
    named = values(example.stem).get("settings", {})
    real = {f"BRIDGE_{name.upper()}" for name in Settings.model_fields}
    assert set(named) <= real


@pytest.mark.parametrize(("example", "over", "says"), [
    ("gateway-trial", {"upstream": {"url": ""}}, "upstream.url: set the GraphQL upstream"),
    ("gateway-trial", {"upstream": {"apiKeySecret": {"name": ""}}},
     "upstream.apiKeySecret.name"),
    ("gateway-trial", {"store": {"bundled": {"enabled": False}}},
     "store: more than one replica needs a shared store"),
    ("gateway-trial", {"redis": {"urlSecret": {"name": "r"}}}, "not both"),
    ("gateway-trial", {"tokens": {"existingSecret": "t"}}, "tokens: set exactly one"),
    ("sidecar", {"sidecar": {"workload": {"containers": []}}},
     "sidecar.workload.containers: give the client's containers"),
    ("sidecar", {"mode": "sidecars"}, "mode"),
    ("gateway-trial", {"gateway": {"replicas": "two"}}, "/gateway/replicas"),
    ("gateway-trial", {"settings": {"MODE": "shadow"}}, "MODE"),
])
def test_values_that_would_deploy_something_broken_fail_naming_the_key(
        example: str, over: dict[str, Any], says: str) -> None:
    with pytest.raises(HelmError, match=re.escape(says)):
        objects(example, **over)


def test_one_gateway_replica_may_keep_its_store_in_the_pod() -> None:
    found = objects("gateway-trial", gateway={"replicas": 1},
                    store={"bundled": {"enabled": False}})
    assert env_of(proxy_container(found))["BRIDGE_STORE_URL"].startswith("sqlite:///")
    assert not of_kind(found, "PodDisruptionBudget")


def test_the_chart_carries_the_alert_rules_and_the_dashboard_unchanged() -> None:
    found = objects("gateway-production", prometheusRule={"enabled": True},
                    grafanaDashboard={"enabled": True})
    (rule,) = of_kind(found, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((ROOT / "deploy/observability/alerts.yaml")
                                          .read_text())
    (dashboard,) = [o for o in of_kind(found, "ConfigMap")
                    if o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert dashboard["data"]["legacy-bridge.json"] == \
        (ROOT / "deploy/observability/grafana-dashboard.json").read_text()
