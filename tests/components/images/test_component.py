"""ServiceImages under the recording engine (set_mocks): what it asks docker-build to build, what it hands on."""

from __future__ import annotations

import shutil

import pulumi
import pytest
from pydantic import ValidationError

from components.images.config import ImagesConfig
from components.images.services import REPO_ROOT, MissingBuildInput
from infra.recording import DOCKER_BUILD_IMAGE, UNKNOWN, run_program

COMMIT = "0123456789ab"


def _args(**overrides):
    from components.images.component import ServiceImagesArgs

    base = {"registry": "registry.example.com/cmp", "base_image": "mirror.example.com/debian-python:bookworm",
            "tag": COMMIT, "platforms": ("linux/amd64", "linux/arm64")}
    return ServiceImagesArgs(**(base | overrides))


def _run(args):
    from components.images.component import ServiceImages

    def program():
        images = ServiceImages("images", args)
        pulumi.export("refs", images.refs)
        pulumi.export("digests", images.digests)

    return run_program(program, stack="dev", config={})


@pytest.fixture
def fake_root(tmp_path):
    """A repository root with both service directories and Dockerfiles, to delete pieces from."""
    for directory in ("service_src/connector_gateway", "service_src/provisioner"):
        (tmp_path / directory).mkdir(parents=True)
        (tmp_path / directory / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    return tmp_path


def test_builds_each_service_from_the_repo_root_with_config_platforms_and_commit_tag(fake_root, monkeypatch):
    monkeypatch.chdir(fake_root)
    recording = _run(_args(root=fake_root))
    images = {r.name: r for r in recording.by_type(DOCKER_BUILD_IMAGE)}
    assert sorted(images) == ["images-cmp-connector-gateway", "images-cmp-provisioner"]
    prov = images["images-cmp-provisioner"].inputs
    assert prov["context"] == {"location": "."}
    assert prov["dockerfile"] == {"location": "service_src/provisioner/Dockerfile"}
    assert prov["buildArgs"] == {"BASE_IMAGE": "mirror.example.com/debian-python:bookworm"}
    assert prov["platforms"] == ["linux/amd64", "linux/arm64"]
    assert prov["tags"] == [f"registry.example.com/cmp/cmp-provisioner:{COMMIT}"]
    assert prov["push"] is True
    assert prov["buildOnPreview"] is False
    assert prov["labels"]["org.opencontainers.image.revision"] == COMMIT
    gateway = images["images-cmp-connector-gateway"].inputs
    assert gateway["dockerfile"] == {"location": "service_src/connector_gateway/Dockerfile"}
    component = recording.one("cmp:platform:ServiceImages", "images")
    assert all(r.parent == component.urn for r in images.values())


def test_refs_and_digests_are_unknown_until_a_real_build_pushes(fake_root, monkeypatch):
    """A preview cannot know what a registry will answer: refs and digests stay unknown, never invented
    (the digest check itself: test_a_ref_without_digest_is_refused_when_digests_are_required)."""
    monkeypatch.chdir(fake_root)
    recording = _run(_args(root=fake_root, platforms=("linux/amd64",), require_digest=True))
    refs, digests = recording.outputs["refs"], recording.outputs["digests"]
    assert refs == digests == {"connector_gateway": UNKNOWN, "provisioner": UNKNOWN}


def test_paths_are_relative_to_the_program_directory(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    if not (REPO_ROOT / "service_src/connector_gateway/Dockerfile").is_file():
        pytest.skip("the connector gateway's Dockerfile has not landed yet")
    recording = _run(_args())
    for image in recording.by_type(DOCKER_BUILD_IMAGE):
        assert image.inputs["context"] == {"location": "."}
        assert not image.inputs["dockerfile"]["location"].startswith("/")


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("service_src/provisioner/Dockerfile",
         "image cmp-provisioner: Dockerfile service_src/provisioner/Dockerfile does not exist"),
        ("service_src/connector_gateway",
         "image cmp-connector-gateway: service directory service_src/connector_gateway/ does not exist"),
    ],
)
def test_missing_build_input_is_one_line_before_anything_registers(fake_root, monkeypatch, remove, message):
    monkeypatch.chdir(fake_root)
    target = fake_root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()

    def program():
        from components.images.component import ServiceImages

        ServiceImages("images", _args(root=fake_root))

    with pytest.raises(MissingBuildInput) as excinfo:
        run_program(program, stack="dev", config={})
    assert str(excinfo.value) == message
    assert "\n" not in str(excinfo.value)


def test_nothing_is_registered_when_an_input_is_missing(fake_root, monkeypatch):
    monkeypatch.chdir(fake_root)
    (fake_root / "service_src/connector_gateway/Dockerfile").unlink()
    from components.images.component import ServiceImages

    seen = []

    def program():
        try:
            ServiceImages("images", _args(root=fake_root))
        except MissingBuildInput:
            seen.append("raised")

    recording = run_program(program, stack="dev", config={})
    assert seen == ["raised"]
    assert recording.resources == []  # not even the component: the check runs before it registers


def test_digests_required_refuse_an_unpushed_build():
    with pytest.raises(ValidationError, match="only a pushed image has a digest-pinned ref"):
        _args(push=False, require_digest=True)


def test_unknown_service_is_named():
    with pytest.raises(ValidationError, match="service 'billing' is not one of connector_gateway, provisioner"):
        _args(services=("billing",))


