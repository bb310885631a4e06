"""environ_set: the values hold inside the block; afterwards each variable is as it was, set or unset."""

import os

import pytest

from infra.environ import environ_set


def test_values_hold_inside_and_are_put_back_after_even_on_error(monkeypatch):
    monkeypatch.setenv("CMP_TEST_KEPT", "before")
    monkeypatch.delenv("CMP_TEST_NEW", raising=False)
    with pytest.raises(RuntimeError), environ_set({"CMP_TEST_KEPT": "inside", "CMP_TEST_NEW": "1"}):
        assert (os.environ["CMP_TEST_KEPT"], os.environ["CMP_TEST_NEW"]) == ("inside", "1")
        raise RuntimeError("the block failed")
    assert os.environ["CMP_TEST_KEPT"] == "before" and "CMP_TEST_NEW" not in os.environ
