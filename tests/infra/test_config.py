"""The config base: the shared validators say which rule a value broke."""

import pytest

from infra.config import check_image, dns_label, http_url


@pytest.mark.parametrize("url", ["http://x", "https://vault.example:8200", "http://10.0.0.1:1/path?q=1",
                                 "https://h:65535/"])
def test_http_urls_that_pass(url):
    assert http_url(url) == url


@pytest.mark.parametrize(("url", "rule"), [
    ("ftp://x", "must be an http:// or https:// URL"),
    ("http://", "must be an http:// or https:// URL"),
    ("http://x:99999", "port 99999 must be between 1 and 65535"),
    ("http://x:0/", "port 0 must be between 1 and 65535"),
])
def test_http_urls_that_fail_name_the_rule(url, rule):
    with pytest.raises(ValueError, match=rule):
        http_url(url)


def test_image_refs_need_a_tag_or_digest_and_never_latest():
    assert check_image("ghcr.io/x/y:1.0") and check_image("x/y@sha256:" + "a" * 64)
    for bad, rule in (("x/y", "must carry a tag"), ("x/y:latest", "moving tag"), ("X Y", "image reference")):
        with pytest.raises(ValueError, match=rule):
            check_image(bad)


def test_dns_labels():
    assert dns_label("cmp-1") == "cmp-1"
    with pytest.raises(ValueError, match="DNS-1123"):
        dns_label("Cmp_1")


def test_an_error_line_never_shows_a_password_inside_a_url():
    from infra.config import ConfigError

    line = str(ConfigError("connectorGateway.rateLimitStorageUrl", "redis://cmp:hunter2@redis:6379/0",
                           "must carry no credentials"))
    assert "hunter2" not in line
    assert line == ("config error: cmp-platform:connectorGateway.rateLimitStorageUrl = "
                    "'redis://cmp:[secret]@redis:6379/0': must carry no credentials")


def test_quantities_as_numbers_are_their_text_and_a_boolean_is_refused():
    """`pulumi config set --path ...limits.cpu 1` writes the integer 1; Kubernetes takes it, and so do we."""
    from pydantic import ValidationError

    from infra.config import ResourceAmounts, errors_from

    assert ResourceAmounts(cpu=1, memory=134217728).model_dump() == {"cpu": "1", "memory": "134217728"}
    assert ResourceAmounts(cpu=0.5, memory="64Mi").cpu == "0.5"
    raw = {"cpu": True, "memory": "lots"}
    with pytest.raises(ValidationError) as info:
        ResourceAmounts.model_validate(raw)
    assert [str(e) for e in errors_from(info.value, raw)] == [
        "config error: cmp-platform:cpu = true: Input should be a valid string",
        "config error: cmp-platform:memory = 'lots': must be a memory quantity like 128Mi or 1Gi"]


def test_the_secret_placeholder_counts_as_set_only_where_the_caller_says_values_cannot_be_read():
    """The offline preview passes the context; the program under Pulumi, which sees the real value, does not."""
    from pydantic import ValidationError, field_validator

    from infra.config import REDACTED, Model

    class Section(Model):
        email: str

        @field_validator("email")
        @classmethod
        def _email(cls, value: str) -> str:
            if "@" not in value:
                raise ValueError("must be an e-mail address")
            return value

    assert Section.model_validate({"email": REDACTED}, context={"secret_placeholders": True}).email == REDACTED
    for context in (None, {"secret_placeholders": False}):
        with pytest.raises(ValidationError, match="must be an e-mail address"):
            Section.model_validate({"email": REDACTED}, context=context)
    with pytest.raises(ValidationError, match="must be an e-mail address"):
        Section.model_validate({"email": "not-a-placeholder"}, context={"secret_placeholders": True})


def test_a_list_or_mapping_of_placeholders_is_not_judged_but_a_missing_or_unknown_key_is():
    """A key set with --secret is redacted leaf by leaf (``redacted``): a list of ports or a map of labels then holds
    placeholders where numbers or label values go. Only the placeholders' own errors are let through."""
    from pydantic import ValidationError

    from infra.config import REDACTED, Model, Peer, Resources, redacted

    class Section(Model):
        peer: Peer
        ports: list[int] = []
        resources: Resources | None = None

    placeholders = {"secret_placeholders": True}
    value = redacted({"peer": {"podLabels": {"app": "x"}, "ports": [80]}, "ports": [1, 2]})
    assert value == {"peer": {"podLabels": {"app": REDACTED}, "ports": [REDACTED]}, "ports": [REDACTED, REDACTED]}
    section = Section.model_validate(value, context=placeholders)
    assert section.ports == [REDACTED, REDACTED] and section.peer.ports == [REDACTED]
    assert section.secret_placeholders and section.peer.secret_placeholders
    with pytest.raises(ValidationError, match=r"ports\.1"):  # a real value beside a placeholder is judged
        Section.model_validate({"peer": {}, "ports": [REDACTED, "x"]}, context=placeholders)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Section.model_validate({"peer": {"portz": [REDACTED]}}, context=placeholders)
    with pytest.raises(ValidationError, match=r"resources\.limits\s+Field required"):
        Section.model_validate({"peer": {}, "resources": {"requests": {"cpu": REDACTED, "memory": REDACTED}}},
                               context=placeholders)
