"""`make schemas` (tools/schemas.py) against a loopback stand-in for raw.githubusercontent.com.

The stand-in serves ``/<repo>/<tag>/<path>`` as GitHub's raw host does, with the real bytes of the team's
schema directory; GitHub itself is not reachable from the machines that run this suite.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import schemas
from infra.schema_sources import SOURCES, pins_id
from tests.support.tiers import server_fixture
from tools.schemas import FetchError, fetch, main


class _RawHost(http.server.BaseHTTPRequestHandler):
    """GET /<repo>/<tag>/<path>: the file's bytes, 404 for anything not in the table (as GitHub answers)."""

    files: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@server_fixture
def raw_host(schema_dir: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    files = {f"/{s.repo}/{s.tag}/{s.path}": (schema_dir / s.file).read_bytes() for s in SOURCES}
    handler = type("Handler", (_RawHost,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_keeps_every_pinned_file_and_the_checks_read_it(raw_host, tmp_path, monkeypatch, capsys):
    base, files = raw_host
    monkeypatch.setenv("CMP_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["fetch", "--base-url", base]) == 0
    target = tmp_path / "cache" / "schemas" / pins_id()
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == sorted(
        s.file for s in SOURCES)
    assert f"into {target}" in capsys.readouterr().out
    files.clear()  # the host now answers 404 to everything: the kept copy is used as it is
    assert main(["fetch", "--base-url", base]) == 0
    assert capsys.readouterr().out == f"schemas: {len(SOURCES)} files already in {target}\n"
    monkeypatch.delenv(schemas.ENV, raising=False)
    assert schemas.schema_dir() == target  # unset CMP_SCHEMA_DIR: the fetched copy is used
    assert ("external-secrets.io/v1", "ExternalSecret") in schemas.crd_schemas()


def test_a_tampered_byte_is_refused_and_nothing_is_kept(raw_host, tmp_path, capsys):
    base, files = raw_host
    url_path = f"/{SOURCES[-1].repo}/{SOURCES[-1].tag}/{SOURCES[-1].path}"
    body = bytearray(files[url_path])
    body[len(body) // 2] ^= 0x01
    files[url_path] = bytes(body)
    target = tmp_path / "schemas"
    assert main(["fetch", "--base-url", base, "--into", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: schemas: {SOURCES[-1].file}: {base}{url_path} sent bytes")
    assert "not the pinned" in err[0]
    assert not target.exists() and list(tmp_path.iterdir()) == []  # no partial set left behind


def test_an_unreachable_host_names_the_file(tmp_path):
    with pytest.raises(FetchError, match=f"{SOURCES[0].file}: .* unreachable"):
        fetch("http://127.0.0.1:9", tmp_path / "schemas", timeout=2)


def test_check_passes_the_pinned_directory_and_names_a_changed_file(schema_dir, tmp_path, capsys):
    assert main(["check", str(schema_dir)]) == 0
    assert "7 files" in capsys.readouterr().out
    copy = tmp_path / "copy"
    for source in SOURCES:
        (copy / source.file).parent.mkdir(parents=True, exist_ok=True)
        (copy / source.file).write_bytes((schema_dir / source.file).read_bytes())
    with (copy / SOURCES[0].file).open("ab") as f:
        f.write(b"\n")
    assert main(["check", str(copy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and SOURCES[0].file in err[0] and SOURCES[0].sha256 in err[0]


def test_a_set_but_missing_directory_is_one_line_naming_the_setting_and_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(schemas.ENV, str(tmp_path / "nowhere"))
    assert main(["status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: CMP_SCHEMA_DIR={tmp_path / 'nowhere'}: no such directory: point it at a directory "
                   "holding the schemas, or unset it (then `make schemas` fetches them, or the checks that need "
                   "them are skipped)"]


def test_status_without_any_schema_directory_says_the_checks_are_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(schemas.ENV, raising=False)
    monkeypatch.setenv("CMP_CACHE_DIR", str(tmp_path))
    assert main(["status"]) == 0
    assert capsys.readouterr().out.startswith("schemas: none (CMP_SCHEMA_DIR is unset")
