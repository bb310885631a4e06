"""The three stacks, rendered from the real Pulumi.<stack>.yaml files: what differs, what is exported,
what stays secret, and that every object is owned by a component."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pulumi
import pytest

from tests.components.helpers import PLACEHOLDER, run_platform, run_stack, stack_file

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
STACKS = ("dev", "staging", "prod")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def rendered(stack: str):
    return run_stack(stack)


def deployment(stack: str, name: str) -> dict:
    return rendered(stack).one(DEPLOYMENT, name).inputs


def container(stack: str, name: str) -> dict:
    return deployment(stack, name)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_belongs_to_a_platform_component(stack):
    rec = rendered(stack)
    by_urn = {r.urn: r for r in rec.resources}
    for r in rec.resources:
        if r.type.startswith("kubernetes:"):
            parent = by_urn.get(r.parent)
            assert parent is not None and parent.type.startswith("cmp:platform:"), r.urn
            assert r.inputs["metadata"]["name"], r.urn
            if not r.inputs["kind"].startswith("Cluster"):  # ClusterSecretStore is cluster-scoped
                assert r.inputs["metadata"]["namespace"], r.urn
    assert len({r.urn for r in rec.resources}) == len(rec.resources)


def test_replicas_debug_and_resources_differ_per_stack():
    replicas = {s: deployment(s, "cmp-connector")["spec"]["replicas"] for s in STACKS}
    assert replicas == {"dev": 1, "staging": 2, "prod": 3}
    assert all(isinstance(v, int) for v in replicas.values())
    assert {s: deployment(s, "cmp-provisioner")["spec"]["replicas"] for s in STACKS} == replicas
    levels = {s: rendered(s).one("kubernetes:core/v1:ConfigMap", "cmp-connector-config").inputs["data"]["LOG_LEVEL"]
              for s in STACKS}
    assert levels == {"dev": "DEBUG", "staging": "INFO", "prod": "INFO"}
    cpu = {s: container(s, "cmp-connector")["resources"]["requests"]["cpu"] for s in STACKS}
    assert cpu == {"dev": "50m", "staging": "100m", "prod": "250m"}
    # A single replica needs no disruption budget.
    assert not rendered("dev").by_type("kubernetes:policy/v1:PodDisruptionBudget")
    assert len(rendered("prod").by_type("kubernetes:policy/v1:PodDisruptionBudget")) == 2


def test_prod_protects_secrets_and_state_and_other_stacks_do_not():
    for stack in STACKS:
        protected = {r.name for r in rendered(stack).resources if r.protect}
        for name in ("cmp-connector-secrets", "cmp-provisioner-secrets"):
            assert (name in protected) == (stack == "prod"), (stack, name)
        assert "cmp-connector" not in {r.name for r in rendered(stack).by_type(DEPLOYMENT) if r.protect}


def test_prod_images_carry_digests_read_at_deploy_never_typed_in_the_stack_file():
    """prod's service images come from the stack's own build and Ragflow's from the registry: both digests are
    known only to a deploy, so the offline render shows them unknown; dev runs tags."""
    from infra.recording import UNKNOWN

    assert not re.search(r"sha256:[0-9a-f]{64}", (PROJECT_ROOT / "Pulumi.prod.yaml").read_text())
    for name in ("cmp-connector", "cmp-provisioner", "ragflow"):
        assert container("prod", name)["image"] == UNKNOWN, name
        assert "@sha256:" not in container("dev", name)["image"], name
    assert rendered("prod").outputs["ragflow"]["image"] == UNKNOWN


def test_prod_refuses_a_tag_without_digest_naming_the_command_that_sets_it():
    config = stack_file("prod")
    config["images"] = {"build": False}
    config["provisioner"] = {**config["provisioner"], "image": "ghcr.io/gsvdev/cmp-provisioner:0.1.0"}
    with pytest.raises(pulumi.RunError) as info:
        run_platform(config, stack="prod")
    # Both images at once, each line naming its key and the stack file.
    assert str(info.value).splitlines() == [(
        f"config error: cmp-platform:{key}.image = 'ghcr.io/gsvdev/cmp-{name}:0.1.0': prod requires an image pinned "
        "by @sha256 digest: build it in the stack (`pulumi config set --path cmp-platform:images.build true`) or pin "
        f"the digest `make images` printed (`pulumi config set --path cmp-platform:{key}.image "
        "<repo>:<tag>@sha256:<digest>`) (Pulumi.prod.yaml)") for key, name in (
            ("connectorGateway", "connector-gateway"), ("provisioner", "provisioner"))]
    config["ragflow"] = {k: v for k, v in config["ragflow"].items() if k != "registryPreflight"}
    config["images"] = {"build": True, "registry": "ghcr.io/gsvdev"}
    with pytest.raises(pulumi.RunError) as info:
        run_platform(config, stack="prod")
    assert str(info.value) == (
        "config error: cmp-platform:ragflow.digest = <unset>: prod requires the Ragflow image pinned by digest: let "
        "the registry resolve ragflow.tag (`pulumi config set --path cmp-platform:ragflow.registryPreflight true`) "
        "or pin it (`pulumi config set --path cmp-platform:ragflow.digest sha256:<index digest of the tag>`) "
        "(Pulumi.prod.yaml)")


def test_exports_service_urls_webhook_urls_and_vault_paths():
    outputs = rendered("staging").outputs
    assert outputs["serviceUrls"] == {"connectorGateway": "http://cmp-connector.cmp.svc.cluster.local:8000",
                                      "provisioner": "http://cmp-provisioner.cmp.svc.cluster.local:8000"}
    base = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/"
    assert outputs["webhookUrls"] == {"order_fully_paid": base + "order-fully-paid",
                                      "order_created": base + "order-created",
                                      "order_cancelled": base + "order-cancelled"}
    assert outputs["vaultPaths"]["cmp/connector"] == "secret/data/cmp/connector"
    assert outputs["vaultPaths"]["cmp/provisioner"] == "secret/data/cmp/provisioner"
    assert outputs["ragflow"]["nodeArch"] == "amd64"


@pytest.mark.parametrize("stack", STACKS)
def test_secret_values_never_reach_inputs_or_outputs(stack):
    rec = rendered(stack)
    assert PLACEHOLDER not in repr([r.inputs for r in rec.resources])
    assert PLACEHOLDER not in repr([r.registered_outputs for r in rec.resources])
    assert PLACEHOLDER not in repr(rec.outputs)


def test_missing_required_key_in_a_stack_file_is_one_line_naming_the_file():
    config = stack_file("staging")
    del config["controlPlaneUrl"]
    with pytest.raises(pulumi.RunError) as info:
        run_platform(config, stack="staging")
    assert str(info.value) == ("config error: cmp-platform:controlPlaneUrl = <unset>: required key is missing "
                               "(Pulumi.staging.yaml)")


def test_every_config_error_of_a_run_is_reported_together():
    config = stack_file("dev")
    del config["controlPlaneUrl"]
    config["gatewayBilling"] = {"retries": 11}
    config["connectorGateway"] = {**config["connectorGateway"], "replicaz": 2}
    with pytest.raises(pulumi.RunError) as info:
        run_platform(config, stack="dev")
    assert str(info.value).splitlines() == [
        "config error: cmp-platform:controlPlaneUrl = <unset>: required key is missing (Pulumi.dev.yaml)",
        "config error: cmp-platform:connectorGateway.replicaz = 2: unknown key (docs/platform.md lists every key) "
        "(Pulumi.dev.yaml)",
        "config error: cmp-platform:gatewayBilling.retries = 11: Input should be less than or equal to 10 "
        "(Pulumi.dev.yaml)"]
