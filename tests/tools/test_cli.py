"""The tools' command lines answer bad arguments in one line, never argparse's two or a traceback."""

import subprocess
import sys

import pytest

from tools.preview.runner import PROJECT_ROOT


@pytest.mark.parametrize(("module", "usage"), [("tools.preview", "python -m tools.preview"),
                                               ("tools.verify", "python -m tools.verify"),
                                               ("tools.images.build", "make images")])
def test_bad_arguments_are_one_line(module, usage):
    proc = subprocess.run([sys.executable, "-m", module, "--bogus"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and f"(usage: {usage}" in proc.stderr
