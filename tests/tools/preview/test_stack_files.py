"""Stack config as the CLI would hand it to the program: defaults, overrides, secure values, secrets."""

import json

import pytest

from tools.preview.stack_files import SECRET_PLACEHOLDER, StackFileError, known_stacks, load_stack_files


@pytest.fixture
def root(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(
        "name: cmp-platform\nconfig:\n"
        "  namespace: {type: string, default: cmp}\n"
        "  debug: {type: boolean, default: false}\n"
        "  cmp-platform:replicas: 3\n"
        "  saleorStaffPassword: {type: string, secret: true}\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n"
        "  cmp-platform:namespace: cmp-dev\n"
        "  cmp-platform:saleorStaffPassword:\n    secure: v1:abc\n"
        "  cmp-platform:saleor:\n    apiUrl: http://saleor/graphql/\n    token:\n      secure: v1:def\n"
        "  kubernetes:context: kind-dev\n")
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  cmp-platform:openaiApiKey: plain-text\n")
    return tmp_path


def test_known_stacks(root):
    assert known_stacks(root) == ["dev", "prod"]


def test_defaults_overrides_and_secure_values(root):
    files = load_stack_files(root, "dev", ("saleorStaffPassword", "openaiApiKey"))
    assert files.project == "cmp-platform"
    assert files.values["namespace"] == "cmp-dev"
    # defaults reach the program as the CLI passes them: text
    assert files.values["debug"] == "false" and files.values["replicas"] == "3"
    assert files.values["saleorStaffPassword"] == SECRET_PLACEHOLDER
    assert files.values["saleor"] == {"apiUrl": "http://saleor/graphql/", "token": SECRET_PLACEHOLDER}
    assert files.values["kubernetes:context"] == "kind-dev"
    # a declared secret the file lacks (set with `pulumi config set --secret`) is a placeholder secret
    assert files.values["openaiApiKey"] == SECRET_PLACEHOLDER
    assert files.secret_keys == {"saleorStaffPassword", "saleor", "openaiApiKey"}
    assert "v1:abc" not in repr(files) and "v1:def" not in repr(files)


def test_plain_text_secret_stays_visible_to_the_config_check(root):
    files = load_stack_files(root, "prod", ("openaiApiKey",))
    # not marked secret: stacks.config refuses it ("is a secret: set it with --secret")
    assert "openaiApiKey" not in files.secret_keys and files.plain_values()["openaiApiKey"] == "plain-text"


def test_unknown_stack(root):
    with pytest.raises(StackFileError, match=r"unknown stack 'qa' \(known: dev, prod\)"):
        load_stack_files(root, "qa")


def test_broken_yaml_names_file_and_line(root):
    (root / "Pulumi.dev.yaml").write_text("config:\n  a: [1,\n")
    with pytest.raises(StackFileError, match=r"Pulumi\.dev\.yaml line \d+: not valid YAML"):
        load_stack_files(root, "dev")


# --- stack files as `pulumi config set` writes them ------------------------------------------------------------
# The CLI keeps a top-level value as a string, or as an object when set with --path (sdk/go/common/resource/
# config/map.go Set; a --path leaf "true"/"false" becomes a bool and base-10 digits without a leading 0 an int,
# object.go coerce), writes a --secret value as {secure: <ciphertext>} (value.go marshalValue), and saves the
# file with its YAML library, which quotes a string that would read back as another type ("1.30", "true").
# Reading back, a top-level scalar unmarshals into a string: its text, however it is written (value.go).

CLI_WRITTEN = """config:
  cmp-platform:kubernetesVersion: "1.30"
  cmp-platform:debug: "true"
  cmp-platform:saleorStaffPassword:
    secure: v1:AAABADQ2Rk9wT0h2cGVYc1E=
  cmp-platform:vault:
    address: http://vault.vault.svc.cluster.local:8200
    rotations:
      cmp/connector.service_jwt_secret: "2026-11-01"
  cmp-platform:connectorGateway:
    replicas: 3
    policyEnforcement: false
  cmp-platform:saleor:
    apiUrl: https://saleor.example.com/graphql/
    staffEmail: platform-bot@example.com
    token:
      secure: v1:AAABAGZha2UtY2lwaGVydGV4dA==
  vault:address: https://vault.example:8200
  vault:token:
    secure: v1:AAABAHZhdWx0LXRva2Vu
  kubernetes:upsertExistingObjects: "true"
"""
# The same values as a person writes them by hand: unquoted scalars, inline maps.
HAND_WRITTEN = """config:
  cmp-platform:kubernetesVersion: 1.30
  cmp-platform:debug: true
  cmp-platform:saleorStaffPassword: {secure: v1:AAABADQ2Rk9wT0h2cGVYc1E=}
  cmp-platform:vault:
    address: http://vault.vault.svc.cluster.local:8200
    rotations: {cmp/connector.service_jwt_secret: 2026-11-01}
  cmp-platform:connectorGateway: {replicas: 3, policyEnforcement: false}
  cmp-platform:saleor:
    apiUrl: https://saleor.example.com/graphql/
    staffEmail: platform-bot@example.com
    token: {secure: v1:AAABAGZha2UtY2lwaGVydGV4dA==}
  vault:address: https://vault.example:8200
  vault:token: {secure: v1:AAABAHZhdWx0LXRva2Vu}
  kubernetes:upsertExistingObjects: true
"""


@pytest.mark.parametrize("text", [CLI_WRITTEN, HAND_WRITTEN], ids=["as-the-cli-writes", "by-hand"])
def test_values_reach_the_program_as_the_cli_passes_them(tmp_path, text):
    from infra.recording import encode_config

    (tmp_path / "Pulumi.yaml").write_text("name: cmp-platform\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    files = load_stack_files(tmp_path, "dev")
    bag = encode_config(files.values, files.project)
    # plain scalars keep their text: no 1.3, no date object, no bool
    assert bag["cmp-platform:kubernetesVersion"] == "1.30"
    assert bag["cmp-platform:debug"] == "true"
    assert bag["kubernetes:upsertExistingObjects"] == "true"
    # structured values are JSON; inside them numbers and booleans are typed, a date stays its text
    assert json.loads(bag["cmp-platform:vault"])["rotations"] == {"cmp/connector.service_jwt_secret": "2026-11-01"}
    assert json.loads(bag["cmp-platform:connectorGateway"]) == {"replicas": 3, "policyEnforcement": False}
    # other namespaces pass through under their own names
    assert bag["vault:address"] == "https://vault.example:8200"
    # secure values, top-level or nested, are secrets holding the placeholder; no ciphertext anywhere
    assert files.secret_keys == {"saleorStaffPassword", "saleor", "vault:token"}
    assert bag["cmp-platform:saleorStaffPassword"] == SECRET_PLACEHOLDER == bag["vault:token"]
    assert json.loads(bag["cmp-platform:saleor"])["token"] == SECRET_PLACEHOLDER
    assert "v1:" not in json.dumps(bag)


def test_structured_values_decode_as_the_cli_s_yaml_library_does(tmp_path):
    """gopkg.in/yaml.v2 into `any` (resolve.go): `yes`/`on` are booleans, 0755 is octal, 09 a float, a date and
    1:30 stay text."""
    (tmp_path / "Pulumi.yaml").write_text("name: cmp-platform\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  cmp-platform:x: {a: yes, b: on, c: 0755, d: 0x1F, e: 1_000, f: 1:30, g: ~, h: '300', i: 09}\n"
        "  cmp-platform:y:\n"
        "  cmp-platform:z:\n    base: &base {cpu: 50m}\n    limits:\n      <<: *base\n      memory: 1Gi\n")
    files = load_stack_files(tmp_path, "dev")
    assert files.values["x"] == {"a": True, "b": True, "c": 493, "d": 31, "e": 1000, "f": "1:30", "g": None,
                                 "h": "300", "i": 9.0}
    assert files.values["z"]["limits"] == {"cpu": "50m", "memory": "1Gi"}  # merge keys, as yaml.v2 has them
    assert files.values["y"] == ""


def test_stacks_are_listed_in_promotion_order(tmp_path):
    for name in ("prod", "qa", "staging", "dev", "demo"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    assert known_stacks(tmp_path) == ["dev", "staging", "prod", "demo", "qa"]


def test_a_value_yaml_cannot_construct_is_one_line_naming_file_and_line(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: cmp-platform\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  cmp-platform:x:\n    ? [a, b]\n    : c\n")
    with pytest.raises(StackFileError, match=r"^Pulumi\.dev\.yaml line 3: not a config value \(found unhashable"):
        load_stack_files(tmp_path, "dev")
