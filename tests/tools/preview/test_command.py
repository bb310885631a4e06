"""`python -m tools.preview` writes and prints what the in-process run does, on the real stacks; errors too."""

import shutil
import subprocess
import sys

from tools.preview.__main__ import main
from tools.preview.runner import PROJECT_ROOT


def files_of(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def command(*args):
    return subprocess.run([sys.executable, "-m", "tools.preview", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_command_output_is_byte_identical_to_the_in_process_run(tmp_path, capsys):
    code = main(["--all", "--out", str(tmp_path / "plain")])
    plain_out, plain_err = capsys.readouterr()
    proc = command("--all", "--out", str(tmp_path / "cli"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, plain_out, plain_err)
    plain, cli = files_of(tmp_path / "plain"), files_of(tmp_path / "cli")
    assert len(plain) > 30 and cli == plain


def test_command_reports_an_unknown_stack_in_one_line(tmp_path):
    proc = command("--stack", "nope", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: unknown stack 'nope' (known: dev, staging, prod)"]
    assert not any(tmp_path.iterdir())


def test_a_broken_stack_is_one_line_and_the_others_are_still_previewed(tmp_path, capsys):
    for path in [*PROJECT_ROOT.glob("Pulumi*.yaml"), PROJECT_ROOT / "__main__.py"]:
        shutil.copy(path, tmp_path / path.name)
    staging = tmp_path / "Pulumi.staging.yaml"
    key = "cmp-platform:controlPlaneUrl: "
    staging.write_text(staging.read_text().replace(key, f"{key}ftp:/"))
    code = main(["--all", "--out", str(tmp_path / "out")], root=tmp_path)
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "error: staging:" in err and "controlPlaneUrl" in err
    assert "dev:" in out and "prod:" in out  # the other stacks still previewed and reported
    assert not (tmp_path / "out" / "staging").exists() and (tmp_path / "out" / "prod" / "resources.json").exists()


def test_the_command_keeps_collecting_what_it_makes_after_setting_its_imports_aside(tmp_path):
    """The command sets what its imports made aside from the collector (gc.freeze); cyclic garbage the
    previews make afterwards is still collected, so memory does not grow with the stacks."""
    script = (
        "import gc, sys, weakref\n"
        "from tools.preview.__main__ import main\n"
        f"code = main(['--stack', 'dev', '--out', {str(tmp_path)!r}], freeze_imports=True)\n"
        "assert gc.get_freeze_count() > 0 and gc.isenabled()\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"
        "gone = weakref.ref(a); del a, b\n"
        "gc.collect()\n"
        "print('exit', code, 'cycle collected', gone() is None)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.splitlines()[-1] == "exit 0 cycle collected True", proc.stderr
