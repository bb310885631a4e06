"""VaultSeedProvider.check: inputs that break the Vault path table's rules fail, each naming its field."""

from __future__ import annotations

from components.vault.paths import SEED_PATHS
from components.vault.seed_provider import VaultSeedProvider
from components.vault.seeds import seed_props


def failures(props: dict) -> dict[str, str]:
    return {f.property: f.reason for f in VaultSeedProvider().check({}, props).failures}


def test_every_table_path_passes():
    for seed in SEED_PATHS:
        assert failures(seed_props(seed, seed.mount, {}, False)) == {}


def test_each_broken_rule_names_its_field_and_value():
    got = failures({"mount": "sec/ret", "path": "cmp//x", "keys": [
        {"name": "Bad-Name", "source": "generated"},
        {"name": "fixed_one", "source": "fixed"},
        {"name": "op", "source": "operator"},
        {"name": "other", "source": "nope"},
    ]})
    assert set(got) == {"mount", "path", "keys[0].name", "keys[1]", "keys[2]", "keys[3].source"}
    assert "'sec/ret'" in got["mount"] and "one segment" in got["mount"]
    assert "'cmp//x'" in got["path"]
    assert "'Bad-Name'" in got["keys[0].name"] and "[a-z][a-z0-9_]*" in got["keys[0].name"]
    assert "'fixed_one' is fixed: it needs a non-empty value" in got["keys[1]"]
    assert "'op' is operator-supplied" in got["keys[2]"]
    assert "'nope'" in got["keys[3].source"] and "'operator'" in got["keys[3].source"]


def test_no_keys_and_repeated_keys_fail_on_keys():
    assert "has no keys" in failures({"mount": "secret", "path": "cmp/x", "keys": []})["keys"]
    repeated = [{"name": "a", "source": "generated"}, {"name": "a", "source": "generated"}]
    assert "repeats key(s) a" in failures({"mount": "secret", "path": "cmp/x", "keys": repeated})["keys"]
    assert "keys" in failures({"mount": "secret", "path": "cmp/x", "keys": "a"})
