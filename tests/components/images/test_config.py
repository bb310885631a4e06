"""`cmp-platform:images.baseImage`: a stack that pins its images by digest builds them on a pinned base."""

from __future__ import annotations

import pulumi
import pytest
from pydantic import ValidationError

from components.images.config import DEFAULT_BASE_IMAGE, ImagesConfig
from infra.config import ConfigError
from tests.components.helpers import run_platform, stack_file

PINNED = "docker.io/library/python:3.11-slim-bookworm@sha256:" + "ab" * 32


def building(**images) -> ImagesConfig:
    return ImagesConfig(build=True, registry="ghcr.io/gsvdev", **images)


def test_the_default_base_is_a_tag_not_a_digest():
    assert "@sha256:" not in DEFAULT_BASE_IMAGE and ImagesConfig().base_image == DEFAULT_BASE_IMAGE


def test_a_digest_stack_refuses_an_unpinned_base_naming_the_key_and_the_command():
    error = building().base_digest_error("prod", digests_required=True)
    assert isinstance(error, ConfigError)
    assert str(error).startswith(f"config error: cmp-platform:images.baseImage = '{DEFAULT_BASE_IMAGE}': prod builds")
    assert f"make base-digest IMAGE={DEFAULT_BASE_IMAGE}" in str(error)


@pytest.mark.parametrize(("images", "required"), [
    ({"base_image": PINNED}, True),  # pinned
    ({}, False),  # dev and staging may build on the tag
])
def test_a_pinned_base_or_a_stack_without_digests_builds(images, required):
    assert building(**images).base_digest_error("prod", digests_required=required) is None


def test_a_stack_that_does_not_build_needs_no_base():
    assert ImagesConfig().base_digest_error("prod", digests_required=True) is None


@pytest.mark.parametrize("base", ["python", "python:latest", "Python:3.11"])
def test_a_base_without_a_usable_tag_is_refused(base):
    with pytest.raises(ValidationError, match=r"baseImage|base_image"):
        ImagesConfig(base_image=base)


def prod_without_ragflow() -> dict:
    """prod's stack file; Ragflow off, since its preflight asks Docker Hub at `up`."""
    config = stack_file("prod")
    config["ragflow"] = {**config.get("ragflow", {}), "enabled": False}
    return config


def test_prod_up_refuses_the_unpinned_base_and_its_preview_keeps_the_export(monkeypatch):
    config = prod_without_ragflow()
    assert config["images"]["build"] is True and "baseImage" not in config["images"]
    run_platform(config, stack="prod")  # the preview: renders (the GitOps export), warning
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: False)
    with pytest.raises(pulumi.RunError, match=r"cmp-platform:images.baseImage = .*prod builds its images on a base"):
        run_platform(config, stack="prod")


def test_prod_up_builds_on_a_pinned_base(monkeypatch):
    config = prod_without_ragflow()
    config["images"] = {**config["images"], "baseImage": PINNED}
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: False)
    rec = run_platform(config, stack="prod")
    builds = rec.by_type("docker-build:index:Image")
    assert builds and all(b.inputs["buildArgs"]["BASE_IMAGE"] == PINNED for b in builds)
