"""The schema-validation helper process gives what validation.validate_all gives, errors included."""

import os
import signal

import pytest

from infra.preview.validation import validate_all
from infra.preview.validator_worker import ValidatorWorker


def config_map(**extra):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "cmp"},
            "data": {"A": "1"}, **extra}


def deployment_patch():
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cmp-gateway", "namespace": "cmp"},
            "spec": {"template": {"metadata": {"annotations": {"x": "y"}}}}}


@pytest.fixture
def worker():
    handle = ValidatorWorker.start(lambda: ["1.33"])
    yield handle
    handle.close()


def test_same_violations_as_in_process(worker):
    objects = [(config_map(), False), (config_map(dataa={"B": "2"}), False),
               ({"apiVersion": "v1", "kind": "Nope", "metadata": {"name": "n"}}, False),
               (deployment_patch(), True), (deployment_patch(), False)]
    expected = validate_all(objects, "1.33")
    assert len(expected) == 3  # unknown field, unknown kind, required field of a whole Deployment
    assert worker.validate_all(objects, "1.33") == expected
    assert worker.validate_all([(config_map(), False)], "1.33") == []  # serves many requests


def test_error_is_reraised_with_its_type_and_message(worker):
    with pytest.raises(ValueError) as in_process:
        validate_all([(config_map(), False)], "0.1")
    with pytest.raises(ValueError) as via_worker:
        worker.validate_all([(config_map(), False)], "0.1")
    assert str(via_worker.value) == str(in_process.value)
    assert "kubernetesVersion '0.1'" in str(via_worker.value)


def test_a_dead_helper_is_a_clear_error():
    handle = ValidatorWorker.start()
    os.kill(handle.pid, signal.SIGKILL)
    os.waitpid(handle.pid, 0)
    with pytest.raises(RuntimeError, match=rf"schema validator process {handle.pid} stopped"):
        handle.validate_all([(config_map(), False)], "1.33")
    handle.close()  # idempotent after the helper is gone


def test_close_ends_the_helper(worker):
    worker.close()
    with pytest.raises(ProcessLookupError):
        os.kill(worker.pid, 0)


def test_each_process_validates_on_its_own_channel():
    handle = ValidatorWorker.start(lambda: ["1.33"], channels=2)
    bad = [(config_map(dataa={"B": "2"}), False)]
    expected = validate_all(bad, "1.33")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child asks on channel 1 while the parent asks on channel 0
        handle.use_channel(1)
        ok = all(handle.validate_all(bad, "1.33") == expected for _ in range(20))
        os.write(write_end, b"1" if ok else b"0")
        os._exit(0)
    os.close(write_end)
    try:
        assert all(handle.validate_all(bad, "1.33") == expected for _ in range(20))
        assert os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
        handle.close()


def test_an_unknown_channel_is_refused(worker):
    with pytest.raises(ValueError, match="channel 1: the helper has 1"):
        worker.use_channel(1)
