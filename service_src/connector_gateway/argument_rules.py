"""Rules on a tool call's arguments: CEL expressions the control plane's policy attaches to a tool on a binding.

A rule is ``{"name", "tool", "expression"}``; the call runs only when every rule of its tool on its binding
evaluates to ``true``. An expression sees ``arguments`` (the validated arguments, defaults filled in, absent
optional fields left out, so ``has(arguments.tags)`` works), ``binding``, ``tool`` and ``caller``
(``org``, ``project``, ``sub``). An evaluation error (a missing field, a wrong type) or a result that is not
``true`` denies: the rule fails closed. Expressions are compiled once, when the policy is fetched; one that
does not compile makes the whole policy unusable (see policy.py).

The CEL library is ``common-expression-language`` (module ``cel``), Python bindings over the Rust ``cel``
crate, chosen over the pure-Python ``cel-python`` because: it is the more actively released of the two; the
evaluator is a sandboxed interpreter with no path back into Python objects (the context is converted to CEL
values, and no Python function is registered here); an expression is parsed to a program once and then runs
in microseconds, which matters on the per-call hot path; and it needs no extra regex engine or date library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel
from pydantic import BaseModel

from service_src.connector_gateway.auth import Caller
from service_src.connector_gateway.errors import GatewayError

RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_EXPRESSION_CHARS = 2048


class RuleCompileError(Exception):
    """A rule of the policy document that cannot be used; the message names the rule and why."""


@dataclass(frozen=True, slots=True)
class ArgumentRule:
    name: str
    tool: str
    expression: str
    program: Any  # cel.Program

    @classmethod
    def compile(cls, name: str, tool: str, expression: str) -> ArgumentRule:
        if not RULE_NAME.fullmatch(name):
            raise RuleCompileError(f"rule name {name[:80]!r} must match {RULE_NAME.pattern}")
        if len(expression) > MAX_EXPRESSION_CHARS:
            raise RuleCompileError(f"rule {name!r} on {tool}: expression longer than {MAX_EXPRESSION_CHARS} chars")
        try:
            program = cel.compile(expression)
        except (ValueError, RuntimeError) as exc:
            first = str(exc).splitlines()[0][:300]
            raise RuleCompileError(f"rule {name!r} on {tool} does not compile: {first}") from None
        return cls(name, tool, expression, program)

    def allows(self, context: dict[str, Any]) -> bool:
        try:
            return self.program.execute(context) is True
        except Exception:  # any evaluation failure (a missing key, a type error) denies
            return False


def argument_denied(rule: ArgumentRule, binding: str) -> GatewayError:
    return GatewayError(403, "argument_denied", f"argument rule {rule.name!r} denies this call of {rule.tool} on "
                        f"binding {binding!r}")


def check_rules(rules: tuple[ArgumentRule, ...], *, tool: str, binding: str, arguments: BaseModel,
                caller: Caller) -> None:
    """403 ``argument_denied`` naming the first rule of ``tool`` that does not evaluate to true."""
    context = None
    for rule in rules:
        if rule.tool != tool:
            continue
        if context is None:
            context = {"arguments": arguments.model_dump(mode="json", exclude_none=True), "binding": binding,
                       "tool": tool, "caller": {"org": caller.org, "project": caller.project, "sub": caller.sub}}
        if not rule.allows(context):
            raise argument_denied(rule, binding)