def test_a_ref_without_digest_is_refused_when_digests_are_required():
    from components.images.component import SERVICE_IMAGES, ImageRefError, _checked_ref

    svc = SERVICE_IMAGES["provisioner"]
    with pytest.raises(ImageRefError, match="image cmp-provisioner: ref 'r/cmp-provisioner:abc' is not pinned"):
        _checked_ref("r/cmp-provisioner:abc", svc, require_digest=True)
    assert _checked_ref("r/cmp-provisioner:abc", svc, require_digest=False) == "r/cmp-provisioner:abc"
    pinned = "r/cmp-provisioner:abc@sha256:" + "a" * 64
    assert _checked_ref(pinned, svc, require_digest=True) == pinned


def test_tag_defaults_to_the_checkout_commit(tmp_path, monkeypatch):
    import subprocess

    from components.images.component import ServiceImagesArgs, git_commit

    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert git_commit(REPO_ROOT) == head[:12]
    args = ServiceImagesArgs.from_config(ImagesConfig(build=True, registry="ghcr.io/gsvdev"), require_digest=True)
    assert args.tag == head[:12]
    assert args.platforms == ("linux/amd64", "linux/arm64")
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    with pytest.raises(ValueError, match=r"is not a git checkout and GITHUB_SHA is unset; set images\.tag"):
        git_commit(tmp_path)
    monkeypatch.setenv("GITHUB_SHA", "f" * 40)
    assert git_commit(tmp_path) == "f" * 12


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"build": True}, "images.registry is required when images.build is true"),
        ({"platforms": ["linux/amd64", "windows/amd64"]}, "platform 'windows/amd64' is not one of"),
        ({"platforms": []}, "at least 1 item"),
        ({"registry": "GHCR.io/Org"}, "must be a registry host[:port]/path in lower case"),
        ({"tag": "bad tag"}, "must be an image tag"),
        ({"regsitry": "ghcr.io/x"}, "Extra inputs are not permitted"),
    ],
)
def test_images_config_rejects_bad_input_naming_the_rule(raw, message):
    with pytest.raises(ValidationError) as excinfo:
        ImagesConfig.model_validate(raw)
    assert message in str(excinfo.value)


def test_images_config_reads_camel_case_keys():
    cfg = ImagesConfig.model_validate({"build": True, "registry": "127.0.0.1:5000/cmp", "baseImage": "b:1",
                                       "platforms": ["linux/arm64"], "push": False})
    assert (cfg.registry, cfg.base_image, cfg.platforms, cfg.push) == ("127.0.0.1:5000/cmp", "b:1", ["linux/arm64"],
                                                                       False)


# --- wired into the platform (stacks.platform.build) -------------------------------------------------------


def _platform(stack: str = "dev", **images):
    from tests.components.helpers import base_config, run_platform, stack_file

    config = stack_file(stack) if stack != "dev" else base_config()
    if images:
        config["images"] = images
    return run_platform(config, stack=stack)


def _deployment_image(recording, name: str) -> str:
    deployment = recording.one("kubernetes:apps/v1:Deployment", name)
    return deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"]


def test_platform_runs_the_built_images_by_digest(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    recording = _platform(build=True, registry="ghcr.io/gsvdev", tag=COMMIT)
    built = {r.name: r for r in recording.by_type(DOCKER_BUILD_IMAGE)}
    assert sorted(built) == ["service-images-cmp-connector-gateway", "service-images-cmp-provisioner"]
    for deployment, image in (("cmp-connector", "cmp-connector-gateway"), ("cmp-provisioner", "cmp-provisioner")):
        # The built ref (name:tag@sha256:...) is known only once the build pushed: unknown in a preview,
        # and the Deployment depends on exactly its own image.
        assert _deployment_image(recording, deployment) == UNKNOWN
        resource = recording.one("kubernetes:apps/v1:Deployment", deployment)
        images = [urn for urn in resource.depends_on if DOCKER_BUILD_IMAGE in urn]
        assert images == [built[f"service-images-{image}"].urn]


def test_platform_without_build_runs_the_configured_refs_and_builds_nothing():
    from tests.components.helpers import stack_file

    recording = _platform()
    assert recording.by_type(DOCKER_BUILD_IMAGE) == []
    assert _deployment_image(recording, "cmp-provisioner") == stack_file("dev").get(
        "provisioner", {}).get("image", "ghcr.io/gsvdev/cmp-provisioner:0.1.0")


def test_prod_build_refuses_an_unpushed_image_in_one_line():
    from infra.config import ConfigError
    from stacks.config import SECRET_KEYS, parse_stack_config
    from tests.components.helpers import stack_file

    raw = {k: v for k, v in stack_file("prod").items() if not (isinstance(v, dict) and set(v) == {"secure"})}
    raw["images"] = {"build": True, "registry": "ghcr.io/gsvdev", "push": False}
    with pytest.raises(ConfigError) as excinfo:
        parse_stack_config(raw, {key: "placeholder" for key in SECRET_KEYS})
    assert str(excinfo.value) == ("config error: cmp-platform:images.push = false: prod requires digest-pinned "
                                  "images, which only a pushed build has")


def test_images_build_without_registry_is_named_by_the_config_error():
    from infra.config import ConfigError
    from stacks.config import SECRET_KEYS, parse_stack_config
    from tests.components.helpers import stack_file

    raw = {k: v for k, v in stack_file("dev").items() if not (isinstance(v, dict) and set(v) == {"secure"})}
    raw["images"] = {"build": True}
    with pytest.raises(ConfigError) as excinfo:
        parse_stack_config(raw, {key: "placeholder" for key in SECRET_KEYS})
    assert str(excinfo.value) == ('config error: cmp-platform:images = {"build": true}: '
                                  "images.registry is required when images.build is true")
