"""Each policy catches a violating resource and passes a compliant one."""

import copy

import pytest

from policy import policies as p

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def good_deployment(name="cmp-connector", **pod_extra):
    container = {
        "name": "app", "image": "registry.local/cmp/connector:1.2.3",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8000}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8000}},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "cmp"},
            "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": name}},
                                  "spec": {"securityContext": {"runAsNonRoot": True},
                                           "containers": [container], **pod_extra}}}}


def container(props):
    return props["spec"]["template"]["spec"]["containers"][0]


def test_good_deployment_passes_every_resource_policy():
    for policy in p.RESOURCE_POLICIES:
        assert policy.check(DEPLOYMENT, good_deployment()) == [], policy.name


@pytest.mark.parametrize("ctx", [{"runAsUser": 0}, {"runAsNonRoot": False}])
def test_non_root_catches_root(ctx):
    props = good_deployment()
    container(props)["securityContext"] = ctx
    props["spec"]["template"]["spec"]["securityContext"] = {}
    [msg] = p.check_non_root(DEPLOYMENT, props)
    assert "cmp-connector" in msg and "non-root" in msg


def ragflow(exception="ragflow-runs-as-root", arch="amd64"):
    props = good_deployment("rag", **({"nodeSelector": {"kubernetes.io/arch": arch}} if arch else {}))
    container(props)["image"] = "infiniflow/ragflow:v0.15.1"
    container(props)["securityContext"] = {"runAsUser": 0, "runAsNonRoot": False}
    props["spec"]["template"]["spec"]["securityContext"] = {}
    if exception:
        props["metadata"]["annotations"] = {p.WAIVER_ANNOTATION: exception}
    return props


def test_non_root_waiver_needs_an_annotation_naming_a_listed_exception():
    assert p.check_non_root(DEPLOYMENT, ragflow()) == []
    [msg] = p.check_non_root(DEPLOYMENT, ragflow(exception=None))
    assert p.WAIVER_ANNOTATION in msg and "runAsUser is 0" in msg
    # an annotation naming an exception that is not on the list waives nothing
    [msg] = p.check_non_root(DEPLOYMENT, ragflow(exception="i-said-so"))
    assert "'i-said-so' is not on the waiver list" in msg


@pytest.mark.parametrize("section,key", [("requests", "cpu"), ("limits", "memory")])
def test_resources_catches_missing(section, key):
    props = good_deployment()
    del container(props)["resources"][section][key]
    [msg] = p.check_resources(DEPLOYMENT, props)
    assert f"resources.{section}" in msg and key in msg


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_probes_catches_missing(probe):
    props = good_deployment()
    del container(props)[probe]
    assert p.check_probes(DEPLOYMENT, props) == [f"cmp-connector: container 'app' has no {probe}"]


def test_probes_not_required_of_jobs():
    props = good_deployment()
    del container(props)["livenessProbe"]
    assert p.check_probes("kubernetes:batch/v1:Job", props) == []


@pytest.mark.parametrize("image,bad", [
    ("nginx", True), ("nginx:latest", True), ("registry:5000/team/app", True),
    ("registry:5000/team/app:latest", True), ("registry:5000/team/app:1.0", False),
    ("infiniflow/ragflow:v0.15.1", False), ("app@sha256:" + "a" * 64, False),
    ("app:1.0@sha256:" + "b" * 64, False), ("app@md5:abc", True),
])
def test_images(image, bad):
    props = good_deployment()
    container(props)["image"] = image
    assert bool(p.check_images(DEPLOYMENT, props)) is bad


def test_images_checked_in_deployment_patches_too():
    patch = {"metadata": {"name": "cmp-gateway"},
             "spec": {"template": {"spec": {"containers": [{"name": "gw", "image": "gw:latest"}]}}}}
    assert p.check_images("kubernetes:apps/v1:DeploymentPatch", patch)
    del patch["spec"]["template"]["spec"]["containers"][0]["image"]
    assert p.check_images("kubernetes:apps/v1:DeploymentPatch", patch) == []


def test_plaintext_secret():
    secret = {"metadata": {"name": "s"}, "stringData": {"password": "x"}}
    [msg] = p.check_no_plaintext_secret("kubernetes:core/v1:Secret", secret)
    assert "stringData" in msg and "'s'" in msg
    assert p.check_no_plaintext_secret("kubernetes:core/v1:Secret", {"metadata": {"name": "s"}}) == []
    assert p.check_no_plaintext_secret("kubernetes:core/v1:ConfigMap", secret) == []


def test_ragflow_arch_pinned():
    assert p.check_arch_pinned(DEPLOYMENT, ragflow()) == []
    [msg] = p.check_arch_pinned(DEPLOYMENT, ragflow(arch=None))
    assert "kubernetes.io/arch" in msg and "infiniflow/ragflow:v0.15.1" in msg
    mirrored = ragflow(arch=None)
    container(mirrored)["image"] = "registry.local:5000/infiniflow/ragflow@sha256:" + "c" * 64
    assert p.check_arch_pinned(DEPLOYMENT, mirrored)
    assert p.check_arch_pinned(DEPLOYMENT, good_deployment()) == []


def netpol(selector, namespace="cmp"):
    return ("kubernetes:networking.k8s.io/v1:NetworkPolicy",
            {"metadata": {"name": "np", "namespace": namespace}, "spec": {"podSelector": selector}})


@pytest.mark.parametrize("selector,covered", [
    ({"matchLabels": {"app.kubernetes.io/name": "cmp-connector"}}, True),
    ({}, True),
    ({"matchLabels": {"app.kubernetes.io/name": "other"}}, False),
    ({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In",
                            "values": ["cmp-connector"]}]}, True),
    ({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "DoesNotExist"}]}, False),
])
def test_network_policy_coverage(selector, covered):
    resources = [(DEPLOYMENT, good_deployment()), netpol(selector)]
    assert (p.check_network_policy_coverage(resources) == []) is covered


def test_network_policy_must_be_in_the_same_namespace():
    resources = [(DEPLOYMENT, good_deployment()), netpol({}, namespace="elsewhere")]
    [msg] = p.check_network_policy_coverage(resources)
    assert "cmp/cmp-connector" in msg


def test_evaluate_collects_resource_and_stack_violations():
    bad = copy.deepcopy(good_deployment())
    container(bad)["image"] = "x:latest"
    found = p.evaluate([("urn:d", DEPLOYMENT, bad)])
    assert {v.policy for v in found} == {"images-pinned", "workloads-selected-by-network-policy"}
