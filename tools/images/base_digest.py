"""`make base-digest [IMAGE=<repo>:<tag>]`: the digest the image's registry resolves a tag to, printed as the
pinned ref to write into a stack file (`images.baseImage`, which prod requires pinned) or a workflow's
container image. The registry is asked at run time; nothing here knows a digest of its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from components.images.config import DEFAULT_BASE_IMAGE
from components.ragflow.oci_platforms import RegistryError, fetch_image, locate
from infra.config import check_image, has_digest

DOCKER_HUB_NAMES = ("docker.io/", "index.docker.io/")


def split_ref(ref: str) -> tuple[str, str]:
    """``[host[:port]/]repo:tag`` -> (repository as the registry client takes it, tag)."""
    try:
        check_image(ref)
    except ValueError as exc:
        raise ValueError(f"{ref}: {exc}") from None
    if has_digest(ref):
        raise ValueError(f"{ref} is already pinned by digest")
    name, _, last = ref.rpartition("/")
    repo, _, tag = last.partition(":")  # check_image saw the tag
    image = f"{name}/{repo}" if name else repo
    for prefix in DOCKER_HUB_NAMES:  # Docker Hub's API host is not docker.io
        image = image.removeprefix(prefix)
    return image, tag


def pinned_ref(ref: str, registry_url: str | None = None) -> str:
    image, tag = split_ref(ref)
    info = fetch_image(locate(image, tag, registry_url))
    return f"{ref}@{info.digest}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make base-digest", description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default=DEFAULT_BASE_IMAGE, help="<repo>:<tag> (default: %(default)s)")
    parser.add_argument("--registry-url", help="ask this registry (a mirror) instead of the image's own")
    args = parser.parse_args(argv)
    try:
        pinned = pinned_ref(args.image, args.registry_url)
    except (ValueError, RegistryError) as exc:
        print(f"error: base-digest: {exc}", file=sys.stderr)
        return 1
    print(pinned)
    print(f"  pin the build base: pulumi config set --path cmp-platform:images.baseImage '{pinned}'", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
