"""The image-build lock holds across processes (xdist workers, other runs in the same checkout)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.exclusive import CHECKOUT, exclusive, lock_path

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as handle:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(3)
"""


def _other_process_gets(name: str) -> bool:
    result = subprocess.run([sys.executable, "-c", TRY_LOCK, str(lock_path(name))], timeout=30, check=False)
    return result.returncode == 0


def test_another_process_waits_while_the_lock_is_held_and_gets_it_after():
    name = "test-exclusive"
    with exclusive(name):
        assert not _other_process_gets(name)
    assert _other_process_gets(name)


def test_the_lock_is_per_checkout_and_name():
    assert lock_path("images") != lock_path("other")
    assert lock_path("images").name.startswith("cmp-images-")
    assert CHECKOUT.joinpath("tests", "support", "exclusive.py").is_file()
