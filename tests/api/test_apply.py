"""Server-side apply on realistic Deployments: merge by list/map semantics, ownership,
conflicts (and their Kubernetes wording), force, removal of fields a manager stops applying."""

from __future__ import annotations

import copy

import pytest

from ketch.api import errors
from ketch.api.apply import apply_config, decode, encode, merge, node_for, object_set, path_string, root_node
from ketch.api.managedfields import record

D = "io.k8s.api.apps.v1.Deployment"


def deployment(replicas: int = 2, image: str = "nginx:1.25", labels: dict | None = None,
               containers: list | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": containers or [
                                      {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}}}}


def apply(live: dict | None, cfg: dict, manager: str = "kubectl", force: bool = False) -> dict:
    """What the apiserver does for one apply patch (without defaulting)."""
    cfg = copy.deepcopy(cfg)
    if live is None:
        new = copy.deepcopy(cfg)
        record(new, None, manager, "Apply", D, applied=cfg)
        return new
    new = apply_config(copy.deepcopy(live), cfg, manager, D)
    record(new, live, manager, "Apply", D, applied=cfg, force=force)
    return new


def update(live: dict, mutate, manager: str) -> dict:
    new = copy.deepcopy(live)
    mutate(new)
    record(new, live, manager, "Update", D)
    return new


def owners(obj: dict) -> dict[str, set]:
    return {e["manager"]: {path_string(p) for p in decode(e["fieldsV1"])} for e in obj["metadata"]["managedFields"]}


def containers(obj: dict) -> list:
    return obj["spec"]["template"]["spec"]["containers"]


def test_fieldsv1_shape_and_roundtrip():
    obj = apply(None, deployment())
    (e,) = obj["metadata"]["managedFields"]
    assert (e["manager"], e["operation"], e["apiVersion"], e["fieldsType"]) == ("kubectl", "Apply", "apps/v1", "FieldsV1")
    c = e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    # port keys carry protocol (defaulted to TCP); the selector is an atomic struct
    assert c == {".": {}, "f:image": {}, "f:name": {},
                 "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}
    assert e["fieldsV1"]["f:spec"]["f:selector"] == {}
    assert "f:name" not in e["fieldsV1"]["f:metadata"]
    assert encode(decode(e["fieldsV1"])) == e["fieldsV1"]
    assert '.spec.template.spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"].containerPort' in \
        owners(obj)["kubectl"]


def test_schema_semantics():
    spec = node_for("io.k8s.api.core.v1.PodSpec")
    assert spec.child("containers").list_type == "map" and spec.child("containers").keys == ("name",)
    assert spec.child("tolerations").list_type == "atomic"
    assert node_for("io.k8s.api.core.v1.Container").child("ports").keys == ("containerPort", "protocol")
    assert root_node(D).child("metadata").child("finalizers").list_type == "set"
    # lists merged by key keep the live items the config does not mention; atomic lists are replaced
    live = {"containers": [{"name": "a", "image": "1", "args": ["x", "y"]}, {"name": "side", "image": "s"}]}
    cfg = {"containers": [{"name": "a", "image": "2", "args": ["z"]}]}
    out = merge(live, cfg, spec)
    assert out["containers"] == [{"name": "a", "image": "2", "args": ["z"]}, {"name": "side", "image": "s"}]


def test_update_moves_ownership_without_conflict():
    obj = apply(None, deployment())
    obj = update(obj, lambda o: o["spec"].__setitem__("replicas", 5), "kubectl-scale")
    o = owners(obj)
    assert ".spec.replicas" in o["kubectl-scale"] and ".spec.replicas" not in o["kubectl"]


def test_conflict_message_names_fields_and_managers():
    obj = apply(None, deployment())
    obj = update(obj, lambda o: o["spec"].__setitem__("replicas", 5), "kubectl-client-side-apply")
    with pytest.raises(errors.StatusError) as ei:
        apply(obj, deployment(replicas=3))
    e = ei.value
    assert e.code == 409 and e.reason == "Conflict"
    assert e.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
                         ".spec.replicas")
    assert e.details["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                    "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]
    with pytest.raises(errors.StatusError) as ei:
        apply(obj, deployment(replicas=3, image="nginx:2"), manager="ci")
    assert ei.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl":\n'
        '- .spec.template.spec.containers[name="nginx"].image\n'
        'conflicts with "kubectl-client-side-apply" using apps/v1:\n- .spec.replicas')


def test_same_value_is_shared_and_force_takes_over():
    obj = apply(None, deployment())
    obj = apply(obj, deployment(), manager="ci")           # identical values: no conflict, co-owned
    o = owners(obj)
    assert ".spec.replicas" in o["kubectl"] and ".spec.replicas" in o["ci"]
    obj = apply(obj, deployment(replicas=4), manager="ci", force=True)
    assert obj["spec"]["replicas"] == 4
    o = owners(obj)
    assert ".spec.replicas" in o["ci"] and ".spec.replicas" not in o["kubectl"]


