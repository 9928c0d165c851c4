"""The lab's object store: a real S3-compatible server for a shared, locking Pulumi backend.

On premises a team keeps its Pulumi state in S3-compatible object storage (the data
center's Ceph RGW, say): every engineer's ``pulumi up`` takes the stack's lock there, so
two updates at once get Pulumi's lock error instead of a corrupted state.  The lab runs
the same thing with SeaweedFS (``weed``, built by ``scripts/install-tools``).

``start(lab)`` runs ONE process, ``weed server -s3`` (master, volume server, filer and
S3 gateway in one binary; ``weed mini`` would add an admin UI, workers and WebDAV),
inside the lab's management namespace ``<lab>-mgmt``.  Everything listens on that
namespace's loopback only; the S3 gateway speaks HTTPS with a certificate from a CA made
for this lab's object store.  Nothing is reachable from the machine's own namespace.

Files, in ``<lab dir>/objectstore/`` (0700):

- ``credentials``  AWS shared-credentials file, profile ``default`` (0600; made at random
  for the lab, never printed; ``s3.json`` is the server's copy, also 0600);
- ``config``       AWS config file (region) so no ``~/.aws/config`` of the operator leaks in;
- ``tls/ca.crt``   the CA to trust (``AWS_CA_BUNDLE``); ``tls/s3.crt``/``s3.key`` the server's;
- ``data/``        master, volume and filer data; ``logs/weed.log``;
- ``tmp/``         the server's ``/tmp``: weed puts Unix sockets named only by port number
  (``/tmp/seaweedfs-filer-grpc-18888.sock``) there, so each lab's server gets a private one
  (a bind mount inside the mount namespace that ``ip netns exec`` makes), and two labs never
  cross-talk through the machine's ``/tmp``.

The process is recorded in the lab's state (component ``objectstore``) right after it
starts, so ``dcops lab down`` ends it by PID with the rest of the lab.

Use::

    from infra.lab import objectstore
    info = objectstore.start("hs3")        # {"endpoint", "bucket", "backend_url", "credentials", ...}
    env = objectstore.pulumi_env("hs3")    # PULUMI_BACKEND_URL, AWS_* for the pulumi CLI
    objectstore.stop("hs3")

or ``python -m infra.lab.objectstore up|status|down LAB``.  Every client (``pulumi``
included) runs inside ``<lab>-mgmt``: ``ip netns exec <lab>-mgmt pulumi up``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import string
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlencode

from ..paths import lab_dir, lab_name, tool

COMPONENT = "objectstore"
BUCKET = "pulumi-state"
REGION = "us-east-1"
HOST = "127.0.0.1"
S3_PORT = 8333
MASTER_PORT = 9333
VOLUME_PORT = 8080
FILER_PORT = 8888
PROFILE = "default"
READY_TIMEOUT = float(os.environ.get("DCOPS_OBJECTSTORE_TIMEOUT", "120"))
# Go's heap target: the server then stays small (it holds a few MB of Pulumi state).
GOMEMLIMIT = os.environ.get("DCOPS_OBJECTSTORE_GOMEMLIMIT", "96MiB")
# Environment variables that would point the AWS SDK (and so Pulumi's S3 backend)
# elsewhere than the lab's files; pulumi_env() callers remove them first.
AWS_CLEAR = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
             "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
             "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION")

_children: list[subprocess.Popen] = []


class ObjectStoreError(RuntimeError):
    """The object store could not be started or reached; the message says why and where to look."""


# --------------------------------------------------------------------------- paths


def store_dir(lab: str | None = None) -> Path:
    return lab_dir(lab) / "objectstore"


def credentials_path(lab: str | None = None) -> Path:
    return store_dir(lab) / "credentials"


def config_path(lab: str | None = None) -> Path:
    return store_dir(lab) / "config"


def ca_path(lab: str | None = None) -> Path:
    return store_dir(lab) / "tls" / "ca.crt"


def log_path(lab: str | None = None) -> Path:
    return store_dir(lab) / "logs" / "weed.log"


def endpoint() -> str:
    return f"https://{HOST}:{S3_PORT}"


def backend_url(bucket: str = BUCKET) -> str:
    """Pulumi's backend URL for the bucket (gocloud.dev s3blob, AWS SDK v2 parameters).

    ``endpoint`` with its scheme (https, so no ``disable_https``), path-style addressing
    (``bucket.127.0.0.1`` would not resolve), and a region (the SDK refuses none).  Pulumi
    v3.255 also accepts the older ``endpoint=HOST:PORT&s3ForcePathStyle=true&disableSSL=true``
    form and translates it to this one.
    """
    q = urlencode({"endpoint": endpoint(), "use_path_style": "true", "region": REGION}, safe=":/")
    return f"s3://{bucket}?{q}"


def mgmt_netns(lab: str) -> str:
    """The lab's management namespace (``<lab>-mgmt``); ObjectStoreError if it does not exist."""
    n = lab_name(lab)
    ns = f"{n}-mgmt"
    try:
        from .netexec import LabNotRunning, netns

        try:
            ns = netns(n, "mgmt")
        except LabNotRunning:
            pass
    except ImportError:  # pragma: no cover
        pass
    if not Path("/run/netns", ns).exists():
        raise ObjectStoreError(f"lab '{n}' has no management namespace {ns}: start the lab first "
                               f"(`dcops lab up --name {n}`)")
    return ns


