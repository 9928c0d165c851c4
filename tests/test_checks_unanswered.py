"""A cluster whose API server accepts connections and never answers (a frozen or cut-off control
plane, issue 19): `dcops check` finds it once, in a bounded time, with one probe, and every control
of that cluster is an error with the reason -- never a pass -- while a cluster that answers is read.

No lab: a real local TCP listener that accepts and says nothing, and a real local TLS server that
answers /readyz, each behind a kubeconfig with its CA.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from types import SimpleNamespace

import pytest

from checks.controls import backup as B
from checks.controls import cluster as C
from checks.result import Status
from infra.paths import REPO
from infra.report.vi import translate_reason
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d


def kubeconfig(path, port: int, ca) -> str:
    path.write_text(
        f"apiVersion: v1\nkind: Config\nclusters: [{{name: x, cluster: {{server: 'https://127.0.0.1:{port}', "
        f"certificate-authority: {ca}}}}}]\nusers: [{{name: x, user: {{token: x}}}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\ncurrent-context: x\n")
    return str(path)


@pytest.fixture
def silent(tmp_path, pki):
    """A listener that accepts every connection and never sends a byte (as a SIGSTOPped API server's
    port: the kernel completes the handshake, nobody reads)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    yield {"kubeconfig": kubeconfig(tmp_path / "silent.kubeconfig", srv.getsockname()[1], pki / "ca.crt"), "accepted": held}
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()


@pytest.fixture
def answering(tmp_path, pki):
    """A TLS server that answers /readyz with 200 ok (the API server of a healthy cluster)."""

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"ok" if self.path == "/readyz" else b'{"kind":"Status","code":404}'
            self.send_response(200 if self.path == "/readyz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "tls.crt", pki / "tls.key")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield {"kubeconfig": kubeconfig(tmp_path / "ok.kubeconfig", httpd.server_address[1], pki / "ca.crt")}
    httpd.shutdown()
    httpd.server_close()


def test_probe_of_a_silent_api_server_is_bounded_and_says_why(silent):
    t0 = time.monotonic()
    reason = C.probe(silent["kubeconfig"], "primary", timeout=TIMEOUT)
    took = time.monotonic() - t0
    assert reason is not None and reason.startswith("the API server of cluster primary did not answer within 1 s")
    assert "/readyz" in reason
    assert took < TIMEOUT + 1.5, took  # one attempt, not a retried one
    assert len(silent["accepted"]) == 1  # one connection: no retry
    # the reason has its Vietnamese (the report in Vietnamese has no English sentence for it)
    vi = "".join(s.text if hasattr(s, "text") else str(s) for s in translate_reason(reason))
    assert "máy chủ API của cụm primary không trả lời trong 1 giây" in vi


def test_probe_of_an_answering_api_server_is_none(answering):
    assert C.probe(answering["kubeconfig"], "dr", timeout=TIMEOUT) is None


def test_probe_all_finds_only_the_silent_cluster_at_once(silent, answering):
    t0 = time.monotonic()
    down = C.probe_all({"primary": (silent["kubeconfig"], None), "dr": (answering["kubeconfig"], None)}, TIMEOUT)
    assert time.monotonic() - t0 < TIMEOUT + 1.5
    assert set(down) == {"primary"} and "did not answer within" in down["primary"]


def test_every_control_of_a_down_cluster_is_an_error_and_nothing_is_sent(pf, silent):
    reason = C.probe(silent["kubeconfig"], "primary", timeout=TIMEOUT)
    n = len(silent["accepted"])
    t0 = time.monotonic()
    results = C.check_cluster(silent["kubeconfig"], pf, "primary", down=reason)
    assert time.monotonic() - t0 < 0.5
    assert len(silent["accepted"]) == n  # not contacted again
    assert {r.control for r in results} == set(C.CONTROLS)
    assert all(r.status == Status.error and r.reason == reason for r in results)


def test_without_the_probe_a_silent_request_costs_one_timeout_not_four(pf, silent):
    """The client used by the checks does not retry a request that was sent and not answered
    (urllib3's default retried it 3 times: 4 timeouts per frozen cluster and per phase)."""
    t0 = time.monotonic()
    with pytest.raises(C.KubeError):
        C.Kube(silent["kubeconfig"], timeout=TIMEOUT).get("/api/v1/namespaces")
    took = time.monotonic() - t0
    assert took < 2 * TIMEOUT + 0.5, took
    assert len(silent["accepted"]) == 1


def test_backup_controls_of_a_down_cluster_are_errors_and_it_is_not_contacted(pf, silent, answering, tmp_path):
    reason = C.probe(silent["kubeconfig"], "primary", timeout=TIMEOUT)
    n = len(silent["accepted"])
    kcs = {"primary": silent["kubeconfig"], "dr": answering["kubeconfig"]}
    stack = SimpleNamespace(env=SimpleNamespace(backup=None, clusters={"primary": object(), "dr": object()}),
                            work_dir=tmp_path, kubeconfig=lambda c, who: (kcs[c], None))
    t0 = time.monotonic()
    results = B.check_backups(stack, pf, down={"primary": reason})
    assert time.monotonic() - t0 < 5
    assert len(silent["accepted"]) == n
    on_primary = [r for r in results if r.target == "primary"
                  or (r.target in pf.platform_by_id and pf.platform_by_id[r.target].cluster == "primary"
                      and r.control == "DCOPS-BAK-002")]
    assert on_primary and all(r.status == Status.error and reason in r.reason for r in on_primary)
    # the DR cluster answered: its Velero objects were read (none there: the schedule control fails, no error)
    bak1_dr = next(r for r in results if r.control == "DCOPS-BAK-001" and r.target == "dr")
    assert bak1_dr.status != Status.error, bak1_dr.reason
