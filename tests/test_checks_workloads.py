"""The cluster controls judge every workload kind the operator Role may create, offline on the
rendered objects: a Deployment, a StatefulSet, a DaemonSet, a Job, a CronJob or a bare Pod that
breaks a rule fails the control; DCOPS-K8S-013 compares ready replicas; DCOPS-K8S-010 knows the
claims a StatefulSet makes per replica."""

from __future__ import annotations

import copy

import pytest

from checks import scenario_k8s as S
from checks.controls import cluster as C
from checks.result import Status
from infra.paths import REPO
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


@pytest.fixture()
def snap(pf):
    return S.rendered_snapshot(pf, "primary")


def _pod_spec(image: str, root: bool = False) -> dict:
    sc = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    if root:
        sc = {"runAsUser": 0, "readOnlyRootFilesystem": False, "allowPrivilegeEscalation": True}
    return {"serviceAccountName": "x", "automountServiceAccountToken": False,
            "containers": [{"name": "c", "image": image, "securityContext": sc}]}


def _workload(kind: str, ns: str, spec: dict) -> tuple[str, dict]:
    md = {"name": f"extra-{kind.lower()}", "namespace": ns}
    if kind == "Pod":
        return "pods", {"kind": "Pod", "metadata": md, "spec": spec}
    template = {"template": {"spec": spec}}
    if kind == "CronJob":
        return "cronjobs", {"kind": kind, "metadata": md, "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": template}}}
    coll = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets", "Job": "jobs"}[kind]
    return coll, {"kind": kind, "metadata": md, "spec": template}


def test_rendered_state_passes(pf, snap):
    for r in C.run(snap, pf, {"DCOPS-K8S-009", "DCOPS-K8S-010", "DCOPS-K8S-011", "DCOPS-K8S-012", "DCOPS-K8S-013"}):
        assert r.status == Status.passed, (r.control, r.reason, r.evidence)


KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"]


@pytest.mark.parametrize("kind", KINDS)
def test_root_container_in_any_kind_fails_009(pf, snap, kind):
    coll, obj = _workload(kind, "motcua", _pod_spec("registry.dcops.lab/motcua/api:5.1.0", root=True))
    snap.per_ns["motcua"][coll].append(obj)
    (r,) = C.run(snap, pf, {"DCOPS-K8S-009"})
    assert r.status == Status.failed, r.evidence
    failing = r.evidence["namespaces"]["motcua"]["failing"]
    assert [f["container"] for f in failing] == [f"{kind}/extra-{kind.lower()}/c"]


@pytest.mark.parametrize("kind", KINDS)
def test_outside_image_in_any_kind_fails_012(pf, snap, kind):
    coll, obj = _workload(kind, "motcua", _pod_spec("docker.io/library/nginx:1.27"))
    snap.per_ns["motcua"][coll].append(obj)
    (r,) = C.run(snap, pf, {"DCOPS-K8S-012"})
    assert r.status == Status.failed
    assert r.evidence["namespaces"]["motcua"]["outside_registry"] == [f"{kind}/extra-{kind.lower()}/c: docker.io/library/nginx:1.27"]


@pytest.mark.parametrize("kind", ["CronJob", "Pod"])
def test_token_mounted_in_any_kind_fails_011(pf, snap, kind):
    spec = _pod_spec("registry.dcops.lab/motcua/api:5.1.0")
    del spec["automountServiceAccountToken"]
    coll, obj = _workload(kind, "motcua", spec)
    snap.per_ns["motcua"][coll].append(obj)
    (r,) = C.run(snap, pf, {"DCOPS-K8S-011"})
    assert r.status == Status.failed
    assert r.evidence["namespaces"]["motcua"]["failing"] == [f"{kind}/extra-{kind.lower()}"]


def test_owned_pods_are_judged_by_their_owner(pf, snap):
    _, pod = _workload("Pod", "motcua", _pod_spec("docker.io/library/nginx:1.27"))
    pod["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "motcua-abc"}]
    snap.per_ns["motcua"]["pods"].append(pod)
    (r,) = C.run(snap, pf, {"DCOPS-K8S-012"})
    assert r.status == Status.passed, r.evidence


@pytest.mark.parametrize("platform", ["motcua", "ioc"])  # a Deployment and a StatefulSet
def test_013_compares_ready_replicas(pf, snap, platform):
    coll = "statefulsets" if pf.platform_by_id[platform].per_replica_storage else "deployments"
    (w,) = snap.per_ns[platform][coll]
    assert w["spec"]["replicas"] == pf.platform_by_id[platform].replicas
    w["status"]["readyReplicas"] = w["spec"]["replicas"] - 1  # declared replicas, one not ready
    (r,) = C.run(snap, pf, {"DCOPS-K8S-013"})
    assert r.status == Status.failed
    ev = r.evidence["namespaces"][platform]
    assert ev["ready"] == ev["declared"] - 1 and ev["replicas"] == ev["declared"]


def test_010_per_replica_claims(pf, snap):
    ioc = pf.platform_by_id["ioc"]
    names = sorted(x["metadata"]["name"] for x in snap.per_ns["ioc"]["pvcs"])
    assert names == [f"tsdb-ioc-{i}" for i in range(ioc.replicas)]
    # a claim kept after a scale-down is not a stray claim
    kept = copy.deepcopy(snap.per_ns["ioc"]["pvcs"][0])
    kept["metadata"]["name"] = f"tsdb-ioc-{ioc.replicas + 2}"
    snap.per_ns["ioc"]["pvcs"].append(kept)
    (r,) = C.run(snap, pf, {"DCOPS-K8S-010"})
    assert r.status == Status.passed, r.evidence
    # a missing replica's claim is
    snap.per_ns["ioc"]["pvcs"] = [x for x in snap.per_ns["ioc"]["pvcs"] if x["metadata"]["name"] != "tsdb-ioc-1"]
    (r,) = C.run(snap, pf, {"DCOPS-K8S-010"})
    assert r.status == Status.failed and "tsdb-ioc-1: missing" in r.evidence["namespaces"]["ioc"]["problems"]
