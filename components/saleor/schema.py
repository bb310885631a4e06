"""Saleor's GraphQL schemas (copies of 3.20, 3.21, 3.23 in schemas/) and the checks made against them.

The provider's check() uses these so a bad event name, subscription query or permission fails at preview,
before anything exists in Saleor. Each schema takes ~1 s to build, so it is built once per process.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphql import GraphQLSchema

# graphql-core (~50 ms to import) is imported inside the functions: the program imports this module through the
# component's args checks, and only the provider's check() (in its own process) needs the schemas.

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_FILES: dict[str, str] = {
    "3.20": "saleor-3.20.119.graphql",
    "3.21": "saleor-3.21.69.graphql",
    "3.23": "saleor-3.23.28.graphql",
}
SUPPORTED_VERSIONS = tuple(SCHEMA_FILES)


@cache
def load_schema(version: str) -> GraphQLSchema:
    if version not in SCHEMA_FILES:
        raise ValueError(f"Saleor schema version {version!r} is not one of {list(SUPPORTED_VERSIONS)}")
    from graphql import build_schema

    return build_schema((SCHEMA_DIR / SCHEMA_FILES[version]).read_text())


def _enum_values(version: str, enum_name: str) -> frozenset[str]:
    from graphql import GraphQLEnumType

    enum = load_schema(version).get_type(enum_name)
    assert isinstance(enum, GraphQLEnumType), enum_name
    return frozenset(enum.values)


def document_errors(document: str, version: str) -> list[str]:
    """graphql-core's parse/validation messages for `document` against Saleor `version` (empty when valid)."""
    from graphql import GraphQLSyntaxError, parse, validate

    try:
        ast = parse(document)
    except GraphQLSyntaxError as exc:
        return [exc.message]
    return [err.message for err in validate(load_schema(version), ast)]


def unknown_values(values: list[str], enum_name: str, versions: tuple[str, ...]) -> list[str]:
    """Values that are not members of `enum_name` in every one of `versions`."""
    return [v for v in values if any(v not in _enum_values(ver, enum_name) for ver in versions)]


def _upper_snake(type_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).upper()


def subscription_problems(query: str, events: list[str] | None, versions: tuple[str, ...]) -> list[str]:
    """Why `query` cannot serve as a webhook subscription for `events` on every Saleor in `versions`.

    With `events` None (not known yet) the query is checked against the schemas only.
    """
    from graphql import InlineFragmentNode, OperationDefinitionNode, OperationType, parse

    problems: list[str] = []
    for version in versions:
        problems += [f"Saleor {version}: {msg}" for msg in document_errors(query, version)]
    if problems:
        return problems
    ast = parse(query)
    operations = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.SUBSCRIPTION:
        return ["Saleor expects exactly one `subscription { event { ... } }` operation"]
    if events is None:
        return problems
    known = set().union(*(_enum_values(v, "WebhookEventTypeAsyncEnum") for v in versions))
    for selection in operations[0].selection_set.selections:
        if getattr(selection, "name", None) is None or selection.name.value != "event":
            continue
        for inner in selection.selection_set.selections if selection.selection_set else []:
            if isinstance(inner, InlineFragmentNode) and inner.type_condition is not None:
                event = _upper_snake(inner.type_condition.name.value)
                if event in known and event not in events:
                    problems.append(
                        f"the query selects `... on {inner.type_condition.name.value}` but asyncEvents "
                        f"{sorted(events)} does not include {event}"
                    )
    return problems
