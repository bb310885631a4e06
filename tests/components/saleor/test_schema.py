"""Saleor's schemas are built once per process, and across processes from a cache under the SDL's hash."""

from __future__ import annotations

import pytest
from graphql import print_schema

from components.saleor import schema

SMALL_SDL = b'''
"""An app."""
type App { id: ID! name: String @deprecated(reason: "use label") label: String }
enum Event { ORDER_CREATED ORDER_FULLY_PAID }
input AppInput { name: String events: [Event!] = [ORDER_CREATED] }
type Query { app(id: ID!): App }
type Mutation { appCreate(input: AppInput!): App }
'''


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CMP_CACHE_DIR", str(tmp_path))
    return tmp_path / "saleor-schemas"


def test_a_cached_schema_is_the_schema_its_sdl_builds(cache_home):
    built = schema.build_cached(SMALL_SDL)  # from the SDL, and cached
    (entry,) = cache_home.iterdir()
    cached = schema.build_cached(SMALL_SDL)  # from the cache
    assert list(cache_home.iterdir()) == [entry] and cached is not built
    assert print_schema(cached) == print_schema(built)
    for document in ("query { app(id: 1) { nope } }", "mutation { appCreate(input: {events: [ORDER_PAID]}) { id } }",
                     "query { app(id: 1) { name label } }"):
        assert schema.document_errors(document, cached) == schema.document_errors(document, built)
    assert schema.enum_values(cached, "Event") == {"ORDER_CREATED", "ORDER_FULLY_PAID"}


def test_other_bytes_are_another_entry(cache_home):
    schema.build_cached(SMALL_SDL)
    other = schema.build_cached(SMALL_SDL.replace(b"label: String }", b"label: String size: Int }"))
    assert len(list(cache_home.iterdir())) == 2
    assert "size" in other.get_type("App").fields


def test_a_damaged_entry_is_rebuilt_from_the_sdl(cache_home):
    expected = print_schema(schema.build_cached(SMALL_SDL))
    (entry,) = cache_home.iterdir()
    entry.write_text('{"__schema": ')
    assert print_schema(schema.build_cached(SMALL_SDL)) == expected
    assert entry.read_text().startswith('{"__schema": {')  # written again
    assert print_schema(schema.build_cached(SMALL_SDL)) == expected


def test_an_unwritable_cache_still_builds(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("CMP_CACHE_DIR", str(blocked))
    assert "app" in schema.build_cached(SMALL_SDL).query_type.fields
    assert list(tmp_path.iterdir()) == [blocked]
