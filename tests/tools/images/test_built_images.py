"""The images `make images` built: pulled back from the registry by digest, their entry point answers /healthz.

Marked `images` (deselect with -m "not images"): the first run builds the base (~45 s) and each service
(~100 s); later runs reuse the cached rootfs and layers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.images.services import REPO_ROOT, SERVICE_IMAGES
from tests.tools.images.conftest import IMAGES_OUT
from tools.images.base import debian_arch, recipe_key
from tools.images.buildah import BuildError
from tools.images.registry import LocalRegistry

BUNDLE = "etc/ssl/certs/ca-certificates.crt"
pytestmark = [pytest.mark.images, pytest.mark.registry, pytest.mark.timeout(900)]

# What each service needs to start (the values do not matter for /healthz; no dependency is contacted).
START_ENV = {
    "connector_gateway": {
        "CONTROL_PLANE_URL": "http://127.0.0.1:9", "SERVICE_JWT_SECRET": "image-test-jwt-secret-0123456789abcdef",
        "VAULT_ADDR": "http://127.0.0.1:9", "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": "image-test-token",
    },
    "provisioner": {
        "CONTROL_PLANE_URL": "http://127.0.0.1:9", "SERVICE_JWT_SECRET": "image-test-jwt-secret-0123456789abcdef",
        "SALEOR_WEBHOOK_SECRET": "image-test-webhook", "SALEOR_ALLOWED_ORIGINS": "https://saleor.example.com",
        "DATABASE_URL": "sqlite:////tmp/cmp-provisioner.db",
    },
}
SERVICES = [
    pytest.param(key, marks=pytest.mark.skipif(not (REPO_ROOT / svc.dockerfile).is_file(),
                                                reason=f"{svc.dockerfile} has not landed"))
    for key, svc in SERVICE_IMAGES.items()
]


@pytest.fixture(scope="module")
def container(image_storage, registry, built_image, request):
    """A working container from the image pulled by digest from the registry (proves the push); one pull per
    image for the tests here (each pull is a full copy of the image in buildah's vfs storage)."""
    image = built_image(request.param)
    source = f"{registry.address}/{image['image']}@{image['digest']}"
    ctr = image_storage.run("from", "--quiet", "--tls-verify=false", "--pull-always", source, what=f"pull {source}")
    yield request.param, ctr
    subprocess.run(image_storage.argv("rm", ctr), capture_output=True, check=False)


def _config(image_storage, ctr: str) -> dict:
    return json.loads(image_storage.run("inspect", "--type", "container", ctr, what="inspect"))["OCIv1"]["config"]


@pytest.mark.parametrize("container", SERVICES, indirect=True)
def test_entry_point_answers_healthz(image_storage, container):
    service, ctr = container
    config = _config(image_storage, ctr)
    assert config["User"] == "10001:10001"  # not root
    assert config["ExposedPorts"] == {"8000/tcp": {}}
    command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    env = [arg for key, value in START_ENV[service].items() for arg in ("-e", f"{key}={value}")]
    run = image_storage.argv("run", "--isolation", "chroot", "--network", "host", *env, ctr, "--", *command)
    probe = subprocess.run(
        ["unshare", "--net", "--", sys.executable, str(Path(__file__).with_name("netns_probe.py")),
         "--url", "http://127.0.0.1:8000/healthz", "--timeout", "60", "--", *run],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result["status"] == 200, result["output"]


@pytest.mark.parametrize("container", SERVICES, indirect=True)
def test_host_ca_bundle_was_mounted_for_the_build_not_copied(image_storage, container):
    _, ctr = container
    mount = Path(image_storage.run("mount", ctr, what="mount"))
    try:
        image_bundle = (mount / "etc/ssl/certs/ca-certificates.crt").read_bytes()
        base_bundle = (IMAGES_OUT / "base" / recipe_key(debian_arch()) / "rootfs" / BUNDLE).read_bytes()
        assert image_bundle == base_bundle  # the base image's own bundle, untouched by the build
        host_bundle = Path("/", BUNDLE).read_bytes()
        if host_bundle != base_bundle:  # the host trusts an extra (proxy) CA: it must not have leaked in
            assert image_bundle != host_bundle
        assert not (mount / "src").exists()  # build sources removed
        assert (mount / "etc/resolv.conf").read_text() == ""
    finally:
        image_storage.run("umount", ctr, what="umount")


def test_a_registry_that_refuses_the_push_is_one_line(image_storage, built_image, tmp_path):
    from tools.images.build import push

    built_image(next(k for k, s in SERVICE_IMAGES.items() if (REPO_ROOT / s.dockerfile).is_file()))
    with LocalRegistry(tmp_path / "readonly", readonly=True) as reg, pytest.raises(BuildError) as excinfo:
        push(image_storage, "cmp/base:bookworm", f"{reg.address}/cmp/base:bookworm", tmp_path / "digest")
    message = str(excinfo.value)
    assert message.startswith(f"push {reg.address}/cmp/base:bookworm: ")
    assert "\n" not in message
