"""The alert rules and the Grafana dashboard: valid PromQL (promtool), every alert
fires on what it is for (promtool's rule unit tests), and every query names a metric
the proxy really exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from legacy_bridge.metrics import Metrics

OBSERVABILITY = Path(__file__).resolve().parent.parent / "deploy/observability"
ALERTS = OBSERVABILITY / "alerts.yaml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
# Grafana's own variables, given values PromQL accepts
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$route": ".*"}


def promtool(*args: str, cwd: Path = OBSERVABILITY) -> str:
    if shutil.which("promtool") is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    result = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def exported_names() -> set[str]:
    figures = {"hits": 0, "misses": 0, "size": 0, "failures": 0, "coalesced": 0,
               "shadow_queue": 0, "breakers": {}}
    families = Metrics(lambda: figures).registry.collect()
    return {family.name + suffix for family in families
            for suffix in ("", "_total", "_bucket", "_count", "_sum")}


def dashboard_queries() -> list[str]:
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            query = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)
            queries.append(query)
    return queries


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return rules


def test_the_alert_rules_are_valid() -> None:
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", "alerts.yaml")


def test_each_alert_fires_on_what_it_is_for_and_only_then() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yaml")


def test_the_alerts_cover_errors_breakers_mismatches_shadow_drops_and_latency() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {"LegacyBridgeErrorRate", "LegacyBridgeUpstreamBreakerOpen",
            "LegacyBridgeCompareMismatchRate", "LegacyBridgeShadowDrops",
            "LegacyBridgeUpstreamLatency"} <= names


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": query}
        for i, query in enumerate(dashboard_queries())]}]}
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    assert "SUCCESS" in promtool("check", "rules", "queries.yaml", cwd=tmp_path)


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_query_names_only_metrics_the_proxy_exports(source: str) -> None:
    queries = dashboard_queries() if source == "dashboard" else \
        [rule["expr"] for rule in alert_rules()]
    named = {name for query in queries for name in re.findall(r"\bbridge_[a-z_]+", query)}
    assert named and named <= exported_names()


def test_the_dashboard_has_unique_panel_ids_and_asks_for_its_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
