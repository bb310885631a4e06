"""`cmp-platform:ragflow`: the image, the node architecture it is pinned to, and how its platforms are known."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from infra.config import DIGEST, DnsLabel, HttpUrl, Model, Peer, Resources, check_tag, resources

NodeArch = Literal["amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64"]


class RagflowConfig(Model):
    """A multi-arch tag pinned to a node architecture, preflighted before deploy."""

    enabled: bool = True
    namespace: DnsLabel = "rag"
    name: DnsLabel = "ragflow"  # the policy pack waives root and pins the arch by this name
    image: str = "infiniflow/ragflow"
    tag: str = "v0.15.1"
    digest: str | None = None
    node_arch: NodeArch = "amd64"
    # The image's platforms (os/arch[/variant]) as the operator checked them; or ask the registry.
    platforms: list[str] | None = None
    registry_preflight: bool = False
    registry_url: HttpUrl | None = None  # default: derived from the image (Docker Hub for bare names)
    replicas: int = Field(default=1, ge=1, le=10)
    resources: Resources = Field(default_factory=lambda: resources("1", "4Gi", "4", "8Gi"))
    http_port: int = Field(default=80, ge=1, le=65535)
    api_port: int = Field(default=9380, ge=1, le=65535)
    # None: every pod of the stack's namespace (where the runtime and runner call it from).
    ingress_from: list[Peer] | None = None

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        check_tag(value)
        if value == "latest":
            raise ValueError("must not use the moving tag 'latest'")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not DIGEST.match(value):
            raise ValueError("must be sha256:<64 lower-case hex>")
        return value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str] | None) -> list[str] | None:
        for platform in value or []:
            if not re.match(r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$", platform):
                raise ValueError(f"platform {platform!r} must be os/arch[/variant], e.g. linux/amd64")
        return value

    @property
    def image_ref(self) -> str:
        ref = f"{self.image}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref
