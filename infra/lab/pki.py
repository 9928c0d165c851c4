"""Certificates and keys of a lab control plane, made with ``cryptography``.

One CA per cluster (so two labs, or two clusters, never trust each other), and:

- ``etcd``: server and peer certificate for 127.0.0.1/localhost (etcd asks
  for client certificates signed by the same CA);
- ``apiserver``: serving certificate for 127.0.0.1, localhost, the first
  address of the service range and ``kubernetes.default.svc...``;
- ``apiserver-etcd-client``: the API server's client certificate for etcd;
- client certificates: ``admin`` (O=system:masters), ``controller-manager``
  (CN=system:kube-controller-manager), ``scheduler`` (CN=system:kube-scheduler),
  ``kwok`` (CN=dcops:kwok, bound to a narrow ClusterRole by ``lab up``);
- ``sa.key``/``sa.pub``: the service-account token signing key;
- ``encryption-config.yaml``: a secretbox key for Secrets at rest.

Keys are ECDSA P-256 (fast to make, accepted by every component).  Every file
is written 0600 inside a 0700 directory; nothing here is ever printed.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365


def write_private(path: Path, data: bytes | str) -> None:
    """Write a file readable by the owner only (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@dataclass
class Pair:
    cert: Path
    key: Path


@dataclass
class ClusterPKI:
    dir: Path
    ca: Pair
    etcd: Pair
    apiserver: Pair
    apiserver_etcd_client: Pair
    clients: dict[str, Pair]
    sa_key: Path
    sa_pub: Path
    encryption_config: Path


def _sign(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    *,
    server: bool = False,
    client: bool = False,
    dns: list[str] = (),
    ips: list[str] = (),
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if dns or ips:
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256())


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(cn, "dcops lab")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


# name -> (CN, O)
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("dcops:admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("dcops:kwok", "dcops:kwok"),
}


def make_cluster_pki(directory: Path, ca_name: str, service_ip: str) -> ClusterPKI:
    """Create every certificate and key of one cluster in ``directory`` (0700)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)

    def save(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
        p = Pair(directory / f"{name}.crt", directory / f"{name}.key")
        write_private(p.cert, cert.public_bytes(serialization.Encoding.PEM))
        write_private(p.key, _key_pem(key))
        return p

    ca_key, ca_cert = _ca(ca_name)
    ca = save("ca", ca_cert, ca_key)

    def leaf(name: str, cn: str, org: str | None = None, **kw) -> Pair:
        k = _key()
        return save(name, _sign(ca_key, ca_cert, k, _name(cn, org), **kw), k)

    etcd = leaf("etcd", "etcd", server=True, client=True, dns=["localhost"], ips=["127.0.0.1"])
    apiserver = leaf(
        "apiserver",
        "kube-apiserver",
        server=True,
        dns=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ips=["127.0.0.1", service_ip],
    )
    etcd_client = leaf("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
    clients = {n: leaf(f"client-{n}", cn, org, client=True) for n, (cn, org) in CLIENTS.items()}

    sa = _key()
    sa_key, sa_pub = directory / "sa.key", directory / "sa.pub"
    write_private(sa_key, _key_pem(sa))
    write_private(
        sa_pub,
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )

    enc = directory / "encryption-config.yaml"
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    write_private(
        enc,
        "apiVersion: apiserver.config.k8s.io/v1\n"
        "kind: EncryptionConfiguration\n"
        "resources:\n"
        "  - resources: [secrets]\n"
        "    providers:\n"
        "      - secretbox:\n"
        "          keys:\n"
        "            - name: key1\n"
        f"              secret: {secret}\n"
        "      - identity: {}\n",
    )
    return ClusterPKI(directory, ca, etcd, apiserver, etcd_client, clients, sa_key, sa_pub, enc)


def kubeconfig(server: str, ca: Path, client: Pair, cluster: str, user: str) -> str:
    """A kubeconfig with the CA and client certificate embedded (so it can be copied alone)."""
    import yaml

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(client.cert), "client-key-data": b64(client.key)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)