def test_removal_of_fields_no_longer_applied():
    sidecar = {"name": "side", "image": "busybox", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    nginx = {"name": "nginx", "image": "nginx:1.25"}
    obj = apply(None, deployment(labels={"app": "web", "tier": "fe"}, containers=[nginx, sidecar]))
    obj = update(obj, lambda o: o["metadata"]["labels"].__setitem__("team", "ops"), "kubectl-label")
    side2 = dict(sidecar, env=sidecar["env"][:1])
    obj = apply(obj, deployment(containers=[nginx, side2]))
    assert obj["metadata"]["labels"] == {"app": "web", "team": "ops"}
    assert containers(obj)[1]["env"] == [{"name": "A", "value": "1"}]
    obj = apply(obj, deployment(containers=[nginx]))
    assert [c["name"] for c in containers(obj)] == ["nginx"]
    assert '.spec.template.spec.containers[name="side"]' not in owners(obj)["kubectl"]
    # an item another manager also owns stays
    obj = update(obj, lambda o: containers(o).append({"name": "debug", "image": "x"}), "kubectl-edit")
    obj = apply(obj, deployment(containers=[nginx, {"name": "debug", "image": "x"}]))
    obj = apply(obj, deployment(containers=[nginx]))
    assert [c["name"] for c in containers(obj)] == ["nginx", "debug"]


def test_removed_fields_leave_every_manager():
    obj = apply(None, deployment(labels={"app": "web", "tier": "fe"}))
    obj = update(obj, lambda o: o["metadata"]["labels"].pop("tier"), "kubectl-edit")
    assert ".metadata.labels.tier" not in owners(obj)["kubectl"]
    assert "kubectl-edit" not in owners(obj)        # it removed a field and owns nothing


def test_status_subresource_and_main_resource_reset():
    cfg = deployment()
    cfg["status"] = {"replicas": 9}
    obj = apply(None, cfg)
    assert not any(p[0] == "f:status" for p in decode(obj["metadata"]["managedFields"][0]["fieldsV1"]))
    live = copy.deepcopy(obj)
    st = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 2}}
    new = apply_config(copy.deepcopy(live), st, "ctl", D, "status")
    record(new, live, "ctl", "Apply", D, applied=st, subresource="status")
    (e,) = [e for e in new["metadata"]["managedFields"] if e["manager"] == "ctl"]
    assert e["subresource"] == "status" and list(e["fieldsV1"]) == ["f:status"]


def test_noop_apply_keeps_managed_fields():
    obj = apply(None, deployment())
    again = apply(obj, deployment())
    assert again == obj
    assert object_set(obj, D) == object_set(again, D)


def test_filling_an_empty_struct_another_manager_created_is_no_conflict():
    obj = deployment()
    containers(obj)[0]["resources"] = {}
    record(obj, None, "kubectl-client-side-apply", "Update", D)
    cfg = deployment()
    containers(cfg)[0]["resources"] = {"limits": {"cpu": "1"}}
    obj = apply(obj, cfg)
    assert containers(obj)[0]["resources"] == {"limits": {"cpu": "1"}}


def test_a_write_may_replace_managed_fields():
    """kubectl's migration sends a JSON patch replacing metadata.managedFields."""
    obj = deployment()
    record(obj, None, "kubectl-client-side-apply", "Update", D)
    new = copy.deepcopy(obj)
    (e,) = new["metadata"]["managedFields"]
    new["metadata"]["managedFields"] = [dict(e, manager="kubectl", operation="Apply")]
    record(new, obj, "kubectl", "Update", D)
    assert [(e["manager"], e["operation"]) for e in new["metadata"]["managedFields"]] == [("kubectl", "Apply")]
    # now kubectl's next apply removes what only client-side apply had set
    new = apply(new, deployment(labels={"app": "web"}) | {"spec": {"selector": {"matchLabels": {"app": "web"}},
                                                                      "template": new["spec"]["template"]}})
    assert "replicas" not in new["spec"]


def test_create_fast_path_matches_the_general_encoding():
    """object_fields_v1 (one pass, used on every create) == encode(object_set(...))."""
    from ketch.api.apply import encode, object_fields_v1, object_set
    from ketch.api.defaults import apply_defaults
    objs = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"x": "y"},
                                                         "finalizers": ["f1"]},
         "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}, {"containerPort": 53,
                                                                                            "protocol": "UDP"}],
                                  "env": [{"name": "A", "value": "1"}], "resources": {"limits": {"cpu": "1"}}}],
                  "volumes": [{"name": "v", "emptyDir": {}}], "tolerations": [{"key": "k"}]},
         "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                  "template": {"metadata": {"labels": {"app": "d"}},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
         "spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"a": "b"}}},
    ]
    for obj in objs:
        apply_defaults(obj)
        d = {"Pod": "io.k8s.api.core.v1.Pod", "Deployment": "io.k8s.api.apps.v1.Deployment",
             "Service": "io.k8s.api.core.v1.Service"}[obj["kind"]]
        assert object_fields_v1(obj, d) == encode(object_set(obj, d)), obj["kind"]
