"""One docker-build ``Image``, registered as pulumi_docker_build's typed class registers it.

The typed ``pulumi_docker_build.Image`` registers the provider's type token ``docker-build:index:Image``,
its inputs in the provider's camelCase (with the defaults the class fills in: ``buildOnPreview`` true,
``network`` "default"), the outputs ``contextHash``, ``digest`` and ``ref`` as properties still to come,
``secrets`` as an additional secret output, and the SDK's plugin version. ``BuiltImage`` registers the
same from the few settings this program uses, so the engine, the provider and the state see no
difference (tests/components/images/test_image.py compares both registrations). Importing the typed
SDK (7,500 generated lines of input and output classes) is a cost every run of a building stack would
pay for nothing the program reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from infra.plugins import plugin_version

IMAGE_TYPE = "docker-build:index:Image"
OUTPUTS = ("contextHash", "digest", "ref")  # what the provider returns after a build


class BuiltImage(pulumi.CustomResource):
    """An image built from ``context`` with ``dockerfile``, tagged ``tags`` and pushed when ``push``.
    ``ref`` is ``<tag>@sha256:<digest>`` of the pushed image and ``digest`` its manifest digest; both are
    known only after the build (unknown in a preview that does not build)."""

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(self, resource_name: str, *, context: str, dockerfile: str, build_args: Mapping[str, str],
                 platforms: Sequence[str], tags: Sequence[str], labels: Mapping[str, str], push: bool,
                 build_on_preview: bool, opts: pulumi.ResourceOptions | None = None):
        props = {
            "buildArgs": dict(build_args),
            "buildOnPreview": build_on_preview,
            "context": {"location": context},
            "dockerfile": {"location": dockerfile},
            "labels": dict(labels),
            "network": "default",
            "platforms": list(platforms),
            "push": push,
            "tags": list(tags),
            **dict.fromkeys(OUTPUTS),
        }
        defaults = pulumi.ResourceOptions(version=plugin_version("pulumi_docker_build"),
                                          additional_secret_outputs=["secrets"])
        opts = pulumi.ResourceOptions.merge(defaults, opts)
        super().__init__(IMAGE_TYPE, resource_name, props, opts)
