"""The base image, made from Debian packages because no public base image is reachable here.

debootstrap (minbase + python3, python3-venv, ca-certificates) writes a root filesystem that is cached
under build/images/base/<recipe hash>/, so only the first run pays for it (~45 s); it becomes an image
with `buildah from scratch` + copy + commit.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
from pathlib import Path

from tools.images.buildah import Buildah, BuildError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_NAME = f"cmp/base:{SUITE}"
DONE_MARK = ".cmp-rootfs-complete"


def debian_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def recipe_key(arch: str) -> str:
    recipe = f"{SUITE}|{MIRROR}|{','.join(PACKAGES)}|{arch}|minbase"
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def ensure_rootfs(cache_dir: Path, arch: str | None = None) -> Path:
    """Return a cached Debian rootfs for the recipe, creating it with debootstrap if absent."""
    arch = arch or debian_arch()
    rootfs = cache_dir / recipe_key(arch) / "rootfs"
    if (rootfs / DONE_MARK).is_file():
        return rootfs
    if shutil.which("debootstrap") is None:
        raise BuildError("base image: debootstrap is not installed (run .ci/system-deps.sh)")
    partial = rootfs.with_name("rootfs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "debootstrap", "--variant=minbase", f"--arch={arch}", f"--include={','.join(PACKAGES)}",
        SUITE, str(partial), MIRROR,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()][-1:]
        raise BuildError(f"base image: debootstrap {SUITE} failed: {tail[0] if tail else proc.returncode}")
    _clean_rootfs(partial)
    partial.rename(rootfs)
    (rootfs / DONE_MARK).write_text(f"{SUITE} {arch} {','.join(PACKAGES)}\n")
    return rootfs


def _clean_rootfs(rootfs: Path) -> None:
    """Drop apt caches, device nodes and the host's resolver config that debootstrap copied in."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*", "var/log/*.log"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
    (rootfs / "etc/resolv.conf").write_text("")
    dev = rootfs / "dev"
    shutil.rmtree(dev, ignore_errors=True)
    dev.mkdir()


def commit_base_image(buildah: Buildah, rootfs: Path, arch: str | None = None) -> str:
    """Commit the rootfs as cmp/base:<suite> in local storage and return the image id.

    Skips the copy when the stored image was made from this very rootfs (label cmp.rootfs = recipe key).
    """
    arch = arch or debian_arch()
    key = rootfs.parent.name
    fmt = '{{index .ImageAnnotations "cmp.rootfs"}} {{.FromImageID}}'
    existing = subprocess.run(
        buildah.argv("inspect", "--type", "image", "--format", fmt, BASE_NAME),
        capture_output=True, text=True, check=False,
    )
    if existing.returncode == 0:
        label, _, image_id = existing.stdout.strip().partition(" ")
        if label == key and image_id:
            return image_id
    ctr = buildah.run("from", "--name", "cmp-base-work", "scratch", what="base image: buildah from scratch")
    try:
        mount = Path(buildah.run("mount", ctr, what="base image: buildah mount"))
        subprocess.run(["cp", "-a", f"{rootfs}/.", str(mount)], check=True)
        (mount / DONE_MARK).unlink(missing_ok=True)
        buildah.run("umount", ctr, what="base image: buildah umount")
        buildah.run(
            "config", "--os", "linux", "--arch", arch,
            "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env", "LANG=C.UTF-8", "--cmd", "/usr/bin/python3", "--annotation", f"cmp.rootfs={key}",
            "--label", f"org.opencontainers.image.description=Debian {SUITE} minbase with python3",
            ctr, what="base image: buildah config",
        )
        return buildah.run("commit", "--quiet", "--rm", ctr, BASE_NAME, what="base image: buildah commit")
    except BaseException:
        subprocess.run(buildah.argv("rm", ctr), capture_output=True, check=False)
        raise
