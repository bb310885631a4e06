"""`make images`: build every service image with buildah into a loopback registry, the way CI would.

    python -m tools.images.build [--service provisioner] [--out build/images] [--keep-registry]

Steps: a Debian base image (cached rootfs, see base.py) pushed to Debian's docker-registry on loopback;
then `buildah bud` of each service_src/<service>/Dockerfile with BASE_IMAGE pointing at that registry,
the host's CA bundle mounted read-only into RUN steps (pip goes through an inspecting proxy; the CA does
not land in the image), and a push. build/images/images.json records each image's tag and digest.
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
from tools.images.registry import LocalRegistry

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
MANIFEST = "images.json"


def local_tag(root: Path = REPO_ROOT) -> str:
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "local"


def push(buildah: Buildah, image: str, destination: str, digest_file: Path) -> str:
    """Push to the loopback registry (plain HTTP) and return the manifest digest the registry stored."""
    digest_file.unlink(missing_ok=True)
    buildah.run("push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file), image,
                f"docker://{destination}", what=f"push {destination}")
    return digest_file.read_text().strip()


def build_service(buildah: Buildah, svc: ServiceImage, base_ref: str, registry: str, tag: str,
                  out: Path, root: Path = REPO_ROOT) -> dict[str, str]:
    dockerfile = check_build_inputs(svc, root)
    name = f"{registry}/{svc.image}:{tag}"
    iidfile = out / f"{svc.image}.iid"
    argv = ["bud", "--quiet", "--layers", "--isolation", "chroot", "--network", "host", "--tls-verify=false",
            "--build-arg", f"BASE_IMAGE={base_ref}", "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "--iidfile", str(iidfile), "-f", str(dockerfile), "-t", name, str(root)]
    proc = subprocess.run(buildah.argv(*argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        (out / f"{svc.image}.build.log").write_text(proc.stdout + proc.stderr)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        raise BuildError(f"build {svc.image} ({svc.dockerfile}): {lines[-1] if lines else proc.returncode}"
                         f" (log: {out / (svc.image + '.build.log')})")
    digest = push(buildah, name, name, out / f"{svc.image}.digest")
    repo = f"{registry}/{svc.image}"
    return {"image": svc.image, "tag": tag, "digest": digest, "image_id": iidfile.read_text().strip(),
            "ref": f"{repo}:{tag}@{digest}", "local": name, "dockerfile": svc.dockerfile}


def build_all(out: Path, services: list[str], keep_registry: bool = False, root: Path = REPO_ROOT) -> dict:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    buildah = Buildah(root=out / "storage", runroot=out / "run")
    for key in services:
        check_build_inputs(SERVICE_IMAGES[key], root)  # one line naming a missing Dockerfile before any slow step
    timings: dict[str, float] = {}
    start = time.monotonic()
    rootfs = ensure_rootfs(out / "base")
    commit_base_image(buildah, rootfs)
    timings["base"] = round(time.monotonic() - start, 1)
    registry = LocalRegistry(out / "registry").start()
    try:
        base_ref = f"{registry.address}/{BASE_NAME}"
        base_digest = push(buildah, BASE_NAME, base_ref, out / "base.digest")
        tag = local_tag(root)
        images = {}
        for key in services:
            t0 = time.monotonic()
            images[key] = build_service(buildah, SERVICE_IMAGES[key], base_ref, registry.address, tag, out, root)
            timings[key] = round(time.monotonic() - t0, 1)
        previous = _read_manifest(out)
        images = {**previous.get("images", {}), **images}
        manifest = {"registry": registry.address, "registry_dir": str(registry.data_dir),
                    "storage": {"root": str(buildah.root), "runroot": str(buildah.runroot)},
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
