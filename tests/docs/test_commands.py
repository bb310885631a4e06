"""Every command in README.md and docs/*.md works as written, or its block says what it needs.

The commands are the lines of the ```bash (or ```sh) blocks, run from the repository root, one shell per
block, with ``.venv/bin`` first on PATH; a line ending in ``\\`` continues on the next. A comment can tag a
line (``make test   # the suite; needs: long``), and a comment line tags the lines after it in its block
(``# needs: pulumi, cluster, credentials``). README.md "Commands in these docs" lists the tags:

- ``needs: openbao``: run here against a plain OpenBao dev server on loopback (``VAULT_ADDR``/``VAULT_TOKEN``
  exported, as README.md says; ``bao`` from ``.venv/bin``);
- ``needs: postgres``: run here against a PostgreSQL on loopback (``DATABASE_URL`` exported);
- ``serves``: runs until stopped: started here, passes once ``GET /healthz`` on its port answers 200;
- ``long``: minutes of work (the suite, an image build, a benchmark) that CI runs: here ``make -n`` only;
- ``exits: N``: the exit status the docs promise (default 0);
- ``needs: pulumi``, ``cluster``, ``credentials``, ``root``, ``internet``, ``id`` (a value from an earlier command's
  output):
  not run here; reported as skipped, naming what the line needs.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.openbao import OpenBaoServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell"}
RUN_HERE = {"openbao", "postgres", "long"}  # needs this test provides (openbao, postgres) or checks another way (long)
# Every `needs:` tag the docs may use (README.md "Commands in these docs").
KNOWN_NEEDS = {"openbao", "postgres", "long", "pulumi", "cluster", "credentials", "root", "id", "internet"}
FENCE = re.compile(r"^(\s*)```\s*([\w-]*)\s*$")
TAG = re.compile(r"\b(needs|exits):\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)")
# First words that make a fenced block a shell command, whatever its language says.
COMMAND_WORDS = re.compile(r"^(make|pulumi|kubectl|bao|vault|cmp-provisioner|cmp-connector-gateway|export|"
                           r"\.venv/bin/\S+|python\S*|[A-Z_][A-Z0-9_]*=\S*)(\s|$)")


@dataclass
class Command:
    doc: str
    line: int
    text: str
    setup: list[str]  # the block's earlier `export`/`cd` lines, which this one runs after
    block: int  # the line its block starts on
    needs: set[str] = field(default_factory=set)
    serves: bool = False
    exits: int = 0

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _comment_start(line: str) -> int:
    """Where an unquoted ` #` comment starts (len(line) if none)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return len(line)


def _tags(comment: str) -> tuple[set[str], int | None, bool]:
    needs: set[str] = set()
    exits = None
    for kind, value in TAG.findall(comment):
        if kind == "needs":
            needs |= {t.strip() for t in value.split(",") if t.strip()}
        else:
            exits = int(value.strip())
    return needs, exits, bool(re.search(r"\bserves\b", comment))


def fenced_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the first line inside, lines) of every fenced block."""
    out, lang, start, body, indent = [], None, 0, [], ""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if lang is None and match:
            lang, indent, start, body = match[2], match[1], number + 1, []
        elif lang is not None and match and not match[2]:
            out.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line.removeprefix(indent))
    return out


def commands_of(path: Path) -> list[Command]:
    found: list[Command] = []
    for lang, start, body in fenced_blocks(path):
        if lang not in SHELL:
            continue
        header: set[str] = set()
        setup: list[str] = []
        i = 0
        while i < len(body):
            number, text = start + i, body[i]
            while text.rstrip().endswith("\\") and i + 1 < len(body):
                i += 1
                text = text.rstrip()[:-1] + " " + body[i].strip()
            i += 1
            cut = _comment_start(text)
            code, comment = text[:cut].strip(), text[cut:]
            needs, exits, serves = _tags(comment)
            if not code:
                header = needs or header
                continue
            command = Command(path.name, number, code, list(setup), start, header | needs, serves, exits or 0)
            if code.startswith(("export ", "cd ")):
                setup.append(code)
            found.append(command)
    return found


ALL = [c for path in DOCS for c in commands_of(path)]


def test_every_command_block_is_a_bash_block():
    """A command in a block without a shell language would escape this test."""
    hidden = [f"{path.name}:{start}: {body[0].strip()}" for path in DOCS
              for lang, start, body in fenced_blocks(path)
              if lang not in SHELL and body and COMMAND_WORDS.match(body[0].strip())]
    assert not hidden, "mark these blocks ```bash: " + "; ".join(hidden)


def test_every_command_parses_as_shell():
    for command in ALL:
        try:
            shlex.split(command.text)
        except ValueError as exc:
            pytest.fail(f"{command.id}: {command.text!r} is not a shell command: {exc}")


# --- running them ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs_openbao():
    """An OpenBao of the docs' own, as a reader's `bao server -dev` starts: KV v2 at ``secret/`` and nothing
    else (the suite's servers add ``kv/``; the docs create the mounts they use in lines the reader sees)."""
    with OpenBaoServer() as server:
        httpx.delete(f"{server.addr}/v1/sys/mounts/kv", headers=server.headers()).raise_for_status()
        yield server


@pytest.fixture(scope="module")
def docs_postgres():
    """A PostgreSQL of the docs' own, with one empty database; its SQLAlchemy URL."""
    from tests.support.postgres import PostgresServer

    with PostgresServer(fsync=False) as server:
        yield server.create_database("docs")


def shell_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The reader's shell: `.venv/bin` first on PATH (README.md), nothing linked or mounted behind their back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "PYTEST_"))}
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), env.get("PATH", "")])
    return {**env, **(extra or {})}


