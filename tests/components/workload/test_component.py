"""ServiceWorkload: the hardening every service gets, checked on the rendered manifests."""

from __future__ import annotations

import pulumi
import pytest

from components.vault.paths import CONNECTOR, PROVISIONER
from components.vault.seeds import SecretRevision
from components.workload.component import ServiceWorkload, ServiceWorkloadArgs
from infra.config import Peer, resources
from infra.recording import run_program
from tests.components.helpers import validate_crd, validate_k8s

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
SERVICE = "kubernetes:core/v1:Service"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def args(**overrides) -> ServiceWorkloadArgs:
    values = {
        "name": "svc", "namespace": "cmp", "image": "ghcr.io/x/svc:1.0", "replicas": 2,
        "resources": resources("100m", "128Mi", "500m", "256Mi"),
        "env": {"LOG_LEVEL": "INFO", "PORT": "8000"}, "secret_path": CONNECTOR,
        "ingress_from": (Peer(namespace="cmp", pod_labels={"app.kubernetes.io/name": "cmp-runner"}),),
        "egress": ({"to": [{"podSelector": {}}], "ports": [{"port": 5432, "protocol": "TCP"}]},),
    }
    values.update(overrides)
    return ServiceWorkloadArgs(**values)


def render(workload_args: ServiceWorkloadArgs):
    return run_program(lambda: ServiceWorkload("svc", workload_args), stack="dev", config={})


def test_every_child_is_parented_named_and_namespaced_and_valid():
    rec = render(args())
    component = rec.one("cmp:platform:ServiceWorkload", "svc")
    children = rec.children_of(component.urn)
    assert sorted(r.type for r in children) == sorted(
        [SERVICE_ACCOUNT, CONFIG_MAP, EXTERNAL_SECRET, DEPLOYMENT, SERVICE, NETWORK_POLICY, PDB])
    for child in children:
        meta = child.inputs["metadata"]
        assert meta["namespace"] == "cmp" and meta["name"], child.urn
        assert meta["labels"]["app.kubernetes.io/part-of"] == "cmp-platform"
        if child.type == EXTERNAL_SECRET:
            validate_crd(child.inputs)
        else:
            validate_k8s(child.inputs)
    assert component.registered_outputs["url"] == "http://svc.cmp.svc.cluster.local:8000"


def test_pod_hardening():
    rec = render(args())
    spec = rec.one(DEPLOYMENT, "svc").inputs["spec"]
    assert spec["replicas"] == 2 and isinstance(spec["replicas"], int)
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "svc"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["envFrom"] == [{"configMapRef": {"name": "svc-config"}}, {"secretRef": {"name": "svc-secrets"}}]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"] == {"matchLabels": {"app.kubernetes.io/name": "svc"}}


def test_config_checksum_rolls_pods_on_config_change_only():
    def checksum_of(rec):
        return rec.one(DEPLOYMENT, "svc").inputs["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    first = checksum_of(render(args()))
    assert len(first) == 64
    assert checksum_of(render(args())) == first
    assert checksum_of(render(args(env={"LOG_LEVEL": "DEBUG", "PORT": "8000"}))) != first
    assert checksum_of(render(args(replicas=3))) == first


def test_secret_revision_rolls_the_pods_and_resyncs_the_external_secret():
    def program():
        seed = pulumi.CustomResource("test:index:Seed", "seed", {})
        ServiceWorkload("svc", args(secret_revision=SecretRevision("secret/cmp/connector: x=1", seed)))

    rec = run_program(program, stack="dev", config={})
    annotations = rec.one(DEPLOYMENT, "svc").inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["cmp.platform/secret-revision"] == "secret/cmp/connector: x=1"
    es = rec.one(EXTERNAL_SECRET, "svc-secrets")
    assert es.inputs["metadata"]["annotations"] == {"cmp.platform/secret-revision": "secret/cmp/connector: x=1"}
    assert rec.one("test:index:Seed", "seed").urn in es.depends_on
    without = render(args())
    assert "cmp.platform/secret-revision" not in without.one(EXTERNAL_SECRET, "svc-secrets").inputs["metadata"]
    with pytest.raises(ValueError, match="secret_revision given without secret_path"):
        args(secret_path=None, secret_revision=SecretRevision("x", None))


def test_external_secret_reads_the_vault_path_table():
    rec = render(args(secret_path=PROVISIONER))
    es = rec.one(EXTERNAL_SECRET, "svc-secrets").inputs
    assert es["apiVersion"] == "external-secrets.io/v1" and es["kind"] == "ExternalSecret"
    assert es["spec"]["secretStoreRef"] == {"name": "vault-backend", "kind": "ClusterSecretStore"}
    assert es["spec"]["target"]["name"] == "svc-secrets"
    # Every key of the table's path, in its order, each exposed under its env name.
    data = es["spec"]["data"]
    assert data == [{"secretKey": key.env_name, "remoteRef": {"key": "cmp/provisioner", "property": key.name}}
                    for key in PROVISIONER.keys]
    assert {"SALEOR_WEBHOOK_SECRET", "SERVICE_JWT_SECRET", "DATABASE_URL"} <= {d["secretKey"] for d in data}
    validate_crd(es)


def test_secret_keys_subset_and_unknown_key():
    rec = render(args(secret_path=PROVISIONER, secret_keys=("service_jwt_secret",)))
    data = rec.one(EXTERNAL_SECRET, "svc-secrets").inputs["spec"]["data"]
    assert [d["secretKey"] for d in data] == ["SERVICE_JWT_SECRET"]
    with pytest.raises(ValueError, match=r"secret/cmp/provisioner has no key 'nope'"):
        args(secret_path=PROVISIONER, secret_keys=("nope",))


def test_network_policy_denies_by_default_then_allows_declared_traffic_and_dns():
    spec = render(args()).one(NETWORK_POLICY, "svc").inputs["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "svc"}}
    assert spec["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cmp"}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "cmp-runner"}}}],
        "ports": [{"port": 8000, "protocol": "TCP"}]}]
    dns, declared = spec["egress"]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert declared["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_unset_optional_parts_are_omitted_and_false_kept():
    rec = render(args(replicas=1, secret_path=None, ingress_from=(), egress=()))
    types = {r.type for r in rec.resources}
    assert PDB not in types and EXTERNAL_SECRET not in types
    pod = rec.one(DEPLOYMENT, "svc").inputs["spec"]["template"]["spec"]
    assert pod["containers"][0]["envFrom"] == [{"configMapRef": {"name": "svc-config"}}]
    assert pod["automountServiceAccountToken"] is False
    assert rec.one(SERVICE_ACCOUNT, "svc").inputs["automountServiceAccountToken"] is False
    spec = rec.one(NETWORK_POLICY, "svc").inputs["spec"]
    assert "ingress" not in spec  # deny all ingress: the field is absent, not an empty allow-list
    assert len(spec["egress"]) == 1  # DNS only
    validate_k8s(rec.one(NETWORK_POLICY, "svc").inputs)


def test_pdb_and_protect():
    rec = render(args(replicas=3, protect_secrets=True))
    pdb = rec.one(PDB, "svc").inputs["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "svc"}}}
    assert rec.one(EXTERNAL_SECRET, "svc-secrets").protect is True
    assert rec.one(DEPLOYMENT, "svc").protect is False


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "Svc", "DNS-1123"),
    ("image", "x:latest", "latest"),
    ("replicas", 0, "greater than or equal to 1"),
    ("env", {"PORT": 8000}, "string"),
])
def test_bad_args(field, value, message):
    with pytest.raises(ValueError, match=message):
        args(**{field: value})
