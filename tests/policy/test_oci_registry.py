"""The one OCI registry client (policy/oci_registry.py): the pack's digest check and Ragflow's preflight use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from policy import oci_registry as oci

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
DIGEST = "sha256:" + "5e" * 32


def test_a_pinned_ref_is_asked_where_its_digest_lives():
    assert oci.locate_pinned(f"ghcr.io/team/app:1.0@{DIGEST}") == oci.ImageLocation(
        "https://ghcr.io", "team/app", DIGEST)
    assert oci.locate_pinned(f"nginx@{DIGEST}") == oci.ImageLocation(oci.DOCKER_HUB, "library/nginx", DIGEST)
    assert oci.locate_pinned(f"127.0.0.1:5000/team/app:1@{DIGEST}").registry == "http://127.0.0.1:5000"
    assert oci.locate_pinned("ghcr.io/team/app:1.0") is None


def test_manifest_known_answers_200_404_and_names_anything_else():
    seen = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("authorization")))
        if request.url.host == "auth.example.com":
            return httpx.Response(200, json={"token": "t"})
        if request.headers.get("authorization") != "Bearer t":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.com/token"'})
        return httpx.Response({"good": 200, "gone": 404}.get(request.url.path.split("/")[3], 503))

    def known(repo: str) -> bool:
        location = oci.ImageLocation("https://registry.example.com", f"team/{repo}", DIGEST)
        return oci.manifest_known(location, transport=httpx.MockTransport(registry))

    assert known("good") is True
    assert seen[0] == ("HEAD", f"/v2/team/good/manifests/{DIGEST}", None)  # anonymous first, token on challenge
    assert known("gone") is False
    with pytest.raises(oci.RegistryError, match=r"registry https://registry\.example\.com answered HTTP 503"):
        known("busy")


def test_offline_nothing_is_sent(monkeypatch):
    monkeypatch.setenv(oci.OFFLINE_ENV, "1")
    sent = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    location = oci.ImageLocation("https://registry.example.com", "team/app", DIGEST)
    with pytest.raises(oci.NotAskedOffline, match=r"not asked offline \(CMP_OFFLINE is set\)"):
        oci.manifest_known(location, transport=transport)
    with pytest.raises(oci.NotAskedOffline):
        oci.fetch_image(location, transport=transport)
    assert sent == []


def test_the_pack_imports_the_client_from_its_own_folder():
    """The CLI runs the pack with policy/ as its program directory and only policy/requirements.txt installed:
    `policies` finds the client beside it without the project's `policy` package."""
    probe = ("import sys; sys.modules['policy'] = None; import policies; "
             "print(policies.oci_registry.__file__)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=POLICY_DIR, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == POLICY_DIR / "oci_registry.py"
