"""Ragflow: arch pinning, the named root exception, and the image-platform preflight (config and registry)."""

from __future__ import annotations

import json

import httpx
import pulumi
import pytest

from components.ragflow.oci_platforms import (
    DOCKER_HUB,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    RegistryError,
    fetch_platforms,
    locate,
    supports,
)
from tests.components.helpers import base_config, run_platform, validate_k8s
from tests.support.net import free_port

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def ragflow_config(**ragflow):
    config = base_config()
    config["ragflow"] = {**config["ragflow"], **ragflow}
    return config


def test_deployment_pins_the_arch_and_records_the_root_exception():
    rec = run_platform(base_config())
    component = rec.one("cmp:platform:Ragflow", "ragflow")
    deployment = rec.one(DEPLOYMENT, "ragflow")
    assert deployment.parent == component.urn
    inputs = deployment.inputs
    assert inputs["metadata"]["namespace"] == "rag"
    assert inputs["metadata"]["annotations"] == {"cmp.platform/security-exception": "ragflow-runs-as-root"}
    pod = inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = pod["containers"]
    assert container["image"] == "infiniflow/ragflow:v0.15.1"
    assert container["imagePullPolicy"] == "Always"
    context = container["securityContext"]
    assert context["runAsUser"] == 0 and context["allowPrivilegeEscalation"] is False
    # Root, but without NET_RAW and the runtime's other defaults: only what nginx needs as root.
    assert context["capabilities"] == {"drop": ["ALL"],
                                       "add": ["NET_BIND_SERVICE", "SETGID", "SETUID", "CHOWN"]}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert container["livenessProbe"] and container["readinessProbe"]
    for r in rec.children_of(component.urn):
        validate_k8s(r.inputs)
    assert component.registered_outputs["platforms"] == ["linux/amd64", "linux/arm64"]


def test_callers_default_to_the_stacks_namespace_and_can_be_set():
    policy = run_platform(base_config(namespace="platform")).one(NETWORK_POLICY, "ragflow").inputs
    assert [rule["from"] for rule in policy["spec"]["ingress"]] == [
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}}}]]
    custom = ragflow_config(ingressFrom=[{"namespace": "cmp", "podLabels": {"app.kubernetes.io/name": "cmp-runner"}}])
    policy = run_platform(custom).one(NETWORK_POLICY, "ragflow").inputs
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "cmp-runner"}}


def test_config_platforms_mismatch_fails_with_one_line():
    with pytest.raises(pulumi.RunError) as info:
        run_platform(ragflow_config(tag="dev-slim-arm64", platforms=["linux/arm64"]))
    message = str(info.value)
    assert "\n" not in message
    assert "infiniflow/ragflow:dev-slim-arm64" in message and "linux/arm64" in message
    assert "node arch linux/amd64" in message


def test_arm64_nodes_accept_the_arm64_tag():
    rec = run_platform(ragflow_config(tag="dev-slim-arm64", platforms=["linux/arm64"], nodeArch="arm64"))
    pod = rec.one(DEPLOYMENT, "ragflow").inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "arm64"}


def test_disabled_ragflow_registers_nothing():
    rec = run_platform(ragflow_config(enabled=False))
    assert not [r for r in rec.resources if "ragflow" in r.urn.lower() or r.name == "ragflow"]
    assert "ragflow" not in rec.outputs


def test_locate_and_supports():
    hub = locate("infiniflow/ragflow", "v0.15.1")
    assert (hub.registry, hub.repository, hub.reference) == (DOCKER_HUB, "infiniflow/ragflow", "v0.15.1")
    assert locate("nginx", "1").repository == "library/nginx"
    own = locate("registry.example.com:5000/team/app", "1")
    assert (own.registry, own.repository) == ("https://registry.example.com:5000", "team/app")
    assert locate("team/app", "1", "http://127.0.0.1:5000/").registry == "http://127.0.0.1:5000"
    assert supports(["linux/arm64/v8"], "arm64") and not supports(["linux/arm64"], "amd64")
    assert not supports(["windows/amd64"], "amd64")


# --- the registry path, against a real Debian docker-registry on loopback -------------------------------------