# --------------------------------------------------------------------------- secrets and TLS


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def read_credentials(lab: str | None = None) -> tuple[str, str]:
    """(access key, secret key) from the lab's credentials file.  Never print the secret."""
    import configparser

    cp = configparser.ConfigParser()
    if not cp.read(credentials_path(lab)):
        raise ObjectStoreError(f"lab '{lab_name(lab)}' has no object-store credentials ({credentials_path(lab)})")
    sec = cp[PROFILE]
    return sec["aws_access_key_id"], sec["aws_secret_access_key"]


def _ensure_credentials(lab: str) -> tuple[str, str]:
    if credentials_path(lab).exists():
        return read_credentials(lab)
    access = "DCOPS" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(15))
    secret = secrets.token_urlsafe(30)
    _write_private(credentials_path(lab),
                   f"[{PROFILE}]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n")
    # The server's identity file: one identity with every S3 action on every bucket.
    _write_private(store_dir(lab) / "s3.json", json.dumps({"identities": [{
        "name": "dcops",
        "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}, indent=2) + "\n")
    return access, secret


def _ensure_sse_key(lab: str) -> str:
    """The lab's secret for SSE-S3 (``sse.key``, 0600), made at random once."""
    p = store_dir(lab) / "sse.key"
    if not p.exists():
        _write_private(p, secrets.token_urlsafe(32) + "\n")
    return p.read_text().strip()


def _ensure_tls(lab: str) -> tuple[Path, Path]:
    """A CA for this lab's object store and a server certificate for 127.0.0.1/localhost."""
    from cryptography.hazmat.primitives import serialization

    from . import pki

    d = store_dir(lab) / "tls"
    crt, key = d / "s3.crt", d / "s3.key"
    if crt.exists() and key.exists() and ca_path(lab).exists():
        return crt, key
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key, ca_cert = pki._ca(f"dcops lab {lab_name(lab)} object store CA")
    k = pki._key()
    cert = pki._sign(ca_key, ca_cert, k, pki._name("dcops-objectstore"), server=True,
                     dns=["localhost"], ips=[HOST])
    pki.write_private(ca_path(lab), ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.write_private(crt, cert.public_bytes(serialization.Encoding.PEM))
    pki.write_private(key, pki._key_pem(k))
    return crt, key


# --------------------------------------------------------------------------- a minimal S3 client


def s3_request(lab: str, method: str, path: str = "/", query: dict[str, str] | None = None,
               body: bytes = b"", keys: tuple[str, str] | None = None, timeout: float = 10.0):
    """One SigV4-signed S3 request to the lab's object store (``requests.Response``).

    Must run inside ``<lab>-mgmt`` (see :func:`in_mgmt`).  ``keys`` overrides the lab's
    credentials (tests use it to show that wrong keys are refused).
    """
    import requests

    access, secret = keys or read_credentials(lab)
    now = dt.datetime.now(dt.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    host = f"{HOST}:{S3_PORT}"
    q = sorted((query or {}).items())
    canon_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in q)
    canon_path = quote(path, safe="/-_.~")
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canon = "\n".join([method, canon_path, canon_query,
                       "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canon.encode()).hexdigest()])
    k = f"AWS4{secret}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={sig}"
    del headers["host"]
    url = f"{endpoint()}{canon_path}" + (f"?{canon_query}" if canon_query else "")
    return requests.request(method, url, headers=headers, data=body, timeout=timeout, verify=str(ca_path(lab)))


def in_mgmt(lab: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Run ``fn`` on a thread inside the lab's management namespace (sockets made there)."""
    from checks.netns import in_netns

    return in_netns(mgmt_netns(lab), fn, *args, **kw)


def list_keys(lab: str, prefix: str = "", bucket: str = BUCKET) -> list[str]:
    """Every object key under ``prefix`` in ``bucket`` (ListObjectsV2, from inside ``<lab>-mgmt``)."""
    def get() -> list[str]:
        keys: list[str] = []
        token = None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            r = s3_request(lab, "GET", f"/{bucket}", q)
            if r.status_code != 200:
                raise ObjectStoreError(f"listing s3://{bucket}/{prefix}: HTTP {r.status_code} {r.text[:200]}")
            root = ET.fromstring(r.content)
            ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            keys += [c.findtext(f"{ns}Key") for c in root.findall(f"{ns}Contents")]
            token = root.findtext(f"{ns}NextContinuationToken")
            if root.findtext(f"{ns}IsTruncated") != "true" or not token:
                return keys

    return in_mgmt(lab, get)


# --------------------------------------------------------------------------- start / stop


def _proc(lab: str) -> dict | None:
    from .state import LabState, pid_alive

    st = LabState.load(lab_name(lab))
    for p in st.processes(COMPONENT):
        if p["name"] == "weed" and pid_alive(p["pid"], p.get("start_time")):
            return p
    return None


def info(lab: str) -> dict[str, Any]:
    """Where the object store is and how to use it (no secret in it)."""
    n = lab_name(lab)
    return {
        "endpoint": endpoint(),
        "bucket": BUCKET,
        "region": REGION,
        "backend_url": backend_url(),
        "credentials": str(credentials_path(n)),
        "profile": PROFILE,
        "ca": str(ca_path(n)),
        "netns": f"{n}-mgmt",
        "log": str(log_path(n)),
    }


def running(lab: str) -> dict[str, Any] | None:
    """:func:`info` plus ``pid`` when the lab's object store runs, else None."""
    p = _proc(lab)
    if p is None:
        return None
    return {**info(lab), "pid": p["pid"], "netns": p.get("netns") or info(lab)["netns"]}


def server_argv(lab: str) -> list[str]:
    """``weed server`` with master, volume, filer and S3 gateway, on the namespace's loopback."""
    d = store_dir(lab)
    crt, key = d / "tls" / "s3.crt", d / "tls" / "s3.key"
    return [
        str(tool("weed")), "-logtostderr",  # one log: the process's stderr, in logs/weed.log
        "server",
        f"-dir={d / 'data'}", f"-ip={HOST}", f"-ip.bind={HOST}",
        f"-master.port={MASTER_PORT}", "-master.telemetry=false", "-master.volumeSizeLimitMB=256",
        # Volume slots from the free disk (volumes are sparse files made on demand, one at a time:
        # see WEED_MASTER_VOLUME_GROWTH_COPY_1 in start()).  A fixed small -volume.max ran out
        # when the filer's own system files took the slots before the bucket had any.
        f"-volume.port={VOLUME_PORT}", "-volume.max=0", "-volume.preStopSeconds=0",
        "-filer", f"-filer.port={FILER_PORT}",
        "-s3", f"-s3.port={S3_PORT}", f"-s3.config={d / 's3.json'}",
        f"-s3.cert.file={crt}", f"-s3.key.file={key}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.iam=false", "-s3.autoCreateBucket=false",
    ]


def start(lab: str, progress: Callable[[str], None] = print, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """Start the lab's object store (if it is not running) and make the Pulumi state bucket.

    Returns :func:`info` plus ``pid`` and ``seconds`` (start to ready: S3 answers a signed
    request and the bucket exists).  Raises ObjectStoreError with the log's tail when the
    server exits or is not ready within ``timeout``; the process is then ended again.
    """
    from .state import LabState

    n = lab_name(lab)
    have = running(n)
    if have:
        progress(f"object store already runs in {have['netns']} ({have['endpoint']}, pid {have['pid']})")
        return have
    ns = mgmt_netns(n)
    weed = tool("weed")  # ToolMissing names scripts/install-tools
    d = store_dir(n)
    for sub in ("", "data", "logs", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    for sock in (d / "tmp").glob("*.sock"):  # left by a server that was stopped: a restart cannot bind them
        sock.unlink()
    _ensure_credentials(n)
    _ensure_tls(n)
    _write_private(config_path(n), f"[{PROFILE}]\nregion = {REGION}\n")
    argv = server_argv(n)
    # `ip netns exec` gives the command its own mount namespace: /tmp is bound to the lab's
    # tmp/ there only (see the module docstring), then weed replaces the shell (same PID).
    cmd = ["ip", "netns", "exec", ns, "/bin/sh", "-c", 'mount --bind "$0" /tmp && exec "$@"', str(d / "tmp"), *argv]
    # No WEED_* overrides, no AWS keys, no SENTRY_DSN (weed would report errors to it).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_", "SENTRY_"))}
    env["GOMEMLIMIT"] = GOMEMLIMIT
    # Grow one volume at a time per collection (bucket) instead of 7: fewer files, less memory.
    env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"
    # Server-side encryption (SSE-S3: Velero's backups ask for it): the key-encryption key is
    # derived from a random secret of this lab (0600, never printed); without it weed refuses SSE.
    env["WEED_S3_SSE_KEY"] = _ensure_sse_key(n)
    t0 = time.monotonic()
    with open(log_path(n), "ab") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=d, env=env, start_new_session=True)
    _children.append(p)
    LabState.load(n).add_process(COMPONENT, "weed", p.pid, ports={"s3": S3_PORT}, log=str(log_path(n)),
                                 dir=str(d), cmd=[str(weed), *argv[1:]], netns=ns)
    try:
        _wait_ready(n, p, t0 + timeout)
        _ensure_bucket(n, t0 + timeout)
    except BaseException:
        stop(n)
        raise
    took = time.monotonic() - t0
    st = LabState.load(n)
    st.set("objectstore", {k: v for k, v in info(n).items()})
    progress(f"object store: weed server -s3 in {ns}, {endpoint()} bucket {BUCKET} ready in {took:.1f}s "
             f"(pid {p.pid}); Pulumi backend {backend_url()}")
    return {**info(n), "pid": p.pid, "seconds": took, "netns": ns}


def _tail(lab: str, lines: int = 25) -> str:
    try:
        return "\n".join(log_path(lab).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(lab: str, p: subprocess.Popen, deadline: float) -> None:
    import requests

    last = "no answer yet"
    while True:
        if p.poll() is not None:
            raise ObjectStoreError(f"weed exited with {p.returncode} before S3 answered; {log_path(lab)}:\n{_tail(lab)}")
        try:
            r = in_mgmt(lab, s3_request, lab, "GET", "/", timeout=3)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise ObjectStoreError(f"S3 at {endpoint()} in {mgmt_netns(lab)} not ready ({last}); "
                                   f"{log_path(lab)}:\n{_tail(lab)}")
        time.sleep(0.3)


def _ensure_bucket(lab: str, deadline: float) -> None:
    while True:
        r = in_mgmt(lab, s3_request, lab, "PUT", f"/{BUCKET}")
        # 409 BucketAlreadyOwnedByYou: a restart over the same data dir.
        if r.status_code in (200, 409):
            head = in_mgmt(lab, s3_request, lab, "HEAD", f"/{BUCKET}")
            if head.status_code == 200:
                return
            r = head
        if time.monotonic() > deadline:
            raise ObjectStoreError(f"creating bucket {BUCKET}: HTTP {r.status_code} {r.text[:300]}; "
                                   f"{log_path(lab)}:\n{_tail(lab)}")
        time.sleep(0.5)  # the filer may still be registering its volumes


def stop(lab: str, timeout: float = 15.0) -> None:
    """End the lab's object store (by recorded PID); its data stays until ``dcops lab down``."""
    from .controlplane import stop_component

    n = lab_name(lab)
    left = stop_component(n, COMPONENT, timeout)
    for c in list(_children):
        if c.poll() is not None:
            _children.remove(c)
    if left:
        raise ObjectStoreError(f"could not stop the object store of lab '{n}': pid {[p['pid'] for p in left]}")


# --------------------------------------------------------------------------- for pulumi


def pulumi_env(lab: str) -> dict[str, str]:
    """The variables that point the ``pulumi`` CLI at the lab's S3 backend.

    The backend URL, the AWS shared-credentials and config files of the lab (profile
    ``default``), the CA to trust, and no instance-metadata lookups.  Remove
    :data:`AWS_CLEAR` from the environment first: keys in the environment win over the
    credentials file.  The passphrase and PULUMI_HOME are the caller's (each engineer has
    their own home; the team shares the passphrase, or uses another secrets provider).
    """
    n = lab_name(lab)
    return {
        "PULUMI_BACKEND_URL": backend_url(),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_path(n)),
        "AWS_CONFIG_FILE": str(config_path(n)),
        "AWS_PROFILE": PROFILE,
        "AWS_CA_BUNDLE": str(ca_path(n)),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# --------------------------------------------------------------------------- memory


def pss_kib(pid: int) -> int | None:
    """Proportional set size of a process, KiB (``/proc/PID/smaps_rollup``)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


if __name__ == "__main__":  # pragma: no cover - by hand: python -m infra.lab.objectstore up LAB
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m infra.lab.objectstore",
                                 description="The lab's S3-compatible object store (SeaweedFS) for Pulumi state.")
    ap.add_argument("action", choices=["up", "status", "down", "env"])
    ap.add_argument("lab")
    a = ap.parse_args()
    try:
        if a.action == "up":
            i = start(a.lab)
            print(json.dumps({k: v for k, v in i.items()}, indent=1))
        elif a.action == "status":
            i = running(a.lab)
            if i is None:
                print(f"the object store of lab '{a.lab}' is not running")
                sys.exit(3)
            i["pss_kib"] = pss_kib(i["pid"])
            print(json.dumps(i, indent=1))
        elif a.action == "env":
            import shlex

            print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in pulumi_env(a.lab).items()))
            print("unset " + " ".join(AWS_CLEAR))
        else:
            stop(a.lab)
    except ObjectStoreError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
