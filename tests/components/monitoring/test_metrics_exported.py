"""Every metric and label the alerting rules name is one the running services export on /metrics."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from components.monitoring.rules import GATEWAY, PROVISIONER, rule_groups
from tests.services.provisioner.helpers import body_of, inbox_rows, order_payload, wait_until

_SELECTOR = re.compile(r"\b(cmp_[a-zA-Z0-9_]+)(?:\{([^}]*)\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def named_in_rules(service: str) -> dict[str, set[str]]:
    """metric -> the labels the service's rules select or group it by."""
    found: dict[str, set[str]] = {}
    for rule in rule_groups(service)[0]["rules"]:
        expr = rule["expr"]
        grouping = {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label.strip()}
        for metric, matchers in _SELECTOR.findall(expr):
            found.setdefault(metric, set()).update(_MATCHER.findall(matchers), grouping)
    return found


def exported(url: str) -> dict[str, set[str]]:
    """sample name -> its label names, from a scrape of /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def missing(service: str, url: str) -> list[str]:
    have = exported(url)
    problems = []
    for metric, labels in sorted(named_in_rules(service).items()):
        if metric not in have:
            problems.append(f"{metric} is not exported")
        elif labels - have[metric]:
            problems.append(f"{metric} has no label {sorted(labels - have[metric])}")
    return problems


def test_the_provisioners_rules_name_only_what_it_exports(provisioner_factory):
    provisioner = provisioner_factory()
    assert provisioner.deliver("order-fully-paid", body_of(order_payload("T3JkZXI6bW9u"))).status_code == 200
    assert provisioner.deliver("order-fully-paid", b"{}", signature="not-a-signature").status_code == 401
    wait_until(lambda: all(r.status != "pending" for r in inbox_rows(provisioner.store)), what="the order to settle")
    assert set(named_in_rules(PROVISIONER)) >= {"cmp_provisioner_inbox_rows",
                                                "cmp_provisioner_inbox_oldest_pending_seconds"}
    assert missing(PROVISIONER, provisioner.url) == []


def test_the_gateways_rules_name_only_what_it_exports(gateway):
    assert gateway.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}}).status_code == 200
    assert gateway.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 999}}).status_code == 404
    assert "le" in named_in_rules(GATEWAY)["cmp_connector_tool_call_duration_seconds_bucket"]
    assert missing(GATEWAY, gateway.url) == []


def test_a_rule_naming_an_unexported_metric_or_label_is_caught(gateway, monkeypatch):
    import tests.components.monitoring.test_metrics_exported as this

    gateway.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    wrong = [{"name": GATEWAY, "rules": [
        {"alert": "ByOrg", "expr": "sum by (org) (rate(cmp_connector_tool_calls_total[5m])) > 1"},
        {"alert": "Typo", "expr": 'rate(cmp_connector_tool_call_total{status="500"}[5m]) > 0'}]}]
    monkeypatch.setattr(this, "rule_groups", lambda service: wrong)
    assert missing(GATEWAY, gateway.url) == ["cmp_connector_tool_call_total is not exported",
                                             "cmp_connector_tool_calls_total has no label ['org']"]
