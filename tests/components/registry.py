"""A throwaway Debian ``docker-registry`` on loopback (tools.images' LocalRegistry), and pushing images into it
over the distribution API."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from components.ragflow.oci_platforms import OCI_INDEX, OCI_MANIFEST
from tools.images.registry import LocalRegistry

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class PushableRegistry(LocalRegistry):
    """The registry `make images` uses, over a temp dir removed at stop; tests push their own images."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cmp-registry-"))
        super().__init__(self.root / "data")

    def stop(self) -> None:
        super().stop()
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
