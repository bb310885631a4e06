"""The content key of a service image: one hash over what `buildah bud` reads to make it, so an unchanged
image is reused (tagged and pushed) instead of built again.

Covered: the Dockerfile's text; every file, directory and symlink its COPY/ADD instructions take from the build
context (path, type, permission bits, content or link target), minus what the context's ignore file excludes
(.containerignore, else .dockerignore, as buildah reads them), and that file's text; the base image's id (its
config digest; its reference names the registry's port, which changes every run); the other build args.
Not covered, as with buildah's own layer cache: file times, and what RUN steps fetch (pip installs the versions
pinned in pyproject.toml, which is copied and so covered).

A Dockerfile outside what this models (an escape directive, a heredoc, COPY --from, a variable, wildcard or URL
in a source, an ignore file with `!` exceptions) raises Unkeyable; its image is then always built.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

KEY_LABEL = "cmp.inputs"
KEY_FORMAT = "cmp.inputs/1"
IGNORE_FILES = (".containerignore", ".dockerignore")
COPY_FLAGS = ("--chown", "--chmod", "--link", "--checksum", "--keep-git-dir")  # none of them picks files


class Unkeyable(ValueError):
    """The Dockerfile or ignore file uses something the key does not model; the message names it."""


def content_key(dockerfile: Path, root: Path, base_image_id: str, build_args: Mapping[str, str]) -> str:
    """sha256 over the image's inputs (see the module doc); `build_args` without BASE_IMAGE."""
    text = dockerfile.read_text()
    ignore_name, ignore_text, patterns = read_ignore_file(root)
    digest = hashlib.sha256()

    def add(*fields: str) -> None:
        digest.update("\0".join(fields).encode("utf-8", "surrogateescape") + b"\n")

    add(KEY_FORMAT)
    add("dockerfile", hashlib.sha256(text.encode()).hexdigest())
    add("ignore", ignore_name, hashlib.sha256(ignore_text.encode()).hexdigest())
    add("base", base_image_id)
    for name in sorted(build_args):
        add("arg", name, build_args[name])
    for source in copied_sources(text):
        add("copy", source)
        for entry in _entries(root, source, patterns):
            add(*entry)
    return digest.hexdigest()


def copied_sources(dockerfile_text: str) -> list[str]:
    """The context paths the COPY/ADD instructions read, normalised, in order."""
    sources: list[str] = []
    for instruction in _instructions(dockerfile_text):
        keyword, _, rest = instruction.partition(" ")
        if keyword.upper() not in ("COPY", "ADD"):
            continue
        if "<<" in rest:
            raise Unkeyable(f"{keyword} with a heredoc: {instruction}")
        args = _arguments(rest.strip(), instruction)
        while args and args[0].startswith("--"):
            flag = args.pop(0)
            if flag.split("=", 1)[0] not in COPY_FLAGS:
                raise Unkeyable(f"{keyword} {flag.split('=', 1)[0]}: {instruction}")
        if len(args) < 2:
            raise Unkeyable(f"{keyword} without a source and a destination: {instruction}")
        sources.extend(_source(src, instruction) for src in args[:-1])
    return sources


def read_ignore_file(root: Path) -> tuple[str, str, list[re.Pattern[str]]]:
    """(file name, text, compiled patterns) of the context's ignore file; ("", "", []) when there is none."""
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            text = path.read_text()
            return name, text, [_pattern(line, name) for line in _ignore_lines(text)]
    return "", "", []


def is_ignored(path: str, patterns: list[re.Pattern[str]]) -> bool:
    """Whether a context-relative path, or a directory above it, matches a pattern (buildah skips the whole
    directory then)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(p.fullmatch(prefix) for prefix in prefixes for p in patterns)


def _instructions(text: str) -> Iterator[str]:
    """Dockerfile instructions with continuation lines joined and comment lines dropped."""
    current: list[str] = []
    at_top = True
    for raw in text.splitlines():
        line = raw.strip()
        if at_top and re.fullmatch(r"#\s*escape\s*=.*", line, flags=re.IGNORECASE):
            raise Unkeyable(f"parser directive: {line}")
        if line and not line.startswith("#"):
            at_top = False
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current.append(line[:-1].strip())
            continue
        current.append(line)
        yield " ".join(part for part in current if part)
        current = []
    if current:
        yield " ".join(part for part in current if part)


def _arguments(rest: str, instruction: str) -> list[str]:
    flags: list[str] = []
    while rest.startswith("--"):  # flags come before a JSON array too
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.strip()
    if rest.startswith("["):
        try:
            values = json.loads(rest)
        except ValueError:
            values = None
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            return flags + values
    return flags + rest.split()


def _source(src: str, instruction: str) -> str:
    if "://" in src or src.startswith("git@"):
        raise Unkeyable(f"a URL source ({src}): {instruction}")
    if "$" in src or any(ch in src for ch in "*?["):
        raise Unkeyable(f"a variable or wildcard in a source ({src}): {instruction}")
    path = posixpath.normpath(src.lstrip("/")) if src.strip("/") else "."
    if path == ".." or path.startswith("../"):
        raise Unkeyable(f"a source outside the context ({src}): {instruction}")
    return path


def _entries(root: Path, source: str, patterns: list[re.Pattern[str]]) -> Iterator[tuple[str, ...]]:
    """(kind, path, mode, content digest or link target) for the source and, for a directory, what is under it."""
    top = root / source
    if not top.exists() and not top.is_symlink():
        yield ("missing", source)
        return
    if top.is_symlink():
        raise Unkeyable(f"a source that is a symlink ({source})")
    if top.is_file():
        yield _entry(top, source)  # named explicitly: copied (or refused by buildah) whatever the ignore file says
        return
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        kept = []
        for name in sorted(dirnames):
            rel = posixpath.normpath(f"{rel_dir}/{name}")
            if is_ignored(rel, patterns):
                continue
            kept.append(name)
            yield _entry(Path(dirpath, name), rel)
        dirnames[:] = kept  # os.walk lists a symlink to a directory here without following it
        for name in sorted(filenames):
            rel = posixpath.normpath(f"{rel_dir}/{name}")
            if not is_ignored(rel, patterns):
                yield _entry(Path(dirpath, name), rel)


def _entry(path: Path, rel: str) -> tuple[str, ...]:
    info = path.lstat()
    mode = oct(stat.S_IMODE(info.st_mode))
    if stat.S_ISLNK(info.st_mode):
        return ("link", rel, mode, os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return ("dir", rel, mode)
    if stat.S_ISREG(info.st_mode):
        return ("file", rel, mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return ("other", rel, mode, str(stat.S_IFMT(info.st_mode)))


def _ignore_lines(text: str) -> Iterator[str]:
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        yield line


def _pattern(line: str, name: str) -> re.Pattern[str]:
    """A compiled ignore pattern, with the rules of Docker's pattern matcher that buildah uses: `**` any number
    of directories, `*` and `?` within one path element, leading `/` dropped, the pattern cleaned first."""
    if line.startswith("!"):
        raise Unkeyable(f"{name}: an exception pattern ({line})")
    pattern = posixpath.normpath(line).lstrip("/")
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            regex += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            regex += "[^/]*"
        elif ch == "?":
            regex += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise Unkeyable(f"{name}: an unclosed [ in {line}")
            body = pattern[i + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]"
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += re.escape(ch)
        i += 1
    return re.compile(regex)
