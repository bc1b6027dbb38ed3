"""`ketch status` and `ketch down` find the cluster of a data directory by its pid file."""

from __future__ import annotations

import subprocess

from tests.conftest import BIN, start_cluster


def ketch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ketch"), *args], capture_output=True, text=True, timeout=60)


def test_status_then_down(tmp_path):
    c = start_cluster(tmp_path / "d", secure=True)
    try:
        r = ketch("status", "--data-dir", str(c.data_dir))
        assert r.returncode == 0, r.stderr
        assert f"running, pid {c.proc.pid}" in r.stdout
        assert f"api:        https://127.0.0.1:{c.port}" in r.stdout
        r = ketch("down", "--data-dir", str(c.data_dir))
        assert r.returncode == 0 and f"stopped (pid {c.proc.pid})" in r.stdout
        assert c.proc.wait(10) == 0
        r = ketch("status", "--data-dir", str(c.data_dir))
        assert "not running" in r.stdout
        assert "nothing running" in ketch("down", "--data-dir", str(c.data_dir)).stdout
    finally:
        c.stop()


def test_plain_http_refuses_non_loopback(tmp_path):
    r = ketch("up", "--data-dir", str(tmp_path), "--http", "--address", "0.0.0.0", "--port", "0")
    assert r.returncode == 2 and "only on loopback" in r.stderr
