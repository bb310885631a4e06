"""Saleor's GraphQL schemas and the checks made against them.

The schemas are third-party files and not part of this repository: they are read through `infra.schemas`
(the directory in CMP_SCHEMA_DIR, files `saleor/saleor-<version>.graphql`). Without them, the provider can
ask the configured Saleor for its own schema (one introspection request per API URL and process). With
neither, the schema checks are skipped with one line saying so; Saleor still validates what it receives.

The provider's check() uses these so a bad event name, subscription query or permission fails at preview,
before anything exists in Saleor. Parsing a schema file (~1 MB of SDL) takes 1-2 s and every `pulumi up` starts
a new provider host, so a schema is built once per process and, across processes, rebuilt from its
introspection result kept in the user's cache directory under the file's hash (about a quarter of the time).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphql import GraphQLSchema

# graphql-core (~50 ms to import) is imported inside the functions: the program imports this module through the
# component's args checks, and only the provider's check() (in its own process) needs the schemas.

log = logging.getLogger("components.saleor")

SCHEMA_FILES: dict[str, str] = {
    "3.20": "saleor/saleor-3.20.119.graphql",
    "3.21": "saleor/saleor-3.21.69.graphql",
    "3.23": "saleor/saleor-3.23.28.graphql",
}
SUPPORTED_VERSIONS = tuple(SCHEMA_FILES)
Schemas = Mapping[str, "GraphQLSchema"]  # label ("3.21", or "at <apiUrl>") -> schema

_live: dict[str, GraphQLSchema | None] = {}
_live_lock = threading.Lock()
_said: set[str] = set()


def _say_once(line: str) -> None:
    if line not in _said:
        _said.add(line)
        log.warning(line)


@cache
def load_schema(version: str) -> GraphQLSchema | None:
    """Saleor `version`'s schema from the schema directory, or None when it is not there."""
    if version not in SCHEMA_FILES:
        raise ValueError(f"Saleor schema version {version!r} is not one of {list(SUPPORTED_VERSIONS)}")
    from infra.schemas import find_schema

    path = find_schema(SCHEMA_FILES[version])
    return build_cached(path.read_bytes()) if path is not None else None


SCHEMA_CACHE = "saleor-schemas"  # the namespace in the project's cache (infra.cache)


def build_cached(sdl: bytes) -> GraphQLSchema:
    """The schema of `sdl`, rebuilt from the introspection result kept for these exact bytes (and graphql-core
    version); on a miss the SDL is parsed, validated and built, and its introspection result kept. Both print the
    same schema. An entry that is not an introspection result is replaced."""
    import graphql
    from graphql import build_client_schema, build_schema, introspection_from_schema

    from infra.cache import cached_json, entry_path

    key = sdl + b"\0graphql-core " + graphql.__version__.encode()

    def introspected() -> dict:
        return introspection_from_schema(build_schema(sdl.decode()))

    try:
        # The SDL was validated when the kept result was made from it.
        return build_client_schema(cached_json(SCHEMA_CACHE, key, introspected), assume_valid=True)
    except (ValueError, TypeError, KeyError, graphql.GraphQLError) as exc:
        log.debug("Saleor schema cache entry unusable (%s); building from the SDL", type(exc).__name__)
        with contextlib.suppress(OSError):
            entry_path(SCHEMA_CACHE, key).unlink(missing_ok=True)
        return build_client_schema(cached_json(SCHEMA_CACHE, key, introspected), assume_valid=True)


def live_schema(api_url: str, timeout_seconds: float = 20.0) -> GraphQLSchema | None:
    """The schema the Saleor at `api_url` serves (introspection needs no login); None when it cannot be read."""
    with _live_lock:
        if api_url in _live:
            return _live[api_url]
        import httpx
        from graphql import build_client_schema, get_introspection_query

        try:
            response = httpx.post(
                api_url,
                json={"query": get_introspection_query(descriptions=False)},
                timeout=timeout_seconds,
                follow_redirects=False,
            )
            response.raise_for_status()
            # A default introspection omits deprecated input fields, which can leave an input type looking empty
            # (invalid as a schema, harmless for validating documents): skip the schema's own validation.
            schema = build_client_schema(response.json()["data"], assume_valid=True)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            _say_once(f"Saleor schema: could not read the schema of {api_url} ({type(exc).__name__})")
            schema = None
        _live[api_url] = schema
        return schema


def schemas_for(versions: tuple[str, ...], api_url: str | None = None, timeout_seconds: float = 20.0) -> Schemas:
    """The schemas to check against: the files for `versions`, else the live server's, else none (said once)."""
    found = {v: s for v in versions if (s := load_schema(v)) is not None}
    missing = [v for v in versions if v not in found]
    if found:
        if missing:
            _say_once(
                f"Saleor schema check: no schema file for Saleor {', '.join(missing)}; checking {', '.join(found)}"
            )
        return found
    if api_url:
        live = live_schema(api_url, timeout_seconds)
        if live is not None:
            return {f"at {api_url}": live}
    _say_once(
        "Saleor schema check skipped: no Saleor schema under CMP_SCHEMA_DIR (saleor/saleor-<version>.graphql) and "
        "no reachable saleor.apiUrl; events, permissions and queries are checked by Saleor when sent"
    )
    return {}


def enum_values(schema: GraphQLSchema, enum_name: str) -> frozenset[str]:
    from graphql import GraphQLEnumType

    enum = schema.get_type(enum_name)
    assert isinstance(enum, GraphQLEnumType), enum_name
    return frozenset(enum.values)


def document_errors(document: str, schema: GraphQLSchema) -> list[str]:
    """graphql-core's parse/validation messages for `document` against `schema` (empty when valid)."""
    from graphql import GraphQLSyntaxError, parse, validate

    try:
        ast = parse(document)
    except GraphQLSyntaxError as exc:
        return [exc.message]
    return [err.message for err in validate(schema, ast)]


def unknown_values(values: list[str], enum_name: str, schemas: Schemas) -> list[str]:
    """Values that are not members of `enum_name` in every one of `schemas`."""
    return [v for v in values if any(v not in enum_values(s, enum_name) for s in schemas.values())]


def _upper_snake(type_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).upper()


def subscription_problems(query: str, events: list[str] | None, schemas: Schemas) -> list[str]:
    """Why `query` cannot serve as a webhook subscription for `events` on every Saleor in `schemas`.

    With `events` None (not known yet) the query is checked against the schemas only.
    """
    from graphql import GraphQLSyntaxError, InlineFragmentNode, OperationDefinitionNode, OperationType, parse

    problems: list[str] = []
    for label, schema in schemas.items():
        problems += [f"Saleor {label}: {msg}" for msg in document_errors(query, schema)]
    if problems:
        return problems
    try:
        ast = parse(query)
    except GraphQLSyntaxError as exc:  # reached only when no schema is available
        return [exc.message]
    operations = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.SUBSCRIPTION:
        return ["Saleor expects exactly one `subscription { event { ... } }` operation"]
    if events is None or not schemas:
        return problems
    known = set().union(*(enum_values(s, "WebhookEventTypeAsyncEnum") for s in schemas.values()))
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
