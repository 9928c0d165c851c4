"""The lab's Kubernetes control planes, for real: `dcops lab up | status | down`.

Every test here that needs the lab shares one lab (own random name, never a
developer's lab), started once by a module fixture with the real CLI and torn
down at the end even when a test fails.  A missing tool fails the tests with
the install hint.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.lab import controlplane as cp
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
