"""Schema checks: Kubernetes OpenAPI (strict, per version) and the operators' CRDs from the schema directory."""

import pytest

from infra import schemas
from tools.preview.validation import unchecked_kinds, validate_all, validate_object


@pytest.fixture(autouse=True)
def _crds(schema_dir):
    """Every test here but the ones that unset it checks against the CRDs of the schema directory."""
    schemas._crd_schemas.cache_clear()


def external_secret():
    return {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "cmp-connector-secrets", "namespace": "cmp"},
            "spec": {"refreshInterval": "1h",
                     "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
                     "target": {"name": "cmp-connector-secrets"},
                     "data": [{"secretKey": "SERVICE_JWT_SECRET",
                               "remoteRef": {"key": "cmp/connector", "property": "service_jwt_secret"}}]}}


def cluster_secret_store():
    return {"apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
            "metadata": {"name": "vault-backend"},
            "spec": {"provider": {"vault": {
                "server": "http://vault.vault.svc:8200", "path": "secret", "version": "v2",
                "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "external-secrets",
                                        "serviceAccountRef": {"name": "external-secrets",
                                                              "namespace": "external-secrets"}}}}}}}


def test_valid_eso_objects_pass():
    assert validate_object(external_secret(), "1.33") is None
    assert validate_object(cluster_secret_store(), "1.33") is None


def test_unknown_crd_field_is_rejected_with_its_path():
    obj = external_secret()
    obj["spec"]["data"][0]["remoteRef"]["proprety"] = "typo"
    v = validate_object(obj, "1.33")
    assert (v.path, v.rule) == ("spec.data[0].remoteRef", "additionalProperties")
    assert "ExternalSecret cmp/cmp-connector-secrets" in str(v) and "'proprety'" in str(v)


def test_crd_enum_is_enforced():
    obj = cluster_secret_store()
    obj["spec"]["provider"]["vault"]["version"] = "v3"
    v = validate_object(obj, "1.33")
    assert v.path == "spec.provider.vault.version" and v.rule == "enum"


def test_v1beta1_is_not_served():
    obj = external_secret()
    obj["apiVersion"] = "external-secrets.io/v1beta1"
    v = validate_object(obj, "1.33")
    assert v.rule == "schema" and "no schema for ExternalSecret external-secrets.io/v1beta1" in v.message


def deployment():
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "cmp"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
                         {"name": "c", "image": "x:1", "ports": [{"containerPort": 8000}]}]}}}}


def test_kubernetes_schema_types_and_strictness():
    assert validate_object(deployment(), "1.33") is None
    bad = deployment()
    bad["spec"]["replicas"] = "2"
    v = validate_object(bad, "1.33")
    assert (v.path, v.rule) == ("spec.replicas", "type")
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    v = validate_object(bad, "1.33")
    assert (v.path, v.rule) == ("spec.template.spec.containers[0]", "additionalProperties")


def test_kubernetes_version_selects_the_schema():
    # spec.trafficDistribution exists on Services from 1.30 on, not in 1.29
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "cmp"},
           "spec": {"ports": [{"port": 80}], "trafficDistribution": "PreferClose"}}
    assert validate_object(svc, "1.33") is None
    v = validate_object(svc, "1.29")
    assert v is not None and v.rule == "additionalProperties"


def test_partial_objects_skip_required_but_not_unknown_fields():
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cmp-gateway", "namespace": "cmp"},
             "spec": {"template": {"spec": {"containers": [{"name": "gw", "envFrom": [
                 {"configMapRef": {"name": "cmp-gateway"}}]}]}}}}
    assert validate_object(patch, "1.33") is not None  # as a whole object, selector is missing
    assert validate_object(patch, "1.33", partial=True) is None
    patch["spec"]["template"]["spec"]["containers"][0]["envFromm"] = []
    v = validate_object(patch, "1.33", partial=True)
    assert v.rule == "additionalProperties" and v.path == "spec.template.spec.containers[0]"


def test_without_a_schema_directory_custom_kinds_are_listed_as_unchecked_and_builtins_still_checked(monkeypatch,
                                                                                                  tmp_path):
    monkeypatch.delenv(schemas.ENV)
    monkeypatch.setenv("CMP_CACHE_DIR", str(tmp_path))  # and no copy fetched by `make schemas`
    bad = external_secret()
    bad["spec"]["typo"] = 1
    assert validate_object(bad, "1.33") is None
    assert unchecked_kinds([bad, {"apiVersion": "apps/v1", "kind": "Deployment"},
                            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}]) == [
        "ExternalSecret (external-secrets.io/v1)"]
    broken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dataa": {}}
    assert validate_object(broken, "1.33") is not None


def test_a_schema_directory_that_does_not_exist_is_an_error_not_a_silent_skip(monkeypatch, tmp_path):
    monkeypatch.setenv(schemas.ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CMP_SCHEMA_DIR"):
        validate_object(external_secret(), "1.33")


def test_only_served_crd_versions_are_known(schema_dir):
    found = schemas.crd_schemas()
    assert ("external-secrets.io/v1", "ExternalSecret") in found
    assert ("external-secrets.io/v1beta1", "ExternalSecret") not in found


def test_identical_objects_each_get_their_verdict_and_the_schema_directory_is_part_of_it(monkeypatch, tmp_path):
    """Stacks render many identical objects and each distinct one is checked once: every copy is still
    reported, and a verdict reached with one schema directory is not reused without it."""
    bad = external_secret()
    bad["spec"]["typo"] = 1
    found = validate_all([(bad, False), (external_secret(), False), (bad, False)], "1.33")
    assert [(v.path, v.rule) for v in found] == [("spec", "additionalProperties")] * 2
    monkeypatch.delenv(schemas.ENV)
    monkeypatch.setenv("CMP_CACHE_DIR", str(tmp_path))
    assert validate_all([(bad, False)], "1.33") == []
