"""The dynamic Kubernetes provider (infra/k8s/provider.py).

Without a cluster: diff, check, projection, readiness logic and pickling.
With the lab (``@pytest.mark.lab``): create / update / read / delete through a
real API server (a one-cluster lab of its own, torn down at the end), calling
the provider directly as the Pulumi engine would.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import string
import time
from pathlib import Path

import dill
import pytest
import yaml
from pulumi.dynamic.dynamic import serialize_provider

from infra.k8s import provider as kp
from infra.paths import REPO, ToolMissing, lab_dir
from infra.render import k8s as render
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"a": "1"}}}


def props(manifest: dict, kubeconfig: str = "/k/config", **extra) -> dict:
    return {"manifest": manifest, "kubeconfig": kubeconfig, **extra}


# --------------------------------------------------------------------------- no cluster


def test_diff_equal_manifests_is_no_change():
    p = kp.KubeProvider()
    d = p.diff("id", props(NS), props(copy.deepcopy(NS)))
    assert d.changes is False and not d.replaces


def test_diff_survives_the_wire_format():
    """Pulumi sends numbers as floats; 8443.0 and 8443 are the same manifest."""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "n"},
           "spec": {"replicas": 3, "template": {"spec": {"containers": [{"ports": [{"containerPort": 8443}]}]}}}}
    wire = json.loads(json.dumps(dep).replace("8443", "8443.0").replace(": 3", ": 3.0"))
    assert isinstance(wire["spec"]["replicas"], float)
    assert kp.KubeProvider().diff("id", props(wire), props(dep)).changes is False
    cleaned = kp.clean(wire)
    assert cleaned == dep and type(cleaned["spec"]["replicas"]) is int
    assert kp.clean({"x": True, "y": 0.5}) == {"x": True, "y": 0.5}


@pytest.mark.parametrize(
    "change, replace",
    [
        (lambda m: m["metadata"]["labels"].update(a="2"), False),
        (lambda m: m["metadata"]["labels"].pop("a"), False),
        (lambda m: m["metadata"].update(name="other"), True),
        (lambda m: m.update(kind="ConfigMap"), True),
        (lambda m: m["metadata"].update(namespace="ns"), True),
    ],
)
def test_diff_changes_and_replacements(change, replace):
    new = copy.deepcopy(NS)
    change(new)
    d = kp.KubeProvider().diff("id", props(NS), props(new))
    assert d.changes is True
    assert (d.replaces == ["manifest"]) is replace


def test_diff_version_bump_in_same_group_updates_in_place():
    old = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "n"}}
    new = {**old, "apiVersion": "autoscaling/v2"}
    d = kp.KubeProvider().diff("id", props(old), props(new))
    assert d.changes is True and not d.replaces  # replacing would delete the very object just applied


def test_diff_immutable_field_deletes_then_recreates():
    sc = render.storage_class(load_province(PROVINCE).datacenter.storage_classes[0])
    changed = copy.deepcopy(sc)
    changed["parameters"]["replication"] = "2"
    d = kp.KubeProvider().diff("id", props(sc), props(changed))
    assert d.changes and d.replaces == ["manifest"] and d.delete_before_replace is True
    relabelled = copy.deepcopy(sc)
    relabelled["metadata"]["labels"]["x"] = "y"
    d = kp.KubeProvider().diff("id", props(sc), props(relabelled))
    assert d.changes and not d.replaces
    # a PVC is never replaced (that would drop its data): the API's refusal is reported instead
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p", "namespace": "n"},
           "spec": {"storageClassName": "a"}}
    assert not kp.KubeProvider().diff("id", props(pvc), props({**pvc, "spec": {"storageClassName": "b"}})).replaces


def test_diff_kubeconfig_path_change_reapplies_and_unknowns_are_changes():
    p = kp.KubeProvider()
    assert p.diff("id", props(NS, "/a"), props(NS, "/b")).changes is True
    assert p.diff("id", props(NS), props(kp._UNKNOWN)).changes is True


def test_check_reports_bad_inputs():
    p = kp.KubeProvider()
    assert p.check({}, props(NS)).failures == []
    bad = p.check({}, {"manifest": {"kind": "Namespace", "metadata": {}}, "kubeconfig": ""}).failures
    reasons = " | ".join(f.reason for f in bad)
    assert "apiVersion" in reasons and "metadata.name" in reasons and "kubeconfig" in reasons


def test_projection_keeps_only_managed_fields():
    want = {"metadata": {"name": "n", "labels": {"a": "1"}}, "spec": {"ports": [{"port": 80}], "gone": 1}}
    live = {"metadata": {"name": "n", "uid": "u", "labels": {"a": "1", "kubernetes.io/metadata.name": "n"}},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"}, "status": {}}
    assert kp.project(want, live) == {"metadata": {"name": "n", "labels": {"a": "1"}}, "spec": {"ports": [{"port": 80}]}}
    live["metadata"]["labels"]["a"] = "changed"
    assert kp.project(want, live)["metadata"]["labels"] == {"a": "changed"}


def test_deployment_ready_logic():
    d = {"metadata": {"generation": 2}, "spec": {"replicas": 3},
         "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
                    "availableReplicas": 3}}
    assert kp.deployment_ready(d)[0]
    for key, value in (("observedGeneration", 1), ("availableReplicas", 2), ("updatedReplicas", 2),
                       ("unavailableReplicas", 1), ("replicas", 4)):
        broken = copy.deepcopy(d)
        broken["status"][key] = value
        ok, summary = kp.deployment_ready(broken)
        assert not ok, key
        assert "available" in summary


def test_provider_pickles_by_reference():
    """dill must pickle the provider as a reference to this importable module, not by value."""
    raw = base64.b64decode(serialize_provider(kp.KubeProvider()))
    assert b"infra.k8s.provider" in raw and len(raw) < 200
    assert isinstance(dill.loads(raw), kp.KubeProvider)


def test_missing_kubeconfig_says_how_to_fix(tmp_path):
    with pytest.raises(kp.KubeError, match="dcops lab up"):
        kp.KubeProvider().create(props(NS, str(tmp_path / "nope")))


def test_object_ids():
    assert kp.object_id(NS) == "v1/Namespace/demo"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "n"}}
    assert kp.object_id(dep) == "apps/v1/Deployment/n/x"


def _kubeconfig(tmp_path: Path, cluster: dict, user: dict) -> Path:
    p = tmp_path / "kubeconfig"
    p.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))
    return p


def test_plain_client_only_for_plain_kubeconfigs(tmp_path):
    """Certificates/token: our small client; exec plugins and the like: the kubernetes package."""
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    plain = kp.PlainClient.from_kubeconfig(_kubeconfig(
        tmp_path, {"server": "https://127.0.0.1:6443/", "insecure-skip-tls-verify": True}, {"tokenFile": str(tok)}))
    assert isinstance(plain, kp.PlainClient)
    assert plain.host == "https://127.0.0.1:6443" and plain.token == "s3cret"
    assert kp._host(plain) == "https://127.0.0.1:6443"
    execs = _kubeconfig(tmp_path, {"server": "https://127.0.0.1:6443"},
                        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "get-token"}})
    assert kp.PlainClient.from_kubeconfig(execs) is None
    bad_ca = _kubeconfig(tmp_path, {"server": "https://127.0.0.1:6443", "certificate-authority": "missing-ca.crt"}, {})
    with pytest.raises(kp.KubeError, match="missing-ca.crt"):
        kp.PlainClient.from_kubeconfig(bad_ca)


def test_trace_records_each_call_only_when_asked(tmp_path, monkeypatch):
    trace = tmp_path / "trace.jsonl"
    kp.KubeProvider().diff("id", props(NS), props(NS))
    assert not trace.exists()
    monkeypatch.setenv(kp.TRACE_ENV, str(trace))
    kp.KubeProvider().diff("id", props(NS), props(NS))
    with pytest.raises(kp.KubeError):
        kp.KubeProvider().create(props(NS, str(tmp_path / "nope")))
    recs = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["op"], r["object"]) for r in recs] == [("diff", "Namespace demo"), ("create", "Namespace demo")]
    assert recs[1]["error"] == "KubeError" and all(r["dt"] >= 0 for r in recs)


# --------------------------------------------------------------------------- a real API server (the lab)


def _one_cluster_province(tmp_path: Path) -> Path:
    data = yaml.safe_load(PROVINCE.read_text(encoding="utf-8"))
    data["datacenter"]["clusters"] = [c for c in data["datacenter"]["clusters"] if c["id"] == "primary"]
    data["datacenter"]["backup"]["target_cluster"] = "primary"
    for p in data["platforms"]:
        p["cluster"] = "primary"
    path = tmp_path / "province-provider.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_province(path)
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from infra.lab import controlplane as cp
    from test_lab_controlplane import dcops

    try:
        cp.check_tools()
    except ToolMissing as e:
        pytest.fail(str(e))
    province = _one_cluster_province(tmp_path_factory.mktemp("province"))
    name = "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    r = dcops("lab", "up", "--name", name, "--no-hosts", "--province", str(province))
    try:
        assert r.returncode == 0, f"lab up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        yield {"kubeconfig": str(cp.kubeconfig_path(name, "primary")), "model": load_province(province)}
    finally:
        dcops("lab", "down", "--name", name)
        assert not lab_dir(name).exists()


def _live(kubeconfig: str, manifest: dict) -> dict | None:
    return kp.get(kp._client(kubeconfig), manifest)


@pytest.mark.lab
def test_lifecycle_against_a_real_api(cluster):
    kc = cluster["kubeconfig"]
    p = kp.KubeProvider()
    ns_name = "tprov-" + "".join(random.choices(string.ascii_lowercase, k=4))
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": ns_name, "labels": {"app.kubernetes.io/managed-by": "dcops", "x": "1", "y": "2"}}}

    # create: server-side apply; ids and uid out
    created = p.create(props(ns, kc))
    assert created.id == f"v1/Namespace/{ns_name}"
    live = _live(kc, ns)
    assert created.outs["uid"] == live["metadata"]["uid"]
    assert any(m["manager"] == "dcops" and m["operation"] == "Apply" for m in live["metadata"]["managedFields"])

    # read right after: exactly our fields, so no diff
    read = p.read(created.id, created.outs)
    assert read.outs["manifest"] == ns
    assert p.diff(created.id, read.outs, props(ns, kc)).changes is False

    # a label dropped from the manifest is removed from the live object (apply semantics)
    smaller = copy.deepcopy(ns)
    del smaller["metadata"]["labels"]["y"]
    p.update(created.id, created.outs, props(smaller, kc))
    assert "y" not in _live(kc, ns)["metadata"]["labels"]

    # drift made outside Pulumi shows up in refresh and a diff, and update puts it back
    api = kp._client(kc)
    kp._call(api, "PATCH", f"/api/v1/namespaces/{ns_name}", body={"metadata": {"labels": {"x": "drifted"}}},
             content_type="application/merge-patch+json")
    drifted = p.read(created.id, props(smaller, kc))
    assert drifted.outs["manifest"]["metadata"]["labels"]["x"] == "drifted"
    assert p.diff(created.id, drifted.outs, props(smaller, kc)).changes is True
    p.update(created.id, drifted.outs, props(smaller, kc))
    assert _live(kc, ns)["metadata"]["labels"]["x"] == "1"

    # a real Deployment from the renderer becomes Ready on the kwok nodes of its segment
    dep = copy.deepcopy(render.render_cluster(cluster["model"], "primary").platforms["lgsp"].deployment)
    dep["metadata"]["namespace"] = ns_name
    dep["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    t0 = time.monotonic()
    made = p.create(props(dep, kc, await_ready=True, ready_timeout=180))
    live_dep = _live(kc, dep)
    assert kp.deployment_ready(live_dep)[0], kp.deployment_ready(live_dep)[1]
    assert time.monotonic() - t0 < 180
    assert p.diff(made.id, p.read(made.id, made.outs).outs, props(dep, kc)).changes is False

    # one that cannot be scheduled fails with a clear error after its timeout
    stuck = copy.deepcopy(dep)
    stuck["metadata"]["name"] = "stuck"
    stuck["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "stuck"}
    stuck["spec"]["template"]["metadata"]["labels"] = {"app.kubernetes.io/name": "stuck"}
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"dcops.gov.vn/segment": "nowhere"}
    with pytest.raises(kp.KubeError, match=r"not Ready after 5s: 0/\d+ available"):
        p.create(props(stuck, kc, await_ready=True, ready_timeout=5))

    # delete waits until gone, tolerates gone objects; read of a gone object says so
    p.delete(made.id, props(dep, kc))
    assert _live(kc, dep) is None
    p.delete("x", props(stuck, kc, ready_timeout=60))
    p.delete(created.id, props(ns, kc, ready_timeout=120))
    assert _live(kc, ns) is None
    p.delete(created.id, props(ns, kc))  # 404: fine
    assert p.read(created.id, props(ns, kc)).id == ""
