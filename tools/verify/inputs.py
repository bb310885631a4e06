"""What verify checks against: the stack's outputs, its config (the stack file), addresses and credentials.

Outputs come from `pulumi stack output --json` (or a file: the offline preview writes
build/preview/<stack>/outputs.json). The stack file gives what the program declares (Vault mounts, billing
routes, Saleor's API URL and staff user, Ragflow's namespace). Addresses can be overridden (the deploy
workflow reaches the services through `kubectl port-forward`); credentials are the ones `pulumi up` uses,
read from the environment, never printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from stacks.config import StackConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNKNOWN = "[unknown]"

# Credentials, as the deploy workflow's environments hold them.
VAULT_TOKEN_ENV = "VAULT_TOKEN"
SALEOR_PASSWORD_ENV = "SALEOR_STAFF_PASSWORD"
CP_SECRET_ENV = "CMP_VERIFY_CP_JWT_SECRET"  # else the issuer's service_jwt_secret is read from Vault
PROBE_INSTANCE_ENV = "CMP_PROBE_INSTANCE_ID"


class InputError(Exception):
    """Verify cannot start (no outputs, bad stack config, bad option): one line, exit 2."""


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise InputError(f"--since {text!r}: expected a number and s, m, h or d, like 1h")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def read_outputs(stack: str, path: Path | None) -> dict[str, Any]:
    """The stack's outputs from ``path``, else from the Pulumi CLI (non-secret values; none are secret)."""
    if path is not None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"--outputs {path}: {exc}") from None
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise InputError("the pulumi CLI is not on PATH: pass --outputs FILE (e.g. build/preview/<stack>/outputs.json)")
    proc = subprocess.run([pulumi, "stack", "output", "--json", "--stack", stack], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"pulumi stack output --json --stack {stack} failed: {last}")
    return json.loads(proc.stdout)


def load_config(stack: str, root: Path = PROJECT_ROOT) -> StackConfig:
    """The stack's config as the program validates it (secrets as placeholders: verify reads none of them)."""
    from infra.config import ConfigError
    from stacks.config import SECRET_KEYS, parse_stack_config
    from tools.preview.stack_files import SECRET_PLACEHOLDER, StackFileError, load_stack_files

    try:
        files = load_stack_files(root, stack, SECRET_KEYS)
        raw = {k: v for k, v in files.values.items() if k not in SECRET_KEYS}
        return parse_stack_config(raw, {k: SECRET_PLACEHOLDER for k in SECRET_KEYS})
    except (StackFileError, ConfigError) as exc:
        raise InputError(str(exc)) from None


def known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


@dataclass
class Target:
    """Everything the checks need; built by the CLI, or directly by tests."""

    stack: str
    outputs: Mapping[str, Any]
    config: StackConfig
    service_urls: dict[str, str] = field(default_factory=dict)
    saleor_url: str | None = None
    vault_addr: str | None = None
    control_plane_url: str | None = None
    since: timedelta = timedelta(hours=1)
    probe_instance_id: str | None = None
    cp_issuer: str = "cmp-connector"
    kubeconfig: str | None = None
    kube_context: str | None = None
    timeout: float = 10.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        urls = {k: v for k, v in (self.outputs.get("serviceUrls") or {}).items() if known(v)}
        self.service_urls = {**urls, **self.service_urls}
        self.saleor_url = self.saleor_url or self.config.saleor.api_url
        self.vault_addr = self.vault_addr or self.env.get("VAULT_ADDR") or self.config.vault.address
        self.control_plane_url = (self.control_plane_url or self.config.control_plane_url).rstrip("/")
        self.probe_instance_id = self.probe_instance_id or self.env.get(PROBE_INSTANCE_ENV) or None
        self.kubeconfig = self.kubeconfig or self.env.get("KUBECONFIG") or None
