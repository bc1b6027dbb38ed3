"""Growing from SQLite to etcd: the server offers the migration, the migration keeps every object."""

from __future__ import annotations

import subprocess

from tests.conftest import BIN, start_cluster
from tests.ha.etcd_cluster import start_etcd


def test_migrate_sqlite_to_etcd(tmp_path):
    c = start_cluster(tmp_path / "d", secure=True)
    try:
        c.kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\ndata: {a: '1'}\n")
        uid = c.kubectl("get", "cm", "keep", "-o", "jsonpath={.metadata.uid}").stdout
    finally:
        assert c.stop() == 0
    etcd = start_etcd(tmp_path / "etcd", size=1)
    try:
        # a server pointed at etcd on a data dir holding a SQLite store offers the migration instead
        r = subprocess.run([str(BIN / "ketch"), "up", "--data-dir", str(c.data_dir), "--port", "0", "--no-agent",
                            "--datastore", etcd.url], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "ketch datastore migrate" in r.stderr, r.stderr
        r = subprocess.run([str(BIN / "ketch"), "datastore", "migrate", "--data-dir", str(c.data_dir), "--to", etcd.url],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "objects copied" in r.stdout, r.stdout + r.stderr
        again = subprocess.run([str(BIN / "ketch"), "datastore", "migrate", "--data-dir", str(c.data_dir),
                                "--to", etcd.url], capture_output=True, text=True, timeout=60)
        assert again.returncode != 0          # no state.db left to copy, and etcd is not empty
        c2 = start_cluster(c.data_dir, secure=True, extra=["--datastore", etcd.url])
        try:
            assert c2.kubectl("get", "cm", "keep", "-o", "jsonpath={.metadata.uid}").stdout == uid
            assert "store etcd" in c2.log_path.read_text()
        finally:
            assert c2.stop() == 0
    finally:
        etcd.stop()
