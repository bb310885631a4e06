"""KubeObject registers what pulumi_kubernetes' typed class for the same object registers."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.kube import KubeObject, kubernetes_type_token
from infra.recording import run_program

META = {"name": "x", "namespace": "cmp", "labels": {"app.kubernetes.io/name": "x"}}
DEPLOYMENT_SPEC = {
    "replicas": 2,
    "selector": {"matchLabels": {"app": "x"}},
    "template": {"metadata": {"labels": {"app": "x"}},
                 "spec": {"containers": [{"name": "x", "image": "r.example/x:1", "ports": [{"containerPort": 8000}]}]}},
}
SERVICE_SPEC = {"type": "ClusterIP", "selector": {"app": "x"}, "ports": [{"port": 8000, "targetPort": "http"}]}
POLICY_SPEC = {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress"], "ingress": []}
PDB_SPEC = {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "x"}}}
ESO_SPEC = {"secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"}, "data": []}

# (typed constructor, the same object as a manifest, patch?)
CASES = {
    "ConfigMap": (lambda n, o: k8s.core.v1.ConfigMap(n, metadata=META, data={"A": "1"}, opts=o),
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": META, "data": {"A": "1"}}, False),
    "ServiceAccount": (lambda n, o: k8s.core.v1.ServiceAccount(n, metadata=META, automount_service_account_token=False,
                                                               opts=o),
                       {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": META,
                        "automountServiceAccountToken": False}, False),
    "Deployment": (lambda n, o: k8s.apps.v1.Deployment(n, metadata=META, spec=DEPLOYMENT_SPEC, opts=o),
                   {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": META, "spec": DEPLOYMENT_SPEC}, False),
    "DeploymentPatch": (lambda n, o: k8s.apps.v1.DeploymentPatch(n, metadata=META, spec={"replicas": 3}, opts=o),
                        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": META, "spec": {"replicas": 3}},
                        True),
    "Service": (lambda n, o: k8s.core.v1.Service(n, metadata=META, spec=SERVICE_SPEC, opts=o),
                {"apiVersion": "v1", "kind": "Service", "metadata": META, "spec": SERVICE_SPEC}, False),
    "NetworkPolicy": (lambda n, o: k8s.networking.v1.NetworkPolicy(n, metadata=META, spec=POLICY_SPEC, opts=o),
                      {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": META,
                       "spec": POLICY_SPEC}, False),
    "PodDisruptionBudget": (lambda n, o: k8s.policy.v1.PodDisruptionBudget(n, metadata=META, spec=PDB_SPEC, opts=o),
                            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": META,
                             "spec": PDB_SPEC}, False),
    "ExternalSecret": (lambda n, o: k8s.apiextensions.CustomResource(
                           n, api_version="external-secrets.io/v1", kind="ExternalSecret", metadata=META,
                           spec=ESO_SPEC, opts=o),
                       {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": META,
                        "spec": ESO_SPEC}, False),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_registration_equals_the_typed_class(kind):
    typed_ctor, manifest, patch = CASES[kind]
    def program():
        # Under two parents: the same type and name would otherwise be one URN (the engine refuses that).
        left = pulumi.ComponentResource("test:index:Typed", "typed")
        right = pulumi.ComponentResource("test:index:Plain", "plain")
        typed_ctor("x", pulumi.ResourceOptions(parent=left))
        KubeObject("x", manifest, pulumi.ResourceOptions(parent=right), patch=patch)

    rec = run_program(program, stack="dev", config={})
    typed, plain = (next(r for r in rec.resources if r.name == "x" and r.parent.endswith(p))
                    for p in ("Typed::typed", "Plain::plain"))
    assert plain.type == typed.type
    assert plain.inputs == typed.inputs
    assert plain.custom and plain.protect == typed.protect
    assert plain.plugin_version == typed.plugin_version and plain.plugin_version
    assert plain.plugin_download_url == typed.plugin_download_url


def test_outputs_are_attributes_named_like_the_manifest_fields():
    made = {}

    def program():
        made["cm"] = KubeObject("cm", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": META, "data": {"A": "1"}})

    run_program(program, stack="dev", config={})
    assert isinstance(made["cm"].metadata, pulumi.Output) and isinstance(made["cm"].data, pulumi.Output)


@pytest.mark.parametrize(("api_version", "kind", "patch", "token"), [
    ("v1", "ConfigMap", False, "kubernetes:core/v1:ConfigMap"),
    ("apps/v1", "Deployment", True, "kubernetes:apps/v1:DeploymentPatch"),
    ("networking.k8s.io/v1", "NetworkPolicy", False, "kubernetes:networking.k8s.io/v1:NetworkPolicy"),
    ("external-secrets.io/v1", "ClusterSecretStore", False, "kubernetes:external-secrets.io/v1:ClusterSecretStore"),
])
def test_type_token(api_version, kind, patch, token):
    assert kubernetes_type_token(api_version, kind, patch=patch) == token


@pytest.mark.parametrize(("api_version", "kind"), [("", "ConfigMap"), ("a/b/v1", "X"), ("v1", "")])
def test_malformed_api_version_or_kind_is_named(api_version, kind):
    with pytest.raises(ValueError, match="apiVersion") as err:
        kubernetes_type_token(api_version, kind)
    assert repr(api_version) in str(err.value) and repr(kind) in str(err.value)
