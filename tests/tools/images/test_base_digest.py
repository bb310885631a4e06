"""`make base-digest`: the digest printed is the one the registry resolves the tag to."""

from __future__ import annotations

import pytest

from tests.components.conftest import docker_registry  # noqa: F401 - the loopback registry fixture
from tools.images.base_digest import main, pinned_ref, split_ref


@pytest.mark.parametrize(("ref", "expected"), [
    ("docker.io/library/python:3.11-slim-bookworm", ("library/python", "3.11-slim-bookworm")),
    ("python:3.11-bookworm", ("python", "3.11-bookworm")),
    ("127.0.0.1:5000/cmp/base:bookworm", ("127.0.0.1:5000/cmp/base", "bookworm")),
])
def test_split_ref(ref, expected):
    assert split_ref(ref) == expected


@pytest.mark.parametrize(("ref", "message"), [
    ("python", "must carry a tag"), ("python:latest", "moving tag"),
    ("python:3.11@sha256:" + "0" * 64, "already pinned"),
])
def test_refs_it_cannot_pin_are_named(ref, message, capsys):
    assert main([ref]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: base-digest: ") and message in err and ref.split("@")[0] in err


@pytest.mark.registry
def test_prints_the_digest_the_registry_resolves_the_tag_to(docker_registry, capsys):  # noqa: F811
    index = docker_registry.push_index("library/python", "3.11-slim-bookworm", ["amd64", "arm64"])
    ref = "docker.io/library/python:3.11-slim-bookworm"
    assert pinned_ref(ref, docker_registry.url) == f"{ref}@{index}"
    assert main([ref, "--registry-url", docker_registry.url]) == 0
    out, err = capsys.readouterr()
    assert out == f"{ref}@{index}\n" and "images.baseImage" in err


@pytest.mark.registry
def test_an_unknown_tag_is_one_line(docker_registry, capsys):  # noqa: F811
    assert main(["cmp/base:no-such-tag", "--registry-url", docker_registry.url]) == 1
    assert "HTTP 404" in capsys.readouterr().err
