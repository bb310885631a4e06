"""Every operator secret the program requires reaches the stack config in CI, on stdin, never as an argument.

The required keys are the stack config's SECRET_KEYS; each comes from the environment secret of the same name
in UPPER_SNAKE_CASE. The load step runs here with a stand-in `pulumi` that records its arguments and stdin.
"""

from __future__ import annotations

import re

import pytest

from stacks.config import SECRET_KEYS
from tests.ci.conftest import run_step_script, stand_in

RECORDER = """#!/usr/bin/env bash
# Stand-in for the Pulumi CLI: one line per call (arguments, then what came on stdin).
if [ "$1" = config ]; then
  printf '%s\\t%s\\n' "$*" "$(cat)" >> "${CALLS}"
else
  printf '%s\\t\\n' "$*" >> "${CALLS}"
fi
"""


def env_name(key: str) -> str:
    """saleorStaffPassword -> SALEOR_STAFF_PASSWORD."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


def _stack_steps(workflows) -> list[dict]:
    return workflows["pulumi-stack.yml"]["jobs"]["pulumi"]["steps"]


def _load_step(workflows) -> dict:
    return next(s for s in _stack_steps(workflows) if s.get("name") == "Load environment secrets into the stack config")


def test_the_program_requires_the_four_documented_operator_secrets():
    assert set(SECRET_KEYS) == {"saleorStaffPassword", "provisionerDatabaseUrl", "langflowApiKey", "openaiApiKey"}


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_each_required_secret_is_mapped_from_the_environment_and_checked_first(workflows, key):
    name = env_name(key)
    assert _load_step(workflows)["env"][name] == "${{ secrets." + name + " }}"
    check = _stack_steps(workflows)[0]
    assert check["env"]["SECRET_" + name] == "${{ secrets." + name + " }}"
    assert name in check["run"], f"the secret check does not require {name}"


def test_every_required_secret_goes_into_the_stack_config_on_stdin(workflows, tmp_path):
    bin_dir = stand_in(tmp_path, "pulumi", RECORDER)
    calls = tmp_path / "calls.tsv"
    values = {key: f"value of {key} with spaces; $(and) 'quotes'" for key in SECRET_KEYS}
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "STACK": "staging", "PULUMI_BACKEND_URL": "",
        **{env_name(key): value for key, value in values.items()},
    }
    result = run_step_script(_load_step(workflows)["run"], env)
    assert result.returncode == 0, result.stderr
    recorded = {}
    for line in calls.read_text().splitlines():
        argv, stdin = line.split("\t", 1)
        for value in values.values():
            assert value not in argv, "a secret value was passed as an argument"
        recorded[argv] = stdin
    expected = {f"config set --secret --stack staging {key}": values[key] for key in SECRET_KEYS}
    assert recorded == expected
    assert result.stdout == result.stderr == ""


def test_an_unset_secret_is_refused_before_anything_is_loaded(workflows):
    """The check step (first in the job) names each required secret the environment lacks."""
    check = _stack_steps(workflows)[0]
    env = {var: "set" for var in check["env"] if var.startswith("SECRET_")} | {"TARGET_ENVIRONMENT": "dev"}
    env[f"SECRET_{env_name(SECRET_KEYS[-1])}"] = ""
    result = run_step_script(check["run"], env)
    assert result.returncode == 1
    assert result.stdout.strip() == f"::error::environment 'dev' is missing secrets: {env_name(SECRET_KEYS[-1])}"
