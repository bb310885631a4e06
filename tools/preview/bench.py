"""`make bench-preview`: wall time of the offline preview of every stack against a bare SDK import.

Both are measured in the same run, in fresh processes, a few repetitions each, median; the ratio
is what the target (<= 3) is about. Writes build/bench/preview.json.

The project's modules are compiled to bytecode first, as pip compiled the SDK's at install: where
PYTHONDONTWRITEBYTECODE is set (this machine sets it) Python would otherwise compile every project
module from source on every run, a cost the floor does not pay (~0.04 s; printed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tools.preview.runner import PROJECT_ROOT

REPETITIONS = 9  # single runs vary widely on a shared machine; the median of many interleaved runs is steadier
IMPORT_FLOOR = [sys.executable, "-c", "import pulumi, pulumi_kubernetes, pulumi_vault"]
PROJECT_PACKAGES = ["infra", "components", "stacks", "tools", "policy"]
TARGET_RATIO = 3
# For scale: the program's own modules (config models, components, Saleor's GraphQL checks, the
# preview's engine), no typed Kubernetes module, nothing run. What no preview of this program can skip.
PROGRAM_IMPORTS = [sys.executable, "-c", "import stacks.config, stacks.platform, tools.preview.runner, "
                   "policy.policies"]


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"bench: {' '.join(cmd[1:3])} failed (exit {proc.returncode}): {tail[0]}")
    return elapsed


def main() -> None:
    compiled = wall([sys.executable, "-m", "compileall", "-q", *PROJECT_PACKAGES])
    print(f"compiled the project's modules to bytecode ({' '.join(PROJECT_PACKAGES)}): {compiled:.3f} s")
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as out:
        preview = [sys.executable, "-m", "tools.preview", "--all", "--out", out]
        wall(IMPORT_FLOOR)  # warm the page cache for both before timing
        wall(preview)
        floor_runs, preview_runs, program_runs = [], [], []
        for _ in range(REPETITIONS):  # interleaved, so machine load hits all alike
            floor_runs.append(wall(IMPORT_FLOOR))
            preview_runs.append(wall(preview))
            program_runs.append(wall(PROGRAM_IMPORTS))
    floor, full = statistics.median(floor_runs), statistics.median(preview_runs)
    program = statistics.median(program_runs)
    result = {"preview_all_s": round(full, 3), "import_floor_s": round(floor, 3), "ratio": round(full / floor, 2)}
    print(f"import floor (python -c 'import pulumi, pulumi_kubernetes, pulumi_vault'): median {floor:.3f} s "
          f"of {[round(x, 3) for x in floor_runs]}")
    print(f"offline preview of every stack (python -m tools.preview --all):          median {full:.3f} s "
          f"of {[round(x, 3) for x in preview_runs]}")
    print(f"ratio {result['ratio']} (target <= {TARGET_RATIO}: {'met' if full / floor <= TARGET_RATIO else 'NOT met'})")
    print(f"for scale: importing the program's own modules, nothing run: median {program:.3f} s "
          f"({program / floor:.2f} x the floor)")
    print(f"load average (1, 5, 15 min) at the end: {[round(x, 2) for x in os.getloadavg()]}")
    target = PROJECT_ROOT / "build" / "bench" / "preview.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
