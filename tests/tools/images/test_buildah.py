"""The storage driver: forced by CMP_BUILDAH_DRIVER, else overlay where the kernel mounts it, fuse-overlayfs on a
storage that itself lies on an overlayfs (where the kernel refuses it), else vfs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.images import buildah as buildah_module
from tools.images.buildah import DRIVER_ENV, BuildError, choose_driver, fuse_overlayfs, kernel_overlay_mounts


@pytest.mark.parametrize(("forced", "expected"), [("vfs", ("vfs", None)), ("overlay", ("overlay", None))])
def test_the_variable_chooses_the_driver(tmp_path, monkeypatch, forced, expected):
    monkeypatch.setenv(DRIVER_ENV, forced)
    assert choose_driver(tmp_path / "storage") == expected
    assert not (tmp_path / "storage").exists()  # no probe when the driver is forced


def test_an_unknown_driver_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(DRIVER_ENV, "zfs")
    with pytest.raises(BuildError) as excinfo:
        choose_driver(tmp_path)
    assert str(excinfo.value) == "CMP_BUILDAH_DRIVER='zfs': must be one of overlay, fuse-overlayfs, vfs"


def test_fuse_overlayfs_forced_without_the_program_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(DRIVER_ENV, "fuse-overlayfs")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError) as excinfo:
        choose_driver(tmp_path)
    assert str(excinfo.value) == "CMP_BUILDAH_DRIVER=fuse-overlayfs: fuse-overlayfs or /dev/fuse is missing"


def test_without_overlay_or_fuse_the_driver_is_vfs(tmp_path, monkeypatch):
    monkeypatch.delenv(DRIVER_ENV, raising=False)
    monkeypatch.setattr(buildah_module, "kernel_overlay_mounts", lambda root: False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no fuse-overlayfs
    assert choose_driver(tmp_path) == ("vfs", None)


def _fs_type(path: Path) -> str:
    stat = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True)
    return stat.stdout.strip()


@pytest.fixture
def on_overlayfs(tmp_path):
    """A directory on an overlayfs: tmp_path itself when it is one (a container's root), else a fresh overlay."""
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay needs root")
    if _fs_type(tmp_path) == "overlayfs":
        yield tmp_path
        return
    dirs = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for path in dirs.values():
        path.mkdir()
    opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(dirs["merged"])],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"the kernel mounts no overlay here: {mounted.stderr.strip()}")
    try:
        yield dirs["merged"]
    finally:
        inner = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                 if line.split()[1].startswith(str(tmp_path))]
        for point in sorted(inner, reverse=True):
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


@pytest.mark.server
def test_a_storage_on_overlayfs_falls_back_to_fuse_overlayfs_or_vfs_and_it_stores_an_image(on_overlayfs, monkeypatch):
    monkeypatch.delenv(DRIVER_ENV, raising=False)
    root = on_overlayfs / "storage"
    assert kernel_overlay_mounts(root) is False  # the kernel refuses an upper directory on an overlayfs
    program = fuse_overlayfs()
    driver = choose_driver(root)
    assert driver == (("overlay", program) if program else ("vfs", None))
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed")
    storage = buildah_module.Buildah(root=root, runroot=on_overlayfs / "run", driver=driver[0], mount_program=driver[1])
    ctr = storage.run("from", "scratch", what="from scratch")
    mount = Path(storage.run("mount", ctr, what="mount"))
    (mount / "hello").write_text("stored\n")
    storage.run("umount", ctr, what="umount")
    storage.run("commit", "--quiet", "--rm", ctr, "probe:latest", what="commit")
    again = storage.run("from", "probe:latest", what="from probe")
    try:
        assert (Path(storage.run("mount", again, what="mount")) / "hello").read_text() == "stored\n"
    finally:
        subprocess.run(storage.argv("rm", again), capture_output=True, check=False)
        subprocess.run(storage.argv("rmi", "--all", "--force"), capture_output=True, check=False)
