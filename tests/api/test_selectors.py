"""Label and field selector semantics (k8s.io/apimachinery labels and fields)."""

import pytest

from ketch.api.selectors import (
    EVERYTHING,
    NOTHING,
    LabelSelector,
    SelectorError,
    escape_field_value,
    field_values,
    format_label_selector,
    format_labels,
    label_selector_from_spec,
    parse_field_selector,
    parse_label_selector,
    selector_spec_to_string,
    supported_field_labels,
)

# ----------------------------------------------------------------- label selector parsing


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("app=web", "app=web"),
        ("app==web", "app==web"),
        ("app!=web", "app!=web"),
        (" app = web ,  tier in ( b , a ) ", "app=web,tier in (a,b)"),
        ("tier notin (x)", "tier notin (x)"),
        ("b,!a", "!a,b"),  # sorted by key
        ("zone in (b,a,b)", "zone in (a,b)"),  # values sorted and de-duplicated
        ("example.com/role=db", "example.com/role=db"),
        ("a=", "a="),
        ("a in (,b)", "a in (,b)"),
        ("in=notin", "in=notin"),  # keywords are plain identifiers in key/value position
        ("n>3,m<10", "m<10,n>3"),
    ],
)
def test_parse_canonical_string(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize("text", [None, "", "   "])
def test_empty_selector_matches_everything(text: str | None) -> None:
    sel = parse_label_selector(text)
    assert sel.empty()
    assert sel.matches(None)
    assert sel.matches({"a": "b"})
    assert str(sel) == ""
    assert sel == EVERYTHING


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app=web", {}, False),
        ("app!=web", {}, True),  # missing key satisfies !=
        ("app!=web", {"app": "web"}, False),
        ("env in (prod,staging)", {"env": "staging"}, True),
        ("env in (prod,staging)", {"env": "dev"}, False),
        ("env in (prod,staging)", None, False),
        ("env notin (prod)", {}, True),
        ("env notin (prod)", {"env": "prod"}, False),
        ("env", {"env": ""}, True),
        ("env", {}, False),
        ("!env", {}, True),
        ("!env", {"env": "x"}, False),
        ("a=1,b=2", {"a": "1", "b": "2", "c": "3"}, True),
        ("a=1,b=2", {"a": "1"}, False),
        ("a=", {"a": ""}, True),
        ("n>3", {"n": "4"}, True),
        ("n>3", {"n": "3"}, False),
        ("n<3", {"n": "x"}, False),
    ],
)
def test_matches(text: str, labels: dict | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a b", "found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a in b", "expected: '('"),
        ("a in (b", "found '', expected"),
        ("!a=b", "expected: ',' or 'end of string'"),
        ("a=b,", "expected: identifier after ','"),
        ("=a", "expected: !, identifier, or 'end of string'"),
        ("a>x", "must be an integer"),
        ("x/=1", 'key: Invalid value: "x/": name part must be non-empty'),
        ("-a=1", "name part must consist of alphanumeric characters"),
        ("Bad_Prefix/a=1", "prefix part a lowercase RFC 1123 subdomain"),
        ("a=" + "v" * 64, "must be no more than 63 characters"),
        ("k" * 64 + "=v", "name part must be no more than 63 characters"),
        ("a=b$", "a valid label must be an empty string or consist of alphanumeric"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_label_selector(text)
    assert fragment in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_exact_pairs() -> None:
    sel = parse_label_selector("app=web,tier==fe,env in (prod),x in (a,b),y!=z,w")
    assert sel.exact_pairs() == {"app": "web", "tier": "fe", "env": "prod"}


def test_selector_value_semantics() -> None:
    a = parse_label_selector("b=2,a=1")
    b = parse_label_selector("a=1, b=2")
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert repr(a) == "LabelSelector('a=1,b=2')"
    assert a.add(*parse_label_selector("c").requirements) == parse_label_selector("a=1,b=2,c")


# ----------------------------------------------------------------- metav1.LabelSelector


def test_nil_spec_matches_nothing_and_empty_spec_everything() -> None:
    nil = label_selector_from_spec(None)
    assert nil is NOTHING and nil.matches_nothing() and not nil.empty()
    assert not nil.matches({}) and not nil.matches({"a": "b"})
    assert label_selector_from_spec(None, none_matches_everything=True) is EVERYTHING
    assert label_selector_from_spec({}) is EVERYTHING
    assert label_selector_from_spec({"matchLabels": {}, "matchExpressions": []}).empty()
    assert LabelSelector.nothing() is NOTHING and LabelSelector.everything() is EVERYTHING


def test_spec_match_labels_and_expressions() -> None:
    spec = {
        "matchLabels": {"tier": "fe", "app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["staging", "prod"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["z1"]},
        ],
    }
    sel = label_selector_from_spec(spec)
    assert str(sel) == "app=web,!canary,env in (prod,staging),team,tier=fe,zone notin (z1)"
    good = {"app": "web", "tier": "fe", "env": "prod", "team": "x"}
    assert sel.matches(good)
    assert not sel.matches({**good, "canary": "1"})
    assert not sel.matches({**good, "zone": "z1"})
    assert not sel.matches({k: v for k, v in good.items() if k != "team"})
    assert sel.exact_pairs() == {"app": "web", "tier": "fe"}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]},
         '"Equals" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "values set must be empty"),
        ({"matchLabels": {"a b": "c"}}, 'key: Invalid value: "a b"'),
        ({"matchLabels": {"a": "c d"}}, 'values[0][a]: Invalid value: "c d"'),
    ],
)
def test_spec_errors(spec: dict, fragment: str) -> None:
    with pytest.raises(SelectorError) as exc:
        label_selector_from_spec(spec)
    assert fragment in str(exc.value)


