"""A real Debian ``docker-registry`` on loopback, and pushing images into it over the distribution API."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from components.oci_platforms import OCI_INDEX, OCI_MANIFEST
from tests.support.net import free_port, wait_http

REGISTRY_BINARY = "/usr/bin/docker-registry"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class LocalRegistry:
    """``docker-registry serve`` with filesystem storage in a temp dir, on a free loopback port."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cmp-registry-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        config = self.root / "config.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "version": 0.1,
            "log": {"level": "error"},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{self.port}"},
        }))
        self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        try:
            wait_http(f"{self.url}/v2/", timeout=20)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    # --- pushing -------------------------------------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = _digest(data)
        with httpx.Client(base_url=self.url, timeout=10) as client:
            start = client.post(f"/v2/{repo}/blobs/uploads/")
            assert start.status_code == 202, start.text
            location = start.headers["location"]
            # The Location carries the upload state in its query: append the digest to it.
            separator = "&" if "?" in location else "?"
            done = client.put(f"{location}{separator}digest={digest}", content=data,
                              headers={"Content-Type": "application/octet-stream"})
            assert done.status_code == 201, done.text
        return digest

    def push_manifest(self, repo: str, reference: str, manifest: dict, media_type: str) -> tuple[str, int]:
        body = json.dumps(manifest).encode()
        response = httpx.put(f"{self.url}/v2/{repo}/manifests/{reference}", content=body,
                             headers={"Content-Type": media_type}, timeout=10)
        assert response.status_code == 201, response.text
        return _digest(body), len(body)

    def push_image(self, repo: str, tag: str | None, arch: str, os_name: str = "linux") -> tuple[str, int]:
        """A one-layer single-arch OCI image; returns (manifest digest, size)."""
        layer = f"layer of {repo} for {arch} at {time.time_ns()}".encode()
        config = json.dumps({"architecture": arch, "os": os_name,
                             "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}).encode()
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.push_blob(repo, config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": self.push_blob(repo, layer), "size": len(layer)}],
        }
        digest, size = self.push_manifest(repo, tag or _digest(json.dumps(manifest).encode()), manifest,
                                          OCI_MANIFEST)
        return digest, size

    def push_index(self, repo: str, tag: str, arches: list[str]) -> str:
        """A multi-arch OCI image index over one pushed image per architecture."""
        manifests = []
        for arch in arches:
            digest, size = self.push_image(repo, None, arch)
            manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                              "platform": {"os": "linux", "architecture": arch}})
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        digest, _ = self.push_manifest(repo, tag, index, OCI_INDEX)
        return digest
