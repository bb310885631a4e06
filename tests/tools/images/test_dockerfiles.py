"""Every service Dockerfile passes hadolint, takes ARG BASE_IMAGE, and is in the image table (fast; no build)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.images.services import REPO_ROOT, SERVICE_IMAGES, MissingBuildInput
from tools.images.build import build_service
from tools.images.buildah import Buildah

HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILES = sorted((REPO_ROOT / "service_src").glob("*/Dockerfile"))


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)


def test_every_dockerfile_is_built_by_the_image_table():
    built = {REPO_ROOT / svc.dockerfile for svc in SERVICE_IMAGES.values()}
    assert set(DOCKERFILES) <= built, "a service Dockerfile that no image builds: add it to tools/images/services.py"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    result = _hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_takes_its_base_from_the_build_arg(dockerfile):
    lines = [ln.strip() for ln in dockerfile.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "ARG BASE_IMAGE"
    assert [ln for ln in lines if ln.upper().startswith("FROM ")] == ["FROM ${BASE_IMAGE}"]
    assert any(ln.startswith("USER ") and not ln.startswith(("USER root", "USER 0")) for ln in lines)


def test_hadolint_reports_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    result = _hadolint(bad)
    assert result.returncode == 1
    assert "DL3006" in result.stdout  # untagged FROM
    assert "DL3008" in result.stdout  # unpinned apt packages


@pytest.mark.server
def test_a_missing_dockerfile_fails_in_one_line_before_building(tmp_path):
    (tmp_path / "service_src" / "provisioner").mkdir(parents=True)
    storage = Buildah(root=tmp_path / "storage", runroot=tmp_path / "run")
    with pytest.raises(MissingBuildInput) as excinfo:
        build_service(storage, SERVICE_IMAGES["provisioner"], "base", "127.0.0.1:1", "t", tmp_path, root=tmp_path,
                      base_id="0" * 64)
    assert str(excinfo.value) == "image cmp-provisioner: Dockerfile service_src/provisioner/Dockerfile does not exist"
    assert not (tmp_path / "storage").exists()


def test_make_images_reports_the_missing_input_as_one_line(tmp_path):
    (tmp_path / "repo" / "service_src").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "tools.images.build", "--root", str(tmp_path / "repo"), "--out", str(tmp_path / "out"),
         "--service", "provisioner"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "make images: image cmp-provisioner: service directory service_src/provisioner/ does not exist\n")
    assert not (tmp_path / "out" / "storage").exists()  # failed before any slow step
