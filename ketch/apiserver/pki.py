"""The cluster's PKI: a CA, the apiserver's serving certificate, client certificates, tokens.

Generated once into DATA_DIR/pki and reused, so a restarted server keeps its identity and
every kubeconfig it wrote stays valid.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TEN_YEARS = datetime.timedelta(days=3650)


def _write(path: str, data: bytes, mode: int = 0o600) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str, org: list[str] | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in org or []]
    return x509.Name(attrs)


@dataclass
class PKI:
    """Paths of the cluster's certificates and keys under one directory."""

    dir: str

    @property
    def ca_cert(self) -> str:
        return os.path.join(self.dir, "ca.crt")

    @property
    def ca_key(self) -> str:
        return os.path.join(self.dir, "ca.key")

    @property
    def serving_cert(self) -> str:
        return os.path.join(self.dir, "apiserver.crt")

    @property
    def serving_key(self) -> str:
        return os.path.join(self.dir, "apiserver.key")

    def ensure(self, hosts: list[str]) -> None:
        """Create the CA and a serving certificate valid for `hosts` (names and IPs) if missing."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        if not os.path.exists(self.ca_cert):
            key = _key()
            now = datetime.datetime.now(datetime.UTC)
            cert = (x509.CertificateBuilder().subject_name(_name("ketch-ca")).issuer_name(_name("ketch-ca"))
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + TEN_YEARS)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                 content_commitment=False, key_encipherment=False,
                                                 data_encipherment=False, key_agreement=False,
                                                 encipher_only=False, decipher_only=False), critical=True)
                    .sign(key, hashes.SHA256()))
            _write(self.ca_key, _key_pem(key))
            _write(self.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        if not os.path.exists(self.serving_cert) or not self._covers(hosts):
            cert_pem, key_pem = self.issue("kube-apiserver", [], server_hosts=hosts)
            _write(self.serving_key, key_pem)
            _write(self.serving_cert, cert_pem, 0o644)

    def _covers(self, hosts: list[str]) -> bool:
        with open(self.serving_cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {str(n) for n in san.get_values_for_type(x509.DNSName)} | \
               {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        return set(hosts) <= have

    def issue(self, cn: str, groups: list[str], server_hosts: list[str] | None = None) -> tuple[bytes, bytes]:
        """A certificate signed by the CA: for a client (cn=user, O=groups) or a server (hosts)."""
        with open(self.ca_key, "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(self.ca_cert, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        b = (x509.CertificateBuilder().subject_name(_name(cn, groups)).issuer_name(ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + TEN_YEARS)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        if server_hosts is not None:
            names: list[x509.GeneralName] = []
            for h in server_hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(h)))
                except ValueError:
                    names.append(x509.DNSName(h))
            b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def default_hosts(address: str) -> list[str]:
    """SANs for the serving certificate: loopback, this host's names, the listen address."""
    hosts = ["localhost", "127.0.0.1", "::1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"]
    for h in (socket.gethostname(), address):
        if h and h not in ("0.0.0.0", "::") and h not in hosts:
            hosts.append(h)
    return hosts


def new_token() -> str:
    return secrets.token_urlsafe(32)
