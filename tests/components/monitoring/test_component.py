"""The Monitoring component through the real stacks: opt-in per stack, one ServiceMonitor and one PrometheusRule
per service, valid against prometheus-operator's CRDs, and Prometheus let through the NetworkPolicies."""

from __future__ import annotations

import pytest

from tools.preview.runner import preview_stack

KINDS = ("ServiceMonitor", "PrometheusRule")


@pytest.fixture(scope="module")
def previews(tmp_path_factory):
    out = tmp_path_factory.mktemp("preview")
    return {stack: preview_stack(stack, out_root=out) for stack in ("dev", "staging")}


def objects(preview, kind):
    return {r.inputs["metadata"]["name"]: r.inputs for r in preview.recording.resources
            if r.type == f"kubernetes:monitoring.coreos.com/v1:{kind}"}


def ingress_namespaces(preview, name):
    [policy] = [r.inputs for r in preview.recording.resources if r.type.endswith(":NetworkPolicy")
                and r.inputs["metadata"]["name"] == name]
    return [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy["spec"].get("ingress", []) for peer in rule["from"]]


def test_staging_gets_a_monitor_and_rules_per_service_valid_against_the_crds(previews, schema_dir):
    staging = previews["staging"]
    assert staging.code == 0, staging.lines
    assert not [line for line in staging.lines if "not checked" in line]  # the CRD schemas were found and used
    for kind in KINDS:
        assert sorted(objects(staging, kind)) == ["cmp-connector", "cmp-provisioner"]
    monitor = objects(staging, "ServiceMonitor")["cmp-provisioner"]
    assert monitor["spec"] == {"selector": {"matchLabels": {"app.kubernetes.io/name": "cmp-provisioner"}},
                               "namespaceSelector": {"matchNames": ["cmp"]},
                               "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}]}
    rules = objects(staging, "PrometheusRule")["cmp-provisioner"]["spec"]["groups"][0]["rules"]
    assert "CmpProvisionerDeadLetters" in [r["alert"] for r in rules]
    assert "monitoring" in ingress_namespaces(staging, "cmp-provisioner")


def test_dev_has_none_and_keeps_its_network_policies(previews):
    dev = previews["dev"]
    assert dev.code == 0, dev.lines
    assert all(objects(dev, kind) == {} for kind in KINDS)
    assert "monitoring" not in ingress_namespaces(dev, "cmp-provisioner")
    assert "monitoring" not in ingress_namespaces(dev, "cmp-connector")


def test_a_bad_scrape_interval_is_one_config_line():
    from pydantic import ValidationError

    from components.monitoring.config import MonitoringConfig

    with pytest.raises(ValidationError, match="must be a Prometheus duration like 30s or 1m"):
        MonitoringConfig(scrape_interval="thirty seconds")
