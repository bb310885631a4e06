"""The content key decides whether `make images` may reuse a stored image instead of building: it must change
with everything that reaches the image and with nothing else (fast; no buildah)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from components.images.services import REPO_ROOT, SERVICE_IMAGES
from tools.images.inputs import Unkeyable, content_key, copied_sources, is_ignored, read_ignore_file

BASE = "sha256:" + "1" * 64


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with the real Dockerfiles and .dockerignore, and a few files in and outside what they copy."""
    files = {
        "pyproject.toml": "[project]\nname = 'cmp-platform'\n",
        "README.md": "readme\n",
        "components/images/component.py": "X = 1\n",
        "tests/test_x.py": "def test_x(): pass\n",
        "docs/images.md": "doc\n",
        "service_src/__init__.py": "",
        "service_src/provisioner/__init__.py": "",
        "service_src/provisioner/app.py": "APP = 'provisioner'\n",
        "service_src/provisioner/migrations/0001.py": "UP = 1\n",
        "service_src/provisioner/__pycache__/app.cpython-311.pyc": "bytecode",
        "service_src/connector_gateway/__init__.py": "",
        "service_src/connector_gateway/app.py": "APP = 'gateway'\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for svc in SERVICE_IMAGES.values():
        shutil.copy(REPO_ROOT / svc.dockerfile, tmp_path / svc.dockerfile)
    shutil.copy(REPO_ROOT / ".dockerignore", tmp_path / ".dockerignore")
    return tmp_path


def _keys(root: Path, base: str = BASE, args: dict[str, str] | None = None) -> dict[str, str]:
    return {key: content_key(root / svc.dockerfile, root, base, args or {}) for key, svc in SERVICE_IMAGES.items()}


def test_the_real_dockerfiles_copy_pyproject_and_their_own_sources():
    for svc in SERVICE_IMAGES.values():
        sources = copied_sources((REPO_ROOT / svc.dockerfile).read_text())
        assert "pyproject.toml" in sources
        assert svc.directory in sources
        assert all(src == "pyproject.toml" or src.startswith("service_src/") for src in sources), sources


def test_the_key_is_stable(repo):
    assert _keys(repo) == _keys(repo)
    assert len(set(_keys(repo).values())) == 2  # each image its own key


@pytest.mark.parametrize("edit", [
    pytest.param(lambda r: (r / "service_src/provisioner/app.py").write_text("APP = 'changed'\n"), id="source"),
    pytest.param(lambda r: (r / "service_src/provisioner/new.py").write_text(""), id="new-file"),
    pytest.param(lambda r: (r / "service_src/provisioner/migrations/0001.py").unlink(), id="removed-file"),
    pytest.param(lambda r: (r / "service_src/provisioner/empty").mkdir(), id="new-directory"),
    pytest.param(lambda r: (r / "service_src/provisioner/app.py").chmod(0o755), id="mode"),
    pytest.param(lambda r: (r / "service_src/provisioner/link").symlink_to("app.py"), id="symlink"),
    pytest.param(lambda r: (r / "service_src/provisioner/Dockerfile").write_text(
        (r / "service_src/provisioner/Dockerfile").read_text().replace('CMD ["serve"]', 'CMD ["worker"]')),
        id="dockerfile"),
])
def test_a_change_to_what_the_provisioner_copies_changes_its_key_only(repo, edit):
    before = _keys(repo)
    edit(repo)
    after = _keys(repo)
    assert after["provisioner"] != before["provisioner"]
    assert after["connector_gateway"] == before["connector_gateway"]


@pytest.mark.parametrize("edit", [
    pytest.param(lambda r: (r / "pyproject.toml").write_text("[project]\nname = 'other'\n"), id="pyproject"),
    pytest.param(lambda r: (r / "service_src/__init__.py").write_text("# package\n"), id="service_src-init"),
    pytest.param(lambda r: (r / ".dockerignore").write_text("build\n"), id="dockerignore"),
])
def test_a_change_to_what_both_copy_changes_both_keys(repo, edit):
    before = _keys(repo)
    edit(repo)
    after = _keys(repo)
    assert after["provisioner"] != before["provisioner"]
    assert after["connector_gateway"] != before["connector_gateway"]


def test_the_base_image_and_the_build_args_are_in_the_key(repo):
    assert _keys(repo, base="sha256:" + "2" * 64) != _keys(repo)
    assert _keys(repo, args={"PIP_INDEX": "a"}) != _keys(repo, args={"PIP_INDEX": "b"})


@pytest.mark.parametrize("edit", [
    pytest.param(lambda r: (r / "README.md").write_text("changed\n"), id="readme"),
    pytest.param(lambda r: (r / "components/images/component.py").write_text("X = 2\n"), id="components"),
    pytest.param(lambda r: (r / "tests/test_x.py").write_text("changed\n"), id="tests"),
    pytest.param(lambda r: (r / "service_src/provisioner/__pycache__/app.cpython-311.pyc").write_text("new"),
                 id="ignored-bytecode"),
    pytest.param(lambda r: (r / "service_src/provisioner/__pycache__/other.pyc").write_text("new"), id="new-bytecode"),
    pytest.param(lambda r: os.utime(r / "service_src/provisioner/app.py", (1, 1)), id="mtime"),
])
def test_a_change_outside_what_is_copied_keeps_both_keys(repo, edit):
    before = _keys(repo)
    edit(repo)
    assert _keys(repo) == before


def test_a_missing_source_has_a_key_of_its_own_and_buildah_reports_it(repo):
    before = _keys(repo)
    (repo / "service_src/__init__.py").unlink()
    after = _keys(repo)
    assert after["provisioner"] != before["provisioner"]
    assert after["connector_gateway"] != before["connector_gateway"]


@pytest.mark.parametrize(("line", "named"), [
    ("COPY --from=builder /opt/venv /opt/venv", "--from"),
    ("COPY service_src/*.py service_src/", "wildcard"),
    ("COPY ${SRC} /src/", "variable"),
    ("ADD https://example.invalid/x.tar.gz /x", "URL"),
    ("COPY <<EOF /etc/x\nhello\nEOF", "heredoc"),
    ("COPY ../outside /x", "outside the context"),
    ("COPY --exclude=*.md . /src", "--exclude"),
    ("COPY 'quoted' /src/", "quote"),
])
def test_a_dockerfile_outside_the_model_has_no_key(tmp_path, line, named):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n{line}\n")
    with pytest.raises(Unkeyable) as excinfo:
        content_key(dockerfile, tmp_path, BASE, {})
    assert named in str(excinfo.value)


def test_an_exception_pattern_has_no_key(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a b\n")
    (tmp_path / ".dockerignore").write_text("docs\n!docs/keep.md\n")
    with pytest.raises(Unkeyable, match=r"\.dockerignore: an exception pattern \(!docs/keep.md\)"):
        content_key(tmp_path / "Dockerfile", tmp_path, BASE, {})


def test_copy_forms_flags_and_continuations_are_read():
    text = (
        "# comment\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "COPY --chown=10001:10001 --chmod=0644 a.txt \\\n"
        "  # a comment line inside the instruction\n"
        "  b.txt /dst/\n"
        'COPY ["dir with space/", "/dst/"]\n'
        "add ./c/../d /dst/\n"
        "RUN echo COPY not-a-source /x\n"
    )
    assert copied_sources(text) == ["a.txt", "b.txt", "dir with space", "d"]


@pytest.mark.parametrize(("text", "sources"), [
    pytest.param("COPY a\\\nb /dst/\n", ["ab"], id="continuation-joins-without-a-space"),
    pytest.param("COPY a \\\n\n  b /dst/\n", ["a", "b"], id="empty-continuation-line"),
    pytest.param("RUN <<EOF\nCOPY not-a-source /x\nEOF\nCOPY a /dst/\n", ["a"], id="run-heredoc-body"),
])
def test_lines_are_read_as_docker_reads_them(text, sources):
    assert copied_sources(f"FROM scratch\n{text}") == sources


def test_the_escape_directive_sets_the_continuation_character():
    text = "COPY a `\n  b /dst/\n"
    assert copied_sources(f"# escape=`\nFROM scratch\n{text}") == ["a", "b"]
    assert copied_sources(f"FROM scratch\n{text}") == ["a"]  # without it "`" is the destination, "b" a new line


@pytest.mark.parametrize(("pattern", "path", "ignored"), [
    ("**/__pycache__", "service_src/provisioner/__pycache__/app.pyc", True),
    ("**/__pycache__", "__pycache__/x.pyc", True),
    ("**/*.pyc", "service_src/a/b.pyc", True),
    ("*.egg-info", "cmp_platform.egg-info/PKG-INFO", True),
    ("*.egg-info", "service_src/x.egg-info/PKG-INFO", False),  # `*` stays within one path element
    ("build", "build/images/storage", True),
    ("build", "service_src/build/x.py", False),  # patterns are anchored at the context root
    ("/docs", "docs/x.md", True),
    ("service_src/*/tests", "service_src/provisioner/tests/t.py", True),
    ("a/**/z", "a/z", True),
    ("a/**/z", "a/b/c/z/file", True),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("[ab].txt", "b.txt", True),
    ("[^ab].txt", "b.txt", False),
    ("[!ab].txt", "b.txt", True),  # a Go regexp class: `!` is one of its members, not a negation
    ("docs", "Docs/x.md", False),  # case-sensitive
    (r"a\*b", "a*b", True),
    (r"a\*b", "axb", False),
])
def test_ignore_patterns_follow_the_build_context_rules(tmp_path, pattern, path, ignored):
    (tmp_path / ".dockerignore").write_text(f"# comment\n\n{pattern}\n")
    _, _, patterns = read_ignore_file(tmp_path)
    assert is_ignored(path, patterns) is ignored


def test_only_a_hash_in_the_first_column_starts_a_comment(tmp_path):
    (tmp_path / ".dockerignore").write_text("\ufeff# docs\n  #notes\n")
    _, _, patterns = read_ignore_file(tmp_path)
    assert is_ignored("#notes/x", patterns) and not is_ignored("docs/x", patterns)


def test_containerignore_is_read_before_dockerignore(tmp_path):
    (tmp_path / ".dockerignore").write_text("docs\n")
    (tmp_path / ".containerignore").write_text("tests\n")
    name, _, patterns = read_ignore_file(tmp_path)
    assert name == ".containerignore"
    assert is_ignored("tests/x", patterns) and not is_ignored("docs/x", patterns)
