"""`python -m infra.preview` (schema checks in a helper process, stacks side by side in forked processes) writes
and prints exactly what the plain in-process run does, on the real stacks; errors too."""

import shutil
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


def test_side_by_side_reports_a_broken_stack_as_the_sequential_run_does(tmp_path, capsys):
    for path in PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    staging = tmp_path / "Pulumi.staging.yaml"
    key = "cmp-platform:controlPlaneUrl: "
    staging.write_text(staging.read_text().replace(key, f"{key}ftp:/"))
    outputs = {}
    for name, side_by_side in (("sequential", False), ("side", True)):
        code = main(["--all", "--out", str(tmp_path / name)], root=tmp_path, side_by_side=side_by_side)
        outputs[name] = (code, *capsys.readouterr())
    assert outputs["side"] == outputs["sequential"]
    code, out, err = outputs["side"]
    assert code == 2 and err.count("\n") == 1 and "error: staging:" in err and "controlPlaneUrl" in err
    assert "dev:" in out and "prod:" in out  # the other stacks still previewed and reported
    assert files_of(tmp_path / "side") == files_of(tmp_path / "sequential")
    assert not (tmp_path / "side" / "staging").exists() and (tmp_path / "side" / "prod" / "resources.json").exists()
