"""`python -m infra.preview` (schema checks in a helper process, stacks side by side in forked processes) writes
and prints exactly what the plain in-process run does, on the real stacks; errors too."""

import subprocess
import sys

from infra.preview.__main__ import main, stack_kubernetes_versions
from infra.preview.runner import PROJECT_ROOT


def files_of(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def command(*args):
    return subprocess.run([sys.executable, "-m", "infra.preview", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_command_output_is_byte_identical_to_the_in_process_run(tmp_path, capsys):
    code = main(["--all", "--out", str(tmp_path / "plain")])
    plain_out, plain_err = capsys.readouterr()
    proc = command("--all", "--out", str(tmp_path / "fast"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, plain_out, plain_err)
    plain, fast = files_of(tmp_path / "plain"), files_of(tmp_path / "fast")
    assert len(plain) > 30 and fast == plain


def test_command_reports_an_unknown_stack_in_one_line(tmp_path):
    proc = command("--stack", "nope", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "nope" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_warm_versions_come_from_the_stack_files():
    assert stack_kubernetes_versions(PROJECT_ROOT, ["--all"]) == ["1.33"]
    assert stack_kubernetes_versions(PROJECT_ROOT, ["--stack", "dev"]) == ["1.33"]
