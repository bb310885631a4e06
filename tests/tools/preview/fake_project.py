"""A small stand-in project for the preview CLI tests: stack files in a temp root, a program of our own."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra.config import ConfigError

SECRET_LITERAL = "hunter2-never-written"
CIPHERTEXT = "v1:c2VjcmV0LWNpcGhlcnRleHQ="


def write_project(root: Path, stacks: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text(
        "name: cmp-platform\nruntime: python\nconfig:\n"
        "  namespace:\n    type: string\n    default: cmp\n"
        "  replicas:\n    type: integer\n    default: 2\n")
    for name, body in stacks.items():
        (root / f"Pulumi.{name}.yaml").write_text(body)
    return root


STACK = f"""config:
  cmp-platform:image: registry.local/app:1.0
  cmp-platform:apiToken:
    secure: {CIPHERTEXT}
"""


def workload(name: str, image: str, replicas: int, namespace: str) -> None:
    labels = {"app.kubernetes.io/name": name}
    container = {
        "name": name, "image": image, "ports": [{"name": "http", "containerPort": 8000}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
    }
    k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": namespace, "labels": labels}, spec={
        "replicas": replicas, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}})
    k8s.networking.v1.NetworkPolicy(name, metadata={"name": name, "namespace": namespace},
                                    spec={"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"]})


def program(extra=None):
    """Deployment + NetworkPolicy + ConfigMap holding a secret-wrapped value + ExternalSecret + patch."""
    def run():
        cfg = pulumi.Config()
        ns = cfg.get("namespace")
        workload("app", cfg.require("image"), cfg.require_int("replicas"), ns)
        k8s.core.v1.ConfigMap("app-config", metadata={"name": "app-config", "namespace": ns}, data={
            "PORT": "8000", "TOKEN": pulumi.Output.secret(SECRET_LITERAL), "API": cfg.require_secret("apiToken")})
        k8s.apiextensions.CustomResource("app-secrets", api_version="external-secrets.io/v1",
                                         kind="ExternalSecret", metadata={"name": "app-secrets", "namespace": ns},
                                         spec={"secretStoreRef": {"kind": "ClusterSecretStore",
                                                                  "name": "vault-backend"},
                                               "target": {"name": "app-secrets"},
                                               "data": [{"secretKey": "TOKEN", "remoteRef": {
                                                   "key": "cmp/app", "property": "token"}}]})
        k8s.apps.v1.DeploymentPatch("gateway", metadata={"name": "cmp-gateway", "namespace": ns}, spec={
            "template": {"metadata": {"annotations": {"checksum/config": "abc"}}}})
        pulumi.export("secretOut", pulumi.Output.secret(SECRET_LITERAL))
        if extra:
            extra()
    return run


def check_config(files):
    """Like stacks.config's check: names the key, the value and the rule."""
    image = files.values.get("image")
    if not isinstance(image, str) or ":" not in image:
        raise ConfigError("image", image, "must be an image reference with a tag")
    return "1.33"


def secret_keys():
    return ("apiToken", "operatorKey")