def test_spec_to_string_for_scale_status() -> None:
    assert selector_spec_to_string({"matchLabels": {"app": "web"}}) == "app=web"
    assert selector_spec_to_string(
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}
    ) == "app=web,tier in (a,b)"
    assert selector_spec_to_string({}) == ""
    assert selector_spec_to_string(None) == ""


def test_format_helpers() -> None:
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>"
    assert format_labels(None) == "<none>"
    assert format_label_selector({"matchLabels": {"app": "web"}}) == "app=web"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}) == "<error>"


# ----------------------------------------------------------------- field selectors

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name!=web-1", False),
        ("metadata.namespace=default,spec.nodeName=node1", True),
        ("spec.nodeName=node2", False),
        ("spec.nodeName=", False),
        ("spec.nodeName!=", True),
        ("status.phase!=Succeeded,status.phase!=Failed", True),
        ("status.podIP=10.0.0.5", True),
        ("spec.hostNetwork=false", True),  # defaulted when absent
        ("spec.restartPolicy=Always,spec.schedulerName=default-scheduler,spec.serviceAccountName=default", True),
        ("status.nominatedNodeName=", True),
        ("", True),
    ],
)
def test_pod_field_selector(text: str, expected: bool) -> None:
    assert parse_field_selector(text, "Pod").matches(POD) is expected


def test_field_selector_requirements_sorted_and_unescaped() -> None:
    sel = parse_field_selector("status.phase!=Running,metadata.name=a\\,b\\=c\\\\d", "Pod")
    assert sel.requirements() == [("metadata.name", "=", "a,b=c\\d"), ("status.phase", "!=", "Running")]
    assert str(sel) == "metadata.name=a\\,b\\=c\\\\d,status.phase!=Running"
    assert sel.exact("metadata.name") == "a,b=c\\d"
    assert sel.exact("status.phase") is None
    assert sel.matches({"metadata": {"name": "a,b=c\\d"}, "status": {"phase": "Pending"}})
    assert escape_field_value("a,b=c\\") == "a\\,b\\=c\\\\"


def test_field_selector_empty() -> None:
    for text in (None, "", " "):
        sel = parse_field_selector(text, "ConfigMap")
        assert sel.empty() and sel.requirements() == [] and sel.matches({})


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("spec.foo=bar", "Pod", "field label not supported: spec.foo"),
        ("status.phase=Running", "ConfigMap", "field label not supported: status.phase"),
        ("type=Opaque", "ConfigMap", "field label not supported: type"),
        ("metadata.name", "Pod", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a=b", "Pod", "unescaped character in value: ="),
        ("metadata.name=a\\x", "Pod", "invalid escape sequence: \\x"),
        ("metadata.name=a\\", "Pod", "invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, kind: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector(text, kind)
    assert message in str(exc.value)


def test_event_field_selector_as_kubectl_describe() -> None:
    ev = {
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u-1"},
        "reason": "Started", "type": "Normal", "source": {"component": "kubelet"},
        "reportingComponent": "kubelet",
    }
    sel = parse_field_selector("involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u-1",
                               "Event")
    assert sel.matches(ev)
    assert not sel.matches({**ev, "involvedObject": {**ev["involvedObject"], "uid": "u-2"}})
    assert parse_field_selector("source=kubelet,type=Normal,reason=Started,reportingComponent=kubelet",
                                "Event").matches(ev)


@pytest.mark.parametrize(
    ("kind", "text", "obj", "expected"),
    [
        ("Secret", "type=kubernetes.io/tls", {"type": "kubernetes.io/tls"}, True),
        ("Node", "spec.unschedulable=false", {"spec": {}}, True),
        ("Node", "spec.unschedulable=true", {"spec": {"unschedulable": True}}, True),
        ("Namespace", "status.phase=Active", {"status": {"phase": "Active"}}, True),
        ("ReplicaSet", "status.replicas=0", {"status": {}}, True),
        ("ReplicaSet", "status.replicas!=0", {"status": {"replicas": 3}}, True),
        ("Job", "status.successful=1", {"status": {"succeeded": 1}}, True),
        ("CertificateSigningRequest", "spec.signerName=kubernetes.io/kubelet-serving",
         {"spec": {"signerName": "kubernetes.io/kubelet-serving"}}, True),
        ("Namespace", "metadata.namespace=", {"metadata": {"name": "ns"}}, True),
    ],
)
def test_kind_specific_fields(kind: str, text: str, obj: dict, expected: bool) -> None:
    assert parse_field_selector(text, kind).matches(obj) is expected


def test_supported_labels_and_values() -> None:
    assert supported_field_labels("ConfigMap") == ["metadata.name", "metadata.namespace"]
    assert "status.podIP" in supported_field_labels("Pod")
    vals = field_values("Pod", POD)
    assert vals["metadata.name"] == "web-1"
    assert vals["status.podIP"] == "10.0.0.5"
    assert vals["spec.hostNetwork"] == "false"
