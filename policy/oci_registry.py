"""The one OCI registry client: what a registry says about an image, through the OCI distribution API.

Two callers ask registries: the policy pack (is a pinned digest known to its registry?) and Ragflow's
preflight in the program (which platforms does a tag support, and which digest does it resolve to?). The
client lives here, in policy/, because the CrossGuard pack runs with this folder as its program directory,
with only policy/requirements.txt installed, and may import nothing of the program; the program may import
from here (components/ragflow/oci_platforms.py does).

Offline means offline: with ``CMP_OFFLINE`` set (the offline preview sets it) no request is sent and every
call raises ``NotAskedOffline``, so a preview's output does not depend on the machine's network.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: most runs ask no registry
    import httpx

OFFLINE_ENV = "CMP_OFFLINE"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# A registry answers 404 when Accept lacks the stored type, so ask for all four.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
DOCKER_HUB = "https://registry-1.docker.io"
_LOOPBACK = ("localhost", "127.0.0.1")  # a registry on loopback speaks plain http (tests, `make images`)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """The registry could not answer (unreachable, refused, unknown manifest): one line."""


class NotAskedOffline(RegistryError):
    """``CMP_OFFLINE`` is set: no registry is asked."""


def offline() -> bool:
    return bool(os.environ.get(OFFLINE_ENV))


@dataclass(frozen=True)
class ImageLocation:
    """Where to ask: registry base URL, repository and reference (tag or digest)."""

    registry: str
    repository: str
    reference: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.reference}"


def locate(image: str, reference: str, registry_url: str | None = None) -> ImageLocation:
    """``infiniflow/ragflow`` -> Docker Hub ``library/``-less ``infiniflow/ragflow``; ``host:5000/x/y`` ->
    https://host:5000 (http on loopback). ``registry_url`` overrides the host (a mirror, a plain-http registry)."""
    first, _, rest = image.partition("/")
    has_host = bool(rest) and ("." in first or ":" in first or first == "localhost")
    repository = rest if has_host else image
    if registry_url:
        registry = registry_url.rstrip("/")
    elif has_host:
        registry = f"{'http' if first.split(':')[0] in _LOOPBACK else 'https'}://{first}"
    else:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageLocation(registry=registry, repository=repository, reference=reference)


def locate_pinned(image: str) -> ImageLocation | None:
    """``[host/]repo[:tag]@sha256:<hex>`` -> where its digest is asked; None for a ref without a digest."""
    name, at, digest = image.partition("@")
    if not at or not digest.startswith("sha256:"):
        return None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return locate(name, digest)


class Session:
    """One caller's requests to one repository; an anonymous Bearer token fetched when the registry asks."""

    def __init__(self, location: ImageLocation, client: httpx.Client):
        self.location = location
        self.client = client
        self.token: str | None = None

    def send(self, method: str, path: str, accept: str) -> httpx.Response:
        """``<method> /v2/<repository>/<path>``, once more with a token after a 401 challenge."""
        url = f"{self.location.registry}/v2/{self.location.repository}/{path}"
        response = self._send(method, url, accept)
        if response.status_code == 401 and self.token is None:
            self.token = self._token(response)
            response = self._send(method, url, accept)
        return response

    def get(self, path: str, accept: str) -> httpx.Response:
        response = self.send("GET", path, accept)
        if response.status_code != 200:
            what = "manifest" if path.startswith("manifests/") else "blob"
            raise RegistryError(f"registry {self.location.registry} answered HTTP {response.status_code} for the "
                                f"{what} {path.split('/', 1)[1]} of {self.location.repository}")
        return response

    def _send(self, method: str, url: str, accept: str) -> httpx.Response:
        import httpx

        headers = {"Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            return self.client.request(method, url, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.location.registry} unreachable: {type(exc).__name__}") from None

    def _token(self, response: httpx.Response) -> str:
        import httpx

        registry = self.location.registry
        challenge = response.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer "):
            raise RegistryError(f"registry {registry} answered HTTP 401 without a Bearer challenge")
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError(f"registry {registry} sent a Bearer challenge without a realm")
        try:
            answer = self.client.get(realm, params=params)
        except httpx.HTTPError as exc:
            raise RegistryError(f"token service {realm} unreachable: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise RegistryError(f"token service {realm} of registry {registry} answered HTTP {answer.status_code}")
        body = answer.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token service {realm} returned no token")
        return token


def _client(location: ImageLocation, timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    if offline():
        raise NotAskedOffline(f"registry {location.registry} unreachable: not asked offline ({OFFLINE_ENV} is set)")
    import httpx

    return httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)


@dataclass(frozen=True)
class ImageInfo:
    """What the registry says about a reference: the platforms it runs on and the digest it resolves to (the
    index digest for a multi-arch tag: what a pod pinned by digest pulls)."""

    platforms: list[str]
    digest: str


def fetch_image(location: ImageLocation, *, timeout: float = 10.0,
                transport: httpx.BaseTransport | None = None) -> ImageInfo:
    """The platforms and the manifest digest of ``location`` (its tag resolved by the registry)."""
    with _client(location, timeout, transport) as client:
        session = Session(location, client)
        response = session.get(f"manifests/{location.reference}", ACCEPT)
        # The registry names the digest; else it is the sha256 of the manifest bytes it served.
        digest = (response.headers.get("docker-content-digest")
                  or f"sha256:{hashlib.sha256(response.content).hexdigest()}")
        return ImageInfo(_platforms_of(session, response), digest)


def manifest_known(location: ImageLocation, *, timeout: float = 5.0,
                   transport: httpx.BaseTransport | None = None) -> bool:
    """``HEAD /v2/<repo>/manifests/<reference>``: True on 200, False on 404; anything else is a RegistryError
    (the registry could not tell)."""
    with _client(location, timeout, transport) as client:
        status = Session(location, client).send("HEAD", f"manifests/{location.reference}", ACCEPT).status_code
    if status in (200, 404):
        return status == 200
    raise RegistryError(f"registry {location.registry} answered HTTP {status} for the manifest "
                        f"{location.reference} of {location.repository}")


def _platform(os_name: str | None, arch: str | None, variant: str | None = None) -> str:
    return "/".join([os_name or "unknown", arch or "unknown", *([variant] if variant else [])])


def _platforms_of(session: Session, response: httpx.Response) -> list[str]:
    registry = session.location.registry
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    body: Any = response.json()
    media_type = media_type or body.get("mediaType", "")
    if media_type in (OCI_INDEX, DOCKER_LIST):
        platforms = [_platform(p.get("os"), p.get("architecture"), p.get("variant"))
                     for entry in body.get("manifests", []) for p in [entry.get("platform") or {}]
                     if p.get("os") != "unknown"]  # "unknown": buildx's attestation manifests
        return sorted(set(platforms))
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        digest = (body.get("config") or {}).get("digest")
        if not digest:
            raise RegistryError(f"registry {registry}: manifest has no config blob")
        config = session.get(f"blobs/{digest}", "application/json, */*").json()
        return [_platform(config.get("os"), config.get("architecture"), config.get("variant"))]
    raise RegistryError(f"registry {registry} answered an unknown manifest type {media_type!r}")
