"""Ragflow's digest is read, never typed: with registryPreflight the registry resolves the tag to its index
digest and the pods run `image:tag@digest`; a preview without the registry shows it unknown."""

from __future__ import annotations

import re

import pulumi
import pytest

from components.ragflow.component import resolve
from components.ragflow.config import RagflowConfig
from components.ragflow.oci_platforms import OFFLINE_ENV, RegistryError
from infra.recording import UNKNOWN
from tests.components.helpers import base_config, run_platform

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there


def ragflow_config(**ragflow):
    config = base_config()
    config["ragflow"] = {**config["ragflow"], **ragflow}
    return config


def image_of(rec):
    return rec.one(DEPLOYMENT, "ragflow").inputs["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.registry
def test_the_registry_resolves_the_tag_to_the_index_digest_the_pods_run(docker_registry):
    digest = docker_registry.push_index("infiniflow/ragflow", "v0.15.1", ["amd64", "arm64"])
    rec = run_platform(ragflow_config(platforms=None, registryPreflight=True, registryUrl=docker_registry.url))
    assert image_of(rec) == f"infiniflow/ragflow:v0.15.1@{digest}"
    assert rec.outputs["ragflow"]["image"] == f"infiniflow/ragflow:v0.15.1@{digest}"


@pytest.mark.registry
def test_a_pinned_digest_is_kept_and_checked_against_the_registry(docker_registry):
    digest = docker_registry.push_index("infiniflow/ragflow", "v0.15.1", ["arm64"])
    with pytest.raises(pulumi.RunError, match="supports linux/arm64, not the node arch linux/amd64"):
        run_platform(ragflow_config(platforms=None, registryPreflight=True, registryUrl=docker_registry.url,
                                    digest=digest))


def test_a_preview_without_the_registry_shows_the_digest_unknown():
    rec = run_platform(ragflow_config(platforms=["linux/amd64"], registryPreflight=True, registryUrl=UNREACHABLE))
    assert image_of(rec) == UNKNOWN
    assert rec.one(DEPLOYMENT, "ragflow").inputs["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/arch": "amd64"}


def test_without_the_registry_nor_platforms_or_at_up_the_preflight_fails(monkeypatch):
    with pytest.raises(pulumi.RunError, match=re.escape("registry http://127.0.0.1:9 unreachable")):
        run_platform(ragflow_config(platforms=None, registryPreflight=True, registryUrl=UNREACHABLE))
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: False)  # `pulumi up` always asks the registry
    settings = RagflowConfig(platforms=["linux/amd64"], registry_preflight=True, registry_url=UNREACHABLE)
    with pytest.raises(RegistryError, match="unreachable"):
        resolve(settings)


def test_without_registry_preflight_the_operators_digest_or_the_tag_is_used():
    digest = "sha256:" + "4f" * 32
    assert resolve(RagflowConfig(platforms=["linux/amd64"], digest=digest)).digest == digest
    assert image_of(run_platform(ragflow_config(digest=digest))) == f"infiniflow/ragflow:v0.15.1@{digest}"
    assert image_of(run_platform(ragflow_config())) == "infiniflow/ragflow:v0.15.1"


@pytest.mark.registry
def test_offline_no_registry_is_asked_even_one_that_answers(docker_registry, monkeypatch):
    docker_registry.push_index("infiniflow/ragflow", "v0.15.1", ["amd64"])
    monkeypatch.setenv(OFFLINE_ENV, "1")  # what the offline preview sets
    rec = run_platform(ragflow_config(platforms=["linux/amd64"], registryPreflight=True,
                                      registryUrl=docker_registry.url))
    assert image_of(rec) == UNKNOWN
    settings = RagflowConfig(platforms=None, registry_preflight=True, registry_url=docker_registry.url)
    with pytest.raises(RegistryError, match=f"not asked offline \\({OFFLINE_ENV} is set\\)"):
        resolve(settings)
