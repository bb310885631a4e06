"""`cmp-platform:images`: build the services from service_src, or use pinned refs.

Pydantic only (no Pulumi import), so `make images` (tools/images) shares it with the program.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from infra.config import PROJECT, ConfigError, Model, check_image, check_tag, has_digest

# linux/<arch>[/<variant>] as buildx and pulumi-docker-build's Platform enum spell them.
SUPPORTED_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm", "linux/386", "linux/ppc64le", "linux/s390x",
                       "linux/riscv64")
_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
# Not pinned by digest: no digest of this tag could be read where this default was written. A stack that pins
# its images by digest (prod) refuses to build on it; `make base-digest` prints the pinned ref to set instead.
DEFAULT_BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"


class ImagesConfig(Model):
    """`cmp-platform:images`. With build=false the workloads run the refs in connectorGateway.image etc."""

    build: bool = False
    registry: str | None = None  # host[:port]/path the images are pushed to, e.g. ghcr.io/gsvdev
    platforms: list[str] = Field(default_factory=lambda: ["linux/amd64", "linux/arm64"], min_length=1)
    base_image: str = DEFAULT_BASE_IMAGE  # BASE_IMAGE build arg: Debian bookworm with python3 + python3-venv
    tag: str | None = None  # default: the git commit of the checkout
    push: bool = True

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is not None and not _REGISTRY.match(value):
            raise ValueError("must be a registry host[:port]/path in lower case, like ghcr.io/gsvdev")
        return value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str]) -> list[str]:
        for platform in value:
            if platform not in SUPPORTED_PLATFORMS:
                raise ValueError(f"platform {platform!r} is not one of {', '.join(SUPPORTED_PLATFORMS)}")
        if len(set(value)) != len(value):
            raise ValueError("lists a platform twice")
        return value

    @field_validator("base_image")
    @classmethod
    def _base_image(cls, value: str) -> str:
        return check_image(value)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return value if value is None else check_tag(value)

    @model_validator(mode="after")
    def _build_needs_registry(self) -> ImagesConfig:
        if self.build and not self.registry:
            raise ValueError("images.registry is required when images.build is true")
        return self

    def base_digest_error(self, environment: str, digests_required: bool) -> ConfigError | None:
        """A stack that pins its images by digest builds them on a base pinned by digest too: else the same
        commit builds different bytes whenever the base's tag moves."""
        if not (self.build and digests_required) or has_digest(self.base_image):
            return None
        return ConfigError("images.baseImage", self.base_image, (
            f"{environment} builds its images on a base pinned by @sha256 digest: run `make base-digest "
            f"IMAGE={self.base_image}` and set it (`pulumi config set --path {PROJECT}:images.baseImage "
            f"<repo>:<tag>@sha256:<digest>`)"))
