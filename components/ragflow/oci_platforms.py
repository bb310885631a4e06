"""Which platforms an image supports and which digest its tag resolves to, for Ragflow's preflight.

The preflight fails preview, not the rollout, when the image lacks the node's architecture (the reference's
``dev-slim-arm64`` on amd64 nodes: exec format error). The registry is asked through the one OCI client,
policy/oci_registry.py (it lives with the policy pack, which may import nothing of the program); this module
turns its answers and errors into the program's config errors, keyed ``ragflow.image``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.config import ConfigError
from policy import oci_registry
from policy.oci_registry import (  # noqa: F401 - the preflight's vocabulary, re-exported for its callers
    ACCEPT,
    DOCKER_HUB,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    OFFLINE_ENV,
    ImageInfo,
    ImageLocation,
    locate,
)

if TYPE_CHECKING:
    import httpx


class PreflightError(ConfigError):
    """The image cannot run where it is pinned, or its registry cannot tell: one line, like a config error."""


class RegistryError(PreflightError):
    """The registry could not answer (unreachable, refused, unknown manifest, or not asked offline)."""


def supports(platforms: list[str], node_arch: str, node_os: str = "linux") -> bool:
    """True when one platform (os/arch[/variant]) runs on nodes of that os and architecture."""
    for platform in platforms:
        parts = platform.split("/")
        if len(parts) >= 2 and parts[0] == node_os and parts[1] == node_arch:
            return True
    return False


def fetch_image(location: ImageLocation, *, timeout: float = 10.0,
                transport: httpx.BaseTransport | None = None) -> ImageInfo:
    """The platforms and the manifest digest of ``location`` (its tag resolved by the registry)."""
    try:
        return oci_registry.fetch_image(location, timeout=timeout, transport=transport)
    except oci_registry.RegistryError as exc:
        raise RegistryError("ragflow.image", str(location), str(exc)) from None


def fetch_platforms(location: ImageLocation, *, timeout: float = 10.0,
                    transport: httpx.BaseTransport | None = None) -> list[str]:
    """The platforms of an image index / manifest list, or of a single manifest's config blob."""
    return fetch_image(location, timeout=timeout, transport=transport).platforms
