"""built_image registers one docker-build Image as the provider takes it, from the program's build settings."""

from __future__ import annotations

import pulumi_docker_build as docker_build

from components.images.config import SUPPORTED_PLATFORMS
from components.images.image import built_image
from infra.recording import DOCKER_BUILD_IMAGE, UNKNOWN, run_program

BUILD = {
    "context": ".",
    "dockerfile": "service_src/provisioner/Dockerfile",
    "build_args": {"BASE_IMAGE": "registry.local/base:1"},
    "platforms": ["linux/amd64", "linux/arm64"],
    "tags": ["registry.local/cmp-provisioner:abc123"],
    "labels": {"org.opencontainers.image.title": "cmp-provisioner"},
    "push": True,
    "build_on_preview": False,
}


def test_the_registration_carries_the_build_settings_in_the_providers_names():
    rec = run_program(lambda: built_image("img", **BUILD), stack="dev", config={})
    image = rec.one(DOCKER_BUILD_IMAGE, "img")
    assert image.custom and image.plugin_version
    assert image.inputs == {
        "buildArgs": {"BASE_IMAGE": "registry.local/base:1"},
        "buildOnPreview": False,
        "context": {"location": "."},
        "dockerfile": {"location": "service_src/provisioner/Dockerfile"},
        "labels": {"org.opencontainers.image.title": "cmp-provisioner"},
        "network": "default",
        "platforms": ["linux/amd64", "linux/arm64"],
        "push": True,
        "tags": ["registry.local/cmp-provisioner:abc123"],
    }
    assert "secrets" in image.additional_secret_outputs
    assert image.outputs["ref"] == image.outputs["digest"] == UNKNOWN  # known only after a real build


def test_every_platform_the_config_accepts_is_one_the_provider_knows():
    known = {p.value for p in docker_build.Platform}
    assert set(SUPPORTED_PLATFORMS) <= known, sorted(set(SUPPORTED_PLATFORMS) - known)
