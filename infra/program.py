"""The program's entry: load the stack's config, build the platform; config errors as one line."""

from __future__ import annotations

import pulumi

from infra.config import ConfigError, load_stack_config


def main() -> None:
    try:
        cfg = load_stack_config()
        from stacks.platform import build  # after config: nothing is registered on a config error

        build(cfg)
    except ConfigError as exc:
        pulumi.log.error(str(exc))
        raise pulumi.RunError(str(exc)) from None
