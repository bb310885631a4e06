"""`make images`: build every service image with buildah into a loopback registry, the way CI would.

    python -m tools.images.build [--service provisioner] [--out build/images] [--keep-registry]

Steps: a Debian base image (cached rootfs, see base.py) pushed to Debian's docker-registry on loopback;
then `buildah bud` of each service_src/<service>/Dockerfile with BASE_IMAGE pointing at that registry,
the host's CA bundle mounted read-only into RUN steps (pip goes through an inspecting proxy; the CA does
not land in the image), and a push. An image whose inputs did not change (its content key, inputs.py, is
the label cmp.inputs of an image in the storage) is tagged and pushed without running `buildah bud`.
build/images/images.json records each image's tag, digest and key.
Any failure is one line on stderr naming the step, and exit status 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from components.images.services import REPO_ROOT, SERVICE_IMAGES, ServiceImage, check_build_inputs
from tools.cli import OneLineParser
from tools.images.base import BASE_NAME, commit_base_image, ensure_rootfs
from tools.images.buildah import Buildah, BuildError
from tools.images.inputs import KEY_LABEL, Unkeyable, content_key
from tools.images.registry import LocalRegistry, retag

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
MANIFEST = "images.json"


def local_tag(root: Path = REPO_ROOT) -> str:
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "local"


def push(buildah: Buildah, image: str, destination: str, digest_file: Path, image_id: str = "") -> str:
    """Push to the loopback registry (plain HTTP) and return the manifest digest the registry stored.

    When the registry already holds this image (`digest_file` names the digest pushed last time, and that
    manifest's config is `image_id`), only the new tag is written: `buildah push` would compress every layer
    again just to find the blobs present.
    """
    previous = digest_file.read_text().strip() if digest_file.is_file() else ""
    config = image_id if image_id.startswith("sha256:") or not image_id else f"sha256:{image_id}"
    if config and previous and retag(destination, previous, config):
        return previous
    digest_file.unlink(missing_ok=True)
    buildah.run("push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file), image,
                f"docker://{destination}", what=f"push {destination}")
    return digest_file.read_text().strip()


def build_service(buildah: Buildah, svc: ServiceImage, base_ref: str, registry: str, tag: str, out: Path,
                  root: Path = REPO_ROOT, *, base_id: str) -> dict:
    """Build (or reuse, by content key) one service image and push it; `base_id` is the image id behind base_ref."""
    dockerfile = check_build_inputs(svc, root)
    name = f"{registry}/{svc.image}:{tag}"
    unkeyed = ""
    try:
        key = content_key(dockerfile, root, base_id, {})
    except Unkeyable as exc:
        key, unkeyed = "", str(exc)
    image_id = labelled_image(buildah, key) if key else ""
    reused = bool(image_id)
    if reused:
        buildah.run("tag", image_id, name, what=f"tag {name}")
    else:
        image_id = _bud(buildah, svc, dockerfile, base_ref, key, name, out, root)
    digest = push(buildah, name, name, out / f"{svc.image}.digest", image_id)
    repo = f"{registry}/{svc.image}"
    return {"image": svc.image, "tag": tag, "digest": digest, "image_id": image_id,
            "ref": f"{repo}:{tag}@{digest}", "local": name, "dockerfile": svc.dockerfile,
            "inputs": key or f"none: {unkeyed}", "reused": reused}


def labelled_image(buildah: Buildah, key: str) -> str:
    """The id (sha256:...) of a stored image labelled with this content key, or "" when there is none."""
    listed = buildah.run("images", "--all", "--no-trunc", "--noheading", "--filter", f"label={KEY_LABEL}={key}",
                         "--format", "{{.ID}}", what="buildah images")
    ids = [line.strip() for line in listed.splitlines() if line.strip()]
    if not ids:
        return ""
    return ids[0] if ids[0].startswith("sha256:") else f"sha256:{ids[0]}"


def _bud(buildah: Buildah, svc: ServiceImage, dockerfile: Path, base_ref: str, key: str, name: str, out: Path,
         root: Path) -> str:
    iidfile = out / f"{svc.image}.iid"
    iidfile.unlink(missing_ok=True)
    label = ["--label", f"{KEY_LABEL}={key}"] if key else []
    argv = ["bud", "--quiet", "--layers", "--isolation", "chroot", "--network", "host", "--tls-verify=false",
            "--build-arg", f"BASE_IMAGE={base_ref}", "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", *label,
            "--iidfile", str(iidfile), "-f", str(dockerfile), "-t", name, str(root)]
    proc = subprocess.run(buildah.argv(*argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        (out / f"{svc.image}.build.log").write_text(proc.stdout + proc.stderr)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        raise BuildError(f"build {svc.image} ({svc.dockerfile}): {lines[-1] if lines else proc.returncode}"
                         f" (log: {out / (svc.image + '.build.log')})")
    return iidfile.read_text().strip()


def build_all(out: Path, services: list[str], keep_registry: bool = False, root: Path = REPO_ROOT) -> dict:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for key in services:
        check_build_inputs(SERVICE_IMAGES[key], root)  # one line naming a missing Dockerfile before any slow step
    buildah = Buildah.for_output(out)
    timings: dict[str, float] = {}
    start = time.monotonic()
    rootfs = ensure_rootfs(out / "base")
    base_id = commit_base_image(buildah, rootfs)
    timings["base"] = round(time.monotonic() - start, 1)
    registry = LocalRegistry(out / "registry").start()
    try:
        base_ref = f"{registry.address}/{BASE_NAME}"
        base_digest = push(buildah, BASE_NAME, base_ref, out / "base.digest", base_id)
        tag = local_tag(root)
        images = {}
        for key in services:
            t0 = time.monotonic()
            images[key] = build_service(buildah, SERVICE_IMAGES[key], base_ref, registry.address, tag, out, root,
                                        base_id=base_id)
            timings[key] = round(time.monotonic() - t0, 1)
        previous = _read_manifest(out)
        images = {**previous.get("images", {}), **images}
        manifest = {"registry": registry.address, "registry_dir": str(registry.data_dir),
                    "storage": {"root": str(buildah.root), "runroot": str(buildah.runroot),
                                "driver": buildah.driver_name},
                    "base": {"ref": f"{base_ref}@{base_digest}", "digest": base_digest},
                    "images": images, "seconds": timings | {"total": round(time.monotonic() - start, 1)}}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest
    finally:
        if not keep_registry:
            registry.stop()


def _read_manifest(out: Path) -> dict:
    """An earlier run's images.json (images of services not rebuilt this time are kept)."""
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="make images", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "images")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="checkout to build (the build context)")
    parser.add_argument("--service", action="append", choices=sorted(SERVICE_IMAGES), dest="services")
    parser.add_argument("--keep-registry", action="store_true", help="leave the registry running (prints its pid)")
    args = parser.parse_args(argv)
    try:
        manifest = build_all(args.out, args.services or list(SERVICE_IMAGES), args.keep_registry,
                             args.root.resolve())
    except (BuildError, ValueError) as exc:
        print(f"make images: {exc}", file=sys.stderr)
        return 1
    for key, image in manifest["images"].items():
        print(f"{key}: {image['ref']}")
    print(f"seconds: {json.dumps(manifest['seconds'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
