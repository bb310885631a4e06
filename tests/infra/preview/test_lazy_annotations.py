"""The preview's loader for pulumi_kubernetes' typed modules: postponed annotations, cached code, same classes.

Each case runs in a fresh interpreter: the finder changes how modules load, and the test process
must keep the SDK's normal imports.
"""

import subprocess
import sys
import textwrap

import pytest

from infra.preview.lazy_annotations import cache_path, in_scope
from infra.preview.runner import PROJECT_ROOT


def run_python(code: str, *, pythonpath: str | None = None) -> str:
    env = None
    if pythonpath:
        import os

        env = {**os.environ, "PYTHONPATH": os.pathsep.join([pythonpath, str(PROJECT_ROOT)])}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name,expected", [
    ("pulumi_kubernetes.core.v1", True),
    ("pulumi_kubernetes.core.v1._inputs", True),
    ("pulumi_kubernetes.apiextensions.CustomResource", True),
    ("pulumi_kubernetes", False),
    ("pulumi_kubernetes.core", False),
    ("pulumi_kubernetes._utilities", False),
    ("pulumi_kubernetes.provider", False),
    ("pulumi_vault.mount", False),
    ("pulumi.runtime.rpc", False),
])
def test_scope_is_the_typed_kind_modules_only(name, expected):
    assert in_scope(name) is expected


def test_typed_classes_load_with_string_annotations_and_serve_the_sdk():
    out = run_python("""
        from infra.preview import lazy_annotations
        lazy_annotations.install()
        import sys
        import pulumi, pulumi_kubernetes as k8s
        from pulumi import _types
        service = k8s.core.v1.Service
        module = sys.modules[service.__module__]
        print(type(module.__spec__.loader).__name__)
        print(type(module.ServiceInitArgs.__init__.__annotations__["spec"]).__name__)
        print(type(pulumi.__spec__.loader).__name__)
        # the SDK resolves the strings when it needs the types: the output type of Service.spec
        print(_types.resource_types(service)["spec"].__name__)
    """)
    lines = out.split()
    assert lines == ["LazyAnnotationsLoader",
                     "str",  # postponed: the annotation is its source text
                     "SourceFileLoader",  # the SDK core loads as usual
                     "ServiceSpec"]


def test_code_is_cached_by_source_mtime_and_size(tmp_path):
    """A fake pulumi_kubernetes shadows the real one: an annotation naming nothing only loads postponed."""
    pkg = tmp_path / "pulumi_kubernetes" / "grp" / "v1"
    pkg.mkdir(parents=True)
    for init in (tmp_path / "pulumi_kubernetes", tmp_path / "pulumi_kubernetes" / "grp", pkg):
        (init / "__init__.py").write_text("")
    source = pkg / "kind.py"
    source.write_text("def f(x: NotDefinedAnywhere) -> None: ...\nVALUE = 1\n")
    load = """
        from infra.preview import lazy_annotations
        lazy_annotations.install()
        import pulumi_kubernetes.grp.v1.kind as m
        print(m.VALUE, m.f.__annotations__["x"])
    """
    assert run_python(load, pythonpath=str(tmp_path)).split() == ["1", "NotDefinedAnywhere"]
    cached = cache_path(str(source))
    assert cached.is_file()
    stamp = cached.stat().st_mtime_ns
    assert run_python(load, pythonpath=str(tmp_path)).split() == ["1", "NotDefinedAnywhere"]
    assert cached.stat().st_mtime_ns == stamp  # reused, not rewritten
    source.write_text("def f(x: NotDefinedAnywhere) -> None: ...\nVALUE = 22\n")  # other size
    assert run_python(load, pythonpath=str(tmp_path)).split() == ["22", "NotDefinedAnywhere"]
    # without the finder the same module fails at import: the annotation is evaluated
    proc = subprocess.run([sys.executable, "-c", "import pulumi_kubernetes.grp.v1.kind"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "NotDefinedAnywhere" in proc.stderr


def test_without_a_writable_cache_the_module_loads_the_normal_way(tmp_path, monkeypatch):
    from infra.preview import lazy_annotations

    source = tmp_path / "kind.py"
    source.write_text("X = 1\n")
    monkeypatch.setattr(lazy_annotations.os, "access", lambda path, mode: False)
    assert lazy_annotations.cache_usable(str(source)) is False  # nothing cached, nowhere to write
    monkeypatch.undo()
    assert lazy_annotations.cache_usable(str(source)) is True  # writable: compile once, then cached
    cached = cache_path(str(source))
    cached.parent.mkdir()
    cached.write_bytes(lazy_annotations._header(str(source)) + b"code")
    monkeypatch.setattr(lazy_annotations.os, "access", lambda path, mode: False)
    assert lazy_annotations.cache_usable(str(source)) is True  # a valid cache needs no writing
