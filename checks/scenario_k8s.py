"""Cluster scenarios (``checks/scenarios/cluster/<ID>.pass.yaml`` / ``.fail.yaml``).

A scenario is a list of steps that puts one platform namespace (``{ns}``) of a
cluster, provisioned as rendered, into a state: ``create`` an object,
``delete`` one, ``patch`` one (``merge``: JSON merge patch, ``json``: JSON
patch), ``etcd_put`` a raw value (lab only).  The same steps apply to a live
lab API (:func:`apply_live`) and to an in-memory :class:`Snapshot`
(:func:`apply_offline`), so a control is judged the same way on both.

:func:`provision_rendered` applies the rendered objects of a cluster
(server-side apply, the same objects the Pulumi program applies) and
:func:`restore_live` brings a cluster back to that state after a scenario.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import yaml

from infra.model import ProvinceFile
from infra.render import k8s as K

from .catalog import SCENARIOS
from .controls import cluster as C

Obj = dict[str, Any]

SCENARIO_DIR = SCENARIOS / "cluster"
FIELD_MANAGER = "dcops-scenario"

# kind -> (collection path template, snapshot attribute/per-ns key)
KINDS: dict[str, tuple[str, str]] = {
    "Namespace": ("/api/v1/namespaces", "namespaces"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", "networkpolicies"),
    "ResourceQuota": ("/api/v1/namespaces/{ns}/resourcequotas", "resourcequotas"),
    "LimitRange": ("/api/v1/namespaces/{ns}/limitranges", "limitranges"),
    "PersistentVolumeClaim": ("/api/v1/namespaces/{ns}/persistentvolumeclaims", "pvcs"),
    "Deployment": ("/apis/apps/v1/namespaces/{ns}/deployments", "deployments"),
    "StatefulSet": ("/apis/apps/v1/namespaces/{ns}/statefulsets", "statefulsets"),
    "Job": ("/apis/batch/v1/namespaces/{ns}/jobs", "jobs"),
    "CronJob": ("/apis/batch/v1/namespaces/{ns}/cronjobs", "cronjobs"),
    "Pod": ("/api/v1/namespaces/{ns}/pods", "pods"),
    "ServiceAccount": ("/api/v1/namespaces/{ns}/serviceaccounts", "serviceaccounts"),
    "Service": ("/api/v1/namespaces/{ns}/services", ""),
    "Secret": ("/api/v1/namespaces/{ns}/secrets", ""),
    "Role": ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", ""),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", "role_bindings"),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1/clusterroles", "cluster_roles"),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "cluster_role_bindings"),
    "StorageClass": ("/apis/storage.k8s.io/v1/storageclasses", ""),
    "PodDisruptionBudget": ("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", ""),
    "ValidatingAdmissionPolicy": ("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", ""),
    "ValidatingAdmissionPolicyBinding": ("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings", ""),
    "Gateway": ("/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/gateways", ""),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes", ""),
}


def scenario_path(control_id: str, kind: str) -> Path:
    return SCENARIO_DIR / f"{control_id}.{kind}.yaml"


def load(control_id: str, kind: str, ns: str) -> dict[str, Any]:
    text = scenario_path(control_id, kind).read_text(encoding="utf-8").replace("{ns}", ns)
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or "steps" not in data or "description" not in data:
        raise ValueError(f"{scenario_path(control_id, kind)}: needs 'description' and 'steps'")
    return data


def _path(kind: str, ns: str | None, name: str | None = None) -> str:
    base = KINDS[kind][0].format(ns=ns or "")
    return f"{base}/{name}" if name else base


# --------------------------------------------------------------------- live


def _check(status: int, out: Any, what: str, ok: tuple[int, ...] = (200, 201)) -> Any:
    if status not in ok:
        raise C.KubeError(f"{what}: HTTP {status}: {out.get('message') if isinstance(out, dict) else out}")
    return out


def ssa(kube: C.Kube, obj: Obj) -> Obj:
    """Server-side apply (force) of one object."""
    md = obj["metadata"]
    path = _path(obj["kind"], md.get("namespace"), md["name"]) + f"?fieldManager={FIELD_MANAGER}&force=true"
    status, out = kube.request("PATCH", path, obj, "application/apply-patch+yaml")
    return _check(status, out, f"apply {K.object_key(obj)}")


def provision_rendered(kube: C.Kube, pf: ProvinceFile, cluster: str) -> list[str]:
    """Apply every rendered object of ``cluster`` (what `pulumi up` would create)."""
    objs = K.render_cluster(pf, cluster).objects()
    for o in objs:
        ssa(kube, o)
    return [K.object_key(o) for o in objs]


def wait_pvcs_bound(kube: C.Kube, pf: ProvinceFile, cluster: str, timeout: float = 120.0) -> None:
    """The lab's volume provisioner plays the CSI driver; wait until every declared PVC is Bound
    (a StatefulSet's per-replica claims too) and every platform's workload has its replicas ready."""
    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for p in pf.platforms_on(cluster):
            names = [v.name for v in p.storage if not v.per_replica]
            names += [f"{v.name}-{p.id}-{i}" for v in p.storage if v.per_replica for i in range(p.replicas)]
            for name in names:
                obj = kube.get_or_none(_path("PersistentVolumeClaim", p.namespace, name))
                if not obj or (obj.get("status") or {}).get("phase") != "Bound":
                    pending.append(f"{p.namespace}/{name}")
            kind = "StatefulSet" if p.per_replica_storage else "Deployment"
            w = kube.get_or_none(_path(kind, p.namespace, p.id))
            if not w or ((w.get("status") or {}).get("readyReplicas") or 0) != p.replicas:
                pending.append(f"{kind}/{p.namespace}/{p.id} not ready")
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"PVCs not Bound after {timeout}s: {pending}")
        time.sleep(1)


def _etcd_put(ev: "C.Evidence", key: str, value: bytes) -> None:
    import base64

    C.etcd_request(ev, "POST", "/v3/kv/put", {"key": base64.b64encode(key.encode()).decode(),
                                              "value": base64.b64encode(value).decode()})


def _etcd_delete(ev: "C.Evidence", key: str) -> None:
    import base64

    C.etcd_request(ev, "POST", "/v3/kv/deleterange", {"key": base64.b64encode(key.encode()).decode()})


class OfflineOnly(ValueError):
    """A scenario step that only the offline snapshot can take (``apiserver_flag``)."""


def offline_only(scenario: dict[str, Any]) -> bool:
    return any("apiserver_flag" in step for step in scenario["steps"])


def apply_live(kube: C.Kube, etcd: "C.Evidence | None", cluster: str, scenario: dict[str, Any]) -> None:
    """Apply a scenario's steps to a live cluster. ``etcd``: the environment's etcd client of
    that cluster (only scenarios that plant a raw etcd value need it)."""
    for step in scenario["steps"]:
        (op, arg), = step.items()
        if op == "create":
            md = arg["metadata"]
            deadline = time.monotonic() + 20
            while True:
                status, out = kube.request("POST", _path(arg["kind"], md.get("namespace")), arg)
                # the quota admission works from a cache: a just-deleted quota may still count
                if status == 403 and "exceeded quota" in str(out) and time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                break
            _check(status, out, f"create {K.object_key(arg)}")
        elif op == "delete":
            status, out = kube.request("DELETE", _path(arg["kind"], arg.get("namespace"), arg["name"]))
            _check(status, out, f"delete {arg['kind']}/{arg['name']}", (200, 202))
        elif op == "patch":
            path = _path(arg["kind"], arg.get("namespace"), arg["name"]) + f"?fieldManager={FIELD_MANAGER}"
            if "merge" in arg:
                status, out = kube.request("PATCH", path, arg["merge"], "application/merge-patch+json")
            else:
                status, out = kube.request("PATCH", path, arg["json"], "application/json-patch+json")
            _check(status, out, f"patch {arg['kind']}/{arg['name']}")
        elif op == "etcd_put":
            if etcd is None:
                raise ValueError("this scenario writes into etcd: the environment gives no etcd client")
            _etcd_put(etcd, arg["key"], arg["value"].encode())
        elif op == "apiserver_flag":
            raise OfflineOnly(f"this scenario changes the API server's command line ({arg['name']}): it runs on "
                              "the rendered snapshot only (a live API server would have to be restarted)")
        else:
            raise ValueError(f"unknown scenario step {op!r}")


def undo_live(kube: C.Kube, etcd: "C.Evidence | None", pf: ProvinceFile, cluster: str, scenario: dict[str, Any]) -> None:
    """Remove what the scenario created, then re-apply the rendered objects."""
    for step in reversed(scenario["steps"]):
        (op, arg), = step.items()
        if op == "create":
            md = arg["metadata"]
            kube.request("DELETE", _path(arg["kind"], md.get("namespace"), md["name"]))
        elif op == "etcd_put" and etcd is not None:
            _etcd_delete(etcd, arg["key"])
    restore_live(kube, pf, cluster)
    wait_pvcs_bound(kube, pf, cluster)  # and the workloads ready again (DCOPS-K8S-013 counts ready replicas)


def restore_live(kube: C.Kube, pf: ProvinceFile, cluster: str) -> None:
    rendered = K.render_cluster(pf, cluster)
    for o in rendered.objects():
        if o["kind"] == "ClusterRole":
            # rules are an atomic list: replace the whole role
            live = kube.get_or_none(_path("ClusterRole", None, o["metadata"]["name"]))
            if live:
                body = copy.deepcopy(o)
                body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                status, out = kube.request("PUT", _path("ClusterRole", None, o["metadata"]["name"]), body)
                _check(status, out, "replace ClusterRole")
                continue
        ssa(kube, o)


# --------------------------------------------------------------------- offline


def rendered_snapshot(pf: ProvinceFile, cluster: str) -> C.Snapshot:
    """The snapshot a cluster provisioned exactly as rendered would give (PVCs Bound, default RBAC)."""
    r = K.render_cluster(pf, cluster)
    snap = C.Snapshot(cluster)
    for pid, po in r.platforms.items():
        ns = po.namespace_name
        snap.namespaces[ns] = copy.deepcopy(po.namespace)
        workload = copy.deepcopy(po.workload)
        replicas = workload["spec"]["replicas"]
        workload["status"] = {"replicas": replicas, "readyReplicas": replicas}
        pvcs = copy.deepcopy(po.pvcs)
        for t in workload["spec"].get("volumeClaimTemplates", []):  # what the StatefulSet controller makes
            for i in range(replicas):
                pvc = copy.deepcopy(t)
                pvc["metadata"] |= {"name": f"{t['metadata']['name']}-{pid}-{i}", "namespace": ns}
                pvcs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", **pvc})
        for x in pvcs:
            x["status"] = {"phase": "Bound"}
        kind = "statefulsets" if workload["kind"] == "StatefulSet" else "deployments"
        snap.per_ns[ns] = {
            "networkpolicies": copy.deepcopy(po.network_policies),
            "resourcequotas": [copy.deepcopy(po.resource_quota)],
            "limitranges": [copy.deepcopy(po.limit_range)],
            "deployments": [], "statefulsets": [], "daemonsets": [], "jobs": [], "cronjobs": [], "pods": [],
            kind: [workload],
            "pvcs": pvcs,
            "serviceaccounts": [copy.deepcopy(po.service_account)],
        }
        snap.role_bindings += [copy.deepcopy(po.operator_binding), copy.deepcopy(po.auditor_binding)]
    snap.cluster_roles = {K.AUDITOR_ROLE: copy.deepcopy(r.auditor_cluster_role), "cluster-admin": {"metadata": {"name": "cluster-admin"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}}
    snap.cluster_role_bindings = [{
        "kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}],
    }]
    snap.evidence_configured = True  # as if the environment named the control plane's evidence
    # the API server's command line as the environment's evidence gives it (like the lab's: loopback only)
    snap.apiserver_flags = ["--encryption-provider-config=/offline/encryption-config.yaml", "--bind-address=127.0.0.1"]
    snap.encryption_config = {"kind": "EncryptionConfiguration", "resources": [{"resources": ["secrets"], "providers": [{"secretbox": {"keys": [{"name": "key1"}]}}, {"identity": {}}]}]}
    snap.etcd_secrets = {}
    snap.etcd_namespaces = sorted(snap.namespaces)  # every platform namespace is stored in etcd
    return snap


def _merge(dst: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    dst = dst if isinstance(dst, dict) else {}
    for k, v in patch.items():
        if v is None:
            dst.pop(k, None)
        else:
            dst[k] = _merge(dst.get(k), v)
    return dst


def _json_patch(doc: Obj, ops: list[dict]) -> None:
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        cur: Any = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        last = parts[-1]
        if op["op"] == "add" and isinstance(cur, list):
            cur.append(copy.deepcopy(op["value"])) if last == "-" else cur.insert(int(last), copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            if isinstance(cur, list):
                cur[int(last)] = copy.deepcopy(op["value"])
            else:
                cur[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del cur[int(last) if isinstance(cur, list) else last]
        else:
            raise ValueError(f"JSON patch op {op['op']} not supported offline")


def _collection(snap: C.Snapshot, kind: str, ns: str | None) -> list[Obj] | dict[str, Obj]:
    key = KINDS[kind][1]
    if not key:
        return []  # kinds no control reads
    if key == "namespaces":
        return snap.namespaces
    if key in ("cluster_roles",):
        return snap.cluster_roles
    if key in ("cluster_role_bindings", "role_bindings"):
        return getattr(snap, key)
    return snap.per_ns.setdefault(ns or "", {}).setdefault(key, [])


def apply_offline(snap: C.Snapshot, scenario: dict[str, Any]) -> C.Snapshot:
    snap = copy.deepcopy(snap)
    for step in scenario["steps"]:
        (op, arg), = step.items()
        if op == "etcd_put":
            assert snap.etcd_secrets is not None
            snap.etcd_secrets[arg["key"]] = arg["value"].encode()[:64]
            continue
        if op == "apiserver_flag":
            flags = [f for f in (snap.apiserver_flags or []) if not f.startswith(arg["name"] + "=")]
            snap.apiserver_flags = flags + [f"{arg['name']}={arg['value']}"]
            continue
        kind = arg["kind"]
        md = arg.get("metadata") or {}
        ns = md.get("namespace") or arg.get("namespace")
        name = md.get("name") or arg.get("name")
        coll = _collection(snap, kind, ns)
        if op == "create":
            if kind == "Secret":
                snap.etcd_secrets = {**(snap.etcd_secrets or {}), f"/registry/secrets/{ns}/{name}": b"k8s:enc:secretbox:v1:key1:..."}
            elif isinstance(coll, dict):
                coll[name] = copy.deepcopy(arg)
            else:
                coll.append(copy.deepcopy(arg))
            continue
        if isinstance(coll, dict):
            target = coll.get(name)
        else:
            target = next((o for o in coll if o["metadata"]["name"] == name), None)
        if target is None:
            raise KeyError(f"{kind} {ns}/{name} not in the snapshot")
        if op == "delete":
            if isinstance(coll, dict):
                if kind == "Namespace":
                    coll[name] = None  # the controls see a missing namespace
                else:
                    coll.pop(name)
            else:
                coll.remove(target)
        elif op == "patch":
            if "merge" in arg:
                _merge(target, arg["merge"])
            else:
                _json_patch(target, arg["json"])
        else:
            raise ValueError(f"unknown scenario step {op!r}")
    return snap
