"""Cluster controls: every control passes its pass scenario and fails its
fail scenario, offline (on the rendered objects) and on a real lab API.

The lab test starts its own lab (control planes only), applies the rendered
objects of the primary cluster (what `pulumi up` applies), then for each
control puts the `dvc` namespace into the pass and the fail scenario, runs
the control against the live API and asserts the verdict; it restores the
rendered state after each scenario and tears the lab down at the end.
"""

from __future__ import annotations

import random
import string
import subprocess
import sys
import time

import pytest

from checks import scenario_k8s as S
from checks.catalog import catalog, scenario_files
from checks.controls import cluster as C
from checks.result import Status
from infra.paths import REPO, ToolMissing
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
CLUSTER = "primary"
NS = "dvc"
IDS = list(C.CONTROLS)


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


def test_every_cluster_control_has_code_and_scenarios():
    cat = {c.id for c in catalog().for_kind("cluster")}
    assert cat == set(C.CONTROLS)
    assert len(cat) >= 10
    for cid in cat:
        sc = scenario_files(cid)
        assert sc["pass"] and sc["fail"], cid


@pytest.mark.parametrize("cid", IDS)
def test_offline_pass_and_fail(pf, cid):
    base = S.rendered_snapshot(pf, CLUSTER)
    good = C.run(S.apply_offline(base, S.load(cid, "pass", NS)), pf, {cid})[0]
    assert good.status == Status.passed, (good.reason, good.evidence)
    bad = C.run(S.apply_offline(base, S.load(cid, "fail", NS)), pf, {cid})[0]
    assert bad.status == Status.failed, (bad.reason, bad.evidence)
    assert bad.reason


def test_rendered_state_passes_every_control(pf):
    for cluster in ("primary", "dr"):
        results = C.run(S.rendered_snapshot(pf, cluster), pf)
        assert [r for r in results if r.status != Status.passed] == []


def test_unreachable_api_is_an_error(pf, tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: x, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: x, user: {token: x}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\ncurrent-context: x\n"
    )
    results = C.check_cluster(kc, pf, CLUSTER)
    assert len(results) == len(C.CONTROLS)
    assert all(r.status == Status.error and "cannot read cluster" in r.reason for r in results)


def test_no_encryption_evidence_is_an_error_not_a_pass(pf):
    snap = S.rendered_snapshot(pf, CLUSTER)
    snap.apiserver_flags = None
    snap.etcd_secrets = None
    r = C.run(snap, pf, {"DCOPS-K8S-007"})[0]
    assert r.status == Status.error


# --------------------------------------------------------------------------- the lab


def dcops(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from infra.cli import app; app()", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def lab(pf):
    from infra.lab import controlplane as cp

    try:
        cp.check_tools()
    except ToolMissing as e:
        pytest.fail(str(e))
    name = "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    r = dcops("lab", "up", "--name", name, "--no-hosts", "--province", str(PROVINCE))
    try:
        assert r.returncode == 0, f"lab up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        kube = C.Kube(cp.kubeconfig_path(name, CLUSTER))
        S.provision_rendered(kube, pf, CLUSTER)
        S.wait_pvcs_bound(kube, pf, CLUSTER)
        yield {"name": name, "kube": kube, "kubeconfig": cp.kubeconfig_path(name, CLUSTER)}
    finally:
        dcops("lab", "down", "--name", name)


def _live(lab, pf, only=None):
    return {r.control: r for r in C.check_cluster(lab["kubeconfig"], pf, CLUSTER, lab=lab["name"], only=only)}


@pytest.mark.lab
def test_lab_rendered_cluster_passes_every_control(lab, pf):
    res = _live(lab, pf)
    assert {k: (r.status.value, r.reason) for k, r in res.items() if r.status != Status.passed} == {}
    # the encryption evidence came from the real API server flags and etcd
    ev = res["DCOPS-K8S-007"].evidence
    assert ev["secrets_first_provider"] not in (None, "identity")


@pytest.mark.lab
@pytest.mark.parametrize("cid", IDS)
def test_lab_scenarios(lab, pf, cid):
    for kind, want in (("pass", Status.passed), ("fail", Status.failed)):
        sc = S.load(cid, kind, NS)
        S.apply_live(lab["kube"], lab["name"], CLUSTER, sc)
        try:
            r = _live(lab, pf, {cid})[cid]
            assert r.status == want, f"{cid} {kind} scenario ({sc['description']}): got {r.status.value}: {r.reason} {r.evidence}"
        finally:
            S.undo_live(lab["kube"], lab["name"], pf, CLUSTER, sc)


@pytest.mark.lab
def test_lab_fault_default_deny_removed_fails_only_that_control(lab, pf):
    """Remove one namespace's default deny: only DCOPS-K8S-001 fails, naming that namespace."""
    sc = S.load("DCOPS-K8S-001", "fail", NS)
    S.apply_live(lab["kube"], lab["name"], CLUSTER, sc)
    try:
        res = _live(lab, pf)
        failing = {k: r.reason for k, r in res.items() if r.status != Status.passed}
        assert set(failing) == {"DCOPS-K8S-001"}, failing
        assert res["DCOPS-K8S-001"].evidence["failing"] == [NS]
        # the same through `dcops check --target primary`: exit 1, only that control fails
        import json
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as d:
            outp = Path(d) / "latest.json"
            r = dcops("check", "--name", lab["name"], "--target", CLUSTER, "--output", str(outp))
            assert r.returncode == 1, r.stdout + r.stderr
            doc = json.loads(outp.read_text())
            bad = {(x["control"], x["target"]) for x in doc["results"] if x["status"] != "pass"}
            assert bad == {("DCOPS-K8S-001", CLUSTER)}, bad
            assert len(doc["results"]) == len(C.CONTROLS)
    finally:
        S.undo_live(lab["kube"], lab["name"], pf, CLUSTER, sc)
    assert _live(lab, pf, {"DCOPS-K8S-001"})["DCOPS-K8S-001"].status == Status.passed
