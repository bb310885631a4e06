"""buildah with this project's storage under build/images, chroot isolation, host network.

Keeping the storage under build/ makes `make images` self-contained (no daemon, no system store) and lets
reruns reuse cached layers; `make clean` removes it.

Storage driver: overlay where the kernel mounts an overlay on the storage's filesystem (a layer is stored
once and a container is a mount, not a copy); else overlay through fuse-overlayfs (for a storage that itself
lies on an overlayfs, where the kernel refuses an upper directory); else vfs, which copies every layer and
container in full. CMP_BUILDAH_DRIVER=vfs|overlay|fuse-overlayfs chooses one outright. Each driver keeps its
images apart in the same storage directory, so switching drivers means one cold build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DRIVER_ENV = "CMP_BUILDAH_DRIVER"
DRIVERS = ("overlay", "fuse-overlayfs", "vfs")


class BuildError(RuntimeError):
    """A build step failed; the message is one line naming the step."""


@dataclass(frozen=True)
class Buildah:
    root: Path  # build/images/storage
    runroot: Path  # build/images/run
    driver: str = "vfs"  # containers/storage driver: "vfs" or "overlay"
    mount_program: str | None = None  # fuse-overlayfs, for overlay where the kernel cannot mount it here

    @classmethod
    def for_output(cls, out: Path) -> Buildah:
        """The storage under `out` with the fastest driver that works on its filesystem (see the module doc)."""
        root = out / "storage"
        driver, program = choose_driver(root)
        return cls(root=root, runroot=out / "run", driver=driver, mount_program=program)

    @property
    def driver_name(self) -> str:
        return "fuse-overlayfs" if self.mount_program else self.driver

    def argv(self, *args: str) -> list[str]:
        opts = ["--storage-driver", self.driver]
        if self.mount_program:
            opts += ["--storage-opt", f"overlay.mount_program={self.mount_program}"]
        return ["buildah", "--root", str(self.root), "--runroot", str(self.runroot), *opts, *args]

    def run(self, *args: str, what: str, capture: bool = True) -> str:
        """Run one buildah command; on failure raise BuildError naming `what` and buildah's last error line."""
        proc = subprocess.run(self.argv(*args), capture_output=capture, text=True, check=False)
        if proc.returncode != 0:
            detail = _last_line(proc.stderr) if capture else f"exit {proc.returncode}"
            raise BuildError(f"{what}: {detail}")
        return (proc.stdout or "").strip()


def choose_driver(root: Path) -> tuple[str, str | None]:
    """(driver, mount program) for a storage at `root`: CMP_BUILDAH_DRIVER if set, else the first that works."""
    forced = os.environ.get(DRIVER_ENV, "").strip()
    if forced:
        if forced not in DRIVERS:
            raise BuildError(f"{DRIVER_ENV}={forced!r}: must be one of {', '.join(DRIVERS)}")
        if forced == "fuse-overlayfs":
            program = fuse_overlayfs()
            if program is None:
                raise BuildError(f"{DRIVER_ENV}=fuse-overlayfs: fuse-overlayfs or /dev/fuse is missing")
            return "overlay", program
        return forced, None
    if kernel_overlay_mounts(root):
        return "overlay", None
    program = fuse_overlayfs()
    return ("overlay", program) if program else ("vfs", None)


def kernel_overlay_mounts(root: Path) -> bool:
    """Whether the kernel mounts an overlay whose upper directory lies on `root`'s filesystem (a real mount)."""
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        return False
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".overlay-probe-", ignore_cleanup_errors=True) as tmp:
        dirs = {name: Path(tmp, name) for name in ("lower", "upper", "work", "merged")}
        for path in dirs.values():
            path.mkdir()
        opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
        proc = subprocess.run([mount, "-t", "overlay", "overlay", "-o", opts, str(dirs["merged"])],
                              capture_output=True, check=False)
        if proc.returncode != 0:
            return False
        if subprocess.run(["umount", str(dirs["merged"])], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(dirs["merged"])], capture_output=True, check=False)
        return True


def fuse_overlayfs() -> str | None:
    """The fuse-overlayfs binary when it and /dev/fuse are both present."""
    program = shutil.which("fuse-overlayfs")
    return program if program and Path("/dev/fuse").exists() else None


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
