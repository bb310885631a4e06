"""The one check every command line's argument errors get: exit 2, one `error:` line naming the usage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def assert_one_line_usage_error(main: Callable[[list[str]], Any], argv: list[str], capsys: Any, usage: str) -> None:
    """``main(argv)`` as its console script runs it: SystemExit 2, nothing on stdout, one stderr line that
    starts with ``error:`` and names ``(usage: <usage> ...``."""
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    out, err = capsys.readouterr()
    assert excinfo.value.code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and f"(usage: {usage}" in err
