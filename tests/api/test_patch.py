"""Tests for ketch.api.patch: JSON patch, JSON merge patch, strategic merge patch."""

from __future__ import annotations

import copy

import pytest

from ketch.api import patchmeta
from ketch.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

POD = "io.k8s.api.core.v1.Pod"
DEPLOY = "io.k8s.api.apps.v1.Deployment"
NODE = "io.k8s.api.core.v1.Node"
SERVICE = "io.k8s.api.core.v1.Service"


def deployment(containers=None, **spec_extra):
    """A Deployment as the apiserver would store it."""
    if containers is None:
        containers = [
            {
                "name": "nginx",
                "image": "nginx:1.14.2",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {},
                "imagePullPolicy": "IfNotPresent",
            }
        ]
    spec = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": containers, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    }
    spec.update(spec_extra)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "1b2c",
            "resourceVersion": "42",
            "labels": {"app": "nginx", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": spec,
        "status": {"replicas": 2},
    }


def containers_of(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def smp(doc, patch, definition=DEPLOY):
    """Apply a strategic merge patch and check neither argument was mutated."""
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = strategic_merge_patch(doc, patch, definition)
    assert doc == doc_before
    assert patch == patch_before
    return out


# ---------------------------------------------------------------------------------------
# JSON patch


class TestJsonPatch:
    doc = {"metadata": {"name": "p", "labels": {"a": "1", "x/y": "s", "t~n": "t"}}, "spec": {"items": [1, 2, 3]}}

    def test_add_object_member(self):
        out = json_patch(self.doc, [{"op": "add", "path": "/metadata/labels/b", "value": "2"}])
        assert out["metadata"]["labels"] == {"a": "1", "x/y": "s", "t~n": "t", "b": "2"}
        assert "b" not in self.doc["metadata"]["labels"]

    def test_add_replaces_existing_member(self):
        out = json_patch(self.doc, [{"op": "add", "path": "/metadata/name", "value": "q"}])
        assert out["metadata"]["name"] == "q"

    def test_add_array_insert_and_append(self):
        out = json_patch(
            self.doc,
            [
                {"op": "add", "path": "/spec/items/0", "value": 0},
                {"op": "add", "path": "/spec/items/-", "value": 4},
                {"op": "add", "path": "/spec/items/5", "value": 5},
            ],
        )
        assert out["spec"]["items"] == [0, 1, 2, 3, 4, 5]

    def test_add_whole_document(self):
        assert json_patch(self.doc, [{"op": "add", "path": "", "value": {"k": 1}}]) == {"k": 1}

    def test_escaped_pointer_tokens(self):
        out = json_patch(
            self.doc,
            [
                {"op": "replace", "path": "/metadata/labels/x~1y", "value": "slash"},
                {"op": "remove", "path": "/metadata/labels/t~0n"},
            ],
        )
        assert out["metadata"]["labels"] == {"a": "1", "x/y": "slash"}

    def test_remove(self):
        out = json_patch(self.doc, [{"op": "remove", "path": "/spec/items/1"}, {"op": "remove", "path": "/metadata/labels"}])
        assert out == {"metadata": {"name": "p"}, "spec": {"items": [1, 3]}}

    def test_replace(self):
        out = json_patch(self.doc, [{"op": "replace", "path": "/spec/items/2", "value": {"n": 3}}])
        assert out["spec"]["items"] == [1, 2, {"n": 3}]

    def test_move(self):
        out = json_patch(self.doc, [{"op": "move", "from": "/metadata/labels/a", "path": "/spec/a"}])
        assert out["spec"] == {"items": [1, 2, 3], "a": "1"}
        assert "a" not in out["metadata"]["labels"]

    def test_move_within_array(self):
        out = json_patch(self.doc, [{"op": "move", "from": "/spec/items/0", "path": "/spec/items/-"}])
        assert out["spec"]["items"] == [2, 3, 1]

    def test_copy_is_deep(self):
        out = json_patch(
            self.doc,
            [
                {"op": "copy", "from": "/metadata/labels", "path": "/spec/selector"},
                {"op": "add", "path": "/spec/selector/c", "value": "3"},
            ],
        )
        assert out["spec"]["selector"] == {"a": "1", "x/y": "s", "t~n": "t", "c": "3"}
        assert out["metadata"]["labels"] == {"a": "1", "x/y": "s", "t~n": "t"}

    def test_test_op_success_and_types(self):
        ops = [
            {"op": "test", "path": "/spec/items", "value": [1, 2, 3]},
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "9"},
        ]
        assert json_patch(self.doc, ops)["metadata"]["labels"]["a"] == "9"
        with pytest.raises(PatchError) as err:
            json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
        assert err.value.code == 422

    def test_test_failure_is_422_and_atomic(self):
        doc = {"spec": {"replicas": 3}}
        with pytest.raises(PatchError) as err:
            json_patch(
                doc,
                [{"op": "replace", "path": "/spec/replicas", "value": 5}, {"op": "test", "path": "/spec/replicas", "value": 4}],
            )
        assert err.value.code == 422
        assert '"/spec/replicas"' in str(err.value)
        assert doc == {"spec": {"replicas": 3}}

    def test_missing_path_errors(self):
        with pytest.raises(PatchError) as err:
            json_patch(self.doc, [{"op": "remove", "path": "/spec/foo"}])
        assert err.value.code == 422
        assert str(err.value) == 'remove operation does not apply: doc is missing path: "/spec/foo"'
        with pytest.raises(PatchError) as err:
            json_patch(self.doc, [{"op": "replace", "path": "/status/phase", "value": "x"}])
        assert err.value.code == 422
        with pytest.raises(PatchError) as err:
            json_patch(self.doc, [{"op": "add", "path": "/status/phase", "value": "x"}])
        assert err.value.code == 422 and "/status/phase" in str(err.value)

    @pytest.mark.parametrize(
        "op",
        [
            {"op": "add", "path": "/spec/items/7", "value": 1},
            {"op": "add", "path": "/spec/items/01", "value": 1},
            {"op": "replace", "path": "/spec/items/3", "value": 1},
            {"op": "remove", "path": "/spec/items/-"},
            {"op": "move", "from": "/spec", "path": "/spec/items/x"},
            {"op": "copy", "from": "/nope", "path": "/x"},
        ],
    )
    def test_unprocessable_ops(self, op):
        with pytest.raises(PatchError) as err:
            json_patch(self.doc, [op])
        assert err.value.code == 422

    @pytest.mark.parametrize(
        "ops",
        [
            {"op": "add", "path": "/a", "value": 1},
            [{"op": "frobnicate", "path": "/a"}],
            [{"path": "/a", "value": 1}],
            [{"op": "add", "path": "/a"}],
            [{"op": "move", "path": "/a"}],
            [{"op": "remove"}],
            [{"op": "add", "path": "a", "value": 1}],
            [{"op": "add", "path": "/a~2", "value": 1}],
            ["add"],
        ],
    )
    def test_malformed_patches_are_400(self, ops):
        with pytest.raises(PatchError) as err:
            json_patch(self.doc, ops)
        assert err.value.code == 400

    def test_null_value_is_allowed(self):
        assert json_patch({"a": 1}, [{"op": "add", "path": "/b", "value": None}]) == {"a": 1, "b": None}

    def test_patch_error_is_value_error(self):
        assert issubclass(PatchError, ValueError)
        assert PatchError("x").code == 400


