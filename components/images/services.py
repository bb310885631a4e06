"""The one table of service images: which service_src directory builds which image.

Both the Pulumi component (components/images/component.py) and the local build (`make images`) read it, so the
two can never disagree about an image name or a Dockerfile path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServiceImage:
    """A service built from service_src/<directory>/Dockerfile with the repository root as context."""

    service: str  # key used in config and outputs, e.g. "connector_gateway"
    directory: str  # path relative to the repository root
    image: str  # repository name in the registry

    @property
    def dockerfile(self) -> str:
        return f"{self.directory}/Dockerfile"


SERVICE_IMAGES: dict[str, ServiceImage] = {
    "connector_gateway": ServiceImage("connector_gateway", "service_src/connector_gateway", "cmp-connector-gateway"),
    "provisioner": ServiceImage("provisioner", "service_src/provisioner", "cmp-provisioner"),
}


class MissingBuildInput(ValueError):
    """A service directory or its Dockerfile is absent; the message is one line naming the path."""


def check_build_inputs(svc: ServiceImage, root: Path = REPO_ROOT) -> Path:
    """Return the Dockerfile path, or raise MissingBuildInput naming the missing directory or file."""
    directory = root / svc.directory
    if not directory.is_dir():
        raise MissingBuildInput(f"image {svc.image}: service directory {svc.directory}/ does not exist")
    dockerfile = root / svc.dockerfile
    if not dockerfile.is_file():
        raise MissingBuildInput(f"image {svc.image}: Dockerfile {svc.dockerfile} does not exist")
    return dockerfile
