"""Writing kubeconfig files that the real kubectl and the Python client use as they are."""

from __future__ import annotations

import os


def write_kubeconfig(path: str, server: str, token: str | None = None, ca_pem: bytes | None = None) -> None:
    """An admin kubeconfig that the real kubectl uses as is (the CA embedded)."""
    import base64

    import yaml

    user: dict = {"token": token} if token else {}
    cluster: dict = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    cfg = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "ketch", "cluster": cluster}],
        "users": [{"name": "ketch-admin", "user": user}],
        "contexts": [{"name": "ketch", "context": {"cluster": "ketch", "user": "ketch-admin", "namespace": "default"}}],
        "current-context": "ketch",
    }
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    os.replace(tmp, path)
