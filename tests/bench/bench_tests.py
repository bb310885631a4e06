"""Wall time of the two test tiers as a developer runs them: `make test-fast` and `make test`, median of N runs.

Each run is timed from start to exit, with the CPU time it used (user and system, all its processes) and the
machine's load average read before it (other work on the same cores slows the suite, so the figure is only
comparable with the load beside it). Prints one line per run and
one summary line per target, and writes build/bench/tests.json. A run that fails is reported and makes the
script exit 1: a failing suite's time is not a figure. Run it warm (after one `make test`, so the venv exists
and the images' layers are cached).

    make bench-tests                                   # both tiers, 3 runs each
    .venv/bin/python tests/bench/bench_tests.py --target test-fast --runs 1
    .venv/bin/python tests/bench/bench_tests.py --pytest-args=--durations=25   # where the time goes, in each log
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("test-fast", "test")


def run_once(target: str, log: Path, pytest_args: str) -> dict:
    load = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(["make", target, f"PYTEST_ARGS={pytest_args}"], cwd=REPO, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
    return {"seconds": round(seconds, 1), "exit": code, "load_before": [round(x, 2) for x in load],
            "cpu_user_s": round(after.ru_utime - before.ru_utime, 1),
            "cpu_system_s": round(after.ru_stime - before.ru_stime, 1),
            "last_line": tail[0] if tail else "", "log": str(log)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target", choices=(*TARGETS, "both"), default="both")
    parser.add_argument("--pytest-args", default="", help="passed to make as PYTEST_ARGS, e.g. --durations=25")
    args = parser.parse_args(argv)
    out_dir = REPO / "build" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = TARGETS if args.target == "both" else (args.target,)
    results, failed = {}, False
    for target in targets:
        runs = []
        for n in range(1, args.runs + 1):
            run = run_once(target, out_dir / f"tests-{target}-{n}.log", args.pytest_args)
            runs.append(run)
            load = " ".join(f"{x:.2f}" for x in run["load_before"])
            print(f"make {target:<9} run {n}/{args.runs}: {run['seconds']:6.1f} s  exit {run['exit']}  "
                  f"cpu {run['cpu_user_s']:.0f} s user + {run['cpu_system_s']:.0f} s system  load before {load}  "
                  f"[{run['last_line']}]  log {run['log']}", flush=True)
            failed |= run["exit"] != 0
        times = [r["seconds"] for r in runs]
        median = statistics.median(times)
        mean_load = statistics.mean(r["load_before"][0] for r in runs)
        results[target] = {"median_s": median, "runs": runs, "mean_load_1min": round(mean_load, 2)}
        print(f"make {target:<9} median {median:.1f} s of {len(times)} "
              f"({', '.join(f'{t:.1f}' for t in times)}); 1-min load average before the runs: {mean_load:.2f} "
              f"on {os.cpu_count()} cores", flush=True)
    (out_dir / "tests.json").write_text(json.dumps(results, indent=2) + "\n")
    if failed:
        print("bench-tests: a run failed (see its log above); its time is not a valid figure", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
