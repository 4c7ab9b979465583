"""compose/: the Prometheus alert rules pass `promtool check rules` and their own
`promtool test rules`, the Prometheus config is valid, and every Grafana panel queries the
provisioned data source with PromQL that parses."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "compose"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed; .ci/run installs it")


def promtool(*args: str, cwd: Path = COMPOSE / "prometheus") -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_alert_rules_check():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_alert_rules_unit_tests():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_can_fail(tmp_path):
    """A rule file whose alert never fires makes `promtool test rules` fail: the tests above test something."""
    broken = yaml.safe_load((COMPOSE / "prometheus" / "alerts.yml").read_text())
    for rule in broken["groups"][0]["rules"]:
        rule["expr"] = "vector(0) > 1"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(broken))
    shutil.copy(COMPOSE / "prometheus" / "alerts_test.yml", tmp_path / "alerts_test.yml")
    assert promtool("test", "rules", "alerts_test.yml", cwd=tmp_path).returncode != 0


def test_the_alerts_the_issue_asks_for_are_there():
    rules = yaml.safe_load((COMPOSE / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {r["alert"]: r["for"] for r in rules} == {
        "SwitchboardWorkerDown": "1m", "SwitchboardSmppNotBound": "2m", "SwitchboardFailedRatioHigh": "10m",
        "SwitchboardDeadLettersGrowing": "5m", "SwitchboardQueueDepthGrowing": "10m",
    }  # fmt: skip


def test_prometheus_config_check():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_dashboard_queries_parse_and_use_the_provisioned_datasource(tmp_path):
    dashboard = json.loads((COMPOSE / "grafana" / "dashboards" / "switchboard.json").read_text())
    datasource = yaml.safe_load((COMPOSE / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    provider = yaml.safe_load((COMPOSE / "grafana" / "provisioning" / "dashboards" / "switchboard.yml").read_text())["providers"][0]
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose["volumes"]
    exprs = []
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"]
            exprs.append(target["expr"])
    assert len(exprs) >= 10
    rules = {"groups": [{"name": "panels", "rules": [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "panels.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
