"""The environment of a stack: validation (every problem, with file, line, field and fix),
secrets never in the clear, the SSH client configuration it renders, and commands that
contact nothing (`dcops validate -s`, `dcops check --list`, `dcops wan inventory`). No lab."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra import environment as EV
from infra import environment_ssh as ES
from infra.validate import load_province

REPO = Path(__file__).resolve().parent.parent
DCOPS = [str(Path(sys.executable).parent / "dcops")]
THANHHOA_ENV = REPO / "stacks" / "env" / "thanhhoa.yaml"


def dcops(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DCOPS, *args], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def _lab_like_env(tmp: Path) -> dict:
    """A complete environment whose files are in tmp (secrets 0600)."""
    for name in ("pass", "prom-pw", "id", "kh", "admin.kc", "audit.kc"):
        p = tmp / name
        p.write_text("x\n")
        p.chmod(0o600)
    return {
        "kind": "staging",
        "work_dir": str(tmp / "work"),
        "backend": {"url": f"file://{tmp / 'state'}", "passphrase": {"file": str(tmp / "pass")}},
        "clusters": {"primary": {"admin": {"kubeconfig": str(tmp / "admin.kc")},
                                 "checks": {"kubeconfig": str(tmp / "audit.kc")}}},
        "wan": {"user": "ops", "identity_file": str(tmp / "id"), "known_hosts": str(tmp / "kh"),
                "jump_host": {"host": "192.0.2.10", "user": "jump"},
                "jump_hosts": {"tier_commune": {"host": "192.0.2.11"}, "gateway": None},
                "addresses": {"gateway": "192.0.2.1"}},
        "prometheus": {"url": "https://192.0.2.20:9090", "ca_file": str(tmp / "kh"),
                       "basic_auth": {"username": "checks", "password": {"file": str(tmp / "prom-pw")}}},
    }


def _write_stack(tmp: Path, env: dict | str, province: str = "stacks/province-lab.yaml") -> Path:
    cfg = tmp / "Pulumi.t.yaml"
    cfg.write_text(yaml.safe_dump({"config": {"dcops:province": str(REPO / province), "dcops:environment": env}},
                                  sort_keys=False))
    return cfg


def test_committed_environment_is_valid():
    st = EV.load("thanhhoa")
    assert st.env.kind == "production"
    assert st.env_file == THANHHOA_ENV
    assert st.env.wan.jump_host is not None and st.env.wan.jump_host.host == "10.20.20.10"
    assert st.province == REPO / "stacks" / "province-thanhhoa.yaml"
    kc, ctx = st.kubeconfig("primary", "checks")
    assert kc.name == "primary-auditor.kubeconfig" and ctx == "ttdl-primary-auditor"


def test_valid_environment_loads(tmp_path):
    cfg = _write_stack(tmp_path, _lab_like_env(tmp_path))
    st = EV.load("t", cfg)
    assert st.name == "t" and st.config_file == cfg and st.env.kind == "staging"
    assert st.work_dir == tmp_path / "work"
    assert st.secret(st.env.prometheus.basic_auth.password, "pw") == "x"


@pytest.mark.parametrize("mutate, field, words", [
    (lambda e: e["wan"].pop("known_hosts"), "config.dcops:environment.wan.known_hosts", "required"),
    (lambda e: e.pop("prometheus"), "config.dcops:environment.prometheus", "required"),
    (lambda e: e["prometheus"].__setitem__("url", "http://192.0.2.20:9090"), "config.dcops:environment.prometheus.url", "HTTPS"),
    (lambda e: e["prometheus"]["basic_auth"].__setitem__("password", "hunter2 two"), "prometheus.basic_auth.password", "clear"),
    (lambda e: e["backend"].__setitem__("passphrase", "s3cret"), "backend.passphrase", "clear"),
    (lambda e: e["wan"].__setitem__("user", "ops\nPreUp = id"), "wan.user", "pattern"),
    (lambda e: e["wan"].__setitem__("audit_user", "audit; id"), "wan.audit_user", "pattern"),
    (lambda e: e["wan"].__setitem__("addresses", {"gateway": "2001:db8::1"}), "wan.addresses", "IPv6"),
    (lambda e: e["wan"].pop("identity_file"), "config.dcops:environment.wan", "identity_file"),
    (lambda e: e.__setitem__("kind", "prod"), "config.dcops:environment.kind", "production"),
    (lambda e: e.__setitem__("colour", "blue"), "config.dcops:environment.colour", "unknown key"),
    (lambda e: e["clusters"].__setitem__("atlantis", copy.deepcopy(e["clusters"]["primary"])), "clusters.atlantis", "not in the province"),
    (lambda e: e["clusters"]["primary"].__setitem__("checks", copy.deepcopy(e["clusters"]["primary"]["admin"])), "clusters.primary.checks", "read-only"),
    (lambda e: e["wan"]["jump_hosts"].__setitem__("tier_nowhere", None), "wan.jump_hosts.tier_nowhere", "neither a host nor a group"),
])
def test_bad_environment_names_the_field(tmp_path, mutate, field, words):
    env = _lab_like_env(tmp_path)
    mutate(env)
    cfg = _write_stack(tmp_path, env)
    with pytest.raises(EV.EnvironmentError) as ei:
        EV.load("t", cfg)
    text = str(ei.value)
    assert field in text, text
    assert words.lower() in text.lower(), text
    assert "fix:" in text
    # the CLI: exit 2, the field named, nothing contacted
    r = dcops("validate", "-s", "t", "--config-file", str(cfg))
    assert r.returncode == 2, r.stdout + r.stderr
    assert field in r.stderr and "nothing was changed or contacted" in r.stderr


def test_every_problem_at_once_with_line_numbers(tmp_path):
    env = _lab_like_env(tmp_path)
    env["wan"].pop("known_hosts")
    env["prometheus"]["url"] = "http://x:9090"
    f = tmp_path / "env.yaml"
    f.write_text(yaml.safe_dump(env, sort_keys=False))
    cfg = _write_stack(tmp_path, str(f))
    with pytest.raises(EV.EnvironmentError) as ei:
        EV.load("t", cfg)
    assert ei.value.file == str(f)
    paths = {p.path for p in ei.value.problems}
    assert {"wan.known_hosts", "prometheus.url"} <= paths
    url_line = next(i for i, line in enumerate(f.read_text().splitlines(), 1) if "http://x:9090" in line)
    assert any(p.path == "prometheus.url" and p.line == url_line for p in ei.value.problems)


def test_secret_files_inside_the_repo_or_readable_by_others_are_refused(tmp_path):
    env = _lab_like_env(tmp_path)
    env["backend"]["passphrase"] = {"file": str(REPO / "stacks" / "passphrase")}
    (tmp_path / "prom-pw").chmod(0o644)
    with pytest.raises(EV.EnvironmentError) as ei:
        EV.load("t", _write_stack(tmp_path, env))
    text = str(ei.value)
    assert "inside the repository" in text and "readable by others" in text and "chmod 600" in text


def test_missing_stack_and_missing_lab(tmp_path, monkeypatch):
    r = dcops("check", "-s", "atlantis")
    assert r.returncode == 2 and "stacks/Pulumi.atlantis.yaml does not exist" in r.stderr
    r = dcops("check", "-s", "lab", env={"DCOPS_LAB_ROOT": str(tmp_path), "DCOPS_LAB": "nolab"})
    assert r.returncode == 3 and "dcops lab up" in r.stderr


def test_ssh_config_jump_hosts_per_group_and_host(tmp_path):
    pf = load_province(REPO / "stacks" / "province-lab.yaml")
    st = EV.load("t", _write_stack(tmp_path, _lab_like_env(tmp_path)))
    jumps = ES.jump_for(st, pf)
    communes = [s.id for s in pf.wan.sites if s.tier == "commune"]
    others = [s.id for s in pf.wan.sites if s.tier != "commune"]
    assert communes and others
    assert jumps["gateway"] is None  # its own entry: direct
    assert all(jumps[c].host == "192.0.2.11" for c in communes)  # the group's jump host
    assert all(jumps[o].host == "192.0.2.10" for o in others)  # everyone else: the global one
    a = ES.access(st, pf)
    text = a.config.read_text()
    assert oct(a.config.stat().st_mode & 0o777) == "0o600"
    assert "ProxyJump dcops-jump-0" in text and "ProxyJump dcops-jump-1" in text
    assert "StrictHostKeyChecking yes" in text and f"UserKnownHostsFile {tmp_path / 'kh'}" in text
    assert a.addresses["gateway"] == "192.0.2.1"
    # ssh itself reads it: the gateway direct, a commune through its jump host (no connection made)
    g = subprocess.run(["ssh", "-G", "-F", str(a.config), "192.0.2.1"], capture_output=True, text=True)
    assert "proxyjump" not in g.stdout.lower() and "user ops" in g.stdout
    c = subprocess.run(["ssh", "-G", "-F", str(a.config), a.addresses[communes[0]]], capture_output=True, text=True)
    assert "proxyjump dcops-jump-" in c.stdout.lower()


def test_check_list_is_a_dry_run(tmp_path):
    cfg = _write_stack(tmp_path, _lab_like_env(tmp_path))
    r = dcops("check", "-s", "t", "--config-file", str(cfg), "--list", "-t", "gateway,so-tc,primary,dvc")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "nothing is contacted" in out
    assert "192.0.2.1:22" in out and "direct" in out  # the gateway
    assert "jump host jump@192.0.2.10:22" in out  # a department through the global jump host
    assert "https://192.0.2.20:9090" in out and "basic auth checks" in out


def test_wan_inventory_without_keys_writes_hosts_and_groups(tmp_path):
    cfg = _write_stack(tmp_path, _lab_like_env(tmp_path))
    out = tmp_path / "inv"
    r = dcops("wan", "inventory", "-s", "t", "--config-file", str(cfg), "--out", str(out))
    assert r.returncode == 1 and "dcops wan apply" in r.stderr  # no public keys known yet
    inv = yaml.safe_load((out / "hosts.yml").read_text())["all"]
    assert inv["hosts"]["gateway"]["ansible_host"] == "192.0.2.1"
    assert inv["vars"]["ansible_ssh_common_args"] == f"-F {(out / 'ssh_config').resolve()}"
    assert "tier_commune" in inv["children"] and "sites" in inv["children"]
    assert (out / "pyinfra_inventory.py").exists()
    # ansible reads it as a standard inventory (no connection made)
    ai = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(out / "hosts.yml"), "--graph"],
                        capture_output=True, text=True)
    assert ai.returncode == 0 and "@tier_commune" in ai.stdout, ai.stderr


def test_lab_environment_is_valid_without_a_lab(tmp_path, monkeypatch):
    """What `lab up` writes for a lab with no hosts and no clusters still validates (no WAN hosts)."""
    from infra.lab import environment as labenv

    monkeypatch.setenv("DCOPS_LAB_ROOT", str(tmp_path))
    pf = load_province(REPO / "stacks" / "province-lab.yaml")
    (tmp_path / "envt").mkdir(mode=0o700)
    (tmp_path / "envt" / "passphrase").write_text("x")
    (tmp_path / "envt" / "passphrase").chmod(0o600)
    cfg = labenv.write("envt", pf, REPO / "stacks" / "province-lab.yaml")
    st = EV.load("lab", cfg)
    assert st.env.kind == "lab" and st.env.wan.hosts == []
    assert st.env.prometheus.url.startswith("https://")
    assert oct(cfg.stat().st_mode & 0o777) == "0o600"


def test_layers_are_kept():
    """The import-linter contracts of pyproject.toml: product code never imports the lab."""
    r = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "BROKEN" not in r.stdout


# --------------------------------------------------------------------------- TLS trust (loopback servers)


def _pki(tmp: Path):
    """Two CAs; a server certificate for 127.0.0.1 signed by the first."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def ca(cn):
        k = ec.generate_private_key(ec.SECP256R1())
        n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key()).serial_number(1)
             .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(k, hashes.SHA256()))
        return k, c

    ka, a = ca("ca-a")
    _, b = ca("ca-b")
    ks = ec.generate_private_key(ec.SECP256R1())
    s = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srv")]))
         .issuer_name(a.subject).public_key(ks.public_key()).serial_number(2).not_valid_before(now)
         .not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
         .sign(ka, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp / "a.crt").write_bytes(a.public_bytes(pem))
    (tmp / "b.crt").write_bytes(b.public_bytes(pem))
    (tmp / "srv.crt").write_bytes(s.public_bytes(pem))
    (tmp / "srv.key").write_bytes(ks.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp / "a.crt", tmp / "b.crt"


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 answering 401 without 'Authorization: Basic dTpw' (u:p), else JSON."""
    import json as _json
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ca_a, ca_b = _pki(tmp_path)

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.headers.get("Authorization") == "Basic dTpw"
            body = _json.dumps({"status": "success", "data": {"version": "test", "resultType": "vector", "result": []}}
                               if ok else {"message": "Unauthorized"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield {"url": f"https://127.0.0.1:{srv.server_address[1]}", "ca": ca_a, "other_ca": ca_b, "dir": tmp_path}
    srv.shutdown()


def test_prometheus_client_trusts_only_its_ca_and_names_the_cause(tls_server):
    from checks.sla import Prom, PromUnavailable

    assert Prom(tls_server["url"], 5, str(tls_server["ca"]), ("u", "p")).probe() == "test"
    with pytest.raises(PromUnavailable, match="not trusted"):
        Prom(tls_server["url"], 5, str(tls_server["other_ca"]), ("u", "p")).probe()
    with pytest.raises(PromUnavailable, match="not trusted"):  # the system store does not know the lab's CA
        Prom(tls_server["url"], 5, None, ("u", "p")).probe()
    with pytest.raises(PromUnavailable, match="refused the credentials") as ei:
        Prom(tls_server["url"], 5, str(tls_server["ca"]), ("u", "wrong-secret")).probe()
    assert "wrong-secret" not in str(ei.value)
    with pytest.raises(PromUnavailable, match="only sent over https"):
        Prom(tls_server["url"].replace("https", "http"), 5, None, ("u", "p"))


def test_kube_client_trusts_only_the_kubeconfig_ca(tls_server):
    from checks.controls.cluster import Kube, KubeError

    def kc(ca: Path) -> Path:
        p = tls_server["dir"] / f"kc-{ca.stem}"
        p.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "x",
            "clusters": [{"name": "x", "cluster": {"server": tls_server["url"], "certificate-authority": str(ca)}}],
            "users": [{"name": "x", "user": {"username": "u", "password": "p"}}],
            "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
        return p

    status, body = Kube(kc(tls_server["ca"]), timeout=5).request("GET", "/api")
    assert status == 401  # TLS verified against the kubeconfig's CA; the server answered
    with pytest.raises(KubeError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        Kube(kc(tls_server["other_ca"]), timeout=5).request("GET", "/api")
