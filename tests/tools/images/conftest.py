"""Fixtures for the built-image tests: the images from `make images` (built here if missing or stale)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from components.images.services import REPO_ROOT
from tests.support.tiers import server_fixture
from tools.images.build import build_all
from tools.images.buildah import Buildah
from tools.images.registry import LocalRegistry

IMAGES_OUT = Path(os.environ.get("CMP_IMAGES_OUT", REPO_ROOT / "build" / "images"))


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("buildah's storage (overlay mounts or vfs) and chroot isolation need root here")
    missing = [tool for tool in ("buildah", "debootstrap", "unshare", "ip") if shutil.which(tool) is None]
    assert not missing, f"missing {', '.join(missing)}: run .ci/system-deps.sh"


@server_fixture(scope="session")
def image_storage() -> Buildah:
    """The storage `make images` builds into, with the same driver (chosen the same way)."""
    return Buildah.for_output(IMAGES_OUT)


@server_fixture(scope="session")
def built_image():
    """build_all() for one service (cached layers make a rerun without source changes take seconds)."""
    _require_tools()
    cache: dict[str, dict] = {}

    def get(service: str) -> dict:
        if service not in cache:
            cache[service] = build_all(IMAGES_OUT, [service])["images"][service]
        return cache[service]

    return get


@server_fixture(scope="session")
def registry():
    """The registry again, on a new port, serving what the build pushed (it stopped after the build)."""
    _require_tools()
    with LocalRegistry(IMAGES_OUT / "registry") as reg:
        yield reg
