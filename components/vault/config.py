"""`cmp-platform:vault`: the one Vault settings model, read by the program and by the seed provider alike."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from components.vault.paths import CONNECTOR_MOUNT, SECRET_MOUNT, check_rotations
from infra.config import HttpUrl, Model, dns_label


class VaultConfig(Model):
    """Where Vault is, its mounts, how seeds are rotated and destroyed, and who may read through ESO."""

    address: HttpUrl = "http://vault.vault.svc.cluster.local:8200"
    secret_mount: str = SECRET_MOUNT
    kv_mount: str = CONNECTOR_MOUNT
    adopt_mounts: bool = False
    delete_on_destroy: bool = False
    kubernetes_auth_path: str = "kubernetes"
    kubernetes_host: HttpUrl = "https://kubernetes.default.svc"
    # Seed provider: Vault client timeout, and per-key rotation triggers ("cmp/connector.service_jwt_secret":
    # "2026-11"); changing a trigger writes a new value for that key only.
    timeout_seconds: float = Field(default=5, gt=0)
    # A trigger is text; `pulumi config set --path` stores 20261101 as a number, which counts as its text.
    rotations: dict[str, Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int | float) else v)]] = (
        Field(default_factory=dict))
    # The ESO controller's ServiceAccount, bound by the Vault role the ClusterSecretStore uses.
    external_secrets_namespace: str = "external-secrets"
    external_secrets_service_account: str = "external-secrets"

    @field_validator("secret_mount", "kv_mount", "kubernetes_auth_path")
    @classmethod
    def _mounts(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", value):
            raise ValueError("must be one Vault mount path segment of [a-z0-9_-]")
        return value

    @field_validator("rotations")
    @classmethod
    def _rotations(cls, value: dict[str, str]) -> dict[str, str]:
        return check_rotations(value)

    @field_validator("external_secrets_namespace", "external_secrets_service_account")
    @classmethod
    def _eso_names(cls, value: str) -> str:
        return dns_label(value)
