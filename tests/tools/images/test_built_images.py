"""The images `make images` built: pulled back from the registry by digest, their entry point answers /healthz,
they hold the checkout's sources; unchanged inputs reuse the stored image, an edited source gets a new one.

Marked `images` (deselect with -m "not images"): the first run builds the base and each service; later runs
reuse the cached rootfs, and the stored image itself while its content key (tools/images/inputs.py) holds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.images.services import REPO_ROOT, SERVICE_IMAGES, ServiceImage
from tests.tools.images.conftest import IMAGES_OUT
from tools.images.base import BASE_NAME, commit_base_image, debian_arch, ensure_rootfs, recipe_key
from tools.images.build import build_all, build_service
from tools.images.buildah import BuildError
from tools.images.inputs import KEY_LABEL, content_key
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
        "SALEOR_ALLOWED_ORIGINS": "https://saleor.example.com",
        # No PostgreSQL here: serve without migrating first and without the worker (/readyz would say 503).
        "DATABASE_URL": "postgresql+psycopg://cmp@127.0.0.1:9/inbox", "MIGRATE_ON_START": "false",
        "WORKER_ENABLED": "false",
    },
}
SERVICES = [
    pytest.param(key, marks=pytest.mark.skipif(not (REPO_ROOT / svc.dockerfile).is_file(),
                                                reason=f"{svc.dockerfile} has not landed"))
    for key, svc in SERVICE_IMAGES.items()
]


@pytest.fixture(scope="module")
def container(image_storage, registry, built_image, request):
    """A working container from the image pulled by digest from the registry (proves the push); one per image
    for the tests here."""
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


def _installed_sources(mount: Path, directory: str) -> dict[str, str]:
    """The service's .py files as pip installed them into the image's venv, by path below service_src/."""
    site = next(mount.glob("opt/venv/lib/python3*/site-packages"))
    return {p.relative_to(site / directory).as_posix(): p.read_text() for p in (site / directory).rglob("*.py")}


@pytest.mark.parametrize("container", SERVICES, indirect=True)
def test_the_image_holds_the_checkouts_sources(image_storage, container):
    service, ctr = container
    directory = SERVICE_IMAGES[service].directory
    checkout = {p.relative_to(REPO_ROOT / directory).as_posix(): p.read_text()
                for p in (REPO_ROOT / directory).rglob("*.py") if "__pycache__" not in p.parts}
    mount = Path(image_storage.run("mount", ctr, what="mount"))
    try:
        assert _installed_sources(mount, directory) == checkout  # a reused image is never a stale one
    finally:
        image_storage.run("umount", ctr, what="umount")


def test_unchanged_inputs_reuse_the_stored_image(image_storage, built_image):
    first = built_image("provisioner")
    again = build_all(IMAGES_OUT, ["provisioner"])["images"]["provisioner"]
    assert again["reused"] is True  # tagged and pushed, no `buildah bud`
    assert (again["image_id"], again["digest"]) == (first["image_id"], first["digest"])
    config = json.loads(image_storage.run("inspect", "--type", "image", again["image_id"], what="inspect"))
    assert config["OCIv1"]["config"]["Labels"][KEY_LABEL] == again["inputs"]


def test_an_edited_source_gets_a_new_image_with_the_edit(image_storage, built_image, registry, tmp_path):
    svc = SERVICE_IMAGES["provisioner"]
    original = built_image("provisioner")
    root = tmp_path / "checkout"
    for rel in ("pyproject.toml", ".dockerignore", "service_src/__init__.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, root / rel)
    for directory in (svc.directory, "service_src/common"):  # the service and what both services share
        shutil.copytree(REPO_ROOT / directory, root / directory, ignore=shutil.ignore_patterns("__pycache__"))
    edit = "\nIMAGE_TEST_EDIT = 'made by tests/tools/images'\n"
    (root / svc.directory / "app.py").write_text((REPO_ROOT / svc.directory / "app.py").read_text() + edit)
    base_id = commit_base_image(image_storage, ensure_rootfs(IMAGES_OUT / "base"))
    edited = build_service(image_storage, ServiceImage(svc.service, svc.directory, "cmp-image-test-edited"),
                           f"{registry.address}/{BASE_NAME}", registry.address, "edited", tmp_path, root,
                           base_id=base_id)
    assert edited["inputs"] == content_key(root / svc.dockerfile, root, base_id, {}) != original["inputs"]
    assert edited["image_id"] != original["image_id"]
    ctr = image_storage.run("from", "--quiet", "--tls-verify=false", "--pull-always",
                            f"{registry.address}/cmp-image-test-edited@{edited['digest']}", what="pull edited")
    try:
        installed = _installed_sources(Path(image_storage.run("mount", ctr, what="mount")), svc.directory)
        assert installed["app.py"].endswith(edit)
    finally:
        subprocess.run(image_storage.argv("rm", ctr), capture_output=True, check=False)
