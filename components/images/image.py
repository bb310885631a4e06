"""One docker-build ``Image`` from the few build settings this program uses, through the provider's own typed
SDK (pulumi_docker_build): its type token, input names and defaults, secret outputs and plugin version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker_build as docker_build


def built_image(resource_name: str, *, context: str, dockerfile: str, build_args: Mapping[str, str],
                platforms: Sequence[str], tags: Sequence[str], labels: Mapping[str, str], push: bool,
                build_on_preview: bool, opts: pulumi.ResourceOptions | None = None) -> docker_build.Image:
    """An image built from ``context`` with ``dockerfile``, tagged ``tags`` and pushed when ``push``.
    Its ``ref`` is ``<tag>@sha256:<digest>`` of the pushed image and ``digest`` the manifest digest; both are
    known only after the build (unknown in a preview that does not build)."""
    return docker_build.Image(
        resource_name,
        context=docker_build.BuildContextArgs(location=context),
        dockerfile=docker_build.DockerfileArgs(location=dockerfile),
        build_args=dict(build_args),
        platforms=[docker_build.Platform(p) for p in platforms],
        tags=list(tags),
        labels=dict(labels),
        push=push,
        build_on_preview=build_on_preview,
        opts=opts,
    )
