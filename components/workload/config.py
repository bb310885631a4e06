"""What every ServiceWorkload is configured with: image, size, debug mode, callers, control plane, body limit.

The two services' models (components/connector_gateway/config.py, components/provisioner/config.py) extend
``ServiceSettings``.
"""

from __future__ import annotations

from pydantic import Field

from infra.config import ImageRef, Model, Peer, Resources, peer, resources


class WorkloadSettings(Model):
    """What every ServiceWorkload has: image, size, debug mode."""

    image: ImageRef
    replicas: int = Field(default=2, ge=1, le=50)
    debug: bool = False
    resources: Resources = Field(default_factory=lambda: resources("100m", "128Mi", "500m", "256Mi"))


class ServiceSettings(WorkloadSettings):
    """What both platform services share: their callers, the control plane they call, the request body limit."""

    ingress_from: list[Peer] = Field(default_factory=list)  # each service names its callers
    control_plane_egress: Peer = Field(default_factory=lambda: peer(None, "cmp-control-plane", 8000))
    external_https: bool = True  # SaaS APIs (gateway), the JWKS of a Saleor outside the cluster (provisioner)
    cp_timeout_seconds: float = Field(default=5, gt=0)
    max_body_bytes: int = Field(gt=0)  # each service sets its default
