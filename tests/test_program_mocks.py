"""The Pulumi program under Pulumi's mocks: what it declares for a province.

Expectations are computed here from the model, independently of
``infra.render.k8s``; the program's registrations (the inputs of every typed
``pulumi_kubernetes`` resource, less the Pulumi annotations) are compared with them.
Each object must be its kind's typed resource (``kubernetes:apps/v1:Deployment``...),
on the explicit provider of its cluster (kubeconfig path and context from the stack's
environment, server-side apply), applied as field manager ``dcops``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pulumi
import pytest
import yaml

from infra import program
from infra.k8s import FIELD_MANAGER, KINDS, PULUMI_ANNOTATIONS
from infra.paths import REPO
from infra.render import k8s as render
from infra.validate import ProvinceError, load_province

LAB = REPO / "stacks" / "province-lab.yaml"
PROVIDER_TYPE = "pulumi:providers:kubernetes"
COMPONENT_TYPES = {"dcops:index:Cluster", "dcops:index:NetworkSegment", "dcops:index:Storage", "dcops:index:Platform",
                   "dcops:index:DRCopy"}
PSA_MODES = ("enforce", "audit", "warn")


def type_token(api_version: str, kind: str) -> str:
    """The pulumi-kubernetes type token of a kind: ``kubernetes:<group or core>/<version>:<Kind>``."""
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{kind}"


KUBE_TYPES = {type_token(a, k) for a, k in KINDS}


def clean(value):
    """Pulumi's wire format back to plain values: integral floats to ints (ports, replicas...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        outs = dict(args.inputs)
        if args.typ in KUBE_TYPES:
            outs["metadata"] = {**outs.get("metadata", {}), "uid": f"uid-{args.name}"}
        return [f"{args.name}-id", outs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def registered(self) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ != "pulumi:pulumi:Stack"]


def environment(kubeconfigs: dict[str, str], contexts: dict[str, str] | None = None) -> dict:
    """A stack environment (``dcops:environment``, inline) with these admin kubeconfigs and contexts."""
    contexts = contexts or {}
    return {
        "kind": "lab",
        "backend": {"url": "file:///srv/pulumi-state", "secrets_provider": "passphrase",
                    "passphrase": {"file": "/srv/pulumi-passphrase"}},
        "clusters": {
            c: {"admin": {"kubeconfig": kc, **({"context": contexts[c]} if c in contexts else {})},
                "checks": {"kubeconfig": kc.replace(".kubeconfig", "-auditor.kubeconfig")}}
            for c, kc in kubeconfigs.items()
        },
        "wan": {"user": "dcops-ops", "identity_file": "/srv/id_ed25519", "known_hosts": "/srv/known_hosts"},
        "prometheus": {"url": "https://prometheus.example.gov.vn:9090"},
    }


def run_program(config: dict[str, str]) -> tuple[Recorder, dict]:
    rec = Recorder()
    pulumi.runtime.set_mocks(rec, project="dcops", stack="lab", preview=False)
    pulumi.runtime.set_all_config(config)
    result: dict = {}

    @pulumi.runtime.test
    def run():
        result["outputs"] = program.main()

    run()
    return rec, result["outputs"]


KUBECONFIGS = {"primary": "/srv/kube/primary.kubeconfig", "dr": "/srv/kube/dr.kubeconfig"}
CONTEXTS = {"dr": "ttdl-dr-admin"}


def split_annotations(manifest: dict) -> tuple[dict, dict]:
    """(the manifest without Pulumi's annotations, those annotations)."""
    m = copy.deepcopy(manifest)
    ann = m.get("metadata", {}).get("annotations", {})
    ours = {k: ann.pop(k) for k in list(ann) if k in PULUMI_ANNOTATIONS}
    if not ann and "annotations" in m.get("metadata", {}):
        del m["metadata"]["annotations"]
    return m, ours


@pytest.fixture(scope="module")
def model():
    return load_province(LAB)


