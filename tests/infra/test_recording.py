"""The recording engine (infra/recording.py): what it records and what it refuses (the leniencies of plain mocks)."""

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.recording import DOCKER_BUILD_IMAGE, SECRET, UNKNOWN, DuplicateUrnError, run_program


class Thing(pulumi.ComponentResource):
    def __init__(self, name: str, namespace: str, password: pulumi.Input[str], opts=None):
        super().__init__("cmp:platform:Thing", name, None, opts)
        self.config_map = k8s.core.v1.ConfigMap(
            "cm", metadata={"name": "cm", "namespace": namespace},
            data={"plain": "1", "password": password}, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"name": self.config_map.metadata.name})


def small_program():
    cfg = pulumi.Config()
    thing = Thing("t", cfg.get("namespace") or "default", cfg.require_secret("password"))
    k8s.apps.v1.Deployment("d", metadata={"name": "d"}, spec={
        "replicas": cfg.get_int("replicas"),
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
            {"name": "c", "image": "x:1", "ports": [{"containerPort": 8000}]}]}}})
    pulumi.export("configMap", thing.config_map.metadata.name)
    pulumi.export("password", cfg.require_secret("password"))


CONFIG = {"namespace": "cmp", "password": "hunter2", "replicas": 2}


def run_small(stack="dev"):
    return run_program(small_program, stack=stack, config=CONFIG, secret_keys={"password"})


def test_records_components_children_and_parents():
    rec = run_small()
    thing = rec.one("cmp:platform:Thing", "t")
    cm = rec.one("kubernetes:core/v1:ConfigMap", "cm")
    assert not thing.custom and cm.custom
    assert cm.parent == thing.urn
    assert rec.children_of(thing.urn) == [cm]
    assert cm.urn == "urn:pulumi:dev::cmp-platform::cmp:platform:Thing$kubernetes:core/v1:ConfigMap::cm"
    assert thing.registered_outputs == {"name": "cm"}
    assert rec.outputs["configMap"] == "cm"


def test_secrets_replaced_and_paths_listed():
    rec = run_small()
    cm = rec.one("kubernetes:core/v1:ConfigMap", "cm")
    assert cm.inputs["data"] == {"plain": "1", "password": SECRET}
    assert cm.secret_paths == ["data.password"]
    assert rec.outputs["password"] == SECRET and rec.output_secret_paths == ["password"]
    assert "hunter2" not in repr(rec)


