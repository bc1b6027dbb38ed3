"""The CRI codec and the image builder; no root or containerd needed."""

from __future__ import annotations

import json
import tarfile

import pytest

from ketch.node import images
from ketch.node.containerd import h2, proto


def test_round_trip_nested_maps_repeated_and_negative():
    msg = {"pod_sandbox_id": "sb", "config": {
        "metadata": {"name": "c", "attempt": 3}, "image": {"image": "ketch.local/busybox:1"},
        "command": ["sh", "-c"], "args": ["echo hi"], "envs": [{"key": "A", "value": "1"}, {"key": "B", "value": ""}],
        "labels": {"x": "y", "io.kubernetes.pod.uid": "u"},
        "linux": {"resources": {"cpu_shares": 2, "memory_limit_in_bytes": 1 << 33, "oom_score_adj": -997},
                  "security_context": {"run_as_user": {"value": 0}, "privileged": True}}}}
    back = proto.decode("CreateContainerRequest", proto.encode("CreateContainerRequest", msg))
    assert back["config"]["linux"]["resources"]["oom_score_adj"] == -997
    assert back["config"]["linux"]["resources"]["memory_limit_in_bytes"] == 1 << 33
    assert back["config"]["envs"][1] == {"key": "B", "value": ""}
    assert back["config"]["labels"] == msg["config"]["labels"]
    assert back["config"]["command"] == ["sh", "-c"] and back["config"]["metadata"] == {"name": "c", "attempt": 3}


def test_wire_bytes_match_protobuf():
    # StopContainerRequest{container_id: "ab", timeout: 30}: field 1 len-delimited, field 2 varint
    assert proto.encode("ContainerIdRequest", {"container_id": "ab", "timeout": 30}) == b"\x0a\x02ab\x10\x1e"
    # unknown fields are skipped
    assert proto.decode("PullImageResponse", b"\x10\x05\x0a\x03sha") == {"image_ref": "sha"}


def test_oci_archive(tmp_path):
    try:
        images.find_busybox()
    except FileNotFoundError:
        pytest.skip("busybox-static is not installed")
    path = images.build_pause(str(tmp_path / "pause.tar"))
    with tarfile.open(path) as t:
        index = json.load(t.extractfile("index.json"))
        m = index["manifests"][0]
        assert m["annotations"]["io.containerd.image.name"] == images.PAUSE_IMAGE
        manifest = json.load(t.extractfile("blobs/sha256/" + m["digest"].split(":")[1]))
        config = json.load(t.extractfile("blobs/sha256/" + manifest["config"]["digest"].split(":")[1]))
    assert config["config"]["Cmd"] == images.PAUSE_CMD


def test_cri_log_lines():
    from ketch.node.containerd import logs
    data = (b"2026-11-22T06:21:23.123456789Z stdout F boom\n"
            b"2026-11-22T06:21:23.2Z stderr P par\n"
            b"2026-11-22T06:21:23.3Z stderr F tial\n")
    assert logs.plain(data) == b"boom\npartial\n"
    when, stream, partial, content = logs.parse_line(data.splitlines(keepends=True)[0])
    assert stream == "stdout" and not partial and content == b"boom\n" and abs(when - 1795328483.123456) < 1e-3


def test_hpack_decodes_rfc7541_examples_with_huffman_and_dynamic_table():
    # RFC 7541 C.4: three requests on one connection, Huffman-coded strings, entries added to the table.
    d = h2.Decoder()
    assert d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    assert d.decode(bytes.fromhex("828684be5886a8eb10649cbf")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"),
        ("cache-control", "no-cache")]
    assert d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")) == [
        (":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"),
        ("custom-key", "custom-value")]
    assert d.table[0] == ("custom-key", "custom-value") and d.size == 164


def test_hpack_literals_round_trip_and_bad_padding():
    headers = [("grpc-status", "5"), ("grpc-message", "not%20found"), ("x-long", "v" * 300)]
    assert h2.Decoder().decode(h2.encode_headers(headers)) == headers
    with pytest.raises(ValueError):
        h2.huffman_decode(b"\x00")    # padding must be all ones
