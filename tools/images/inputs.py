"""The content key of a service image: one hash over what `buildah bud` reads to make it, so an unchanged
image is reused (tagged and pushed) instead of built again.

Covered: the Dockerfile's text; every file, directory and symlink its COPY/ADD instructions take from the build
context (path, type, permission bits, content or link target), minus what the context's ignore file excludes
(.containerignore, else .dockerignore, as buildah reads them), and that file's text; the base image's id (its
config digest; its reference names the registry's port, which changes every run); the other build args.
Not covered, as with buildah's own layer cache: file times, and what RUN steps fetch (pip installs the versions
pinned in pyproject.toml, which is copied and so covered).

The Dockerfile is read by BuildKit's own parser (the `dockerfile` package wraps it), so continuation lines,
comments, the escape directive, JSON form, flags and heredocs are read as Docker reads them. A Dockerfile outside
what this models (a heredoc in COPY/ADD, COPY --from, a variable, wildcard, quote or URL in a source, an ignore
file with `!` exceptions) raises Unkeyable; its image is then always built.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

import dockerfile

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
    try:
        commands = dockerfile.parse_string(dockerfile_text)
    except dockerfile.GoParseError as exc:
        raise Unkeyable(f"the Dockerfile does not parse: {exc}") from exc
    sources: list[str] = []
    for command in commands:
        keyword = command.cmd.upper()
        if keyword not in ("COPY", "ADD"):
            continue
        instruction = command.original.splitlines()[0]
        if command.heredocs:
            raise Unkeyable(f"{keyword} with a heredoc: {instruction}")
        for flag in command.flags:
            if flag.split("=", 1)[0] not in COPY_FLAGS:
                raise Unkeyable(f"{keyword} {flag.split('=', 1)[0]}: {instruction}")
        if len(command.value) < 2:
            raise Unkeyable(f"{keyword} without a source and a destination: {instruction}")
        sources.extend(_source(src, instruction) for src in command.value[:-1])
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


def _source(src: str, instruction: str) -> str:
    if "://" in src or src.startswith("git@"):
        raise Unkeyable(f"a URL source ({src}): {instruction}")
    if any(ch in src for ch in "$*?[\"'\\`"):  # the builder expands these; the key reads paths as written
        raise Unkeyable(f"a variable, wildcard, quote or escape character in a source ({src}): {instruction}")
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


# The ignore file follows moby/patternmatcher (ignorefile/ignorefile.go ReadAll for the lines, patternmatcher.go
# Pattern.compile and MatchesOrParentMatches for a match), which buildah's copier shares through
# containers/storage pkg/fileutils. docker-py's docker.utils.build.PatternMatcher is not used: it lower-cases
# pattern and path, reads `[!a]` as a negation and `[^a]` literally, has no `\` escape, and its matches() checks
# one parent directory only, where moby is case-sensitive and hands brackets to Go's regexp.
def _ignore_lines(text: str) -> Iterator[str]:
    """The patterns: a `#` in the first column starts a comment, other lines are trimmed, blank ones skipped."""
    for raw in text.removeprefix("\ufeff").splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        yield raw.strip()


def _pattern(line: str, name: str) -> re.Pattern[str]:
    """A compiled ignore pattern: `**` any number of directories, `*` and `?` within one path element, `[...]` a
    Go regexp class, `\\` escapes the next character, the pattern cleaned and a leading `/` dropped first."""
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
