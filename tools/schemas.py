"""`python -m tools.schemas fetch | check | status`: the third-party schemas, from upstream, checked against the pins.

- ``fetch`` (``make schemas``): downloads every file of infra/schema_sources.py from its release tag
  (``--base-url``, default https://raw.githubusercontent.com) and keeps the set in the cache directory only
  when every file's sha256 is the pinned one; a file that differs keeps nothing and names the file. A set
  already there and matching the pins is kept as it is, without asking the network.
- ``check DIR`` (``.ci/run``, for ``CMP_SCHEMA_DIR``): the files in DIR against the same pins.
- ``status`` (``make test``): one line saying which schema directory the checks read, if any.

Exit codes: 0 done; 1 a file missing, unreachable or not the pinned bytes; 2 bad arguments or a
``CMP_SCHEMA_DIR`` that names no directory.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

from infra.schema_sources import RAW_GITHUB, SOURCES, SchemaSource, mismatches
from infra.schemas import ENV, SchemaDirError, fetched_dir, schema_dir
from tools.cli import OneLineParser


class FetchError(Exception):
    """One file could not be fetched as pinned (one line)."""


def _download(source: SchemaSource, base_url: str, timeout: float) -> bytes:
    import httpx

    url = source.url(base_url)
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise FetchError(f"{source.file}: {url} unreachable: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise FetchError(f"{source.file}: {url} answered HTTP {response.status_code}")
    found = hashlib.sha256(response.content).hexdigest()
    if found != source.sha256:
        raise FetchError(f"{source.file}: {url} sent bytes with sha256 {found}, not the pinned {source.sha256}; "
                         "nothing kept")
    return response.content


def fetch(base_url: str = RAW_GITHUB, target: Path | None = None, timeout: float = 60.0) -> tuple[Path, bool]:
    """Every pinned file into ``target`` (default ``fetched_dir()``), all or nothing: the files are written to a
    temporary folder beside it, which replaces ``target`` only once all of them matched their pins. A target
    that already holds them all (a CI cache restored it) is kept: returns (target, whether it downloaded)."""
    target = target or fetched_dir()
    if target.is_dir() and not mismatches(target):
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for source in SOURCES:
            path = staging / source.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_download(source, base_url, timeout))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, True


def _status() -> str:
    root = schema_dir()
    if root is None:
        return (f"schemas: none ({ENV} is unset and `make schemas` has not run): the checks that need them are "
                "skipped, each saying so")
    return f"schemas: checks read {root}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m tools.schemas", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("fetch", help="download the pinned files into the cache directory")
    get.add_argument("--base-url", default=RAW_GITHUB, help="where <repo>/<tag>/<path> is served")
    get.add_argument("--into", type=Path, default=None, help="target directory (default: the cache's)")
    check = commands.add_parser("check", help="check a schema directory against the pins")
    check.add_argument("directory", type=Path)
    commands.add_parser("status", help="which schema directory the checks read")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "fetch":
            where, downloaded = fetch(args.base_url, args.into)
            done = "fetched and checked against their pinned sha256 into" if downloaded else "already in"
            print(f"schemas: {len(SOURCES)} files {done} {where}")
        elif args.command == "check":
            if not args.directory.is_dir():
                raise SchemaDirError(f"{args.directory}: no such directory")
            problems = mismatches(args.directory)
            for line in problems:
                print(f"error: schemas: {line}", file=sys.stderr)
            if problems:
                return 1
            print(f"schemas: {len(SOURCES)} files in {args.directory} match their pinned sha256")
        else:
            print(_status())
    except SchemaDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FetchError, OSError) as exc:
        print(f"error: schemas: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
