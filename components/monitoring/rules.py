"""The alerting rules per service, as the PrometheusRule groups prometheus-operator loads (and promtool tests).

Every expression names only metrics and labels the services export (tests/components/monitoring scrapes them):
the provisioner's cmp_provisioner_* (service_src/provisioner/metrics.py) and the gateway's cmp_connector_*
(service_src/connector_gateway/metrics.py). Each alert's runbook is a section of docs/monitoring.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.monitoring.config import AlertThresholds

PROVISIONER = "cmp-provisioner"
GATEWAY = "cmp-connector"
RUNBOOK = "docs/monitoring.md"
WINDOW = "5m"
CATCHUP_WINDOW = "1h"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str

    def rule(self, service: str) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "service": service},
            "annotations": {"summary": self.summary, "runbook": f"{RUNBOOK}#{self.name.lower()}"},
        }


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def provisioner_alerts(t: AlertThresholds) -> list[Alert]:
    calls = "cmp_provisioner_control_plane_calls_total"
    return [
        Alert("CmpProvisionerDeadLetters", 'max(cmp_provisioner_inbox_rows{status="dead"}) > 0', "1m", "critical",
              "{{ $value }} order deliveries are dead letters: paid orders without an instance"),
        Alert("CmpProvisionerSignatureFailures",
              f'sum(rate(cmp_provisioner_deliveries_total{{outcome="rejected_signature"}}[{WINDOW}])) '
              f"> {_num(t.signature_failures_per_second)}", "10m", "warning",
              "Webhook deliveries fail signature checks ({{ printf \"%.2f\" $value }}/s)"),
        Alert("CmpProvisionerControlPlaneFailures",
              f'sum(rate({calls}{{outcome!="ok"}}[{WINDOW}])) / sum(rate({calls}[{WINDOW}])) '
              f"> {_num(t.control_plane_failure_ratio)}", "10m", "warning",
              "{{ $value | humanizePercentage }} of control-plane calls fail"),
        Alert("CmpProvisionerInboxBacklog",
              f"max(cmp_provisioner_inbox_oldest_pending_seconds) > {_num(t.oldest_pending_seconds)}", "5m",
              "critical", "The oldest pending inbox row has waited {{ $value | humanizeDuration }}"),
        # Any order catch-up had to put into the inbox itself is one Saleor's webhooks did not deliver.
        Alert("CmpProvisionerCatchUpFoundMissedOrders",
              f'sum(increase(cmp_provisioner_catchup_orders_total{{outcome="missed"}}[{CATCHUP_WINDOW}])) > 0',
              "0m", "warning",
              "Catch-up found {{ $value | humanize }} order events the webhooks did not deliver in the last "
              f"{CATCHUP_WINDOW}"),
        Alert("CmpProvisionerCatchUpLag",
              f"min(cmp_provisioner_catchup_lag_seconds) > {_num(t.catchup_lag_seconds)}", "5m", "critical",
              "Catch-up has not read Saleor for {{ $value | humanizeDuration }}: orders the webhooks miss stay "
              "unprovisioned"),
    ]


def gateway_alerts(t: AlertThresholds) -> list[Alert]:
    calls = "cmp_connector_tool_calls_total"
    errors = "cmp_connector_tool_errors_total"
    return [
        Alert("CmpGateway5xxRate",
              f'sum(rate({calls}{{status=~"5.."}}[{WINDOW}])) / sum(rate({calls}[{WINDOW}])) '
              f"> {_num(t.gateway_5xx_ratio)}", "10m", "critical",
              "{{ $value | humanizePercentage }} of tool calls answer 5xx"),
        Alert("CmpGatewayPolicyUnavailable", f'sum(rate({errors}{{error="policy_unavailable"}}[{WINDOW}])) > 0', "5m",
              "critical", "Tool calls fail: the control plane's policy is unavailable and no cached one is usable"),
        Alert("CmpGatewayVaultUnavailable",
              f'sum(rate({errors}{{error=~"vault_unavailable|vault_forbidden"}}[{WINDOW}])) > 0', "5m", "critical",
              "Tool calls fail: Vault is unreachable or refuses the gateway"),
        Alert("CmpGatewayLatencyP99",
              f"histogram_quantile(0.99, sum by (le) (rate(cmp_connector_tool_call_duration_seconds_bucket"
              f"[{WINDOW}]))) > {_num(t.gateway_p99_seconds)}", "10m", "warning",
              "Tool call p99 latency inside the gateway is {{ $value | humanizeDuration }}"),
    ]


ALERTS = {PROVISIONER: provisioner_alerts, GATEWAY: gateway_alerts}


def rule_groups(service: str, thresholds: AlertThresholds | None = None) -> list[dict[str, Any]]:
    """The ``spec.groups`` of a service's PrometheusRule (also a promtool rule file's ``groups``)."""
    alerts = ALERTS[service](thresholds or AlertThresholds())
    return [{"name": service, "rules": [a.rule(service) for a in alerts]}]
