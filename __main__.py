"""The program Pulumi runs (Pulumi.yaml: the project root is the program's directory).

Loads and validates the stack's config, then builds the platform. A config error is one line and
registers nothing.
"""

import pulumi

from infra.config import ConfigError
from stacks.config import load_stack_config
from stacks.platform import build

try:
    build(load_stack_config())
except ConfigError as exc:
    pulumi.log.error(str(exc))
    raise pulumi.RunError(str(exc)) from None
