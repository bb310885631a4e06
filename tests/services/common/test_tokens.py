"""The service token both services send the control plane."""

from __future__ import annotations

import jwt

from service_src.common.tokens import ServiceToken

SECRET = "x" * 32


def claims(token: str) -> dict:
    return jwt.decode(token, SECRET, algorithms=["HS256"], audience="cmp-control-plane", options={"verify_exp": False})


def test_claims_and_reuse_until_a_minute_before_expiry():
    now = [1_000_000.0]
    token = ServiceToken(SECRET, issuer="cmp-provisioner", subject="cmp-provisioner", lifetime_seconds=240,
                         clock=lambda: now[0])
    first = token.token()
    assert claims(first) == {"iss": "cmp-provisioner", "sub": "cmp-provisioner", "aud": "cmp-control-plane",
                             "iat": 1_000_000, "exp": 1_000_240}
    now[0] += 179
    assert token.token() == first  # more than a minute left: reused
    now[0] += 2
    assert token.token() != first  # re-minted before it expires
    assert SECRET not in repr(token)


def test_without_a_subject_there_is_no_sub_claim():
    token = ServiceToken(SECRET, issuer="cmp-connector", lifetime_seconds=300, clock=lambda: 2_000_000.0)
    assert claims(token.token()) == {"iss": "cmp-connector", "aud": "cmp-control-plane", "iat": 2_000_000,
                                     "exp": 2_000_300}
