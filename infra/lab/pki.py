"""Certificates and keys of a lab control plane, made with ``cryptography``.

Each cluster has its own CAs (so two labs, or two clusters, never trust each other), one per
trust relation, so that no certificate is good for more than its job:

- ``etcd-ca``: etcd's server and peer certificate (``etcd``, for 127.0.0.1/localhost) and the API
  server's client certificate for etcd (``apiserver-etcd-client``).  etcd trusts this CA and no
  other: a certificate from any other CA of the cluster (an admin's, an approved CSR's) is
  refused by etcd, so nothing but the API server reads or writes etcd, past RBAC;
- ``client-ca``: the clients of the API server: ``admin`` (O=system:masters),
  ``controller-manager`` (CN=system:kube-controller-manager), ``scheduler``
  (CN=system:kube-scheduler), ``kwok`` (CN=dcops:kwok, bound to a narrow ClusterRole by ``lab
  up``), and whatever :func:`issue_client` issues (the auditors' identity, test users);
- ``signing-ca``: the controller-manager's CSR signer (``--cluster-signing-cert-file``): what an
  approved CertificateSigningRequest gets.  The API server accepts its client certificates
  (``client-ca-bundle.crt`` = client CA + signing CA is its ``--client-ca-file``; RBAC decides
  what they may do); etcd does not;
- ``ca``: the serving CA: the API server's serving certificate (``apiserver``, for 127.0.0.1,
  localhost, the first address of the service range and ``kubernetes.default.svc...``).  It is
  what kubeconfigs and pods (``--root-ca-file``) trust to reach the API server;
- ``sa.key``/``sa.pub``: the service-account token signing key;
- ``encryption-config.yaml``: a secretbox key for Secrets at rest.

Keys are ECDSA P-256 (fast to make, accepted by every component).  Every file is written 0600
inside a 0700 directory; nothing here is ever printed.
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


def _name(cn: str, org: str | list[str] | None = None) -> x509.Name:
    orgs = [org] if isinstance(org, str) else list(org or [])
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


@dataclass
class Pair:
    cert: Path
    key: Path


@dataclass
class ClusterPKI:
    dir: Path
    ca: Pair  # the serving CA: signs the API server's serving certificate
    etcd: Pair
    apiserver: Pair
    apiserver_etcd_client: Pair
    clients: dict[str, Pair]
    sa_key: Path
    sa_pub: Path
    encryption_config: Path
    etcd_ca: Pair
    client_ca: Pair
    signing_ca: Pair
    client_ca_bundle: Path  # client CA + signing CA: the API server's --client-ca-file


# The files of a cluster's PKI directory that name a CA (see the module's docstring).
SERVING_CA, ETCD_CA, CLIENT_CA, SIGNING_CA, CLIENT_CA_BUNDLE = "ca", "etcd-ca", "client-ca", "signing-ca", "client-ca-bundle.crt"


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


def _save(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    p = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    write_private(p.cert, cert.public_bytes(serialization.Encoding.PEM))
    write_private(p.key, _key_pem(key))
    return p


def make_cluster_pki(directory: Path, ca_name: str, service_ip: str) -> ClusterPKI:
    """Create every certificate and key of one cluster in ``directory`` (0700).

    ``ca_name`` is the serving CA's common name; the other CAs get it with ``-etcd``,
    ``-client`` and ``-signing`` appended."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)

    def save(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
        return _save(directory, name, cert, key)

    cas: dict[str, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]] = {}
    pairs: dict[str, Pair] = {}
    for file, cn in ((SERVING_CA, ca_name), (ETCD_CA, f"{ca_name}-etcd"), (CLIENT_CA, f"{ca_name}-client"),
                     (SIGNING_CA, f"{ca_name}-signing")):
        cas[file] = _ca(cn)
        pairs[file] = save(file, cas[file][1], cas[file][0])
    bundle = directory / CLIENT_CA_BUNDLE
    write_private(bundle, pairs[CLIENT_CA].cert.read_bytes() + pairs[SIGNING_CA].cert.read_bytes())

    def leaf(ca: str, name: str, cn: str, org: str | list[str] | None = None, **kw) -> Pair:
        ca_key, ca_cert = cas[ca]
        k = _key()
        return save(name, _sign(ca_key, ca_cert, k, _name(cn, org), **kw), k)

    etcd = leaf(ETCD_CA, "etcd", "etcd", server=True, client=True, dns=["localhost"], ips=["127.0.0.1"])
    apiserver = leaf(
        SERVING_CA,
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
    etcd_client = leaf(ETCD_CA, "apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
    clients = {n: leaf(CLIENT_CA, f"client-{n}", cn, org, client=True) for n, (cn, org) in CLIENTS.items()}

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
    return ClusterPKI(directory, pairs[SERVING_CA], etcd, apiserver, etcd_client, clients, sa_key, sa_pub, enc,
                      pairs[ETCD_CA], pairs[CLIENT_CA], pairs[SIGNING_CA], bundle)


def _load_ca(directory: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((directory / f"{name}.crt").read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, cert


def issue_client(pki_dir_or_obj: Path | ClusterPKI, cn: str, groups: list[str]) -> Pair:
    """A client certificate for the API server from the cluster's client CA: user ``cn``, one
    ``O=`` per group (Kubernetes reads them as the user's groups).  Written (0600) as
    ``client-<cn>.crt``/``.key`` in the cluster's PKI directory, replacing an earlier one."""
    d = pki_dir_or_obj.dir if isinstance(pki_dir_or_obj, ClusterPKI) else Path(pki_dir_or_obj)
    if not cn or any(c in cn for c in "/\\\0\n\r") or cn in (".", ".."):
        raise ValueError(f"bad client name {cn!r}")
    ca_key, ca_cert = _load_ca(d, CLIENT_CA)
    k = _key()
    return _save(d, f"client-{cn.replace(':', '_')}", _sign(ca_key, ca_cert, k, _name(cn, groups), client=True), k)


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


# --------------------------------------------------------------------------- the lab province's PKI

PROVINCE_CA = "province-ca"


def province_dir(lab: str) -> Path:
    """``<lab dir>/province-pki``: the lab province's serving CA and its platforms' certificates
    (what a province's PKI or cert-manager gives the platforms' front ends)."""
    from ..paths import lab_dir

    return lab_dir(lab) / "province-pki"


def province_ca(directory: Path, cn: str = "dcops lab province CA") -> Pair:
    """The province's serving CA in ``directory`` (made once; 0600 files in a 0700 directory).
    Its certificate is the CA bundle the probers verify the platforms with
    (``datacenter.certificates.ca_file``)."""
    p = Pair(directory / f"{PROVINCE_CA}.crt", directory / f"{PROVINCE_CA}.key")
    if p.cert.exists() and p.key.exists():
        return p
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    key, cert = _ca(cn)
    return _save(directory, PROVINCE_CA, cert, key)


def issue_server(directory: Path, name: str, ips: list[str], dns: list[str] = (), ca: str = PROVINCE_CA) -> Pair:
    """A serving certificate for ``ips`` and ``dns`` from the CA ``<ca>.crt``/``.key`` of
    ``directory``, written (0600) as ``<name>.crt``/``.key`` there, replacing an earlier one."""
    if not name or any(c in name for c in "/\\\0\n\r") or name in (".", ".."):
        raise ValueError(f"bad certificate name {name!r}")
    ca_key, ca_cert = _load_ca(directory, ca)
    k = _key()
    return _save(directory, name, _sign(ca_key, ca_cert, k, _name(name, "dcops lab"), server=True,
                                        dns=list(dns), ips=list(ips)), k)
