"""BuiltImage registers what pulumi_docker_build's typed Image registers for the same build."""

from __future__ import annotations

import pulumi
import pulumi_docker_build as docker_build

from components.images.config import SUPPORTED_PLATFORMS
from components.images.image import IMAGE_TYPE, BuiltImage
from infra.recording import UNKNOWN, run_program

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


def typed(name: str, opts: pulumi.ResourceOptions) -> docker_build.Image:
    return docker_build.Image(
        name, context=docker_build.BuildContextArgs(location=BUILD["context"]),
        dockerfile=docker_build.DockerfileArgs(location=BUILD["dockerfile"]), build_args=BUILD["build_args"],
        platforms=[docker_build.Platform(p) for p in BUILD["platforms"]], tags=BUILD["tags"],
        labels=BUILD["labels"], push=BUILD["push"], build_on_preview=BUILD["build_on_preview"], opts=opts)


def test_registration_equals_the_typed_class():
    def program():
        # Under two parents: the same type and name would otherwise be one URN (the engine refuses that).
        left = pulumi.ComponentResource("test:index:Typed", "typed")
        right = pulumi.ComponentResource("test:index:Plain", "plain")
        typed("img", pulumi.ResourceOptions(parent=left))
        BuiltImage("img", **BUILD, opts=pulumi.ResourceOptions(parent=right))

    rec = run_program(program, stack="dev", config={})
    typed_rec, plain_rec = (next(r for r in rec.resources if r.name == "img" and r.parent.endswith(p))
                            for p in ("Typed::typed", "Plain::plain"))
    assert plain_rec.type == typed_rec.type == IMAGE_TYPE
    assert plain_rec.inputs == typed_rec.inputs
    assert plain_rec.custom and plain_rec.additional_secret_outputs == typed_rec.additional_secret_outputs
    assert plain_rec.outputs["ref"] == plain_rec.outputs["digest"] == UNKNOWN
    assert plain_rec.plugin_version == typed_rec.plugin_version and plain_rec.plugin_version
    assert plain_rec.plugin_download_url == typed_rec.plugin_download_url


def test_every_platform_the_config_accepts_is_one_the_provider_knows():
    known = {p.value for p in docker_build.Platform}
    assert set(SUPPORTED_PLATFORMS) <= known, sorted(set(SUPPORTED_PLATFORMS) - known)