@pytest.mark.registry
def test_platforms_of_a_pushed_multi_arch_index(docker_registry):
    docker_registry.push_index("infiniflow/ragflow", "v0.15.1", ["amd64", "arm64"])
    location = locate("infiniflow/ragflow", "v0.15.1", docker_registry.url)
    assert fetch_platforms(location) == ["linux/amd64", "linux/arm64"]


@pytest.mark.registry
def test_platforms_of_a_single_arch_manifest_come_from_its_config_blob(docker_registry):
    digest, _ = docker_registry.push_image("infiniflow/ragflow", "dev-slim-arm64", "arm64")
    assert fetch_platforms(locate("infiniflow/ragflow", "dev-slim-arm64", docker_registry.url)) == ["linux/arm64"]
    assert fetch_platforms(locate("infiniflow/ragflow", digest, docker_registry.url)) == ["linux/arm64"]


@pytest.mark.registry
def test_unknown_tag_names_the_registry_and_status(docker_registry):
    with pytest.raises(RegistryError) as info:
        fetch_platforms(locate("infiniflow/ragflow", "no-such-tag", docker_registry.url))
    assert f"registry {docker_registry.url} answered HTTP 404" in str(info.value)


@pytest.mark.registry
def test_program_preflight_against_the_registry(docker_registry):
    docker_registry.push_index("infiniflow/ragflow", "v0.15.1", ["amd64", "arm64"])
    docker_registry.push_image("infiniflow/ragflow", "dev-slim-arm64", "arm64")
    ok = run_platform(ragflow_config(platforms=None, registryPreflight=True, registryUrl=docker_registry.url))
    assert ok.one("cmp:platform:Ragflow", "ragflow").registered_outputs["platforms"] == [
        "linux/amd64", "linux/arm64"]
    with pytest.raises(pulumi.RunError) as info:
        run_platform(ragflow_config(platforms=None, registryPreflight=True, registryUrl=docker_registry.url,
                                    tag="dev-slim-arm64"))
    message = str(info.value)
    assert "image infiniflow/ragflow:dev-slim-arm64 supports linux/arm64, not the node arch linux/amd64" in message
    assert "\n" not in message


# --- HTTP behaviour a local registry does not show: token auth, Docker media types, errors -------------------


def _hub(handler):
    return httpx.MockTransport(handler)


def test_bearer_token_flow_and_docker_manifest_list():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "auth.example.com":
            assert request.url.params["scope"] == "repository:team/app:pull"
            return httpx.Response(200, json={"token": "tkn"})
        if request.headers.get("authorization") != "Bearer tkn":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token",'
                                                                    'service="registry.example.com",'
                                                                    'scope="repository:team/app:pull"'})
        body = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
            {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:" + "2" * 64, "platform": {"os": "unknown", "architecture": "unknown"}}]}
        return httpx.Response(200, content=json.dumps(body), headers={"Content-Type": DOCKER_LIST})

    location = locate("registry.example.com/team/app", "1.0")
    assert fetch_platforms(location, transport=_hub(handler)) == ["linux/arm64/v8"]
    accept = seen[0].headers["accept"]
    for media_type in ("image.index", "manifest.list", "image.manifest", "manifest.v2"):
        assert media_type in accept


def test_docker_single_manifest_and_refused_token():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/manifests/1.0"):
            body = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"digest": "sha256:" + "3" * 64}, "layers": []}
            return httpx.Response(200, json=body, headers={"Content-Type": DOCKER_MANIFEST})
        return httpx.Response(200, json={"os": "linux", "architecture": "amd64"})

    assert fetch_platforms(locate("registry.example.com/team/app", "1.0"), transport=_hub(handler)) == [
        "linux/amd64"]

    def refuses(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            return httpx.Response(403)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token"'})

    with pytest.raises(RegistryError, match=r"token service https://auth.example.com/token of registry "
                                            r"https://registry.example.com answered HTTP 403"):
        fetch_platforms(locate("registry.example.com/team/app", "1.0"), transport=_hub(refuses))


def test_unreachable_registry_is_one_line():
    location = locate("team/app", "1.0", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match=r"registry http://127.0.0.1:\d+ unreachable: ConnectError"):
        fetch_platforms(location, timeout=2)
