"""The JWKS cache both services use, on an injected clock and an injected fetch (no server, no sleep)."""

from __future__ import annotations

import pytest

from service_src.common.jwks import FetchError, JwksCache, KeysUnavailable, UnknownKey
from tests.services.provisioner.helpers import SigningKey

URL = "https://saleor.example.com/.well-known/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Jwks:
    """The JWKS endpoint as the cache sees it: a document, or a failure; counts the GETs."""

    def __init__(self, *keys: dict) -> None:
        self.keys = list(keys)
        self.failing = False
        self.gets = 0

    async def __call__(self, url: str) -> object:
        assert url == URL
        self.gets += 1
        if self.failing:
            raise FetchError("HTTP 500")
        return {"keys": self.keys}


def cache(jwks: Jwks, clock: Clock, **overrides) -> JwksCache:
    options = {"ttl_seconds": 300, "min_refetch_seconds": 30, "algorithms": {"RS256"}, "clock": clock}
    return JwksCache(URL, jwks, **(options | overrides))


async def test_keys_stay_fresh_for_the_ttl_and_are_refetched_after_it():
    clock, jwks = Clock(), Jwks(SigningKey("k1").jwk())
    keys = cache(jwks, clock)
    first = await keys.key("k1")
    clock.now += 299
    assert await keys.key("k1") is first
    assert jwks.gets == 1
    clock.now += 2  # past the TTL: fetched again
    await keys.key("k1")
    assert jwks.gets == 2


async def test_an_unknown_kid_refetches_at_most_once_per_min_refetch():
    clock, jwks = Clock(), Jwks(SigningKey("k1").jwk())
    keys = cache(jwks, clock)
    await keys.key("k1")
    with pytest.raises(UnknownKey, match=f"kid 'k2' is not in the JWKS at {URL}"):
        await keys.key("k2")
    assert jwks.gets == 1  # fetched just now: a forged kid cannot force another fetch
    clock.now += 31
    rotated = SigningKey("k2")
    jwks.keys.append(rotated.jwk())
    assert (await keys.key("k2")).key_id == "k2"  # past the limit: one refetch picks up the rotated key
    assert jwks.gets == 2
    assert keys.generation == 2  # the key set changed


async def test_stale_keys_keep_verifying_while_the_jwks_is_down_and_unknown_kids_are_503():
    clock, jwks = Clock(), Jwks(SigningKey("k1").jwk())
    keys = cache(jwks, clock)
    await keys.key("k1")
    clock.now += 301
    jwks.failing = True
    assert await keys.key("k1") is not None  # stale, refetch failed: still verifies
    assert jwks.gets == 2
    clock.now += 31
    with pytest.raises(KeysUnavailable, match="could not be refetched"):
        await keys.key("k2")
    assert jwks.gets == 3


async def test_nothing_fetched_is_503_and_not_ready():
    clock, jwks = Clock(), Jwks()
    jwks.failing = True
    keys = cache(jwks, clock)
    with pytest.raises(KeysUnavailable, match="no JWKS could be fetched"):
        await keys.key("k1")
    assert await keys.ready() == (False, "JWKS unreachable")


async def test_only_signing_keys_of_the_allowed_algorithms_are_kept():
    rsa = SigningKey("rsa").jwk()
    encryption = {**SigningKey("enc").jwk(), "use": "enc"}
    symmetric = {"kty": "oct", "kid": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}
    keys = cache(Jwks(rsa, encryption, symmetric, {"kid": "broken", "kty": "RSA"}, "junk"), Clock())
    assert await keys.ready() == (True, "ok")
    for kid in ("enc", "oct", "broken"):
        with pytest.raises(UnknownKey):
            await keys.key(kid)
    assert (await keys.key("rsa")).algorithm_name == "RS256"
