"""Which platforms an image supports, asked of its registry through the OCI distribution API.

Ragflow's preflight uses it so an image without the node's architecture (the reference's
``dev-slim-arm64`` on amd64 nodes: exec format error) fails preview instead of the rollout.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.config import ConfigError

if TYPE_CHECKING:  # imported where used: only registryPreflight talks to a registry
    import httpx

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# A registry answers 404 when Accept lacks the stored type, so ask for all four.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
DOCKER_HUB = "https://registry-1.docker.io"
# Set (to anything but empty) by the offline preview: no registry is asked, every lookup fails as an
# unreachable registry does, so the preview's output does not depend on whether this machine has a network.
OFFLINE_ENV = "CMP_OFFLINE"


class PreflightError(ConfigError):
    """The image cannot run where it is pinned, or its registry cannot tell: one line, like a config error."""


class RegistryError(PreflightError):
    """The registry could not answer (unreachable, refused, unknown manifest)."""


@dataclass(frozen=True)
class ImageLocation:
    """Where to ask: registry base URL, repository and reference (tag or digest)."""

    registry: str
    repository: str
    reference: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.reference}"


def locate(image: str, reference: str, registry_url: str | None = None) -> ImageLocation:
    """``infiniflow/ragflow`` -> Docker Hub ``infiniflow/ragflow``; ``host:5000/x/y`` -> https://host:5000.

    ``registry_url`` overrides the host (e.g. a mirror, or a plain-http registry on loopback).
    """
    first, _, rest = image.partition("/")
    has_host = bool(rest) and ("." in first or ":" in first or first == "localhost")
    repository = rest if has_host else image
    if registry_url:
        registry = registry_url.rstrip("/")
    elif has_host:
        registry = f"https://{first}"
    else:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageLocation(registry=registry, repository=repository, reference=reference)


def _platform(os_name: str | None, arch: str | None, variant: str | None = None) -> str:
    parts = [os_name or "unknown", arch or "unknown"]
    if variant:
        parts.append(variant)
    return "/".join(parts)


def supports(platforms: list[str], node_arch: str, node_os: str = "linux") -> bool:
    """True when one platform (os/arch[/variant]) runs on nodes of that os and architecture."""
    for platform in platforms:
        parts = platform.split("/")
        if len(parts) >= 2 and parts[0] == node_os and parts[1] == node_arch:
            return True
    return False


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class _Session:
    """One preflight's HTTP calls; anonymous Bearer tokens fetched when a registry asks for them."""

    def __init__(self, location: ImageLocation, client: httpx.Client):
        self.location = location
        self.client = client
        self.token: str | None = None

    def get(self, path: str, accept: str) -> httpx.Response:
        url = f"{self.location.registry}/v2/{self.location.repository}/{path}"
        response = self._send(url, accept)
        if response.status_code == 401 and self.token is None:
            self.token = self._token(response)
            response = self._send(url, accept)
        if response.status_code != 200:
            what = "manifest" if path.startswith("manifests/") else "blob"
            raise RegistryError(
                "ragflow.image", str(self.location),
                f"registry {self.location.registry} answered HTTP {response.status_code} for the {what} "
                f"{path.split('/', 1)[1]} of {self.location.repository}")
        return response

    def _send(self, url: str, accept: str) -> httpx.Response:
        import httpx

        headers = {"Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            return self.client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError("ragflow.image", str(self.location),
                                f"registry {self.location.registry} unreachable: {type(exc).__name__}") from None

    def _token(self, response: httpx.Response) -> str:
        import httpx

        challenge = response.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer "):
            raise RegistryError("ragflow.image", str(self.location),
                                f"registry {self.location.registry} answered HTTP 401 without a Bearer challenge")
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError("ragflow.image", str(self.location),
                                f"registry {self.location.registry} sent a Bearer challenge without a realm")
        try:
            answer = self.client.get(realm, params=params)
        except httpx.HTTPError as exc:
            raise RegistryError("ragflow.image", str(self.location),
                                f"token service {realm} unreachable: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise RegistryError("ragflow.image", str(self.location),
                                f"token service {realm} of registry {self.location.registry} answered HTTP "
                                f"{answer.status_code}")
        body = answer.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError("ragflow.image", str(self.location), f"token service {realm} returned no token")
        return token


@dataclass(frozen=True)
class ImageInfo:
    """What the registry says about a reference: the platforms it runs on and the digest it resolves to (the
    index digest for a multi-arch tag: what a pod pinned by digest pulls)."""

    platforms: list[str]
    digest: str


def fetch_platforms(location: ImageLocation, *, timeout: float = 10.0,
                    transport: httpx.BaseTransport | None = None) -> list[str]:
    """The platforms of an image index / manifest list, or of a single manifest's config blob."""
    return fetch_image(location, timeout=timeout, transport=transport).platforms


def fetch_image(location: ImageLocation, *, timeout: float = 10.0,
                transport: httpx.BaseTransport | None = None) -> ImageInfo:
    """The platforms and the manifest digest of ``location`` (its tag resolved by the registry)."""
    if os.environ.get(OFFLINE_ENV):
        raise RegistryError("ragflow.image", str(location),
                            f"registry {location.registry} unreachable: not asked offline ({OFFLINE_ENV} is set)")
    import hashlib

    import httpx

    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=True) as client:
        session = _Session(location, client)
        response = session.get(f"manifests/{location.reference}", ACCEPT)
        # The registry names the digest; else it is the sha256 of the manifest bytes it served.
        digest = (response.headers.get("docker-content-digest")
                  or f"sha256:{hashlib.sha256(response.content).hexdigest()}")
        return ImageInfo(_platforms_of(session, location, response), digest)


def _platforms_of(session: _Session, location: ImageLocation, response: httpx.Response) -> list[str]:
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    body = response.json()
    media_type = media_type or body.get("mediaType", "")
    if media_type in (OCI_INDEX, DOCKER_LIST):
        platforms = []
        for entry in body.get("manifests", []):
            p = entry.get("platform") or {}
            if p.get("os") == "unknown":  # attestation manifests of buildx
                continue
            platforms.append(_platform(p.get("os"), p.get("architecture"), p.get("variant")))
        return sorted(set(platforms))
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        digest = (body.get("config") or {}).get("digest")
        if not digest:
            raise RegistryError("ragflow.image", str(location),
                                f"registry {location.registry}: manifest has no config blob")
        config = session.get(f"blobs/{digest}", "application/json, */*").json()
        return [_platform(config.get("os"), config.get("architecture"), config.get("variant"))]
    raise RegistryError("ragflow.image", str(location),
                        f"registry {location.registry} answered an unknown manifest type {media_type!r}")
