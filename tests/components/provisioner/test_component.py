"""Provisioner rendered by the real program: the objects a GitOps base held for it, and its webhook URLs."""

from __future__ import annotations

from components.saleor.documents import document
from tests.components.helpers import run_platform, validate_crd, validate_k8s
from tests.components.services import (
    CONFIG_MAP,
    DEPLOYMENT,
    EXTERNAL_SECRET,
    NETWORK_POLICY,
    reference_render,
    staging_like,
)


def test_provisioner_matches_the_reference_and_outputs_webhook_urls():
    rec = reference_render()
    component = rec.one("cmp:platform:Provisioner", "provisioner")
    base = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/"
    assert component.registered_outputs["webhook_urls"] == {
        "order_fully_paid": base + "order-fully-paid", "order_created": base + "order-created",
        "order_cancelled": base + "order-cancelled"}
    assert rec.one(DEPLOYMENT, "cmp-provisioner").inputs["spec"]["replicas"] == 2
    assert rec.one(DEPLOYMENT, "cmp-provisioner").inputs["spec"]["template"]["spec"][
        "automountServiceAccountToken"] is False
    env = rec.one(CONFIG_MAP, "cmp-provisioner-config").inputs["data"]
    assert env == {
        "LOG_LEVEL": "INFO", "PORT": "8000",
        "CONTROL_PLANE_URL": "http://cmp-control-plane.cmp.svc.cluster.local:8000", "CP_TIMEOUT_SECONDS": "5",
        "MAX_BODY_BYTES": "262144", "SALEOR_ALLOWED_ORIGINS": "http://saleor-api.saleor.svc.cluster.local:8000",
        "JWKS_CACHE_TTL_SECONDS": "300", "JWKS_MIN_REFETCH_SECONDS": "30",
        "RETRY_MAX_ATTEMPTS": "8", "RETRY_BACKOFF_SECONDS": "1", "RETRY_BACKOFF_MAX_SECONDS": "300",
        "WORKER_POLL_SECONDS": "0.5", "WORKER_BATCH_SIZE": "20", "MIGRATE_ON_START": "true",
        "CATCHUP_INTERVAL_SECONDS": "300", "CATCHUP_OVERLAP_SECONDS": "600", "CATCHUP_FIRST_LOOKBACK_SECONDS": "86400",
        "SALEOR_API_URL": "http://saleor-api.saleor.svc.cluster.local:8000/graphql/",
        "SALEOR_ORDERS_QUERY": document("orders_since"),  # the one catch-up document, components/saleor/graphql
    }
    keys = [d["secretKey"] for d in rec.one(EXTERNAL_SECRET, "cmp-provisioner-secrets").inputs["spec"]["data"]]
    # the secrets the provisioner's settings declare; the app token is written by the program (VaultProgramKey)
    assert keys == ["SERVICE_JWT_SECRET", "DATABASE_URL", "SALEOR_APP_TOKEN"]
    spec = rec.one(NETWORK_POLICY, "cmp-provisioner").inputs["spec"]
    assert spec["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "saleor"}}}]


def test_provisioner_pods_migrate_the_inbox_schema_before_serving():
    """The service reads MIGRATE_ON_START from this ConfigMap; readiness is the probe that holds traffic back
    while the schema is behind, so the Deployment must probe /readyz."""
    from service_src.provisioner.settings import ProvisionerSettings

    rec = reference_render()
    env = rec.one(CONFIG_MAP, "cmp-provisioner-config").inputs["data"]
    secrets = {"SERVICE_JWT_SECRET": "s", "DATABASE_URL": "postgresql+psycopg://db/x"}
    settings = ProvisionerSettings(**{k.lower(): v for k, v in {**env, **secrets}.items()})
    assert settings.migrate_on_start is True
    container = rec.one(DEPLOYMENT, "cmp-provisioner").inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "initContainers" not in rec.one(DEPLOYMENT, "cmp-provisioner").inputs["spec"]["template"]["spec"]


def test_provisioner_explicit_origins_and_another_namespace():
    config = staging_like(namespace="platform")
    config["provisioner"]["saleorAllowedOrigins"] = ["https://shop.example.com", "https://saleor.example.com"]
    rec = run_platform(config)
    env = rec.one(CONFIG_MAP, "cmp-provisioner-config").inputs["data"]
    assert env["SALEOR_ALLOWED_ORIGINS"] == "https://shop.example.com,https://saleor.example.com"
    urls = rec.one("cmp:platform:Provisioner", "provisioner").registered_outputs["webhook_urls"]
    assert urls["order_created"] == "http://cmp-provisioner.platform.svc.cluster.local:8000/webhooks/order-created"
    assert rec.one(DEPLOYMENT, "cmp-provisioner").inputs["metadata"]["namespace"] == "platform"


def test_all_service_manifests_validate():
    rec = reference_render()
    checked = 0
    for r in rec.resources:
        if not r.type.startswith("kubernetes:") or r.type.endswith("DeploymentPatch"):
            continue
        if r.inputs.get("apiVersion", "").startswith("external-secrets.io/"):
            validate_crd(r.inputs)
        else:
            validate_k8s(r.inputs)
        checked += 1
    assert checked >= 15




def test_provisioner_traces_render_the_otlp_endpoint_and_open_the_network_policy_to_the_collector():
    config = staging_like()
    config["provisioner"].update({
        "otelExporterOtlpEndpoint": "http://otel-collector.observability.svc.cluster.local:4318",
        "otlpEgress": {"namespace": "observability", "ports": [4318]}})
    rec = run_platform(config)
    env = rec.one(CONFIG_MAP, "cmp-provisioner-config").inputs["data"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc.cluster.local:4318"
    egress = rec.one(NETWORK_POLICY, "cmp-provisioner").inputs["spec"]["egress"]
    assert [rule for rule in egress if rule.get("ports") == [{"port": 4318, "protocol": "TCP"}]]