@pytest.fixture(scope="module")
def run(model):
    rec, outputs = run_program({
        "dcops:province": "stacks/province-lab.yaml",
        "dcops:environment": json.dumps(environment(KUBECONFIGS, CONTEXTS)),
    })
    objects: dict[tuple[str, str], dict] = {}  # (cluster, Kind/ns/name) -> manifest
    providers: dict[str, set[str]] = {}  # cluster -> provider references its objects use
    pulumi_annotations: dict[tuple[str, str], dict] = {}
    for r in rec.registered():
        if r.typ not in KUBE_TYPES:
            continue
        cluster = r.name.split("/", 1)[0]
        m, ours = split_annotations(clean(r.inputs))
        assert r.typ == type_token(m["apiVersion"], m["kind"]), f"{r.name}: not its kind's typed resource ({r.typ})"
        md = m["metadata"]
        key = f"{m['kind']}/{md['namespace']}/{md['name']}" if md.get("namespace") else f"{m['kind']}/{md['name']}"
        assert r.name == f"{cluster}/{key}"
        assert (cluster, key) not in objects, f"declared twice: {r.name}"
        objects[(cluster, key)] = m
        pulumi_annotations[(cluster, key)] = ours
        providers.setdefault(cluster, set()).add(r.provider)
    return rec, outputs, objects, providers, pulumi_annotations


def of_kind(objects, kind, cluster=None, namespace=None) -> list[dict]:
    return [
        m for (c, _), m in objects.items()
        if m["kind"] == kind and (cluster is None or c == cluster)
        and (namespace is None or m["metadata"].get("namespace") == namespace)
    ]


def one(objects, cluster, key) -> dict:
    assert (cluster, key) in objects, f"{cluster}: {key} was not declared"
    return objects[(cluster, key)]


# ------------------------------------------------------------------ quantities (independent of the renderer)

_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def qty(s: str) -> float:
    """A Kubernetes quantity as a number (cpu in cores, bytes for memory/storage)."""
    s = str(s)
    for suffix, f in _BIN.items():
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * f
    if s.endswith("m"):
        return float(s[:-1]) / 1000
    return float(s)


# ------------------------------------------------------------------ what was declared at all


def test_declares_exactly_the_rendered_objects(model, run):
    """The program declares every rendered object, unchanged, and nothing else (the schema test covers these)."""
    rec, _, objects, _, _ = run
    expected = {
        (cid, render.object_key(o)): o for cid, objs in render.render_province(model).items() for o in objs.objects()
    }
    assert set(objects) == set(expected)
    for key, m in objects.items():
        assert m == expected[key], key
    types = {r.typ for r in rec.registered()}
    assert types - KUBE_TYPES == COMPONENT_TYPES | {PROVIDER_TYPE}
    # components: one Cluster and one Storage per cluster, one Platform per platform
    names = lambda t: sorted(r.name for r in rec.registered() if r.typ == t)  # noqa: E731
    assert names("dcops:index:Cluster") == sorted(c.id for c in model.datacenter.clusters)
    assert names("dcops:index:Storage") == sorted(c.id for c in model.datacenter.clusters)
    assert names("dcops:index:Platform") == sorted(p.id for p in model.platforms)
    assert names("dcops:index:NetworkSegment") == sorted({f"{p.cluster}/{p.segment}" for p in model.platforms})
    # one DRCopy per warm or cold platform, on its DR cluster
    assert names("dcops:index:DRCopy") == sorted(f"{model.dr_cluster_of(p.id)}/{p.id}" for p in model.platforms
                                                 if p.dr.mode != "none")
    assert names("dcops:index:DRCopy"), "the lab province has warm and cold platforms"


def test_one_explicit_provider_per_cluster(model, run):
    """Each cluster's objects go through that cluster's own provider: its kubeconfig (a path, never file
    contents) and context from the stack's environment, server-side apply on."""
    rec, _, _, providers, _ = run
    provs = {r.name: r for r in rec.registered() if r.typ == PROVIDER_TYPE}
    assert set(provs) == {c.id for c in model.datacenter.clusters}
    for cid, p in provs.items():
        assert p.inputs["kubeconfig"] == KUBECONFIGS[cid]
        assert p.inputs.get("context") == CONTEXTS.get(cid)
        assert str(p.inputs["enableServerSideApply"]).lower() == "true"
        # every object of the cluster, and only those, use it
        (ref,) = providers[cid]
        assert ref.startswith("urn:") and f"{PROVIDER_TYPE}::{cid}::" in ref, ref


