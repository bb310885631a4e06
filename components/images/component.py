"""ServiceImages: build each service in service_src with docker-build (built_image) and hand out digest-pinned refs.

Context is the repository root, the Dockerfile is service_src/<service>/Dockerfile, BASE_IMAGE is a build
arg (an air-gapped registry can serve the base), platforms and registry come from config, and each image is
tagged with the git commit. Workloads take `refs[service]` (`name:tag@sha256:...`), so a Deployment runs
exactly the bytes this program built. A missing service directory or Dockerfile fails at preview time with
one line naming it, before anything is registered.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pulumi
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.images.config import ImagesConfig
from components.images.image import built_image
from components.images.services import REPO_ROOT, SERVICE_IMAGES, ServiceImage, check_build_inputs
from infra.naming import type_token

DIGEST_MARK = "@sha256:"


class ImageRefError(ValueError):
    """A built image came back without a digest-pinned ref; one line naming the image."""


def git_commit(root: Path) -> str:
    """The checkout's commit (what CI checked out, also for a rollback of an older commit); GITHUB_SHA otherwise."""
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    commit = proc.stdout.strip() if proc.returncode == 0 else os.environ.get("GITHUB_SHA", "")
    if not commit:
        raise ValueError(f"images.tag: {root} is not a git checkout and GITHUB_SHA is unset; set images.tag")
    return commit[:12]


class ServiceImagesArgs(BaseModel):
    """What to build and where to push it."""

    model_config = ConfigDict(frozen=True)

    registry: str
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64")
    base_image: str
    tag: str
    push: bool = True
    require_digest: bool = False
    services: tuple[str, ...] = tuple(SERVICE_IMAGES)
    root: Path = REPO_ROOT
    build_on_preview: bool = False  # a PR preview of three stacks would otherwise build six multi-arch images
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("services")
    @classmethod
    def _services(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for service in value:
            if service not in SERVICE_IMAGES:
                raise ValueError(f"service {service!r} is not one of {', '.join(SERVICE_IMAGES)}")
        return value

    @model_validator(mode="after")
    def _digest_needs_push(self) -> ServiceImagesArgs:
        if self.require_digest and not self.push:
            raise ValueError("images.push = false: only a pushed image has a digest-pinned ref; digests are required")
        return self

    @classmethod
    def from_config(cls, cfg: ImagesConfig, *, require_digest: bool, root: Path = REPO_ROOT) -> ServiceImagesArgs:
        if not cfg.registry:
            raise ValueError("images.registry is required when images.build is true")
        return cls(registry=cfg.registry, platforms=tuple(cfg.platforms), base_image=cfg.base_image,
                   tag=cfg.tag or git_commit(root), push=cfg.push, require_digest=require_digest, root=root)


class ServiceImages(pulumi.ComponentResource):
    """One docker-build Image per service; `refs` and `digests` are keyed by service (e.g. "provisioner")."""

    refs: dict[str, pulumi.Output[str]]
    digests: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ServiceImagesArgs, opts: pulumi.ResourceOptions | None = None):
        services = [SERVICE_IMAGES[key] for key in args.services]
        dockerfiles = {svc.service: check_build_inputs(svc, args.root) for svc in services}  # before registering

        super().__init__(type_token("ServiceImages"), name, None, opts)
        context = _relative(args.root)
        self.refs, self.digests = {}, {}
        for svc in services:
            image = built_image(
                f"{name}-{svc.image}",
                context=context,
                dockerfile=_relative(dockerfiles[svc.service]),
                build_args={"BASE_IMAGE": args.base_image},
                platforms=args.platforms,
                tags=[f"{args.registry}/{svc.image}:{args.tag}"],
                labels={"org.opencontainers.image.revision": args.tag, "org.opencontainers.image.title": svc.image,
                        **args.labels},
                push=args.push,
                build_on_preview=args.build_on_preview,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.refs[svc.service] = image.ref.apply(lambda ref, s=svc: _checked_ref(ref, s, args.require_digest))
            self.digests[svc.service] = image.digest
        self.register_outputs({"refs": self.refs, "digests": self.digests})


def _relative(path: Path) -> str:
    """Paths relative to the program's working directory, so state does not depend on the checkout's location."""
    return os.path.relpath(path, Path.cwd())


def _checked_ref(ref: str | None, svc: ServiceImage, require_digest: bool) -> str | None:
    if require_digest and ref is not None and DIGEST_MARK not in ref:
        raise ImageRefError(f"image {svc.image}: ref {ref!r} is not pinned by a sha256 digest")
    return ref
