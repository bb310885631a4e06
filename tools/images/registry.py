"""Debian's docker-registry on loopback, for `make images` and the image tests.

Blobs live under a directory of the caller's choosing (build/images/registry), so a registry started again
later serves what an earlier run pushed; its config file lives in a temporary directory.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools.images.buildah import BuildError

REGISTRY_BINARY = "docker-registry"
PR_SET_PDEATHSIG = 1
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the builder dies (a killed `make images` leaves no registry behind)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def registry_binary() -> str | None:
    """Debian's docker-registry (on PATH or in /usr/bin), or None when the package is not installed."""
    fallback = Path("/usr/bin") / REGISTRY_BINARY
    return shutil.which(REGISTRY_BINARY) or (str(fallback) if fallback.exists() else None)


def retag(destination: str, digest: str, config_digest: str, timeout: float = 10.0) -> bool:
    """Give `destination` (host:port/repo:tag, plain HTTP) the manifest the registry holds at `digest`, when that
    manifest is the image whose config is `config_digest`. False when it is absent, another image, or the
    registry refuses the tag: the caller pushes instead.

    Registry API v2: GET /v2/<repo>/manifests/<digest>, checked against its digest, then PUT under the tag (the
    registry accepts it because the blobs it names are already in the repository).
    """
    host, _, rest = destination.partition("/")
    repo, _, tag = rest.rpartition(":")
    manifests = f"{host}/v2/{repo}/manifests"
    try:
        with urllib.request.urlopen(urllib.request.Request(f"http://{manifests}/{digest}", headers={
                "Accept": ", ".join(MANIFEST_TYPES)}), timeout=timeout) as resp:
            body, media_type = resp.read(), resp.headers.get_content_type()
        if f"sha256:{hashlib.sha256(body).hexdigest()}" != digest or media_type not in MANIFEST_TYPES:
            return False
        if json.loads(body).get("config", {}).get("digest") != config_digest:
            return False
        with urllib.request.urlopen(urllib.request.Request(f"http://{manifests}/{tag}", data=body, method="PUT",
                                                           headers={"Content-Type": media_type}),
                                    timeout=timeout) as resp:
            return resp.status == 201
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return False


class LocalRegistry:
    """`docker-registry serve` on 127.0.0.1:<free port>; use as a context manager.

    Shared by `make images` (a persistent data_dir) and the Ragflow preflight tests (a throwaway one).
    """

    def __init__(self, data_dir: Path, port: int | None = None, readonly: bool = False):
        self.data_dir = data_dir.resolve()
        self.readonly = readonly  # serve pulls only; pushes are refused (maintenance read-only mode)
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 15.0) -> LocalRegistry:
        binary = registry_binary()
        if binary is None:
            raise BuildError("registry: docker-registry is not installed (run .ci/system-deps.sh)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="cmp-registry-")
        config = Path(self._tmp.name) / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.data_dir}\n  delete:\n    enabled: true\n"
            + ("  maintenance:\n    readonly:\n      enabled: true\n" if self.readonly else "")
            + f"http:\n  addr: {self.address}\n"
        )
        with (Path(self._tmp.name) / "registry.log").open("wb") as log:
            self._proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = (Path(self._tmp.name) / "registry.log").read_text(errors="replace").strip().splitlines()[-1:]
                self.stop()
                raise BuildError(f"registry: docker-registry exited at start: {tail[0] if tail else 'no output'}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise BuildError(f"registry: no answer from {self.url}/v2/ within {timeout:.0f} s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