_RESULTS: dict[tuple[str, tuple[tuple[str, str], ...]], subprocess.CompletedProcess[str]] = {}


def run(command: Command, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the command after its block's setup lines. The same script in the same environment (`make preview`
    in README.md and docs/preview.md) runs once per session: a second run would show nothing new."""
    script = "\n".join([*command.setup, command.text])
    key = (script, tuple(sorted(env.items())))
    if key not in _RESULTS:
        _RESULTS[key] = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True,
                                       text=True, timeout=timeout)
    return _RESULTS[key]


def _port_of(command: Command) -> int:
    match = re.search(r"--port[ =](\d+)", command.text)
    return int(match[1]) if match else 8000


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def serve(command: Command, env: dict[str, str]) -> None:
    """Start a command that serves, wait for /healthz, stop it; fail with its output if it never answers."""
    port = _port_of(command)
    if not _port_free(port):
        pytest.skip(f"{command.id}: port {port} is taken on this machine")
    script = "\n".join([*command.setup, command.text])
    proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=1) as client:  # one client: each new one loads the CA bundle
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        proc.kill()
        output = proc.communicate(timeout=10)[0]
        pytest.fail(f"{command.id}: {command.text!r} did not serve /healthz on {port}:\n{output[-2000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=20)


def _skip_reason(command: Command) -> str | None:
    outside = sorted(command.needs - RUN_HERE)
    return f"{command.id}: needs {', '.join(outside)}: {command.text}" if outside else None


def test_needs_tags_are_the_documented_ones():
    unknown = [f"{c.id}: {', '.join(sorted(c.needs - KNOWN_NEEDS))}" for c in ALL if c.needs - KNOWN_NEEDS]
    assert not unknown, f"tags not listed in README.md 'Commands in these docs': {unknown}"


def _blocks() -> list[tuple[str, list[Command]]]:
    """Each block's commands, in order (a later line may use what an earlier one made)."""
    grouped: dict[tuple[str, int], list[Command]] = {}
    for command in ALL:
        grouped.setdefault((command.doc, command.block), []).append(command)
    return [(f"{doc}:{line}", commands) for (doc, line), commands in grouped.items()]


def _param(block_id: str, commands: list[Command]) -> object:
    runnable = [c for c in commands if not (c.needs - RUN_HERE)]
    server = any(c.serves or c.needs & {"openbao", "postgres"} for c in runnable)
    return pytest.param(commands, id=block_id, marks=[pytest.mark.server] if server else [])


@pytest.mark.parametrize("commands", [_param(b, cs) for b, cs in _blocks()])
def test_block_works_as_written(commands, request):
    skipped = []
    for command in commands:
        if _skip_reason(command):
            skipped.append(_skip_reason(command))
            continue
        if "long" in command.needs:
            words = shlex.split(command.text)
            assert words[0] == "make", f"{command.id}: only make targets may be tagged long: {command.text!r}"
            proc = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, f"{command.id}: make -n {' '.join(words[1:])}: {proc.stderr.strip()}"
            continue
        extra: dict[str, str] = {}
        if "openbao" in command.needs:
            bao = request.getfixturevalue("docs_openbao")
            extra = {"VAULT_ADDR": bao.addr, "VAULT_TOKEN": bao.root_token}
        if "postgres" in command.needs:
            extra["DATABASE_URL"] = request.getfixturevalue("docs_postgres")
        env = shell_env(extra)
        if command.serves:
            serve(command, env)
            continue
        proc = run(command, env)
        assert proc.returncode == command.exits, (
            f"{command.id}: {command.text!r} exited {proc.returncode}, the docs say {command.exits}:\n"
            f"{(proc.stderr or proc.stdout)[-2000:]}")
    if skipped:
        pytest.skip("ran the rest of the block; not run here: " + " | ".join(skipped))
