"""Every alert, unit-tested with `promtool test rules` (Debian's prometheus package): on series that make it
fire and on series that must not, and each one has its runbook in docs/monitoring.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.monitoring.config import AlertThresholds
from components.monitoring.rules import ALERTS, GATEWAY, PROVISIONER, rule_groups

DOCS = Path(__file__).resolve().parents[3] / "docs" / "monitoring.md"
ROUTE = 'tool="zendesk.create_ticket",decision="allowed"'

# alert -> (firing series, quiet series, when to look, the firing alert's summary)
SCENARIOS = {
    "CmpProvisionerDeadLetters": (
        {'cmp_provisioner_inbox_rows{status="dead"}': "0x5 2x20", 'cmp_provisioner_inbox_rows{status="done"}': "5x25"},
        {'cmp_provisioner_inbox_rows{status="dead"}': "0x25", 'cmp_provisioner_inbox_rows{status="pending"}': "9x25"},
        "15m", "2 order deliveries are dead letters: paid orders without an instance"),
    "CmpProvisionerSignatureFailures": (
        {'cmp_provisioner_deliveries_total{event="order_fully_paid",outcome="rejected_signature"}': "0+30x40"},
        {'cmp_provisioner_deliveries_total{event="order_fully_paid",outcome="rejected_signature"}': "0+1x40",
         'cmp_provisioner_deliveries_total{event="order_fully_paid",outcome="accepted"}': "0+600x40"},
        "20m", "Webhook deliveries fail signature checks (0.50/s)"),
    "CmpProvisionerControlPlaneFailures": (
        {'cmp_provisioner_control_plane_calls_total{call="create_instance",outcome="ok"}': "0+10x40",
         'cmp_provisioner_control_plane_calls_total{call="create_instance",outcome="transient"}': "0+10x40"},
        {'cmp_provisioner_control_plane_calls_total{call="create_instance",outcome="ok"}': "0+100x40",
         'cmp_provisioner_control_plane_calls_total{call="create_instance",outcome="transient"}': "0+1x40"},
        "20m", "50% of control-plane calls fail"),
    "CmpProvisionerInboxBacklog": (
        {"cmp_provisioner_inbox_oldest_pending_seconds": "0+60x30"},
        {"cmp_provisioner_inbox_oldest_pending_seconds": "30x30"},
        "17m", "The oldest pending inbox row has waited 17m 0s"),
    "CmpProvisionerCatchUpFoundMissedOrders": (
        {'cmp_provisioner_catchup_orders_total{event="ORDER_FULLY_PAID",outcome="missed"}': "0x10 3x30",
         'cmp_provisioner_catchup_orders_total{event="ORDER_FULLY_PAID",outcome="seen"}': "0+5x40"},
        {'cmp_provisioner_catchup_orders_total{event="ORDER_FULLY_PAID",outcome="missed"}': "0x40",
         'cmp_provisioner_catchup_orders_total{event="ORDER_FULLY_PAID",outcome="seen"}': "0+5x40"},
        "15m", "Catch-up found 3 order events the webhooks did not deliver in the last 1h"),
    "CmpProvisionerCatchUpLag": (
        {"cmp_provisioner_catchup_lag_seconds": "0+60x60"},
        {"cmp_provisioner_catchup_lag_seconds": "0+60x5 0+60x5 0+60x5 0+60x5 0+60x5 0+60x5 0+60x5 0+60x5"},
        "40m", "Catch-up has not read Saleor for 40m 0s: orders the webhooks miss stay unprovisioned"),
    "CmpGateway5xxRate": (
        {f'cmp_connector_tool_calls_total{{{ROUTE},status="502"}}': "0+10x40",
         f'cmp_connector_tool_calls_total{{{ROUTE},status="200"}}': "0+10x40"},
        {f'cmp_connector_tool_calls_total{{{ROUTE},status="502"}}': "0+0x40",
         f'cmp_connector_tool_calls_total{{{ROUTE},status="403"}}': "0+50x40",
         f'cmp_connector_tool_calls_total{{{ROUTE},status="200"}}': "0+10x40"},
        "20m", "50% of tool calls answer 5xx"),
    "CmpGatewayPolicyUnavailable": (
        {'cmp_connector_tool_errors_total{tool="zendesk.create_ticket",error="policy_unavailable"}': "0+1x30"},
        {'cmp_connector_tool_errors_total{tool="zendesk.create_ticket",error="tool_not_allowed"}': "0+9x30"},
        "15m", "Tool calls fail: the control plane's policy is unavailable and no cached one is usable"),
    "CmpGatewayVaultUnavailable": (
        {'cmp_connector_tool_errors_total{tool="slack.post_message",error="vault_forbidden"}': "0+1x30"},
        {'cmp_connector_tool_errors_total{tool="slack.post_message",error="policy_unavailable"}': "0+0x30"},
        "15m", "Tool calls fail: Vault is unreachable or refuses the gateway"),
    "CmpGatewayLatencyP99": (
        {f'cmp_connector_tool_call_duration_seconds_bucket{{{ROUTE},le="0.1"}}': "0+10x40",
         f'cmp_connector_tool_call_duration_seconds_bucket{{{ROUTE},le="5"}}': "0+1000x40",
         f'cmp_connector_tool_call_duration_seconds_bucket{{{ROUTE},le="+Inf"}}': "0+1000x40"},
        {f'cmp_connector_tool_call_duration_seconds_bucket{{{ROUTE},le="0.1"}}': "0+1000x40",
         f'cmp_connector_tool_call_duration_seconds_bucket{{{ROUTE},le="5"}}': "0+1000x40",
         f'cmp_connector_tool_call_duration_seconds_bucket{{{ROUTE},le="+Inf"}}': "0+1000x40"},
        "20m", "Tool call p99 latency inside the gateway is 4.951s"),
}
SERVICE_OF = {a.name: service for service, alerts in ALERTS.items() for a in alerts(AlertThresholds())}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: run `bash .ci/system-deps.sh` (Debian's prometheus package)")
    return found


def series(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"series": name, "values": v} for name, v in values.items()]


@pytest.mark.parametrize("alert", sorted(SCENARIOS))
def test_alert_fires_on_its_series_and_stays_quiet_otherwise(alert, tmp_path):
    firing, quiet, at, summary = SCENARIOS[alert]
    service = SERVICE_OF[alert]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(service)}, sort_keys=False))
    expected = {"exp_labels": {"severity": next(r for r in rule_groups(service)[0]["rules"]
                                                if r["alert"] == alert)["labels"]["severity"], "service": service},
                "exp_annotations": {"summary": summary, "runbook": f"docs/monitoring.md#{alert.lower()}"}}
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series(firing),
         "alert_rule_test": [{"eval_time": "2m", "alertname": alert, "exp_alerts": []},
                             {"eval_time": at, "alertname": alert, "exp_alerts": [expected]}]},
        {"interval": "1m", "input_series": series(quiet),
         "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": []}]},
    ]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run([promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_scenario_and_the_rule_files_check(tmp_path):
    assert set(SCENARIOS) == set(SERVICE_OF)
    for service in (PROVISIONER, GATEWAY):
        path = tmp_path / f"{service}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule_groups(service)}))
        proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_its_runbook_section():
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", DOCS.read_text(), re.M)}
    missing = sorted(a for a in SERVICE_OF if a.lower() not in headings)
    assert not missing, f"docs/monitoring.md has no section for {missing}"
