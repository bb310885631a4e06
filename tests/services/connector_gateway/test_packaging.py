"""The image contract: installs `.[gateway]` only, runs as uid 10001, needs no writable root filesystem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCKERFILE = Path("service_src/connector_gateway/Dockerfile")


def test_dockerfile_is_lint_clean_non_root_and_gateway_only():
    text = DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE" in text and "FROM ${BASE_IMAGE}" in text
    # Only the gateway extra's requirements (no Pulumi), and only the gateway's sources.
    assert "['optional-dependencies']['gateway']" in text and "'infra'" not in text
    assert "infra" not in text and "components" not in text and "COPY service_src/connector_gateway " in text
    assert "USER 10001:10001" in text and "PYTHONDONTWRITEBYTECODE=1" in text
    assert 'ENTRYPOINT ["cmp-connector-gateway"]' in text
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_service_imports_neither_pulumi_nor_the_program():
    code = (
        "import sys, service_src.connector_gateway.app, service_src.connector_gateway.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'components', 'infra', 'stacks'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