def test_applied_as_field_manager_dcops_with_conflicts_forced(run):
    _, _, objects, _, pulumi_annotations = run
    assert set(pulumi_annotations) == set(objects)
    for key, ours in pulumi_annotations.items():
        want = {"pulumi.com/patchFieldManager": FIELD_MANAGER, "pulumi.com/patchForce": "true"}
        if objects[key]["kind"] == "Service":  # the Deployment's await covers its pods (infra.k8s.NOT_AWAITED)
            want["pulumi.com/skipAwait"] = "true"
        assert ours == want, key


def test_await_ready_false_skips_the_providers_await(tmp_path):
    rec, _ = run_program({
        "dcops:province": str(LAB), "dcops:awaitReady": "false",
        "dcops:environment": json.dumps(environment(KUBECONFIGS)),
    })
    kube = [r for r in rec.registered() if r.typ in KUBE_TYPES]
    assert kube and all(r.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true" for r in kube)


def test_every_kind_the_renderer_makes_has_a_typed_class(model):
    kinds = {(o["apiVersion"], o["kind"]) for objs in render.render_province(model).values() for o in objs.objects()}
    assert kinds <= set(KINDS), sorted(kinds - set(KINDS))
    from infra.k8s import UnknownKind, resource_class

    with pytest.raises(UnknownKind, match="CronJob"):
        resource_class({"apiVersion": "batch/v1", "kind": "CronJob"})


# ------------------------------------------------------------------ isolation


def test_every_platform_namespace_has_default_deny(model, run):
    _, _, objects, _, _ = run
    for p in model.platforms:
        pol = one(objects, p.cluster, f"NetworkPolicy/{p.id}/default-deny")
        assert pol["spec"]["podSelector"] == {}
        assert sorted(pol["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        assert not pol["spec"].get("ingress") and not pol["spec"].get("egress"), "default-deny must have no rules"
    # and no namespace exists without one
    for (c, _), ns in [(k, m) for k, m in objects.items() if m["kind"] == "Namespace"]:
        assert (c, f"NetworkPolicy/{ns['metadata']['name']}/default-deny") in objects


def expected_flows(model, dr_copies: bool = True) -> set[tuple]:
    """(cluster, namespace, direction, peer, protocol, port) for every flow the model allows."""
    seg = {s.id: s for s in model.datacenter.segments}
    mgmt = next(s for s in model.datacenter.segments if s.zone.value == "management")
    plat = {p.id: p for p in model.platforms}
    flows: set[tuple] = set()

    def peer(other, here):
        return f"ns:{other.id}" if other.cluster == here.cluster else f"cidr:{seg[other.segment].cidr}"

    for p in model.platforms:
        flows |= {(p.cluster, p.id, "egress", "dns", proto, 53) for proto in ("UDP", "TCP")}
        flows |= {(p.cluster, p.id, "ingress", f"cidr:{mgmt.cidr}", x.protocol, x.port) for x in p.ports}
        for dep in p.depends_on:
            b = plat[dep]
            for x in b.ports:
                flows.add((p.cluster, p.id, "egress", peer(b, p), x.protocol, x.port))
                flows.add((b.cluster, b.id, "ingress", peer(p, b), x.protocol, x.port))
        # LGSP is the door: its own links, and another platform's declared exceptions, nothing else
        direct = p.national if p.kind == "lgsp" else [x.endpoint for x in p.national_exceptions]
        for nat_id in direct:
            nat = next(n for n in model.national_endpoints if n.id == nat_id)
            flows |= {(p.cluster, p.id, "egress", f"cidr:{nat.cidr}", "TCP", port) for port in nat.ports}
        for s in model.wan.sites:
            if p.id in s.reach:
                flows |= {(p.cluster, p.id, "ingress", f"cidr:{s.lan}", x.protocol, x.port) for x in p.ports}
    for p in model.platforms if dr_copies else []:
        # a warm or cold platform's copy on its DR cluster allows what it would allow running there
        dr = model.dr_cluster_of(p.id)
        if dr:
            flows |= {f for f in expected_flows(model.placed({p.id: dr}), dr_copies=False) if f[:2] == (dr, p.id)}
    return flows


def _peer(peer: dict) -> str:
    if set(peer) == {"ipBlock"} and set(peer["ipBlock"]) == {"cidr"}:
        return f"cidr:{peer['ipBlock']['cidr']}"
    ns_sel = peer.get("namespaceSelector", {}).get("matchLabels", {})
    if set(peer) == {"namespaceSelector"} and set(ns_sel) == {"kubernetes.io/metadata.name"} and \
            set(peer["namespaceSelector"]) == {"matchLabels"}:
        return f"ns:{ns_sel['kubernetes.io/metadata.name']}"
    if peer == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}:
        return "dns"
    return "OTHER:" + json.dumps(peer, sort_keys=True)


def declared_flows(objects) -> set[tuple]:
    """The flows the declared NetworkPolicies allow.  Anything broader than a
    (peer, port) pair (a rule without peers or ports, a pod selector) shows up as
    an 'ANY'/'OTHER' entry, which no expectation contains."""
    flows: set[tuple] = set()
    for (cluster, _), pol in objects.items():
        if pol["kind"] != "NetworkPolicy":
            continue
        ns, spec = pol["metadata"]["namespace"], pol["spec"]
        if spec.get("podSelector") != {}:
            flows.add((cluster, ns, "SELECTOR", json.dumps(spec.get("podSelector")), "", 0))
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            rules = spec.get(direction) or []
            if rules:
                assert direction.capitalize() in spec["policyTypes"], pol
            for rule in rules:
                peers = [_peer(x) for x in rule.get(peers_key) or []] or ["ANY"]
                ports = [(x.get("protocol", "TCP"), x.get("port", 0)) for x in rule.get("ports") or []] or [("ANY", 0)]
                flows |= {(cluster, ns, direction, pe, proto, port) for pe in peers for proto, port in ports}
    return flows


def test_allow_rules_equal_the_dependency_graph(model, run):
    _, _, objects, _, _ = run
    want, got = expected_flows(model), declared_flows(objects)
    assert got - want == set(), f"allowed but not in the model: {sorted(got - want)}"
    assert want - got == set(), f"in the model but not allowed: {sorted(want - got)}"
    # The dependency edges alone: namespace-to-namespace egress equals depends_on on the same cluster.
    plat = {p.id: p for p in model.platforms}
    same_cluster_edges = {(p.id, d) for p in model.platforms for d in p.depends_on if plat[d].cluster == p.cluster}
    assert {(ns, pe[3:]) for (_, ns, d, pe, _, _) in got if d == "egress" and pe.startswith("ns:")} == same_cluster_edges
    # The lab has a cross-cluster edge (lris on dr -> lgsp on primary); it must be an ipBlock, not a namespace.
    assert ("dr", "lris", "egress", "cidr:10.10.3.0/24", "TCP", 8443) in got
    assert ("primary", "lgsp", "ingress", "ns:lris", "TCP", 8443) not in got


def test_flow_comparison_catches_an_extra_rule(model, run):
    """The check above can fail: one extra peer or an open rule is seen."""
    _, _, objects, _, _ = run
    tampered = copy.deepcopy(objects)
    pol = tampered[("primary", "NetworkPolicy/dvc/allow-to-lgsp")]  # dvc does not depend on eoffice
    pol["spec"]["egress"][0]["to"].append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "eoffice"}}})
    assert declared_flows(tampered) - expected_flows(model) == {("primary", "dvc", "egress", "ns:eoffice", "TCP", 8443)}
    pol["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 22}]})
    assert ("primary", "dvc", "egress", "ANY", "TCP", 22) in declared_flows(tampered)
    del tampered[("primary", "NetworkPolicy/lgsp/allow-from-ioc")]
    assert ("primary", "lgsp", "ingress", "ns:ioc", "TCP", 8443) in expected_flows(model) - declared_flows(tampered)


# ------------------------------------------------------------------ namespaces, quotas, workloads


def test_namespace_labels(model, run):
    _, _, objects, _, _ = run
    seg = {s.id: s for s in model.datacenter.segments}
    for p in model.platforms:
        ns = one(objects, p.cluster, f"Namespace/{p.id}")
        labels = ns["metadata"]["labels"]
        version = "v" + model.cluster_by_id[p.cluster].kubernetes_version
        assert labels["dcops.gov.vn/segment"] == p.segment
        assert labels["dcops.gov.vn/zone"] == seg[p.segment].zone.value
        assert labels["dcops.gov.vn/security-level"] == str(p.security_level)
        assert labels["dcops.gov.vn/platform"] == p.id
        for mode in PSA_MODES:
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == version == "v1.34"
        # Vietnamese names round-trip unchanged
        assert ns["metadata"]["annotations"]["dcops.gov.vn/name"] == p.name


def test_quota_and_limits(model, run):
    _, _, objects, _, _ = run
    for p in model.platforms:
        hard = one(objects, p.cluster, f"ResourceQuota/{p.id}/platform-quota")["spec"]["hard"]
        pods = p.replicas + 1 + math.ceil(p.replicas * 0.5)  # replicas + rollout surge + 50% headroom
        assert int(hard["pods"]) == pods
        for kind in ("requests", "limits"):
            assert qty(hard[f"{kind}.cpu"]) == pytest.approx(pods * p.resources.cpu_millicores / 1000)
            assert qty(hard[f"{kind}.memory"]) == pods * p.resources.memory_mib * 2**20
        assert qty(hard["requests.cpu"]) >= p.replicas * p.resources.cpu_millicores / 1000
        # a per-replica volume is claimed by every pod the quota allows; a shared one once
        claims = [(v, pods if v.per_replica else 1) for v in p.storage]
        assert int(hard["persistentvolumeclaims"]) == sum(n for _, n in claims)
        assert qty(hard["requests.storage"]) == sum(v.size_gib * n for v, n in claims) * 2**30
        exposure = model.cluster_by_id[p.cluster].exposure
        assert hard["services.nodeports"] == "0"
        assert hard["services.loadbalancers"] == ("1" if exposure and exposure.method == "loadbalancer" else "0")
        lr = one(objects, p.cluster, f"LimitRange/{p.id}/platform-limits")["spec"]["limits"][0]
        assert lr["type"] == "Container"
        for key in ("default", "defaultRequest"):
            assert qty(lr[key]["cpu"]) == pytest.approx(p.resources.cpu_millicores / 1000)
            assert qty(lr[key]["memory"]) == p.resources.memory_mib * 2**20


def test_deployment_and_service(model, run):
    _, _, objects, _, _ = run
    for p in model.platforms:
        kind = "StatefulSet" if any(v.per_replica for v in p.storage) else "Deployment"
        d = one(objects, p.cluster, f"{kind}/{p.id}/{p.id}")
        spec = d["spec"]
        assert spec["replicas"] == p.replicas
        pod = spec["template"]["spec"]
        (c,) = pod["containers"]
        assert c["image"] == p.image
        assert qty(c["resources"]["requests"]["cpu"]) == pytest.approx(p.resources.cpu_millicores / 1000)
        assert qty(c["resources"]["limits"]["memory"]) == p.resources.memory_mib * 2**20
        assert [(x["containerPort"], x["protocol"]) for x in c["ports"]] == [(x.port, x.protocol) for x in p.ports]
        # Pod Security "restricted"
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        # scheduled on the node pools of its segment, tolerating exactly their taints
        pools = [n for n in model.cluster_by_id[p.cluster].node_pools if n.segment == p.segment]
        assert pools, p.id
        assert pod["nodeSelector"] == {"dcops.gov.vn/segment": p.segment}
        want_tol = {(t.key, t.value, t.effect) for n in pools for t in n.taints}
        assert {(t["key"], t.get("value", ""), t["effect"]) for t in pod.get("tolerations", [])} == want_tol
        nodes = render.node_pool_nodes(model, p.cluster)
        assert any(n["metadata"]["labels"]["dcops.gov.vn/segment"] == p.segment for n in nodes)
        # every PVC mounted where the model says
        claims = {v["persistentVolumeClaim"]["claimName"]: v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        claims |= {t["metadata"]["name"]: t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert {cn: mounts[vn] for cn, vn in claims.items()} == {v.name: v.mount_path for v in p.storage}
        svc = one(objects, p.cluster, f"Service/{p.id}/{p.id}")
        assert [x["port"] for x in svc["spec"]["ports"]] == [x.port for x in p.ports]
        assert svc["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
        assert svc["metadata"]["annotations"]["dcops.gov.vn/address"] == p.address
        sa = one(objects, p.cluster, f"ServiceAccount/{p.id}/{p.id}")
        assert pod["serviceAccountName"] == sa["metadata"]["name"]


# ------------------------------------------------------------------ storage


PROVISIONERS = {"ceph-rbd": "rbd.csi.ceph.com", "cephfs": "cephfs.csi.ceph.com", "nfs": "nfs.csi.k8s.io",
                "local-path": "rancher.io/local-path"}


def test_storage_classes_and_claims(model, run):
    _, _, objects, _, _ = run
    for cluster in model.datacenter.clusters:
        classes = of_kind(objects, "StorageClass", cluster.id)
        on = [s for s in model.datacenter.storage_classes if cluster.id in s.clusters]
        assert on and sorted(c["metadata"]["name"] for c in classes) == sorted(s.name for s in on)
        for s in on:
            c = one(objects, cluster.id, f"StorageClass/{s.name}")
            assert c["provisioner"] == PROVISIONERS[s.backend]
            assert c["reclaimPolicy"] == s.reclaim_policy
            params, mine = c.get("parameters", {}), s.clusters[cluster.id]
            if s.backend in ("ceph-rbd", "cephfs"):  # ceph-csi: its cluster, pool or file system, its Secrets
                assert params["clusterID"] == mine.ceph_cluster_id
                assert params["pool" if s.backend == "ceph-rbd" else "fsName"] == (mine.pool or mine.fs_name)
                for role in ("provisioner", "controller-expand", "node-stage"):
                    assert params[f"csi.storage.k8s.io/{role}-secret-name"]
                    assert params[f"csi.storage.k8s.io/{role}-secret-namespace"]
            elif s.backend == "nfs":  # csi-driver-nfs refuses parameters it does not know
                assert params == {"server": mine.server, "share": mine.share}
                assert c.get("mountOptions", []) == mine.mount_options
            assert "replication" not in params  # no driver knows it
            assert c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == str(s.default).lower()
        # PVCs: one per shared storage entry of the cluster's platforms; per-replica ones are templates
        want = {(p.id, v.name, v.storage_class, v.size_gib) for p in model.platforms_on(cluster.id) for v in p.storage
                if not v.per_replica}
        warm = [p for p in model.platforms if p.dr.mode == "warm" and model.dr_cluster_of(p.id) == cluster.id]
        want |= {(p.id, v.name, v.storage_class, v.size_gib) for p in warm for v in p.storage if not v.per_replica}
        got = {
            (c["metadata"]["namespace"], c["metadata"]["name"], c["spec"]["storageClassName"],
             qty(c["spec"]["resources"]["requests"]["storage"]) / 2**30)
            for c in of_kind(objects, "PersistentVolumeClaim", cluster.id)
        }
        assert got == want
        templates = {(p.id, t["metadata"]["name"], t["spec"]["storageClassName"],
                      qty(t["spec"]["resources"]["requests"]["storage"]) / 2**30)
                     for p in model.platforms_on(cluster.id) for o in of_kind(objects, "StatefulSet", cluster.id)
                     if o["metadata"]["namespace"] == p.id for t in o["spec"]["volumeClaimTemplates"]}
        assert templates == {(p.id, v.name, v.storage_class, v.size_gib) for p in model.platforms_on(cluster.id)
                             for v in p.storage if v.per_replica}


# ------------------------------------------------------------------ RBAC


def test_rbac(model, run):
    _, _, objects, _, _ = run
    for cluster in model.datacenter.clusters:
        role = one(objects, cluster.id, "ClusterRole/dcops-auditor")
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
            if "" in rule["apiGroups"] or "*" in rule["apiGroups"]:
                assert "secrets" not in rule["resources"] and "*" not in rule["resources"], rule
    for p in model.platforms:
        ops = one(objects, p.cluster, f"RoleBinding/{p.id}/platform-operators")
        assert ops["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "platform-operator"}
        assert ops["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": f"dcops:{p.id}:operators"}]
        aud = one(objects, p.cluster, f"RoleBinding/{p.id}/dcops-auditors")
        assert aud["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "dcops-auditor"}
        assert aud["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "dcops:auditors"}]
        role = one(objects, p.cluster, f"Role/{p.id}/platform-operator")
        granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
        assert ("apps", "deployments") in granted
        # operators run their platform; they cannot loosen its isolation or budget
        for locked in (("networking.k8s.io", "networkpolicies"), ("", "resourcequotas"), ("", "limitranges"),
                       ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings")):
            assert locked not in granted
        assert all("*" not in rule["resources"] and "*" not in rule["verbs"] for rule in role["rules"])


# ------------------------------------------------------------------ outputs


def test_stack_outputs(model, run):
    _, outputs, objects, _, _ = run
    assert outputs["province"]["name"] == model.province.name
    for p in model.platforms:
        out = outputs["platforms"][p.id]
        assert out["cluster"] == p.cluster and out["namespace"] == p.id and out["replicas"] == p.replicas
        assert out["service"] == f"{p.id}.{p.id}.svc" and out["address"] == p.address
        assert [c["name"] for c in out["pvcs"]] == [v.name for v in p.storage if not v.per_replica]
    for c in model.datacenter.clusters:
        out = outputs["clusters"][c.id]
        assert out["namespaces"] == [p.id for p in model.platforms_on(c.id)]
        assert sorted(out["objects"]) == sorted(k for (cid, k) in objects if cid == c.id)
        assert out["kubeconfig"] == KUBECONFIGS[c.id]


# ------------------------------------------------------------------ bad input registers nothing


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "province-bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_invalid_model_raises_and_registers_nothing(tmp_path):
    data = yaml.safe_load(LAB.read_text(encoding="utf-8"))
    data["platforms"][0]["depends_on"].append("no-such-platform")
    data["datacenter"]["segments"][1]["cidr"] = data["datacenter"]["segments"][0]["cidr"]
    bad = _write(tmp_path, data)
    rec = Recorder()
    pulumi.runtime.set_mocks(rec, project="dcops", stack="lab", preview=False)
    pulumi.runtime.set_all_config({"dcops:province": str(bad), "dcops:environment": json.dumps(environment(KUBECONFIGS))})
    with pytest.raises(ProvinceError) as err:
        pulumi.runtime.test(program.main)()
    assert isinstance(err.value, pulumi.RunError)  # Pulumi prints the problems without a traceback
    paths = {p.path for p in err.value.problems}
    assert "platforms[0].depends_on[2]" in paths
    assert any("overlaps" in p.message for p in err.value.problems)
    assert rec.registered() == []


def test_unrenderable_model_registers_nothing(tmp_path):
    """A platform in a segment with no node pool on its cluster: the validator refuses it, the
    renderer refuses it too (defence in depth for models built without the validator), and the
    program registers nothing."""
    from infra.model import ProvinceFile
    from infra.validate import ProvinceError

    data = yaml.safe_load(LAB.read_text(encoding="utf-8"))
    lris = next(p for p in data["platforms"] if p["id"] == "lris")
    lris["segment"], lris["address"] = "data", "10.10.4.20"
    bad = _write(tmp_path, data)
    with pytest.raises(ProvinceError, match="no node pool in segment 'data'"):
        load_province(bad)
    with pytest.raises(render.RenderError, match="no node pool in segment 'data'"):
        render.render_province(ProvinceFile.model_validate(data))
    rec = Recorder()
    pulumi.runtime.set_mocks(rec, project="dcops", stack="lab", preview=False)
    pulumi.runtime.set_all_config({"dcops:province": str(bad), "dcops:environment": json.dumps(environment(KUBECONFIGS))})
    with pytest.raises(ProvinceError, match="no node pool in segment 'data'"):
        pulumi.runtime.test(program.main)()
    assert rec.registered() == []


# ------------------------------------------------------------------ every stack config of the repository


@pytest.mark.parametrize("stack", sorted((REPO / "stacks").glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_every_stack_config_runs(stack):
    """Each stack names a valid province, and the program declares exactly its rendered objects."""
    config = yaml.safe_load(stack.read_text(encoding="utf-8"))["config"]
    assert "dcops:province" in config
    model = load_province(REPO / config["dcops:province"])
    # The lab's stack gets its environment at `dcops lab up`; here a stand-in one.
    config.setdefault("dcops:environment",
                      environment({c.id: f"/srv/kube/{c.id}.kubeconfig" for c in model.datacenter.clusters}))
    rec, outputs = run_program({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    declared = sorted(r.name for r in rec.registered() if r.typ in KUBE_TYPES)
    expected = sorted(f"{cid}/{render.object_key(o)}" for cid, objs in render.render_province(model).items()
                      for o in objs.objects())
    assert declared == expected
    assert set(outputs["platforms"]) == {p.id for p in model.platforms}


def test_pulumi_project_file():
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == "dcops" and project["stackConfigDir"] == "stacks"
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": ".venv"}}
    # no `main`: Pulumi runs the project root's __main__.py, where `virtualenv: .venv` resolves
    assert "main" not in project
    assert "infra.program" in (REPO / "__main__.py").read_text(encoding="utf-8")