def test_integers_stay_integers():
    rec = run_small()
    spec = rec.one("kubernetes:apps/v1:Deployment", "d").inputs["spec"]
    assert spec["replicas"] == 2 and type(spec["replicas"]) is int
    port = spec["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert type(port) is int


def test_duplicate_urn_rejected():
    def program():
        k8s.core.v1.ConfigMap("same", data={"a": "1"})
        k8s.core.v1.ConfigMap("same", data={"a": "2"})

    with pytest.raises(DuplicateUrnError, match=r"duplicate resource URN .*ConfigMap::same"):
        run_program(program, stack="dev", config={})


def test_same_child_name_under_two_components_of_one_type_is_rejected():
    # A URN holds the parent's type, not its name: two Things each making a child "cm" collide in the
    # real engine, so components must prefix their children's names.
    def program():
        Thing("a", "ns", "p")
        Thing("b", "ns", "p")

    with pytest.raises(DuplicateUrnError, match=r"Thing\$kubernetes:core/v1:ConfigMap::cm"):
        run_program(program, stack="dev", config={})


def test_apply_error_surfaces_even_when_nothing_uses_the_result():
    def program():
        k8s.core.v1.ConfigMap("cm", data={"a": "1"})
        pulumi.Output.from_input(1).apply(lambda _: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        run_program(program, stack="dev", config={})


def test_program_exception_surfaces():
    def program():
        raise ValueError("boom from the program")

    with pytest.raises(ValueError, match="boom from the program"):
        run_program(program, stack="dev", config={})


def test_waits_for_registrations_that_depend_on_outputs():
    def program():
        first = k8s.core.v1.ConfigMap("first", metadata={"name": "first"}, data={"a": "1"})
        k8s.core.v1.ConfigMap("second", metadata={"name": first.metadata.apply(lambda m: m["name"] + "-2")})

    rec = run_program(program, stack="dev", config={})
    assert rec.one("kubernetes:core/v1:ConfigMap", "second").inputs["metadata"]["name"] == "first-2"


def test_additional_secret_outputs_is_not_trusted():
    def program():
        k8s.core.v1.ConfigMap("cm", data={"token": "visible"},
                              opts=pulumi.ResourceOptions(additional_secret_outputs=["data"]))

    cm = run_program(program, stack="dev", config={}).one("kubernetes:core/v1:ConfigMap", "cm")
    # The program did not wrap the value as secret, so the recording shows it: a test on secrecy
    # must assert what the program wraps, not what the engine would add.
    assert cm.inputs["data"] == {"token": "visible"} and cm.secret_paths == []
    assert cm.additional_secret_outputs == ["data"]


def test_a_built_images_digest_is_unknown_as_in_pulumi_preview():
    """Only a real build and push knows the digest: the preview must not invent one."""
    import pulumi_docker_build as docker_build

    seen = {}

    def program():
        image = docker_build.Image("img", tags=["registry.local/cmp/x:1"], push=False)
        pulumi.Output.all(image.ref, image.digest).apply(lambda v: seen.update(ref=v[0], digest=v[1]))

    rec = run_program(program, stack="dev", config={})
    assert seen == {}  # an apply over unknown values does not run in a preview
    outputs = rec.one(DOCKER_BUILD_IMAGE, "img").outputs
    assert outputs["ref"] == UNKNOWN and outputs["digest"] == UNKNOWN


def test_runs_several_stacks_in_one_process_with_fresh_state():
    dev = run_small("dev")
    prod = run_program(small_program, stack="prod", config={**CONFIG, "namespace": "prod-ns"},
                       secret_keys={"password"})
    assert all(r.urn.startswith("urn:pulumi:prod::") for r in prod.resources)
    assert len(prod.resources) == len(dev.resources)
    assert prod.one("kubernetes:core/v1:ConfigMap", "cm").inputs["metadata"]["namespace"] == "prod-ns"


def test_missing_lookup_names_the_candidates():
    rec = run_small()
    with pytest.raises(LookupError, match=r"named 'nope'.*\['cm'\]"):
        rec.one("kubernetes:core/v1:ConfigMap", "nope")


def test_tree_order_is_parents_first_then_type_and_name():
    def program():
        k8s.core.v1.ConfigMap("zz", data={"a": "1"})
        Thing("t", "ns", "p")
        k8s.core.v1.ConfigMap("aa", data={"a": "1"})

    rec = run_program(program, stack="dev", config={})
    assert [r.name for r in rec.in_tree_order()] == ["t", "cm", "aa", "zz"]


def test_a_failed_run_leaves_nothing_behind_for_the_next():
    with pytest.raises(ValueError):
        run_program(lambda: (_ for _ in ()).throw(ValueError("x")), stack="dev", config={})
    rec = run_small()
    assert rec.one("cmp:platform:Thing", "t").urn.startswith("urn:pulumi:dev::")


def test_echoed_outputs_reach_the_program_as_the_sdk_round_trip_would():
    """The program sees every output through the SDK's own round trip: secrets still secret, numbers and
    nesting intact."""
    seen = {}

    def program():
        cm = k8s.core.v1.ConfigMap("cm", metadata={"name": "cm", "labels": {"a": "b"}},
                                   data={"n": "1", "s": pulumi.Output.secret("x")})
        deploy = k8s.apps.v1.Deployment("d", metadata={"name": "d"}, spec={
            "replicas": 3, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
                {"name": "c", "image": "x:1", "ports": [{"containerPort": 8000}]}]}}})
        cm.metadata.labels.apply(lambda v: seen.__setitem__("labels", v))
        cm.data.apply(lambda v: seen.__setitem__("data", v))
        deploy.spec.replicas.apply(lambda v: seen.__setitem__("replicas", v))

    rec = run_program(program, stack="dev", config={})
    assert seen["labels"] == {"a": "b"} and seen["replicas"] == 3
    assert seen["data"] == {"n": "1", "s": "x"}  # the program can use its own secret
    cm = rec.one("kubernetes:core/v1:ConfigMap", "cm")
    assert cm.outputs["metadata"] == cm.inputs["metadata"] and "x" not in repr(cm.outputs["data"])
    assert cm.id == "cm"
    assert rec.one("kubernetes:apps/v1:Deployment", "d").outputs["spec"]["replicas"] == 3


def test_run_main_runs_a_program_directory_as_the_language_host_does(tmp_path, monkeypatch):
    """The directory's __main__.py runs as __main__, from that directory, with its config in PULUMI_CONFIG
    (secret keys in PULUMI_CONFIG_SECRET_KEYS); both are gone again afterwards."""
    from infra.recording import run_main

    (tmp_path / "helper_module.py").write_text("NAME = 'from-the-program-dir'\n")
    (tmp_path / "__main__.py").write_text(
        "import json, os\n"
        "import pulumi\n"
        "from pulumi.runtime import get_config_env, is_config_secret\n"
        "import helper_module\n"
        "cfg = pulumi.Config()\n"
        "pulumi.export('name', helper_module.NAME)\n"
        "pulumi.export('cwd', os.getcwd())\n"
        "pulumi.export('keys', sorted(get_config_env()))\n"
        "pulumi.export('secretIsSecret', is_config_secret('cmp-platform:password'))\n"
        "pulumi.export('replicas', cfg.require_int('replicas'))\n"
        "pulumi.export('password', cfg.require_secret('password'))\n")
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    rec = run_main(tmp_path, stack="dev", config={"replicas": 3, "password": "hunter2", "vault:address": "http://v"},
                   secret_keys={"password"})
    assert rec.outputs["name"] == "from-the-program-dir" and rec.outputs["cwd"] == str(tmp_path)
    assert rec.outputs["keys"] == ["cmp-platform:password", "cmp-platform:replicas", "vault:address"]
    assert rec.outputs["secretIsSecret"] is True and rec.outputs["replicas"] == 3
    assert rec.outputs["password"] == SECRET and "hunter2" not in repr(rec)
    import os

    assert "PULUMI_CONFIG" not in os.environ and os.getcwd() != str(tmp_path)


def test_run_main_refuses_a_directory_without_a_program(tmp_path):
    # runpy would otherwise go on to the next __main__.py on sys.path (under pytest: the project's own)
    from infra.recording import run_main

    with pytest.raises(FileNotFoundError, match=r"no program: .*__main__\.py does not exist"):
        run_main(tmp_path, stack="dev", config={})
