"""The pack refuses a pinned digest that is a typed placeholder or that its registry does not know."""

from __future__ import annotations

import hashlib
import os

import pytest

from policy import policies as p
from tests.components.conftest import docker_registry  # noqa: F401 - fixture
from tests.policy.test_policies import DEPLOYMENT, container, good_deployment

POLICY = "image-digests-real"
SPLICE = hashlib.sha256(b"a real digest to splice a pattern into").hexdigest()


def deployment_running(image: str) -> dict:
    props = good_deployment()
    container(props)["image"] = image
    return props


def violations(image: str) -> list[str]:
    return [v.message for v in p.evaluate([("urn:d", DEPLOYMENT, deployment_running(image))]) if v.policy == POLICY]


@pytest.mark.parametrize("hex_digest,why", [
    ("0" * 64, "uses only 1 distinct hex digits"),
    ("ab" * 32, "uses only 2 distinct hex digits"),
    ("0123456789abcdef" * 4, "repeats '0123456789abcdef'"),
    (SPLICE[:8] + "fedcba98" + SPLICE[16:], "holds the run 'fedcba98'"),
    (SPLICE[:8] + "deadbeef" + SPLICE[16:], "holds the word 'deadbeef'"),
])
def test_a_typed_placeholder_is_refused_without_asking_a_registry(hex_digest, why):
    assert len(hex_digest) == 64
    image = f"registry.invalid/team/app:1.0@sha256:{hex_digest}"
    assert violations(image) == [f"cmp-connector: container 'app' image {image!r}: the digest {why}: a placeholder, "
                                 "not one a registry returned"]


def test_real_sha256_digests_are_never_taken_for_placeholders():
    for _ in range(20000):
        assert p.placeholder_digest(hashlib.sha256(os.urandom(32)).hexdigest()) is None


@pytest.mark.registry
def test_a_digest_its_registry_does_not_know_is_refused(docker_registry):  # noqa: F811 - the fixture
    digest = docker_registry.push_index("team/app", "1.0", ["amd64"])
    host = docker_registry.url.removeprefix("http://")
    real = f"{host}/team/app:1.0@{digest}"
    made_up = f"{host}/team/app:1.0@sha256:{hashlib.sha256(b'typed by hand').hexdigest()}"
    assert violations(real) == []
    assert violations(made_up) == [f"cmp-connector: container 'app' image {made_up!r}: the digest does not resolve "
                                   "in its registry (manifest unknown)"]


def test_a_registry_that_cannot_be_asked_is_not_a_violation():
    image = f"127.0.0.1:9/team/app@sha256:{hashlib.sha256(b'x').hexdigest()}"
    assert p.digest_resolves(image) is None
    assert violations(image) == []
    assert violations("registry:5000/team/app:1.0") == []  # a tag: images-pinned's business, not this policy's
