"""The CrossGuard pack: `pulumi preview --policy-pack policy`. It only wraps policy/policies.py.

Run by the Pulumi CLI with this folder as the program directory, so `policies` imports as a
top-level module. Constructing PolicyPack serves the analyzer and blocks: never import this file.
"""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

try:
    from policies import RESOURCE_POLICIES, STACK_POLICIES
except ImportError:  # run as `python -m policy` from the project root
    from policy.policies import RESOURCE_POLICIES, STACK_POLICIES


def _resource_validator(check):
    def validate(args, report_violation):
        for message in check(args.resource_type, args.props):
            report_violation(message)
    return validate


def _stack_validator(check):
    def validate(args, report_violation):
        for message in check((r.resource_type, r.props) for r in args.resources):
            report_violation(message)
    return validate


PolicyPack(
    name="cmp-platform-policies",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        *(ResourceValidationPolicy(name=p.name, description=p.description,
                                   validate=_resource_validator(p.check),
                                   enforcement_level=EnforcementLevel.MANDATORY)
          for p in RESOURCE_POLICIES),
        *(StackValidationPolicy(name=name, description=description, validate=_stack_validator(check),
                                enforcement_level=EnforcementLevel.MANDATORY)
          for name, description, check in STACK_POLICIES),
    ],
)
