"""The lab's Kubernetes control planes, for real: `dcops lab up | status | down`.

Every test here that needs the lab shares one lab (own random name, never a
developer's lab), started once by a module fixture with the real CLI and torn
down at the end even when a test fails.  A missing tool fails the tests with
the install hint.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import ssl
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.lab import controlplane as cp
from infra.lab import pki
from infra.lab.state import LabState, pid_alive, proc_start_time
from infra.paths import REPO, ToolMissing, lab_dir
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
TIMINGS = REPO / "out" / "lab-timings.json"


def dcops(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from infra.cli import app; app()", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def record_timing(key: str, seconds: float) -> None:
    TIMINGS.parent.mkdir(exist_ok=True)
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data[key] = round(seconds, 1)
    TIMINGS.write_text(json.dumps(data, indent=2) + "\n")


def new_lab_name() -> str:
    return "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))


# --------------------------------------------------------------------------- no lab needed


def test_bad_province_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROVINCE.read_text().replace("count: 3", "count: -3"))
    name = new_lab_name()
    r = dcops("lab", "up", "--name", name, "--province", str(bad))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "count" in r.stderr
    assert not lab_dir(name).exists()


def test_state_never_signals_a_reused_pid() -> None:
    me = os.getpid()
    assert pid_alive(me, proc_start_time(me))
    assert not pid_alive(me, (proc_start_time(me) or 0) + 1)  # same PID, other process
    p = subprocess.Popen(["sleep", "0"])
    p.wait()
    assert not pid_alive(p.pid)


def test_down_of_a_lab_that_is_not_running_is_ok() -> None:
    name = new_lab_name()
    r = dcops("lab", "down", "--name", name)
    assert r.returncode == 0 and "not running" in r.stdout
    assert not lab_dir(name).exists()


def _cert(p: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(p.read_bytes())


def test_pki_has_one_ca_per_trust_relation(tmp_path: Path) -> None:
    """etcd's CA signs only etcd's certificates and the API server's etcd client certificate; the
    API server's clients come from the client CA; the CSR signer has a CA of its own; the API server's
    client CA bundle holds the client and signing CAs, never the etcd or serving CA."""
    from cryptography.exceptions import InvalidSignature

    p = pki.make_cluster_pki(tmp_path / "pki", "dcops-t-primary-ca", cp.SERVICE_IP)
    cas = {"serving": p.ca.cert, "etcd": p.etcd_ca.cert, "client": p.client_ca.cert, "signing": p.signing_ca.cert}
    assert len({_cert(c).public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                for c in cas.values()}) == 4, "the four CAs must have four keys"

    def issuers(leaf: Path) -> set[str]:
        out = set()
        for n, ca in cas.items():
            try:
                _cert(leaf).verify_directly_issued_by(_cert(ca))
                out.add(n)
            except (ValueError, TypeError, InvalidSignature):
                pass
        return out

    assert issuers(p.etcd.cert) == {"etcd"}
    assert issuers(p.apiserver_etcd_client.cert) == {"etcd"}
    assert issuers(p.apiserver.cert) == {"serving"}
    for name, pair in p.clients.items():
        assert issuers(pair.cert) == {"client"}, name
    bundle = x509.load_pem_x509_certificates(p.client_ca_bundle.read_bytes())
    assert {c.subject for c in bundle} == {_cert(p.client_ca.cert).subject, _cert(p.signing_ca.cert).subject}
    # issue_client: the client CA, the CN and one O per group, 0600
    a = pki.issue_client(tmp_path / "pki", "dcops-auditor", ["dcops:auditors", "dcops:readers"])
    assert issuers(a.cert) == {"client"}
    c = _cert(a.cert)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dcops-auditor"
    assert [o.value for o in c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dcops:auditors", "dcops:readers"]
    assert (a.key.stat().st_mode & 0o777) == 0o600 and a.cert.parent == tmp_path / "pki"
    with pytest.raises(ValueError):
        pki.issue_client(p, "../x", [])


# --------------------------------------------------------------------------- the lab


@pytest.fixture(scope="module")
def lab():
    try:
        cp.check_tools()
    except ToolMissing as e:
        pytest.fail(str(e))
    name = new_lab_name()
    t0 = time.monotonic()
    r = dcops("lab", "up", "--name", name, "--no-hosts", "--province", str(PROVINCE))
    took = time.monotonic() - t0
    try:
        assert r.returncode == 0, f"lab up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        record_timing("lab_up_seconds", took)
        yield {"name": name, "up": r, "model": load_province(PROVINCE), "seconds": took}
    finally:
        dcops("lab", "down", "--name", name)


@pytest.mark.lab
def test_up_starts_healthy_apis_and_ready_nodes_per_pool(lab) -> None:
    name, model = lab["name"], lab["model"]
    out = lab["up"].stdout
    for c in model.datacenter.clusters:
        for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
            assert f"{c.id}: {comp} started" in out
        kc = cp.kubeconfig_path(name, c.id)
        assert kc.exists() and (kc.stat().st_mode & 0o777) == 0o600
        api = cp.Api.for_cluster(name, c.id)
        ok, detail = api.healthy("readyz")
        assert ok, detail
        nodes = api.get("/api/v1/nodes")["items"]
        assert len(nodes) == sum(p.count for p in c.node_pools)
        for pool in c.node_pools:
            mine = [n for n in nodes if n["metadata"]["labels"].get("dcops.gov.vn/pool") == pool.name]
            assert len(mine) == pool.count, pool.name
            for n in mine:
                labels = n["metadata"]["labels"]
                assert pool.labels.items() <= labels.items()
                assert n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
                taints = [
                    {"key": t["key"], "value": t.get("value", ""), "effect": t["effect"]}
                    for t in n["spec"].get("taints", [])
                ]
                assert taints == [t.model_dump() for t in pool.taints]
                assert n["status"]["capacity"]["cpu"] == str(pool.cpu)
                assert n["status"]["capacity"]["memory"] == f"{pool.memory_gib}Gi"
                ready = [x for x in n["status"]["conditions"] if x["type"] == "Ready"]
                assert ready and ready[0]["status"] == "True", n["metadata"]["name"]
    # Everything listens on loopback only, on the ports recorded.
    st = LabState.load(name)
    for p in st.processes():
        assert pid_alive(p["pid"], p["start_time"]), p["name"]
    pp = lab_dir(name) / "passphrase"
    assert pp.exists() and (pp.stat().st_mode & 0o777) == 0o600
    assert pp.read_text().strip() not in out
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout.splitlines()
    pids = {str(p["pid"]) for p in st.processes()}
    for line in listening:
        if any(f"pid={pid}," in line for pid in pids):
            local = line.split()[3]
            assert local.startswith("127.0.0.1:"), line


@pytest.mark.lab
def test_secrets_are_encrypted_at_rest(lab) -> None:
    name = lab["name"]
    for c in lab["model"].datacenter.clusters:
        api = cp.Api.for_cluster(name, c.id)
        plain = "lab-secret-value-" + "".join(random.choices(string.ascii_letters, k=12))
        status, out = api.request("POST", "/api/v1/namespaces/default/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "enc-check"},
            "stringData": {"token": plain},
        })
        assert status == 201, out
        raw = cp.etcd_get(name, c.id, "/registry/secrets/default/enc-check")
        assert raw is not None
        assert raw.startswith(b"k8s:enc:secretbox:v1:key1:"), raw[:40]
        assert plain.encode() not in raw
        # ... and the API still serves it decrypted.
        import base64

        got = api.get("/api/v1/namespaces/default/secrets/enc-check")
        assert base64.b64decode(got["data"]["token"]).decode() == plain
        # The key itself is only in the lab dir, 0600.
        enc = cp.k8s_dir(name, c.id) / "pki" / "encryption-config.yaml"
        assert (enc.stat().st_mode & 0o777) == 0o600


@pytest.mark.lab
def test_second_up_says_already_running(lab) -> None:
    name = lab["name"]
    before = [(p["name"], p["pid"]) for p in LabState.load(name).processes()]
    r = dcops("lab", "up", "--name", name, "--no-hosts", "--province", str(PROVINCE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already running" in r.stdout
    assert [(p["name"], p["pid"]) for p in LabState.load(name).processes()] == before


@pytest.mark.lab
def test_status_shows_processes_and_api_health(lab) -> None:
    r = dcops("lab", "status", "--name", lab["name"], "--no-hosts")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "DEAD" not in r.stdout
    for c in lab["model"].datacenter.clusters:
        n = sum(p.count for p in c.node_pools)
        assert f"{c.id}: API ready, nodes Ready {n}/{n}" in r.stdout


@pytest.mark.lab
def test_pod_security_admission_rejects_privileged_pod(lab) -> None:
    api = cp.Api.for_cluster(lab["name"], "primary")

    def ns(name: str, labels: dict) -> None:
        status, out = api.request("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
        assert status == 201, out

    def pod(privileged: bool) -> dict:
        return {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "priv" if privileged else "plain"},
            "spec": {
                "nodeSelector": {"dcops.gov.vn/pool": "app"},
                "containers": [{"name": "c", "image": "registry.dcops.lab/test:1",
                                "securityContext": {"privileged": privileged}}],
            },
        }

    ns("psa-restricted", {"pod-security.kubernetes.io/enforce": "restricted"})
    ns("psa-none", {})
    status, out = api.request("POST", "/api/v1/namespaces/psa-restricted/pods", pod(True))
    assert status == 403, out
    assert "violates PodSecurity" in out["message"] and "privileged" in out["message"], out["message"]
    # The same pod where no Pod Security level is enforced is admitted (so PSA is what said no),
    # scheduled onto a fake node and made Running/Ready by kwok.
    status, out = api.request("POST", "/api/v1/namespaces/psa-none/pods", pod(True))
    assert status == 201, out
    deadline = time.monotonic() + 60
    while True:
        p = api.get("/api/v1/namespaces/psa-none/pods/priv")
        conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions") or []}
        if p["status"].get("phase") == "Running" and conds.get("Ready") == "True":
            break
        assert time.monotonic() < deadline, p["status"]
        time.sleep(1)
    assert p["spec"]["nodeName"].startswith("primary-app-")


def _etcd_try(name: str, cluster: str, cert: Path, key: Path) -> tuple[bool, str]:
    """GET /health of a lab etcd presenting ``cert``: (answered, what happened)."""
    d = cp.k8s_dir(name, cluster) / "pki"
    port = LabState.load(name).get(f"k8s.{cluster}.ports")["etcd_client"]
    ctx = ssl.create_default_context(cafile=str(d / "etcd-ca.crt"))
    ctx.load_cert_chain(str(cert), str(key))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/health", context=ctx, timeout=10) as r:
            return True, r.read().decode()
    except (ssl.SSLError, urllib.error.URLError, ConnectionError, http.client.HTTPException) as e:
        return False, repr(e)


def _whoami(api: cp.Api) -> tuple[int, dict]:
    """Who the API server takes ``api``'s client certificate for (SelfSubjectReview)."""
    status, out = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                              {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    ok = status == 201 and isinstance(out, dict) and isinstance(out.get("status"), dict)
    return status, (out["status"].get("userInfo", {}) if ok else {"error": out})


def _api_as(name: str, cluster: str, pair: pki.Pair) -> cp.Api:
    port = LabState.load(name).get(f"k8s.{cluster}.apiserver_port")
    return cp.Api(f"https://127.0.0.1:{port}", cp.k8s_dir(name, cluster) / "pki" / "ca.crt", pair.cert, pair.key)


def _approved_csr_certificate(api: cp.Api, tmp: Path, user: str, group: str) -> pki.Pair:
    """A client certificate the way any user gets one: a CertificateSigningRequest, approved by
    an admin, signed by the controller-manager's signer."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
                                    x509.NameAttribute(NameOID.COMMON_NAME, user)]))
           .sign(key, hashes.SHA256()))
    csr_name = f"{user}-{random.randint(0, 10**6)}"
    status, out = api.request("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": csr_name},
        "spec": {"request": base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode(),
                 "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 900,
                 "usages": ["digital signature", "client auth"]},
    })
    assert status == 201, out
    out["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "DcopsTest",
                                     "message": "approved by the lab test"}]}
    status, out = api.request("PUT", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{csr_name}/approval", out)
    assert status == 200, out
    deadline = time.monotonic() + 60
    while True:
        got = api.get(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{csr_name}")
        if got.get("status", {}).get("certificate"):
            break
        assert time.monotonic() < deadline, f"the CSR was not signed: {got.get('status')}"
        time.sleep(0.5)
    pair = pki.Pair(tmp / f"{user}.crt", tmp / f"{user}.key")
    pki.write_private(pair.cert, base64.b64decode(got["status"]["certificate"]))
    pki.write_private(pair.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return pair


@pytest.mark.lab
def test_etcd_refuses_every_certificate_but_its_own_cas(lab, tmp_path: Path) -> None:
    """An approved CSR, an admin or any other client of the API server gets no etcd access."""
    name = lab["name"]
    for c in lab["model"].datacenter.clusters:
        d = cp.k8s_dir(name, c.id) / "pki"
        admin = cp.Api.for_cluster(name, c.id)
        # the API server's own etcd client certificate is accepted (so a refusal below is the CA's doing)
        ok, what = _etcd_try(name, c.id, d / "apiserver-etcd-client.crt", d / "apiserver-etcd-client.key")
        assert ok and '"health":"true"' in what.replace(" ", ""), what
        # ... and it is nobody at the API server
        status, _ = _whoami(_api_as(name, c.id, pki.Pair(d / "apiserver-etcd-client.crt", d / "apiserver-etcd-client.key")))
        assert status == 401
        # a certificate of the client CA, even one in system:masters
        masters = pki.issue_client(d, "dcops-test-intruder", ["system:masters"])
        status, who = _whoami(_api_as(name, c.id, masters))
        assert status == 201 and who["username"] == "dcops-test-intruder", (status, who)
        for pair in (masters, pki.Pair(d / "client-admin.crt", d / "client-admin.key")):
            ok, what = _etcd_try(name, c.id, pair.cert, pair.key)
            assert not ok, f"etcd accepted {pair.cert.name}: {what}"
        # a certificate of the CSR signing CA: what any approved CertificateSigningRequest gets
        signed = _approved_csr_certificate(admin, tmp_path, f"csr-user-{c.id}", "dcops:testers")
        assert _cert(signed.cert).issuer == _cert(d / "signing-ca.crt").subject
        status, who = _whoami(_api_as(name, c.id, signed))
        assert status == 201 and who["username"] == f"csr-user-{c.id}" and "dcops:testers" in who["groups"], (status, who)
        ok, what = _etcd_try(name, c.id, signed.cert, signed.key)
        assert not ok, f"etcd accepted a certificate of the CSR signer: {what}"


@pytest.mark.lab
def test_auditor_kubeconfig_is_a_client_ca_identity(lab) -> None:
    name = lab["name"]
    for c in lab["model"].datacenter.clusters:
        kc = cp.auditor_kubeconfig_path(name, c.id)
        assert kc == cp.kubeconfig_path(name, c.id).parent / "kubeconfig-auditor"
        assert kc.exists() and (kc.stat().st_mode & 0o777) == 0o600
        assert LabState.load(name).get(f"k8s.{c.id}.auditor_kubeconfig") == str(kc)
        doc = yaml.safe_load(kc.read_text())
        d = cp.k8s_dir(name, c.id) / "pki"
        assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) == (d / "ca.crt").read_bytes()
        user = doc["users"][0]["user"]
        cert, key = d / "client-dcops-auditor.crt", d / "client-dcops-auditor.key"
        assert base64.b64decode(user["client-certificate-data"]) == cert.read_bytes()
        status, who = _whoami(_api_as(name, c.id, pki.Pair(cert, key)))
        assert status == 201, who
        assert who["username"] == "dcops-auditor" and "dcops:auditors" in who["groups"], who
        assert "system:masters" not in who["groups"]
        assert not _etcd_try(name, c.id, cert, key)[0]


@pytest.mark.lab
def test_services_with_external_ips_are_refused(lab) -> None:
    """CVE-2020-8554: a platform operator may create Services (its Role), but not with
    spec.externalIPs: DenyServiceExternalIPs refuses them (for an admin too)."""
    from infra.render import k8s as K

    name, model = lab["name"], lab["model"]
    p = next(x for x in model.platforms if x.cluster == "primary")
    objs = K.render_platform(model, p.id)
    admin = cp.Api.for_cluster(name, "primary")
    ns = objs.namespace_name
    admin.apply("/api/v1/namespaces", objs.namespace)
    admin.apply(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", objs.operator_role)
    admin.apply(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", objs.operator_binding)
    d = cp.k8s_dir(name, "primary") / "pki"
    operator = _api_as(name, "primary", pki.issue_client(d, f"operator-{p.id}", [K.operators_group(p.id)]))

    def svc(svc_name: str, external: list[str] | None) -> dict:
        spec: dict = {"selector": {"app": "x"}, "ports": [{"port": 8080, "targetPort": 8080}]}
        if external:
            spec["externalIPs"] = external
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc_name}, "spec": spec}

    for who, api in (("operator", operator), ("admin", admin)):
        status, out = api.request("POST", f"/api/v1/namespaces/{ns}/services", svc(f"ext-{who}", ["10.10.10.10"]))
        assert status == 403, (who, status, out)
        assert "external ip" in out["message"].lower(), out["message"]
    # the operator's Role does allow Services: the refusal above is the admission plugin's
    status, out = operator.request("POST", f"/api/v1/namespaces/{ns}/services", svc("plain", None))
    assert status == 201, out
    out["spec"]["externalIPs"] = ["10.10.10.10"]
    status, out = operator.request("PUT", f"/api/v1/namespaces/{ns}/services/plain", out)
    assert status == 403 and "external ip" in out["message"].lower(), out
    admin.request("DELETE", f"/api/v1/namespaces/{ns}")


@pytest.mark.lab
def test_down_stops_every_process_and_removes_every_file(lab) -> None:
    name = lab["name"]
    procs = LabState.load(name).processes()
    assert procs
    r = dcops("lab", "down", "--name", name)
    assert r.returncode == 0, r.stdout + r.stderr
    for p in procs:
        assert not pid_alive(p["pid"], p["start_time"]), f"{p['name']} (pid {p['pid']}) still runs"
    assert not lab_dir(name).exists()
    r = dcops("lab", "down", "--name", name)
    assert r.returncode == 0 and "not running" in r.stdout
    r = dcops("lab", "status", "--name", name)
    assert r.returncode == 3
