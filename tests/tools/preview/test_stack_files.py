"""Stack config as the CLI would hand it to the program: defaults, overrides, secure values, secrets."""

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