# ---------------------------------------------------------------------------------------
# JSON merge patch


class TestMergePatch:
    @pytest.mark.parametrize(
        ("doc", "patch", "expected"),
        [  # RFC 7386 appendix A
            ({"a": "b"}, {"a": "c"}, {"a": "c"}),
            ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
            ({"a": "b"}, {"a": None}, {}),
            ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
            ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
            ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
            ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
            ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
            (["a", "b"], ["c", "d"], ["c", "d"]),
            ({"a": "b"}, ["c"], ["c"]),
            ({"a": "foo"}, None, None),
            ({"a": "foo"}, "bar", "bar"),
            ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
            ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
            ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ],
    )
    def test_rfc7386_examples(self, doc, patch, expected):
        before = copy.deepcopy(doc)
        assert merge_patch(doc, patch) == expected
        assert doc == before

    def test_lists_are_replaced_and_labels_removed(self):
        doc = deployment()
        out = merge_patch(
            doc,
            {"metadata": {"labels": {"tier": None}}, "spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}},
        )
        assert out["metadata"]["labels"] == {"app": "nginx"}
        assert containers_of(out) == [{"name": "x"}]
        assert containers_of(doc)[0]["name"] == "nginx"

    def test_result_does_not_alias_patch(self):
        patch = {"spec": {"ports": [{"port": 80}]}}
        out = merge_patch({}, patch)
        out["spec"]["ports"].append({"port": 81})
        assert patch == {"spec": {"ports": [{"port": 80}]}}


# ---------------------------------------------------------------------------------------
# Strategic merge patch: maps, nulls, plain fields


class TestStrategicMaps:
    def test_scale_replicas(self):
        out = smp(deployment(), {"spec": {"replicas": 5}})
        expected = deployment()
        expected["spec"]["replicas"] = 5
        assert out == expected

    def test_label_removal_via_null_and_add(self):
        out = smp(deployment(), {"metadata": {"labels": {"tier": None, "env": "prod"}}})
        assert out["metadata"]["labels"] == {"app": "nginx", "env": "prod"}

    def test_null_for_missing_key_is_ignored(self):
        out = smp(deployment(), {"metadata": {"labels": {"missing": None}}, "spec": {"paused": None}})
        assert out == deployment()

    def test_nulls_inside_new_maps_are_dropped(self):
        out = smp(deployment(), {"spec": {"template": {"spec": {"securityContext": {"runAsUser": 1000, "fsGroup": None}}}}})
        assert out["spec"]["template"]["spec"]["securityContext"] == {"runAsUser": 1000}

    def test_patch_replace_on_map(self):
        out = smp(deployment(), {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
        assert out["metadata"]["labels"] == {"only": "this"}

    def test_patch_delete_on_map(self):
        doc = deployment()
        doc["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 0}
        out = smp(doc, {"spec": {"template": {"spec": {"securityContext": {"$patch": "delete"}}}}})
        assert out["spec"]["template"]["spec"]["securityContext"] == {}

    def test_patch_merge_on_map_is_plain_merge(self):
        out = smp(deployment(), {"metadata": {"labels": {"$patch": "merge", "env": "prod"}}})
        assert out["metadata"]["labels"] == {"app": "nginx", "tier": "frontend", "env": "prod"}

    def test_unknown_patch_directive_is_400(self):
        with pytest.raises(PatchError) as err:
            smp(deployment(), {"metadata": {"labels": {"$patch": "explode"}}})
        assert err.value.code == 400

    def test_type_change_takes_patch_value(self):
        out = smp({"spec": {"x": {"a": 1}}}, {"spec": {"x": "scalar"}}, "io.k8s.api.example.v1.Unknown")
        assert out == {"spec": {"x": "scalar"}}

    def test_non_object_patch_is_400(self):
        with pytest.raises(PatchError) as err:
            strategic_merge_patch(deployment(), [{"op": "add"}], DEPLOY)
        assert err.value.code == 400


# ---------------------------------------------------------------------------------------
# Strategic merge patch: merging lists


class TestStrategicLists:
    def test_kubectl_apply_image_change_with_set_element_order(self):
        # what `kubectl apply` sends after editing the image in the manifest
        patch = {
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"new": 1}'}},
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "nginx"}],
                        "containers": [{"image": "nginx:1.16.1", "name": "nginx"}],
                    }
                }
            },
        }
        out = smp(deployment(), patch)
        expected = deployment()
        expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = '{"new": 1}'
        containers_of(expected)[0]["image"] = "nginx:1.16.1"
        assert out == expected

    def test_set_element_order_reorders_containers(self):
        doc = deployment([{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "envoy:1"}])
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                        "containers": [{"name": "app", "image": "app:2"}],
                    }
                }
            }
        }
        assert containers_of(smp(doc, patch)) == [
            {"name": "sidecar", "image": "envoy:1"},
            {"name": "app", "image": "app:2"},
        ]

    def test_set_element_order_alone_reorders(self):
        doc = deployment([{"name": "b", "image": "b"}, {"name": "a", "image": "a"}])
        patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}]}}}}
        assert [c["name"] for c in containers_of(smp(doc, patch))] == ["a", "b"]

    def test_set_element_order_with_server_only_items(self):
        # live C B D A E, order [A, B]: server-only items keep their live position relative to A/B
        doc = deployment([{"name": n, "image": n} for n in "CBDAE"])
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "A"}, {"name": "B"}],
                        "containers": [{"name": "A", "image": "A2"}, {"name": "B", "image": "B2"}],
                    }
                }
            }
        }
        out = containers_of(smp(doc, patch))
        assert [c["name"] for c in out] == ["C", "D", "A", "B", "E"]
        assert [c["image"] for c in out] == ["C", "D", "A2", "B2", "E"]

    def test_set_element_order_unknown_names_ignored(self):
        doc = deployment([{"name": "A", "image": "a"}, {"name": "B", "image": "b"}])
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "C"}, {"name": "A"}, {"name": "B"}],
                        "containers": [{"name": "A", "image": "a2"}],
                    }
                }
            }
        }
        assert containers_of(smp(doc, patch)) == [{"name": "A", "image": "a2"}, {"name": "B", "image": "b"}]

    def test_set_element_order_mismatch_is_400(self):
        doc = deployment([{"name": "A", "image": "a"}, {"name": "B", "image": "b"}])
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "A"}, {"name": "B"}],
                        "containers": [{"name": "B", "image": "b2"}, {"name": "A", "image": "a2"}],
                    }
                }
            }
        }
        with pytest.raises(PatchError) as err:
            smp(doc, patch)
        assert err.value.code == 400

    def test_add_container_without_order_goes_first(self):
        # the kubectl patch task page: the new redis container is listed before nginx
        doc = deployment([{"name": "patch-demo-ctr", "image": "nginx"}])
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}}
        assert containers_of(smp(doc, patch)) == [
            {"name": "patch-demo-ctr-2", "image": "redis"},
            {"name": "patch-demo-ctr", "image": "nginx"},
        ]

    def test_kubectl_apply_adds_container_at_end_with_order(self):
        doc = deployment([{"name": "app", "image": "app:1"}])
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                        "containers": [{"name": "sidecar", "image": "envoy:1"}],
                    }
                }
            }
        }
        assert containers_of(smp(doc, patch)) == [{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "envoy:1"}]

    def test_delete_container_with_patch_delete(self):
        doc = deployment([{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "envoy:1"}])
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "app"}],
                        "containers": [{"$patch": "delete", "name": "sidecar"}],
                    }
                }
            }
        }
        assert containers_of(smp(doc, patch)) == [{"name": "app", "image": "app:1"}]

    def test_delete_element_requires_merge_key(self):
        with pytest.raises(PatchError) as err:
            smp(deployment(), {"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}})
        assert err.value.code == 400

    def test_element_without_merge_key_is_400(self):
        with pytest.raises(PatchError) as err:
            smp(deployment(), {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
        assert err.value.code == 400
        assert "merge key" in str(err.value)

    def test_patch_replace_element_replaces_list(self):
        doc = deployment([{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "envoy:1"}])
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "solo", "image": "solo", "args": None}, {"$patch": "replace"}]}}}}
        assert containers_of(smp(doc, patch)) == [{"name": "solo", "image": "solo"}]

    def test_env_add_change_remove(self):
        doc = deployment(
            [{"name": "app", "image": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]
        )
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "app"}],
                        "containers": [
                            {
                                "name": "app",
                                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                                "env": [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                            }
                        ],
                    }
                }
            }
        }
        assert containers_of(smp(doc, patch))[0]["env"] == [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}]

    def test_env_delete_and_add_with_server_only_item(self):
        # kubectl apply renames B -> C (order C, A); X was added by someone else. Kubernetes
        # orders against the live list as modified in place (C takes B's freed slot), so X
        # ends up first -- verified against kubectl's own strategic merge patch code.
        doc = deployment(
            [{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "X", "value": "x"}]}]
        )
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "a",
                                "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
                                "env": [{"name": "C", "value": "3"}, {"name": "B", "$patch": "delete"}],
                            }
                        ]
                    }
                }
            }
        }
        assert containers_of(smp(doc, patch))[0]["env"] == [
            {"name": "X", "value": "x"},
            {"name": "C", "value": "3"},
            {"name": "A", "value": "1"},
        ]

    def test_env_value_from_replaced_by_value(self):
        doc = deployment(
            [{"name": "app", "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]
        )
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "x", "valueFrom": None}]}]}}}}
        assert containers_of(smp(doc, patch))[0]["env"] == [{"name": "A", "value": "x"}]

    def test_container_ports_merge_by_container_port(self):
        doc = deployment()
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 80, "name": "http"}]}]}}}}
        assert containers_of(smp(doc, patch))[0]["ports"] == [
            {"containerPort": 443, "name": "https"},
            {"containerPort": 80, "protocol": "TCP", "name": "http"},
        ]

    def test_volume_mounts_merge_by_mount_path_and_volumes_by_name(self):
        doc = {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
            },
        }
        patch = {
            "spec": {
                "containers": [{"name": "c", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}],
                "volumes": [{"name": "cfg", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}],
            }
        }
        out = smp(doc, patch, POD)
        assert out["spec"]["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
        # $retainKeys in a volume switches its source (configMap -> secret)
        assert out["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}, {"name": "cfg", "secret": {"secretName": "s"}}]

    def test_tolerations_are_replaced(self):
        doc = deployment()
        doc["spec"]["template"]["spec"]["tolerations"] = [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}]
        patch = {"spec": {"template": {"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}}
        assert smp(doc, patch)["spec"]["template"]["spec"]["tolerations"] == [
            {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}
        ]

    def test_init_and_ephemeral_containers_merge(self):
        doc = {
            "spec": {
                "initContainers": [{"name": "init", "image": "busybox"}],
                "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
            }
        }
        patch = {
            "spec": {
                "initContainers": [{"name": "init", "image": "alpine"}],
                "ephemeralContainers": [{"name": "debug2", "image": "busybox"}],
            }
        }
        out = smp(doc, patch, POD)
        assert out["spec"]["initContainers"] == [{"name": "init", "image": "alpine"}]
        assert [c["name"] for c in out["spec"]["ephemeralContainers"]] == ["debug2", "debug"]

    def test_pod_status_conditions_merge_by_type(self):
        doc = {
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            }
        }
        patch = {
            "status": {
                "phase": "Running",
                "$setElementOrder/conditions": [{"type": "PodScheduled"}, {"type": "Ready"}],
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        }
        assert smp(doc, patch, POD)["status"] == {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
        }

    def test_owner_references_merge_by_uid(self):
        doc = {"metadata": {"ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "rs1"}]}}
        patch = {"metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]}}
        assert smp(doc, patch, POD)["metadata"]["ownerReferences"] == [
            {"uid": "u1", "kind": "ReplicaSet", "name": "rs1", "controller": True}
        ]

    def test_node_addresses_and_conditions_merge_by_type(self):
        doc = {
            "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "podCIDRs": ["10.0.0.0/24"]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "10.1.1.1"}, {"type": "Hostname", "address": "n1"}],
                "conditions": [{"type": "Ready", "status": "False"}],
            },
        }
        patch = {
            "spec": {"taints": [{"key": "b", "effect": "NoExecute"}], "podCIDRs": ["fd00::/64"]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "10.1.1.2"}],
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}],
            },
        }
        out = smp(doc, patch, NODE)
        assert out["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]
        assert out["spec"]["podCIDRs"] == ["fd00::/64", "10.0.0.0/24"]
        assert out["status"]["addresses"] == [
            {"type": "InternalIP", "address": "10.1.1.2"},
            {"type": "Hostname", "address": "n1"},
        ]
        assert out["status"]["conditions"] == [
            {"type": "Ready", "status": "True"},
            {"type": "MemoryPressure", "status": "False"},
        ]

    def test_service_ports_merge_by_port(self):
        doc = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], "selector": {"app": "a"}}}
        patch = {"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}], "ports": [{"port": 80, "targetPort": 9090}, {"port": 443, "targetPort": 8443}]}}
        assert smp(doc, patch, SERVICE)["spec"]["ports"] == [
            {"port": 80, "targetPort": 9090, "protocol": "TCP"},
            {"port": 443, "targetPort": 8443},
        ]

    def test_service_account_secrets_merge_by_name(self):
        doc = {"secrets": [{"name": "tok-1"}]}
        out = smp(doc, {"secrets": [{"name": "tok-2"}]}, "io.k8s.api.core.v1.ServiceAccount")
        assert out["secrets"] == [{"name": "tok-2"}, {"name": "tok-1"}]

    def test_cronjob_job_template_containers_merge(self):
        doc = {
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "image": "busybox:1", "args": ["date"]}]}}}},
            }
        }
        patch = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "image": "busybox:2"}]}}}}}}
        out = smp(doc, patch, "io.k8s.api.batch.v1.CronJob")
        assert out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"] == [
            {"name": "job", "image": "busybox:2", "args": ["date"]}
        ]

    def test_new_list_is_cleaned_of_directives(self):
        doc = deployment([{"name": "app"}])
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "$patch": "delete"}]}]}}}}
        assert containers_of(smp(doc, patch))[0] == {"name": "app", "env": [{"name": "A", "value": "1"}]}


