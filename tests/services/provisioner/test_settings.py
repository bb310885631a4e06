"""The provisioner's settings as the pod's environment gives them: names, defaults, one message per bad value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service_src.provisioner.settings import ProvisionerSettings, origin_of

BASE = {"CONTROL_PLANE_URL": "http://cp:8080", "SERVICE_JWT_SECRET": "s" * 32, "SALEOR_ALLOWED_ORIGINS": "",
        "DATABASE_URL": "postgresql+psycopg://u:pw@db:5432/provisioner"}


def settings_from_env(monkeypatch, **env: str) -> ProvisionerSettings:
    for name, value in {**BASE, **env}.items():
        monkeypatch.setenv(name, value)
    return ProvisionerSettings()


def test_settings_read_the_configmap_and_secret_names(monkeypatch):
    settings = settings_from_env(
        monkeypatch,
        SALEOR_ALLOWED_ORIGINS="https://Saleor.example.com, https://shop.example.com:8443/",
        JWKS_CACHE_TTL_SECONDS="60",
        JWKS_MIN_REFETCH_SECONDS="10",
        RETRY_MAX_ATTEMPTS="4",
        RETRY_BACKOFF_SECONDS="2",
        RETRY_BACKOFF_MAX_SECONDS="30",
        WORKER_POLL_SECONDS="0.25",
        WORKER_BATCH_SIZE="7",
        MAX_BODY_BYTES="131072",
        CP_TIMEOUT_SECONDS="3",
        LOG_LEVEL="debug",
        DATABASE_URL="postgresql+psycopg://u:pw@db:5432/provisioner",
    )
    assert settings.allowed_origins == {"https://saleor.example.com", "https://shop.example.com:8443"}
    assert (settings.retry_max_attempts, settings.retry_backoff_seconds, settings.retry_backoff_max_seconds) == (
        4,
        2,
        30,
    )
    assert (settings.worker_poll_seconds, settings.worker_batch_size, settings.max_body_bytes) == (0.25, 7, 131072)
    assert (settings.jwks_cache_ttl_seconds, settings.jwks_min_refetch_seconds, settings.cp_timeout_seconds) == (
        60,
        10,
        3,
    )
    assert settings.log_level == "DEBUG"
    assert "pw" not in repr(settings)


def test_settings_defaults(monkeypatch):
    settings = settings_from_env(monkeypatch, SALEOR_ALLOWED_ORIGINS="https://saleor.example.com")
    assert (settings.retry_max_attempts, settings.retry_backoff_seconds, settings.retry_backoff_max_seconds) == (
        8,
        1,
        300,
    )
    assert (settings.worker_poll_seconds, settings.worker_batch_size, settings.max_body_bytes) == (0.5, 20, 262144)
    assert settings.worker_batches_in_flight == 4
    assert (settings.jwks_cache_ttl_seconds, settings.jwks_min_refetch_seconds, settings.port) == (300, 30, 8000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SALEOR_ALLOWED_ORIGINS is empty"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "SALEOR_LEGACY_HMAC": "false"},
         "SALEOR_LEGACY_HMAC is not supported: Saleor signs the webhooks with JWS"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "DATABASE_URL": "sqlite:////tmp/x.db"},
         "DATABASE_URL must be a postgresql+psycopg://... DSN, not sqlite://"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://saleor.example.com/graphql/"}, "must be an origin"),
        ({"SALEOR_ALLOWED_ORIGINS": "saleor.example.com"}, "ORIGINS entry 'saleor.example.com' is not an http(s) URL"),
        (
            {"SALEOR_ALLOWED_ORIGINS": "https://a.example", "CONTROL_PLANE_URL": "cp:80"},
            "CONTROL_PLANE_URL 'cp:80' is not",
        ),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "DATABASE_URL": "mysql://x"}, "DATABASE_URL must be"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' must be one of"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "WORKER_BATCH_SIZE": "0"}, "worker_batch_size"),
        ({"SALEOR_ALLOWED_ORIGINS": "https://a.example", "WORKER_BATCHES_IN_FLIGHT": "0"}, "worker_batches_in_flight"),
        (
            {"SALEOR_ALLOWED_ORIGINS": "https://a.example", "RETRY_BACKOFF_MAX_SECONDS": "0.5"},
            "RETRY_BACKOFF_MAX_SECONDS must be >= RETRY_BACKOFF_SECONDS",
        ),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, message):
    with pytest.raises(ValidationError) as info:
        settings_from_env(monkeypatch, **env)
    assert message in str(info.value)


def test_origin_of():
    assert origin_of("https://Saleor.Example.com:443/graphql/") == "https://saleor.example.com"
    assert origin_of("http://127.0.0.1:8000/graphql/") == "http://127.0.0.1:8000"
    with pytest.raises(ValueError, match="not an http"):
        origin_of("ftp://x")
