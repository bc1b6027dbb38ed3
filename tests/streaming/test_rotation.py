"""Container log rotation by size (copy-truncate, like the kubelet's containerLogMaxSize/MaxFiles)."""

from __future__ import annotations

from ketch.node.server import log_chain, rotate_log


def test_rotation_keeps_max_files_and_order(tmp_path):
    log = tmp_path / "0.log"
    with open(log, "ab") as w:          # the container's O_APPEND descriptor stays open throughout
        for gen in range(4):
            w.write(f"gen{gen}\n".encode() * 300)
            w.flush()
            assert rotate_log(str(log), max_size=1000, max_files=3)
        w.write(b"tail\n")
        w.flush()
    assert not rotate_log(str(log), max_size=1000, max_files=3)     # small enough: left alone
    chain = log_chain(str(log))
    assert [p.rsplit("/", 1)[1] for p in chain] == ["0.log.2", "0.log.1", "0.log"]
    texts = [open(p, "rb").read() for p in chain]
    assert texts[0].startswith(b"gen2") and texts[1].startswith(b"gen3") and texts[2] == b"tail\n"
