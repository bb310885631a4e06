"""GatewayBilling: the reference's cmp-gateway keys, and a patch that rolls the gateway on change."""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from tests.components.helpers import base_config, run_platform, validate_k8s

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
PATCH = "kubernetes:apps/v1:DeploymentPatch"

REFERENCE = {
    "BILLING_ENABLED": "true",
    "BILLING_AUTHORIZE_PATH": "/billing/authorize",
    "BILLING_SETTLE_PATH": "/billing/settle",
    "BILLING_MAX_RETRIES": "3",
    "BILLING_RETRY_BACKOFF_SECONDS": "1",
    "BILLING_TIMEOUT": "5",
    "ENTITLEMENTS_CACHE_TTL_SECONDS": "60",
    "ENTITLEMENTS_PATH": "/instances/{id}/entitlements",
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "60",
}


def test_config_map_holds_exactly_the_reference_values():
    rec = run_platform(base_config())
    component = rec.one("cmp:platform:GatewayBilling", "gateway-billing")
    cm = rec.one(CONFIG_MAP, "cmp-gateway")
    assert cm.parent == component.urn
    assert cm.inputs["metadata"]["name"] == "cmp-gateway" and cm.inputs["metadata"]["namespace"] == "cmp"
    assert cm.inputs["data"] == REFERENCE
    validate_k8s(cm.inputs)


def test_patch_loads_the_config_map_and_forces_ownership():
    rec = run_platform(base_config())
    patch = rec.one(PATCH, "cmp-gateway")
    assert patch.parent == rec.one("cmp:platform:GatewayBilling", "gateway-billing").urn
    inputs = patch.inputs
    assert inputs["apiVersion"] == "apps/v1" and inputs["kind"] == "Deployment"
    assert inputs["metadata"] == {"name": "cmp-gateway", "namespace": "cmp",
                                  "annotations": {"pulumi.com/patchForce": "true"}}
    (container,) = inputs["spec"]["template"]["spec"]["containers"]
    assert container == {"name": "cmp-gateway", "envFrom": [{"configMapRef": {"name": "cmp-gateway"}}]}
    assert len(inputs["spec"]["template"]["metadata"]["annotations"]["checksum/billing-config"]) == 64


def test_a_billing_change_changes_the_checksum_and_zero_false_are_kept():
    def checksum(rec):
        return rec.one(PATCH, "cmp-gateway").inputs["spec"]["template"]["metadata"]["annotations"][
            "checksum/billing-config"]

    before = run_platform(base_config())
    after = run_platform(base_config(gatewayBilling={"retries": 0, "billingEnabled": False,
                                                     "retryBackoffSeconds": 0.25}))
    assert checksum(before) != checksum(after)
    data = after.one(CONFIG_MAP, "cmp-gateway").inputs["data"]
    assert data["BILLING_MAX_RETRIES"] == "0" and data["BILLING_ENABLED"] == "false"
    assert data["BILLING_RETRY_BACKOFF_SECONDS"] == "0.25"


@pytest.mark.parametrize(("billing", "needle"), [
    ({"retries": 11}, "cmp-platform:gatewayBilling.retries = 11:"),
    ({"authorizePath": "billing/authorize"}, "cmp-platform:gatewayBilling.authorizePath = 'billing/authorize':"),
    ({"entitlementsPath": "/instances/entitlements"}, "cmp-platform:gatewayBilling.entitlementsPath"),
    ({"timeoutSeconds": 0}, "cmp-platform:gatewayBilling.timeoutSeconds = 0:"),
    ({"entitlementsCacheTtlSeconds": -5}, "cmp-platform:gatewayBilling.entitlementsCacheTtlSeconds = -5:"),
    ({"rateLimitRequestsPerMinute": 0}, "cmp-platform:gatewayBilling.rateLimitRequestsPerMinute = 0:"),
])
def test_invalid_billing_fails_the_program_with_one_line(billing, needle):
    import pulumi

    with pytest.raises(pulumi.RunError) as info:
        run_platform(base_config(gatewayBilling=billing))
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not isinstance(info.value, ConfigError)  # reported through RunError: no traceback from the CLI