# ---------------------------------------------------------------------------------------
# Strategic merge patch: primitive lists, $deleteFromPrimitiveList, $retainKeys


class TestStrategicDirectives:
    def test_finalizer_removal(self):
        doc = deployment()
        doc["metadata"]["finalizers"] = ["example.com/a", "foregroundDeletion", "example.com/b"]
        out = smp(doc, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["foregroundDeletion"]}})
        assert out["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]

    def test_finalizer_delete_on_missing_list_is_noop(self):
        out = smp(deployment(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})
        assert out == deployment()

    def test_finalizers_merge_as_set(self):
        doc = {"metadata": {"finalizers": ["a", "b"]}}
        assert smp(doc, {"metadata": {"finalizers": ["b", "c"]}}, POD)["metadata"]["finalizers"] == ["a", "b", "c"]
        # without $setElementOrder, items only in the patch come before the live ones (as in Kubernetes)
        assert smp(doc, {"metadata": {"finalizers": ["c", "a"]}}, POD)["metadata"]["finalizers"] == ["c", "a", "b"]
        ordered = {"metadata": {"$setElementOrder/finalizers": ["a", "b", "c"], "finalizers": ["c"]}}
        assert smp(doc, ordered, POD)["metadata"]["finalizers"] == ["a", "b", "c"]

    def test_finalizers_kubectl_apply_with_order_and_delete(self):
        # live list reordered by the server, user removes c and adds f (design proposal example)
        doc = {"metadata": {"finalizers": ["b", "e", "a", "c", "d"]}}
        patch = {
            "metadata": {
                "$setElementOrder/finalizers": ["a", "b", "f"],
                "$deleteFromPrimitiveList/finalizers": ["c"],
                "finalizers": ["f"],
            }
        }
        assert smp(doc, patch, POD)["metadata"]["finalizers"] == ["e", "a", "b", "f", "d"]

    def test_retain_keys_rolling_update_to_recreate(self):
        patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
        out = smp(deployment(), patch)
        assert out["spec"]["strategy"] == {"type": "Recreate"}
        expected = deployment()
        expected["spec"]["strategy"] = {"type": "Recreate"}
        assert out == expected

    def test_retain_keys_without_null(self):
        out = smp(deployment(), {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
        assert out["spec"]["strategy"] == {"type": "Recreate"}

    def test_retain_keys_back_to_rolling_update(self):
        doc = deployment(strategy={"type": "Recreate"})
        patch = {"spec": {"strategy": {"$retainKeys": ["rollingUpdate", "type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
        assert smp(doc, patch)["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}

    def test_retain_keys_mismatch_is_400(self):
        # Kubernetes: "invalid patch format of retainKeys" -> BadRequest
        patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
        with pytest.raises(PatchError) as err:
            smp(deployment(), patch)
        assert err.value.code == 400
        assert "retainKeys" in str(err.value)

    def test_retain_keys_must_be_list(self):
        with pytest.raises(PatchError) as err:
            smp(deployment(), {"spec": {"strategy": {"$retainKeys": "type", "type": "Recreate"}}})
        assert err.value.code == 400

    def test_directives_never_in_result(self):
        doc = deployment()
        patch = {
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"], "$setElementOrder/finalizers": ["y"]},
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}], "newMap": {"$patch": "replace", "k": "v"}}},
            },
        }
        out = smp(doc, patch)
        assert "$" not in repr(out)
        assert out["spec"]["template"]["spec"]["newMap"] == {"k": "v"}


# ---------------------------------------------------------------------------------------
# Unknown definitions and metadata table


class TestFallbackAndMeta:
    def test_unknown_definition_merges_maps_replaces_lists(self):
        doc = {
            "metadata": {"name": "w", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"items": [{"name": "a", "v": 1}], "size": 1, "nested": {"k": "v", "drop": 1}},
        }
        patch = {
            "metadata": {"labels": {"b": "2"}, "finalizers": ["y"]},
            "spec": {"items": [{"name": "b"}], "nested": {"drop": None}},
        }
        out = smp(doc, patch, "com.example.v1.Widget")
        assert out == {
            "metadata": {"name": "w", "labels": {"a": "1", "b": "2"}, "finalizers": ["y"]},
            "spec": {"items": [{"name": "b"}], "size": 1, "nested": {"k": "v"}},
        }

    def test_table_covers_required_definitions(self):
        for name in [
            "io.k8s.api.core.v1.Pod",
            "io.k8s.api.core.v1.PodSpec",
            "io.k8s.api.core.v1.PodTemplateSpec",
            "io.k8s.api.core.v1.Container",
            "io.k8s.api.core.v1.EphemeralContainer",
            "io.k8s.api.core.v1.Volume",
            "io.k8s.api.core.v1.PodStatus",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "io.k8s.api.apps.v1.Deployment",
            "io.k8s.api.apps.v1.DeploymentSpec",
            "io.k8s.api.apps.v1.DeploymentStatus",
            "io.k8s.api.apps.v1.DeploymentStrategy",
            "io.k8s.api.apps.v1.ReplicaSet",
            "io.k8s.api.apps.v1.StatefulSet",
            "io.k8s.api.apps.v1.DaemonSet",
            "io.k8s.api.batch.v1.Job",
            "io.k8s.api.batch.v1.CronJob",
            "io.k8s.api.core.v1.Service",
            "io.k8s.api.core.v1.ServiceSpec",
            "io.k8s.api.core.v1.ServicePort",
            "io.k8s.api.core.v1.Node",
            "io.k8s.api.core.v1.NodeSpec",
            "io.k8s.api.core.v1.NodeStatus",
            "io.k8s.api.core.v1.Namespace",
            "io.k8s.api.core.v1.ConfigMap",
            "io.k8s.api.core.v1.Secret",
            "io.k8s.api.core.v1.Endpoints",
            "io.k8s.api.discovery.v1.EndpointSlice",
            "io.k8s.api.core.v1.Event",
            "io.k8s.api.events.v1.Event",
            "io.k8s.api.coordination.v1.Lease",
            "io.k8s.api.core.v1.ServiceAccount",
        ]:
            assert patchmeta.is_known(name), name

    def test_table_references_resolve(self):
        # every merged list of objects declares its merge key; lists of scalars have none
        for name, table in patchmeta.DEFINITIONS.items():
            for field, meta in table.items():
                if meta.is_merge and meta.ref is not None:
                    assert meta.merge_key, (name, field)
                if meta.is_merge and not meta.merge_key:
                    assert meta.ref is None, (name, field)

    @pytest.mark.parametrize(
        ("definition", "field", "strategy", "key"),
        [
            ("io.k8s.api.core.v1.PodSpec", "containers", "merge", "name"),
            ("io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys", "name"),
            ("io.k8s.api.core.v1.PodSpec", "hostAliases", "merge", "ip"),
            ("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", "merge", "topologyKey"),
            ("io.k8s.api.core.v1.PodSpec", "tolerations", "", ""),
            ("io.k8s.api.core.v1.Container", "ports", "merge", "containerPort"),
            ("io.k8s.api.core.v1.Container", "volumeDevices", "merge", "devicePath"),
            ("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", "port"),
            ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "merge", ""),
            ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys", ""),
            ("io.k8s.api.core.v1.NodeSpec", "taints", "", ""),
            ("com.example.v1.Widget", "spec", "", ""),
        ],
    )
    def test_lookup(self, definition, field, strategy, key):
        meta = patchmeta.lookup(definition, field)
        assert (meta.strategy, meta.merge_key) == (strategy, key)
