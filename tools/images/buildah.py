"""buildah with this project's storage: vfs under build/images, chroot isolation, host network.

Keeping the storage under build/ makes `make images` self-contained (no daemon, no system store) and lets
reruns reuse cached layers; `make clean` removes it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


class BuildError(RuntimeError):
    """A build step failed; the message is one line naming the step."""


@dataclass(frozen=True)
class Buildah:
    root: Path  # build/images/storage
    runroot: Path  # build/images/run

    def argv(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.root), "--runroot", str(self.runroot), "--storage-driver", "vfs", *args]

    def run(self, *args: str, what: str, capture: bool = True) -> str:
        """Run one buildah command; on failure raise BuildError naming `what` and buildah's last error line."""
        proc = subprocess.run(self.argv(*args), capture_output=capture, text=True, check=False)
        if proc.returncode != 0:
            detail = _last_line(proc.stderr) if capture else f"exit {proc.returncode}"
            raise BuildError(f"{what}: {detail}")
        return (proc.stdout or "").strip()


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
