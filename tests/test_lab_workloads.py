"""Lab (issue 15): the rendered workloads survive what operators do to them, on the lab province
and on the full province (Thanh Hóa), each on a lab of its own started with --no-hosts.

With the lab's storage behaving like the real drivers on attach (ceph-rbd volumes attach to one
node; the controller manager's attach/detach controller refuses a ReadWriteOnce volume to a
second node; kwok runs a pod only once its volumes are attached), each of these completes
without a stuck pod, through `dcops provision` (Pulumi awaits every rollout) and kubectl:

- scale a Deployment (shared ReadWriteMany volume) and a StatefulSet (a ReadWriteOnce volume
  per replica) to 3 replicas in the province file;
- roll out a new image of both;
- drain a node that runs one of the StatefulSet's pods: its volume detaches and attaches to the
  node the pod moves to; the PodDisruptionBudgets let the drain through.

And the regression the lab no longer hides: one ReadWriteOnce volume shared by pods on two
nodes leaves the second pod Pending with a Multi-Attach error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from infra.paths import REPO, ToolMissing, tool
from infra.validate import load_province

from conftest import dcops, lab_stack

pytestmark = pytest.mark.lab

PROVINCES = {"lab": (REPO / "stacks" / "province-lab.yaml", "h15w", "motcua", "ioc"),
             "thanhhoa": (REPO / "stacks" / "province-thanhhoa.yaml", "h15t", "motcua", "ioc")}
STEP_TIMEOUT = 240


def kubectl(lab: str, cluster: str, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    from infra.lab.controlplane import kubeconfig_path

    r = subprocess.run([str(tool("kubectl")), "--kubeconfig", str(kubeconfig_path(lab, cluster)), *args],
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}{r.stdout}"
    return r


def get(lab: str, cluster: str, *args: str) -> dict:
    return json.loads(kubectl(lab, cluster, "get", *args, "-o", "json").stdout)


def settled(lab: str, cluster: str, ns: str, kind: str, name: str, replicas: int, image: str) -> tuple[bool, str]:
    """Every replica updated, ready and running the image; no other pod left (none Pending, none old)."""
    w = get(lab, cluster, kind, "-n", ns, name)
    st = w.get("status") or {}
    pods = get(lab, cluster, "pods", "-n", ns)["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    ready = [p for p in live if p["status"].get("phase") == "Running"
             and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
             and p["spec"]["containers"][0]["image"] == image]
    ok = (w["spec"]["replicas"] == replicas and st.get("readyReplicas") == replicas
          and st.get("updatedReplicas") == replicas and len(ready) == replicas == len(pods))
    why = f"{kind}/{name}: status {st}; pods " + ", ".join(
        f"{p['metadata']['name']}={p['status'].get('phase')}@{p['spec'].get('nodeName')}" for p in pods)
    return ok, why


def wait_settled(lab, cluster, ns, kind, name, replicas, image) -> float:
    t0 = time.monotonic()
    while True:
        ok, why = settled(lab, cluster, ns, kind, name, replicas, image)
        if ok:
            return time.monotonic() - t0
        if time.monotonic() - t0 > STEP_TIMEOUT:
            events = kubectl(lab, cluster, "get", "events", "-n", ns, "--field-selector", "type=Warning", check=False).stdout
            pytest.fail(f"stuck after {STEP_TIMEOUT}s: {why}\n{events[-2000:]}")
        time.sleep(2)


@pytest.fixture(scope="module", params=list(PROVINCES), ids=list(PROVINCES))
def lab(request, tmp_path_factory):
    for t in ("kubectl", "pulumi", "kwok", "kube-apiserver"):
        try:
            tool(t)
        except ToolMissing as e:
            pytest.fail(str(e))
    src, name, deployment, statefulset = PROVINCES[request.param]
    province = tmp_path_factory.mktemp(request.param) / src.name
    shutil.copy(src, province)  # the test edits its copy: replicas, then images
    dcops("lab", "down", "--name", name)
    r = dcops("lab", "up", "--name", name, "--no-hosts", "--province", str(province))
    try:
        assert r.returncode == 0, f"lab up failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        r = dcops("provision", *lab_stack(name), timeout=1800)
        assert r.returncode == 0, f"provision failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        yield {"name": name, "province": province, "deployment": deployment, "statefulset": statefulset}
    finally:
        dcops("lab", "down", "--name", name)


def edit_platforms(province: Path, change) -> None:
    data = yaml.safe_load(province.read_text(encoding="utf-8"))
    for p in data["platforms"]:
        change(p)
    province.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_province(province)  # still valid


def kubeconfig_copies() -> set[Path]:
    """What pulumi-kubernetes leaves in the temporary directory: a copy of the provider's
    kubeconfig, client key included, at every configure (dcops gives pulumi a TMPDIR of its own)."""
    return set(Path(tempfile.gettempdir()).glob("kubeconfig*"))


def provision(lab: dict) -> None:
    t0 = time.monotonic()
    before = kubeconfig_copies()
    r = dcops("provision", *lab_stack(lab["name"]), timeout=1800)
    assert r.returncode == 0, f"provision failed after {time.monotonic() - t0:.0f}s:\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
    assert not kubeconfig_copies() - before, "pulumi-kubernetes left a kubeconfig copy (with the client key) in /tmp"


def platforms(lab: dict):
    m = load_province(lab["province"])
    d, s = m.platform_by_id[lab["deployment"]], m.platform_by_id[lab["statefulset"]]
    assert not d.per_replica_storage and d.storage and s.per_replica_storage
    return m, [(d, "deployment"), (s, "statefulset")]


def test_1_scale_to_three(lab):
    edit_platforms(lab["province"], lambda p: p.update(replicas=3) if p["id"] in (lab["deployment"], lab["statefulset"]) else None)
    provision(lab)
    _, both = platforms(lab)
    for p, kind in both:
        wait_settled(lab["name"], p.cluster, p.id, kind, p.id, 3, p.image)
        pvcs = {c["metadata"]["name"] for c in get(lab["name"], p.cluster, "pvc", "-n", p.id)["items"]}
        if kind == "statefulset":  # a volume of its own per replica
            assert {f"{v.name}-{p.id}-{i}" for v in p.storage for i in range(3)} <= pvcs
        nodes = {x["spec"]["nodeName"] for x in get(lab["name"], p.cluster, "pods", "-n", p.id)["items"]}
        assert len(nodes) >= 2, f"{p.id}: every replica on {nodes}"  # spread across nodes


def test_2_roll_out_a_new_image(lab):
    def bump(p):
        if p["id"] in (lab["deployment"], lab["statefulset"]):
            repo = re.split(r"[:@]", p["image"].rsplit("/", 1)[1])[0]
            p["image"] = p["image"].rsplit("/", 1)[0] + f"/{repo}:9.9.9"
    edit_platforms(lab["province"], bump)
    provision(lab)
    _, both = platforms(lab)
    for p, kind in both:
        assert p.image.endswith(":9.9.9")
        wait_settled(lab["name"], p.cluster, p.id, kind, p.id, 3, p.image)


def test_3_drain_a_node(lab):
    m, both = platforms(lab)
    s = next(p for p, kind in both if kind == "statefulset")
    pods = get(lab["name"], s.cluster, "pods", "-n", s.id)["items"]
    node = pods[0]["spec"]["nodeName"]
    pvc = next(v["persistentVolumeClaim"]["claimName"] for v in pods[0]["spec"]["volumes"] if "persistentVolumeClaim" in v)
    pv = get(lab["name"], s.cluster, "pvc", "-n", s.id, pvc)["spec"]["volumeName"]
    t0 = time.monotonic()
    r = kubectl(lab["name"], s.cluster, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                f"--timeout={STEP_TIMEOUT}s", check=False, timeout=STEP_TIMEOUT + 60)
    try:
        assert r.returncode == 0, f"drain of {node} did not complete: {r.stderr[-3000:]}"
        for p, kind in both:
            wait_settled(lab["name"], p.cluster, p.id, kind, p.id, 3, p.image)
            assert node not in {x["spec"]["nodeName"] for x in get(lab["name"], p.cluster, "pods", "-n", p.id)["items"]}
        # the moved replica's volume left the drained node and is attached where the pod runs now
        moved = next(x for x in get(lab["name"], s.cluster, "pods", "-n", s.id)["items"]
                     if any((v.get("persistentVolumeClaim") or {}).get("claimName") == pvc for v in x["spec"]["volumes"]))
        vas = [v for v in get(lab["name"], s.cluster, "volumeattachments")["items"] if v["spec"]["source"].get("persistentVolumeName") == pv]
        assert [(v["spec"]["nodeName"], v["status"].get("attached")) for v in vas] == [(moved["spec"]["nodeName"], True)]
        print(f"drain of {node} and recovery: {time.monotonic() - t0:.1f}s")
    finally:
        kubectl(lab["name"], s.cluster, "uncordon", node, check=False)


def test_4_shared_rwo_volume_on_two_nodes_fails(lab):
    """Outside the province file (validation refuses it): a Deployment of 2 replicas on 2 nodes sharing
    one ReadWriteOnce volume. The second pod never runs: Multi-Attach error, as on real nodes."""
    m = load_province(lab["province"])
    cluster = m.platforms[0].cluster
    rbd = next(c for c in m.storage_classes_on(cluster) if c.backend == "ceph-rbd")
    pool = next(n for n in m.cluster_by_id[cluster].node_pools if n.count >= 2 and not n.taints)
    ns = "rwo-regression"
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": rbd.name, "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shared", "namespace": ns}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "shared"}},
            "template": {"metadata": {"labels": {"app": "shared"}}, "spec": {
                "nodeSelector": {"dcops.gov.vn/segment": pool.segment},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                               "whenUnsatisfiable": "DoNotSchedule",
                                               "labelSelector": {"matchLabels": {"app": "shared"}}}],
                "containers": [{"name": "c", "image": "registry.dcops.lab/test/x:1",
                                "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}}},
    ]
    f = Path(lab["province"]).parent / "rwo.yaml"
    f.write_text(yaml.safe_dump_all(objs), encoding="utf-8")
    kubectl(lab["name"], cluster, "apply", "-f", str(f))
    try:
        deadline = time.monotonic() + 90
        while True:
            pods = get(lab["name"], cluster, "pods", "-n", ns)["items"]
            events = get(lab["name"], cluster, "events", "-n", ns)["items"]
            multi = [e for e in events if e.get("reason") == "FailedAttachVolume" and "Multi-Attach" in e.get("message", "")]
            running = [p for p in pods if p["status"].get("phase") == "Running"]
            if multi and len(running) == 1:
                break
            assert time.monotonic() < deadline, f"no Multi-Attach error: pods {[(p['metadata']['name'], p['status'].get('phase'), p['spec'].get('nodeName')) for p in pods]}"
            time.sleep(2)
        time.sleep(5)  # and it stays so
        pods = get(lab["name"], cluster, "pods", "-n", ns)["items"]
        phases = sorted(p["status"].get("phase") for p in pods)
        assert phases == ["Pending", "Running"], phases
        assert len({p["spec"].get("nodeName") for p in pods}) == 2
    finally:
        kubectl(lab["name"], cluster, "delete", "namespace", ns, "--wait=false", check=False)
