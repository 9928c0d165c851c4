"""The Kubernetes objects of the data integration center, rendered from the model.

This is the ONE place that turns a :class:`~infra.model.ProvinceFile` into
Kubernetes objects (plain ``dict``s: ``apiVersion``/``kind``/``metadata``/...).
The Pulumi program applies exactly these objects; benchmarks ``kubectl apply
--server-side`` them; checks compare the live clusters with them.  Change an
object here and every consumer changes with it.

Entry points::

    render_province(model)            -> {cluster id: ClusterObjects}
    render_cluster(model, cluster_id) -> ClusterObjects
    node_pool_nodes(model, cluster_id) -> [Node manifest without status]  (the lab creates them)
    object_key(obj)                   -> "Kind/namespace/name" or "Kind/name"

Objects per cluster (see :class:`ClusterObjects`):

- cluster-wide: one StorageClass per ``datacenter.storage_classes`` entry on the
  cluster (its driver's parameters there), the read-only ``dcops-auditor``
  ClusterRole (get/list/watch everything but Secrets) and a
  ValidatingAdmissionPolicy refusing Services with ``externalIPs``;
- per platform on the cluster (namespace = platform id): Namespace (segment,
  zone, security level, platform, Pod Security ``restricted``), its
  NetworkPolicies (default deny; DNS; scraping from the management segment; one
  allow per dependency edge in each direction; national endpoints (LGSP's, and
  declared exceptions: other platforms reach national systems by calling LGSP); the WAN sites
  that may reach it; the gateway's proxies), ServiceAccount, Role
  ``platform-operator`` + bindings, ResourceQuota, LimitRange, shared
  PersistentVolumeClaims, Service (LoadBalancer at the platform's address, or a
  Gateway + HTTPRoutes, when the cluster has ``exposure``), PodDisruptionBudget
  and the workload: a Deployment, or a StatefulSet (headless Service,
  volumeClaimTemplates) when a volume is ``per_replica``;
- per segment: a view grouping the namespaces and NetworkPolicies of the
  platforms that sit in it (the ``NetworkSegment`` Pulumi component).

Quantities are rendered in the API server's canonical form (``"1"`` not
``"1000m"``, ``"1Gi"`` not ``"1024Mi"``) so the live object reads back equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from ..model import RENDERER_MOUNTS, TMP_MOUNT, Cluster, Platform, ProvinceFile, StorageClass

Obj = dict[str, Any]

# --------------------------------------------------------------------- constants

DOMAIN = "dcops.gov.vn"
LABEL_SEGMENT = f"{DOMAIN}/segment"
LABEL_ZONE = f"{DOMAIN}/zone"
LABEL_LEVEL = f"{DOMAIN}/security-level"
LABEL_PLATFORM = f"{DOMAIN}/platform"
LABEL_CLUSTER = f"{DOMAIN}/cluster"
LABEL_POOL = f"{DOMAIN}/pool"
LABEL_NAME = "app.kubernetes.io/name"
ANNOT_NAME = f"{DOMAIN}/name"
ANNOT_NAME_EN = f"{DOMAIN}/name-en"
ANNOT_ADDRESS = f"{DOMAIN}/address"
ANNOT_NATIONAL_VIA = f"{DOMAIN}/national-via-lgsp"
"""On a platform's allow-to-<LGSP> (and LGSP's allow-from-<platform>): the national systems it uses through LGSP."""
ANNOT_NATIONAL_EXCEPTION = f"{DOMAIN}/national-exception"
"""On a non-LGSP platform's allow-national-<id>: the declared reason of that direct link."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "dcops"}
NS_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
PSA_LEVEL = "restricted"

AUDITOR_ROLE = "dcops-auditor"
AUDITORS_GROUP = "dcops:auditors"
OPERATOR_ROLE = "platform-operator"


def operators_group(platform_id: str) -> str:
    return f"dcops:{platform_id}:operators"


# Rollout and quota budget: a Deployment's rolling update adds SURGE_PODS pods at a
# time (maxUnavailable 0 keeps the SLO during a rollout; volumes are ReadWriteMany
# or absent, so the surge pod can always start); a Deployment holding a
# ReadWriteOnce volume (one replica) is recreated instead; a StatefulSet replaces
# one pod at a time. The quota allows the replicas, the surge and
# QUOTA_HEADROOM_PCT percent of the replicas on top (pods and per-replica claims).
SURGE_PODS = 1
QUOTA_HEADROOM_PCT = 50
RUN_AS_UID = 10001
TMP_SIZE = "256Mi"
EPHEMERAL_STORAGE = "512Mi"
"""Each container's ephemeral storage (its /tmp emptyDir and logs)."""

# Probes on the platform's health path.
READINESS_PERIOD, LIVENESS_PERIOD, STARTUP_PERIOD = 10, 20, 10
PROBE_TIMEOUT, PROBE_FAILURES = 5, 3

# Storage backends -> CSI provisioner, binding mode, expansion.
PROVISIONERS = {
    "ceph-rbd": "rbd.csi.ceph.com",
    "cephfs": "cephfs.csi.ceph.com",
    "nfs": "nfs.csi.k8s.io",
    "local-path": "rancher.io/local-path",
}
BINDING_MODES = {"local-path": "WaitForFirstConsumer"}  # others: Immediate
EXPANDABLE = {"ceph-rbd", "cephfs", "nfs"}
CEPH_SECRETS = {"ceph-rbd": ("ceph-csi-rbd", "csi-rbd"), "cephfs": ("ceph-csi-cephfs", "csi-cephfs")}
"""ceph-csi's default Secret namespace and name prefix per driver (its Helm charts')."""

# Exposure: MetalLB's annotations (v0.14+) and the Gateway API version.
METALLB_POOL = "metallb.io/address-pool"
METALLB_IPS = "metallb.io/loadBalancerIPs"
GATEWAY_API = "gateway.networking.k8s.io/v1"
EXTERNAL_IPS_POLICY = "dcops-deny-service-external-ips"
VAP_MIN_MINOR = 30
"""ValidatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) from Kubernetes 1.30."""


def tls_secret(platform_id: str) -> str:
    """The Secret holding a platform's certificate and key (the province's PKI makes it)."""
    return f"{platform_id}-tls"

# The auditors' ClusterRole: every API group read-only; the core group is listed
# resource by resource so that Secrets are NOT readable (RBAC only adds).
AUDITOR_CORE_RESOURCES = [
    "bindings", "componentstatuses", "configmaps", "endpoints", "events", "limitranges", "namespaces",
    "namespaces/status", "nodes", "nodes/status", "persistentvolumeclaims", "persistentvolumeclaims/status",
    "persistentvolumes", "persistentvolumes/status", "pods", "pods/log", "pods/status", "podtemplates",
    "replicationcontrollers", "replicationcontrollers/status", "resourcequotas", "resourcequotas/status",
    "serviceaccounts", "services", "services/status",
]
AUDITOR_GROUPS = [
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "coordination.k8s.io",
    "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io",
    "policy", "rbac.authorization.k8s.io", "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io",
]
AUDITOR_VELERO = ["schedules", "backupstoragelocations", "backups", "restores"]
"""Velero's objects the backup controls read (DCOPS-BAK-*); never downloadrequests, whose status
holds a signed URL to a backup's contents (Secrets included)."""
READ = ["get", "list", "watch"]
ALL = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


class RenderError(ValueError):
    """The model is valid but cannot be rendered (lists every problem)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) rendering Kubernetes objects:\n" + "\n".join(problems))


# --------------------------------------------------------------------- quantities


def cpu_qty(millicores: int) -> str:
    """Canonical CPU quantity: 500 -> "500m", 1000 -> "1"."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _binary_qty(value: int, units: list[tuple[str, int]]) -> str:
    if value == 0:
        return "0"
    for unit, factor in units:
        if value % factor == 0:
            return f"{value // factor}{unit}"
    raise AssertionError("unreachable")


def mem_qty(mib: int) -> str:
    """Canonical memory quantity from MiB: 512 -> "512Mi", 1024 -> "1Gi"."""
    return _binary_qty(mib, [("Ti", 1 << 20), ("Gi", 1 << 10), ("Mi", 1)])


def storage_qty(gib: int) -> str:
    """Canonical storage quantity from GiB: 20 -> "20Gi", 1024 -> "1Ti"."""
    return _binary_qty(gib, [("Pi", 1 << 20), ("Ti", 1 << 10), ("Gi", 1)])


def pod_budget(p: Platform) -> int:
    """Pods the quota allows: replicas + rollout surge + headroom."""
    return p.replicas + SURGE_PODS + math.ceil(p.replicas * QUOTA_HEADROOM_PCT / 100)


def access_mode(model: ProvinceFile, storage_class: str) -> str:
    return model.storage_class_by_name[storage_class].access_mode


# --------------------------------------------------------------------- result types


@dataclass(frozen=True)
class PlatformObjects:
    """Everything one platform has in its namespace (namespace = platform id)."""

    platform: str
    cluster: str
    segment: str
    namespace: Obj
    network_policies: list[Obj]
    service_account: Obj
    operator_role: Obj
    operator_binding: Obj
    auditor_binding: Obj
    limit_range: Obj
    resource_quota: Obj
    pvcs: list[Obj]
    """The shared claims (per-replica claims are the StatefulSet's volumeClaimTemplates)."""
    service: Obj
    workload: Obj
    """A Deployment, or a StatefulSet when a volume is per replica."""
    disruption_budget: Obj
    headless_service: Obj | None = None
    """The StatefulSet's governing Service (pod DNS names), when the workload is one."""
    exposure: list[Obj] = field(default_factory=list)
    """Gateway and HTTPRoutes (``exposure.method: gateway``)."""

    @property
    def namespace_name(self) -> str:
        return self.namespace["metadata"]["name"]

    @property
    def deployment(self) -> Obj:
        """The workload (Deployment or StatefulSet): kept under its old name for its readers."""
        return self.workload

    def services(self) -> list[Obj]:
        return [self.service, *([self.headless_service] if self.headless_service else [])]

    def workload_objects(self) -> list[Obj]:
        """The Platform component's objects, in apply order (no namespace, policies, PVCs)."""
        return [
            self.service_account, self.operator_role, self.operator_binding, self.auditor_binding,
            self.limit_range, self.resource_quota, *self.services(), *self.exposure, self.disruption_budget,
            self.workload,
        ]

    def objects(self) -> list[Obj]:
        """Every object of the platform, in apply order."""
        return [
            self.namespace, *self.network_policies,
            self.service_account, self.operator_role, self.operator_binding, self.auditor_binding,
            self.limit_range, *self.pvcs, self.resource_quota, *self.services(), *self.exposure,
            self.disruption_budget, self.workload,
        ]


@dataclass(frozen=True)
class SegmentObjects:
    """The namespaces and NetworkPolicies of the platforms in one segment of one cluster."""

    cluster: str
    segment: str
    zone: str
    cidr: str
    platforms: list[str]
    namespaces: list[Obj]
    network_policies: dict[str, list[Obj]]  # platform id -> its policies

    def objects(self) -> list[Obj]:
        return [*self.namespaces, *(p for pid in self.platforms for p in self.network_policies[pid])]


@dataclass(frozen=True)
class DRCopy:
    """A platform's copy on its DR cluster (``platforms[].dr``), standing by or running there.

    Warm standby: every object of the platform, the workload at 0 replicas; its Service asks for the
    platform's address, which is not announced while no pod is ready (``externalTrafficPolicy:
    Local``: the address pool's speakers announce it only from nodes with a ready pod). Cold standby:
    what a restore needs and nothing else (namespace, NetworkPolicies, ServiceAccount, RBAC, limits,
    quota). Active (``dcops dr failover`` moved the platform here): every object, the declared
    replicas. The objects come from the province as it is placed (:meth:`ProvinceFile.placed`), so
    NetworkPolicies follow where the dependencies run."""

    platform: str
    cluster: str
    home: str
    mode: str
    """warm or cold"""
    active: bool
    objects: list[Obj]
    """In apply order: the namespace first, the workload last."""
    workload: Obj | None = None


@dataclass(frozen=True)
class ClusterObjects:
    """All objects of one cluster, grouped per concept."""

    cluster: str
    kubernetes_version: str
    storage_classes: list[Obj]
    auditor_cluster_role: Obj
    auditor_cluster_binding: Obj
    platforms: dict[str, PlatformObjects] = field(default_factory=dict)
    segments: dict[str, SegmentObjects] = field(default_factory=dict)
    admission_policies: list[Obj] = field(default_factory=list)
    """The ValidatingAdmissionPolicy refusing Services with externalIPs, and its binding."""
    dr_copies: dict[str, DRCopy] = field(default_factory=dict)
    """The platforms this cluster stands by for (it is their DR cluster), or runs after a failover."""

    def cluster_scoped(self) -> list[Obj]:
        return [*self.storage_classes, self.auditor_cluster_role, self.auditor_cluster_binding, *self.admission_policies]

    def pvcs(self) -> list[Obj]:
        return [c for p in self.platforms.values() for c in p.pvcs]

    def objects(self) -> list[Obj]:
        """Every object, in a safe apply order: cluster-scoped, namespaces, then the rest."""
        out = self.cluster_scoped()
        out += [p.namespace for p in self.platforms.values()]
        for p in self.platforms.values():
            out += [o for o in p.objects() if o is not p.namespace]
        for c in self.dr_copies.values():
            out += c.objects
        return out


def object_key(obj: Obj) -> str:
    """``Kind/namespace/name`` (namespaced) or ``Kind/name`` (cluster-scoped)."""
    md = obj["metadata"]
    ns = md.get("namespace")
    return f"{obj['kind']}/{ns}/{md['name']}" if ns else f"{obj['kind']}/{md['name']}"


# --------------------------------------------------------------------- helpers


def _meta(name: str, namespace: str | None = None, labels: dict | None = None, annotations: dict | None = None) -> Obj:
    md: Obj = {"name": name}
    if namespace:
        md["namespace"] = namespace
    md["labels"] = {**MANAGED_BY, **(labels or {})}
    if annotations:
        md["annotations"] = dict(annotations)
    return md


def _ports(p: Platform) -> list[Obj]:
    return [{"protocol": x.protocol, "port": x.port} for x in p.ports]


def _pools_in(cluster: Cluster, segment: str):
    return [n for n in cluster.node_pools if n.segment == segment]


def _toleration(t) -> Obj:
    if not t.key:  # with operator Exists an empty key tolerates every taint (the model refuses it)
        raise RenderError([f"taint with an empty key ({t.effect}) -- fix: give the taint a key"])
    if t.value == "":
        return {"key": t.key, "operator": "Exists", "effect": t.effect}
    return {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}


# --------------------------------------------------------------------- cluster-wide


def storage_parameters(sc: StorageClass, cluster_id: str) -> dict[str, str]:
    """The driver's StorageClass parameters on one cluster (ceph-csi, csi-driver-nfs)."""
    on = sc.clusters[cluster_id]
    if sc.backend in CEPH_SECRETS:
        ns_default, prefix = CEPH_SECRETS[sc.backend]
        ns = on.secret_namespace or ns_default
        prov, node = on.provisioner_secret or f"{prefix}-provisioner", on.node_secret or f"{prefix}-node"
        params = {"clusterID": str(on.ceph_cluster_id)}
        if sc.backend == "ceph-rbd":
            params |= {"pool": str(on.pool), "imageFeatures": "layering", "csi.storage.k8s.io/fstype": "ext4"}
        else:
            params["fsName"] = str(on.fs_name)
            if on.pool:
                params["pool"] = on.pool
        for role, name in (("provisioner", prov), ("controller-expand", prov), ("node-stage", node)):
            params[f"csi.storage.k8s.io/{role}-secret-name"] = name
            params[f"csi.storage.k8s.io/{role}-secret-namespace"] = ns
        return params
    if sc.backend == "nfs":
        return {"server": str(on.server), "share": str(on.share)}
    return {}


def storage_class(sc: StorageClass, cluster_id: str) -> Obj:
    obj: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": _meta(
            sc.name,
            labels={f"{DOMAIN}/backend": sc.backend},
            annotations={"storageclass.kubernetes.io/is-default-class": "true" if sc.default else "false"},
        ),
        "provisioner": PROVISIONERS[sc.backend],
        "reclaimPolicy": sc.reclaim_policy,
        "volumeBindingMode": BINDING_MODES.get(sc.backend, "Immediate"),
        "allowVolumeExpansion": sc.backend in EXPANDABLE,
    }
    params = storage_parameters(sc, cluster_id)
    if params:
        obj["parameters"] = params
    if sc.clusters[cluster_id].mount_options:
        obj["mountOptions"] = list(sc.clusters[cluster_id].mount_options)
    return obj


def external_ips_policy() -> list[Obj]:
    """A ValidatingAdmissionPolicy (and its binding, every namespace) refusing Services with
    ``spec.externalIPs``: the operator Role may create Services, and an external IP lets a
    Service capture traffic to any address (CVE-2020-8554)."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": _meta(EXTERNAL_IPS_POLICY),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services"],
            }]},
            "validations": [{
                "expression": "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                "message": "Services may not set spec.externalIPs (CVE-2020-8554): expose a platform through its "
                           "cluster's exposure (LoadBalancer address pool or Gateway) in the province file",
                "reason": "Forbidden",
            }],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": _meta(EXTERNAL_IPS_POLICY),
        "spec": {"policyName": EXTERNAL_IPS_POLICY, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def auditor_cluster_role() -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(AUDITOR_ROLE),
        "rules": [
            {"apiGroups": [""], "resources": list(AUDITOR_CORE_RESOURCES), "verbs": list(READ)},
            {"apiGroups": list(AUDITOR_GROUPS), "resources": ["*"], "verbs": list(READ)},
            {"apiGroups": ["velero.io"], "resources": list(AUDITOR_VELERO), "verbs": list(READ)},
        ],
    }


def auditor_cluster_binding() -> Obj:
    """The auditors' group reads the whole cluster (not Secrets): the checks' read-only identity
    needs namespaces, cluster RBAC and every platform's objects."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta("dcops-auditors"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": AUDITOR_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": AUDITORS_GROUP}],
    }


def node_pool_nodes(model: ProvinceFile, cluster_id: str) -> list[Obj]:
    """The Node objects of a cluster's node pools (names, labels, taints; no status).

    Names are ``<cluster>-<pool>-<n>`` (n from 1).  Labels: the pool's own labels,
    ``dcops.gov.vn/pool``, ``dcops.gov.vn/segment`` (what Deployments select on),
    ``dcops.gov.vn/cluster`` and ``kubernetes.io/hostname``; taints as the model
    says.  The lab creates these (kwok adds status); Pulumi never manages Nodes.
    """
    cluster = model.cluster_by_id[cluster_id]
    seg = model.segment_by_id
    out: list[Obj] = []
    for pool in cluster.node_pools:
        for n in range(1, pool.count + 1):
            name = f"{cluster.id}-{pool.name}-{n}"
            labels = {
                **pool.labels,
                LABEL_POOL: pool.name,
                LABEL_SEGMENT: pool.segment,
                LABEL_ZONE: seg[pool.segment].zone.value,
                LABEL_CLUSTER: cluster.id,
                "kubernetes.io/hostname": name,
            }
            node: Obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": {}}
            if pool.taints:
                node["spec"]["taints"] = [
                    {"key": t.key, "value": t.value, "effect": t.effect} if t.value else {"key": t.key, "effect": t.effect}
                    for t in pool.taints
                ]
            out.append(node)
    return out


# --------------------------------------------------------------------- network policies


def _policy(ns: str, name: str, ingress: list[Obj] | None = None, egress: list[Obj] | None = None,
            deny_all: bool = False) -> Obj:
    spec: Obj = {"podSelector": {}}
    types = []
    if deny_all or ingress is not None:
        types.append("Ingress")
    if deny_all or egress is not None:
        types.append("Egress")
    spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, ns, {LABEL_PLATFORM: ns}),
        "spec": spec,
    }


def _annotate(obj: Obj, annotations: dict[str, str]) -> None:
    obj["metadata"].setdefault("annotations", {}).update(annotations)


def _ns_peer(ns: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: ns}}}


def _ip_peer(cidr: str) -> Obj:
    return {"ipBlock": {"cidr": cidr}}


def network_policies(model: ProvinceFile, p: Platform) -> list[Obj]:
    """The NetworkPolicies of platform ``p``'s namespace.

    ``default-deny`` (all ingress and egress); ``allow-dns``; ``allow-mgmt-scrape``;
    ``allow-to-<B>`` for each B that p depends on (egress on B's ports) and
    ``allow-from-<A>`` for each A that depends on p (ingress on p's ports), by
    namespace on the same cluster or by the other platform's segment CIDR across
    clusters (an edge to LGSP is annotated with the national systems used through it);
    ``allow-national-<id>`` per national endpoint, in LGSP's namespace only (LGSP is the door),
    and in another platform's for a declared ``national_exceptions`` entry; ``allow-sites`` from
    the LANs of the WAN sites that may reach p (with a LoadBalancer exposure,
    ``externalTrafficPolicy: Local`` keeps their addresses, so this rule is what
    admits them); ``allow-gateway`` from the gateway controller's proxies (gateway
    exposure: the sites come through them).  Nothing else.
    """
    ns = p.namespace
    seg = model.segment_by_id
    out = [
        _policy(ns, "default-deny", deny_all=True),
        _policy(ns, "allow-dns", egress=[{
            "to": [{
                "namespaceSelector": {"matchLabels": {NS_NAME_LABEL: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }]),
        _policy(ns, "allow-mgmt-scrape", ingress=[{
            "from": [_ip_peer(model.management_segment().cidr)],
            "ports": _ports(p),
        }]),
    ]
    for dep_id in p.depends_on:
        b = model.platform_by_id[dep_id]
        peer = _ns_peer(b.namespace) if b.cluster == p.cluster else _ip_peer(seg[b.segment].cidr)
        out.append(_policy(ns, f"allow-to-{b.id}", egress=[{"to": [peer], "ports": _ports(b)}]))
        if b.is_lgsp and p.national_via_lgsp:  # the national systems p reaches through LGSP
            _annotate(out[-1], {ANNOT_NATIONAL_VIA: ",".join(p.national_via_lgsp)})
    for a in model.dependents_of(p.id):
        peer = _ns_peer(a.namespace) if a.cluster == p.cluster else _ip_peer(seg[a.segment].cidr)
        out.append(_policy(ns, f"allow-from-{a.id}", ingress=[{"from": [peer], "ports": _ports(p)}]))
        if p.is_lgsp and a.national_via_lgsp:
            _annotate(out[-1], {ANNOT_NATIONAL_VIA: ",".join(a.national_via_lgsp)})
    # LGSP is the door: only its namespace (and a declared exception's) has egress to national endpoints
    for nat, exc in model.direct_national(p):
        out.append(_policy(ns, f"allow-national-{nat.id}", egress=[{
            "to": [_ip_peer(nat.cidr)],
            "ports": [{"protocol": "TCP", "port": port} for port in nat.ports],
        }]))
        if exc is not None:
            _annotate(out[-1], {ANNOT_NATIONAL_EXCEPTION: exc.reason})
    sites = model.sites_reaching(p.id)
    if sites:
        out.append(_policy(ns, "allow-sites", ingress=[{
            "from": [_ip_peer(s.lan) for s in sites],
            "ports": _ports(p),
        }]))
    exposure = model.cluster_by_id[p.cluster].exposure
    if exposure and exposure.method == "gateway":
        peer: Obj = {"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: exposure.controller_namespace}}}
        if exposure.controller_pods:
            peer["podSelector"] = {"matchLabels": dict(exposure.controller_pods)}
        out.append(_policy(ns, "allow-gateway", ingress=[{"from": [peer], "ports": _ports(p)}]))
    return out


# --------------------------------------------------------------------- platform


def _namespace(model: ProvinceFile, p: Platform, cluster: Cluster) -> Obj:
    seg = model.segment_by_id[p.segment]
    psa_version = f"v{cluster.kubernetes_version}"
    labels = {
        LABEL_SEGMENT: seg.id,
        LABEL_ZONE: seg.zone.value,
        LABEL_LEVEL: str(p.security_level),
        LABEL_PLATFORM: p.id,
        LABEL_CLUSTER: cluster.id,
    }
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = PSA_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = psa_version
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(p.namespace, labels=labels, annotations={ANNOT_NAME: p.name, ANNOT_NAME_EN: p.name_en}),
    }


def _rbac(p: Platform) -> tuple[Obj, Obj, Obj]:
    ns = p.namespace
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(OPERATOR_ROLE, ns, {LABEL_PLATFORM: p.id}),
        # Manage the platform's workloads; NOT its isolation (NetworkPolicies,
        # quotas, limits, RBAC) which comes from the province model.
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale", "replicasets", "statefulsets"],
             "verbs": list(ALL)},
            {"apiGroups": [""], "resources": ["configmaps", "secrets", "services", "persistentvolumeclaims"],
             "verbs": list(ALL)},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
            {"apiGroups": [""], "resources": ["pods/log", "events", "serviceaccounts", "endpoints"], "verbs": list(READ)},
            {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": list(ALL)},
            {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": list(ALL)},
        ],
    }
    ops = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta("platform-operators", ns, {LABEL_PLATFORM: p.id}),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": operators_group(p.id)}],
    }
    aud = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta("dcops-auditors", ns, {LABEL_PLATFORM: p.id}),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": AUDITOR_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": AUDITORS_GROUP}],
    }
    return role, ops, aud


def _quota(model: ProvinceFile, p: Platform) -> Obj:
    pods = pod_budget(p)
    # a per-replica volume is claimed once per pod the quota allows (scaling up within it)
    claims = [(v, pods if v.per_replica else 1) for v in p.storage]
    exposure = model.cluster_by_id[p.cluster].exposure
    hard = {
        "pods": str(pods),
        "requests.cpu": cpu_qty(pods * p.resources.cpu_millicores),
        "limits.cpu": cpu_qty(pods * p.resources.cpu_millicores),
        "requests.memory": mem_qty(pods * p.resources.memory_mib),
        "limits.memory": mem_qty(pods * p.resources.memory_mib),
        "persistentvolumeclaims": str(sum(n for _, n in claims)),
        "requests.storage": storage_qty(sum(v.size_gib * n for v, n in claims)),
        "services": "2" if p.per_replica_storage else "1",
        "services.nodeports": "0",
        "services.loadbalancers": "1" if exposure and exposure.method == "loadbalancer" else "0",
    }
    per_class: dict[str, list[tuple[int, int]]] = {}
    for v, n in claims:
        per_class.setdefault(v.storage_class, []).append((v.size_gib, n))
    for sc, sizes in sorted(per_class.items()):
        hard[f"{sc}.storageclass.storage.k8s.io/persistentvolumeclaims"] = str(sum(n for _, n in sizes))
        hard[f"{sc}.storageclass.storage.k8s.io/requests.storage"] = storage_qty(sum(g * n for g, n in sizes))
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta("platform-quota", p.namespace, {LABEL_PLATFORM: p.id}),
        "spec": {"hard": hard},
    }


def _resources(p: Platform) -> Obj:
    r = {"cpu": cpu_qty(p.resources.cpu_millicores), "memory": mem_qty(p.resources.memory_mib),
         "ephemeral-storage": EPHEMERAL_STORAGE}
    return {"requests": dict(r), "limits": dict(r)}


def _limit_range(p: Platform) -> Obj:
    r = _resources(p)
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta("platform-limits", p.namespace, {LABEL_PLATFORM: p.id}),
        "spec": {"limits": [{"type": "Container", "default": r["limits"], "defaultRequest": r["requests"]}]},
    }


def _claim(model: ProvinceFile, p: Platform, v, namespace: str | None) -> Obj:
    """A shared claim (in ``namespace``), or a StatefulSet's claim template (``namespace`` None: its
    claims are made by the StatefulSet controller, so they do not say dcops manages them)."""
    metadata = _meta(v.name, namespace, {LABEL_PLATFORM: p.id})
    if namespace is None:
        metadata["labels"] = {LABEL_PLATFORM: p.id}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": {
            "accessModes": [access_mode(model, v.storage_class)],
            "storageClassName": v.storage_class,
            "resources": {"requests": {"storage": storage_qty(v.size_gib)}},
        },
    }


def _pvcs(model: ProvinceFile, p: Platform) -> list[Obj]:
    """The shared claims (one volume for every replica)."""
    return [_claim(model, p, v, p.namespace) for v in p.storage if not v.per_replica]


def _pod_labels(p: Platform) -> dict[str, str]:
    return {LABEL_NAME: p.id, "app.kubernetes.io/part-of": "dcops", LABEL_PLATFORM: p.id}


def _service_ports(p: Platform) -> list[Obj]:
    out = []
    for x in p.ports:
        port: Obj = {"name": x.name, "protocol": x.protocol, "port": x.port, "targetPort": x.name}
        if x.scheme != "tcp":
            port["appProtocol"] = x.scheme
        out.append(port)
    return out


def _service(model: ProvinceFile, p: Platform) -> Obj:
    """The platform's Service; at its ``address`` when the cluster exposes it through a load balancer."""
    exposure = model.cluster_by_id[p.cluster].exposure
    annotations = {ANNOT_ADDRESS: p.address}
    spec: Obj = {"type": "ClusterIP", "selector": {LABEL_NAME: p.id}, "ports": _service_ports(p)}
    if exposure and exposure.method == "loadbalancer":
        annotations |= {METALLB_POOL: exposure.address_pool, METALLB_IPS: p.address}
        spec |= {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",  # the client's address reaches the NetworkPolicies
            "allocateLoadBalancerNodePorts": False,  # the quota allows no node ports
        }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(p.id, p.namespace, {LABEL_PLATFORM: p.id}, annotations),
        "spec": spec,
    }


def _headless_service(p: Platform) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(f"{p.id}-pods", p.namespace, {LABEL_PLATFORM: p.id}),
        "spec": {
            "clusterIP": "None",
            "selector": {LABEL_NAME: p.id},
            "ports": _service_ports(p),
        },
    }


def _gateway(model: ProvinceFile, p: Platform) -> list[Obj]:
    """A Gateway at the platform's address (TLS ends there with the province's certificate)
    and an HTTPRoute per listener to the Service (``exposure.method: gateway``)."""
    exposure = model.cluster_by_id[p.cluster].exposure
    if not exposure or exposure.method != "gateway":
        return []
    listeners, routes = [], []
    for x in p.ports:
        if x.scheme == "tcp":
            continue  # TCPRoute is not in Gateway API's standard channel: such a port stays inside
        listener: Obj = {"name": x.name, "port": x.port, "protocol": x.scheme.upper(),
                         "allowedRoutes": {"namespaces": {"from": "Same"}}}
        if p.hostname:
            listener["hostname"] = p.hostname
        if x.scheme == "https":
            listener["tls"] = {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": tls_secret(p.id)}]}
        listeners.append(listener)
        routes.append({
            "apiVersion": GATEWAY_API,
            "kind": "HTTPRoute",
            "metadata": _meta(f"{p.id}-{x.name}", p.namespace, {LABEL_PLATFORM: p.id}),
            "spec": {
                "parentRefs": [{"name": p.id, "sectionName": x.name}],
                "rules": [{"backendRefs": [{"name": p.id, "port": x.port}]}],
            },
        })
    gateway = {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": _meta(p.id, p.namespace, {LABEL_PLATFORM: p.id}, {ANNOT_ADDRESS: p.address}),
        "spec": {
            "gatewayClassName": exposure.class_name,
            "addresses": [{"type": "IPAddress", "value": p.address}],
            "infrastructure": {"annotations": {METALLB_POOL: exposure.address_pool}},
            "listeners": listeners,
        },
    }
    return [gateway, *routes] if listeners else []


def _disruption_budget(p: Platform) -> Obj:
    """At most one pod of the platform down at a time by a voluntary disruption (drain,
    eviction): never zero, which would block every drain."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(p.id, p.namespace, {LABEL_PLATFORM: p.id}),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {LABEL_NAME: p.id}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",  # a crashing pod never blocks a drain
        },
    }


def _probes(p: Platform) -> Obj:
    """Startup and readiness probes on the health path, liveness on ``health.liveness_path`` or, without
    one, on the port (TCP for a port that is not HTTP)."""
    port = p.health_port()
    if port.protocol != "TCP":
        return {}

    def probe(period: int, failures: int) -> Obj:
        if port.scheme == "tcp":
            handler: Obj = {"tcpSocket": {"port": port.name}}
        else:
            handler = {"httpGet": {"path": p.health.path, "port": port.name, "scheme": port.scheme.upper()}}
        return {**handler, "timeoutSeconds": PROBE_TIMEOUT, "periodSeconds": period, "failureThreshold": failures}

    live = probe(LIVENESS_PERIOD, PROBE_FAILURES)
    if p.health.liveness_path and port.scheme != "tcp":
        live["httpGet"]["path"] = p.health.liveness_path
    elif "httpGet" in live:
        # without a path of its own, liveness asks only that the process answers on its port: a
        # health path that reports a failing dependency must take the pod out of the Service,
        # not restart it (and every replica with it)
        live = {"tcpSocket": {"port": port.name}, **{k: v for k, v in live.items() if k != "httpGet"}}
    return {
        "startupProbe": probe(STARTUP_PERIOD, math.ceil(p.health.startup_seconds / STARTUP_PERIOD)),
        "readinessProbe": probe(READINESS_PERIOD, PROBE_FAILURES),
        "livenessProbe": live,
    }


def _spread(p: Platform) -> Obj:
    """Replicas across nodes: a hard topology spread over the eligible nodes (a cordoned node is
    not one, so a drain never leaves a pod unschedulable), counting the pods of one revision, and
    a preferred anti-affinity across revisions."""
    if p.replicas < 2:
        return {}
    revision = "controller-revision-hash" if p.per_replica_storage else "pod-template-hash"

    def selector() -> Obj:
        return {"matchLabels": {LABEL_NAME: p.id}}

    return {
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": selector(),
            "matchLabelKeys": [revision],
            "nodeAffinityPolicy": "Honor",
            "nodeTaintsPolicy": "Honor",
        }],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector()},
        }]}},
    }


def _workload(model: ProvinceFile, p: Platform, cluster: Cluster) -> Obj:
    pools = _pools_in(cluster, p.segment)
    tolerations: list[Obj] = []
    for pool in pools:
        for t in pool.taints:
            tol = _toleration(t)
            if tol not in tolerations:
                tolerations.append(tol)
    mounts = [{"name": "tmp", "mountPath": TMP_MOUNT}]
    volumes: list[Obj] = [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}]
    for v in p.storage:
        if v.per_replica:  # a volumeClaimTemplate: the volume has the template's name
            mounts.append({"name": v.name, "mountPath": v.mount_path})
        else:
            mounts.append({"name": f"pvc-{v.name}", "mountPath": v.mount_path})
            volumes.append({"name": f"pvc-{v.name}", "persistentVolumeClaim": {"claimName": v.name}})
    container: Obj = {
        "name": p.id,
        "image": p.image,
        # the registry is asked every time (a digest pins the content, and a cached image is
        # never used by a pod whose pull credentials were not checked)
        "imagePullPolicy": "Always",
        "ports": [{"name": x.name, "containerPort": x.port, "protocol": x.protocol} for x in p.ports],
        "resources": _resources(p),
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
        **_probes(p),
    }
    pod_spec: Obj = {
        "serviceAccountName": p.id,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "runAsGroup": RUN_AS_UID,
            "fsGroup": RUN_AS_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "nodeSelector": {LABEL_SEGMENT: p.segment},
        **_spread(p),
        "containers": [container],
        "volumes": volumes,
    }
    if tolerations:
        pod_spec["tolerations"] = tolerations
    template = {"metadata": {"labels": _pod_labels(p)}, "spec": pod_spec}
    metadata = _meta(p.id, p.namespace, {LABEL_PLATFORM: p.id, LABEL_NAME: p.id})
    selector = {"matchLabels": {LABEL_NAME: p.id}}  # used once below
    if p.per_replica_storage:
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata,
            "spec": {
                "replicas": p.replicas,
                "serviceName": f"{p.id}-pods",
                "selector": selector,
                # replicas start and stop together (no ordering to wait on); a rollout replaces one pod at
                # a time (rollingUpdate.maxUnavailable is behind a feature gate that 1.34 leaves off)
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": template,
                "volumeClaimTemplates": [
                    {k: v for k, v in _claim(model, p, vol, None).items() if k not in ("apiVersion", "kind")}
                    for vol in p.storage if vol.per_replica
                ],
            },
        }
    rwo = any(access_mode(model, v.storage_class) == "ReadWriteOnce" for v in p.storage)
    # a ReadWriteOnce volume (validation allows it for one replica only) is held by the old pod:
    # a surge pod on another node could never attach it, so the pod is replaced, not surged
    strategy = {"type": "Recreate"} if rwo else \
        {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": SURGE_PODS, "maxUnavailable": 0}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": p.replicas,
            "selector": selector,
            "strategy": strategy,
            "template": template,
        },
    }


def render_platform(model: ProvinceFile, platform_id: str) -> PlatformObjects:
    p = model.platform_by_id[platform_id]
    cluster = model.cluster_by_id[p.cluster]
    role, ops, aud = _rbac(p)
    return PlatformObjects(
        platform=p.id,
        cluster=cluster.id,
        segment=p.segment,
        namespace=_namespace(model, p, cluster),
        network_policies=network_policies(model, p),
        service_account={
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(p.id, p.namespace, {LABEL_PLATFORM: p.id}),
            "automountServiceAccountToken": False,
        },
        operator_role=role,
        operator_binding=ops,
        auditor_binding=aud,
        limit_range=_limit_range(p),
        resource_quota=_quota(model, p),
        pvcs=_pvcs(model, p),
        service=_service(model, p),
        workload=_workload(model, p, cluster),
        disruption_budget=_disruption_budget(p),
        headless_service=_headless_service(p) if p.per_replica_storage else None,
        exposure=_gateway(model, p),
    )


# --------------------------------------------------------------------- cluster / province


def render_problems(model: ProvinceFile) -> list[str]:
    """What keeps a valid model from rendering (each names the platform and the fix)."""
    problems: list[str] = []
    for i, p in enumerate(model.platforms):
        cluster = model.cluster_by_id[p.cluster]
        if not _pools_in(cluster, p.segment):
            problems.append(
                f"platforms[{i}] ({p.id}): cluster '{cluster.id}' has no node pool in segment '{p.segment}', so its "
                f"pods could not be scheduled -- fix: add a node pool with 'segment: {p.segment}' to cluster "
                f"'{cluster.id}' or move the platform"
            )
        seen: dict[str, str] = {m: "(dcops' own scratch volume)" for m in RENDERER_MOUNTS}
        for v in p.storage:
            if v.mount_path in seen:
                problems.append(
                    f"platforms[{i}].storage ({p.id}): volumes '{seen[v.mount_path]}' and '{v.name}' both mount at "
                    f"{v.mount_path} -- fix: give one of them its own 'mount_path'"
                )
            seen.setdefault(v.mount_path, v.name)
    return problems


def _scaled(po: PlatformObjects, replicas: int) -> PlatformObjects:
    w = po.workload
    return replace(po, workload={**w, "spec": {**w["spec"], "replicas": replicas}})


def _dr_copy(model: ProvinceFile, platform_id: str, cluster_id: str, home: str, active: bool) -> DRCopy:
    """``platform_id``'s copy on its DR cluster ``cluster_id``; ``model`` is the province as placed."""
    p = model.platform_by_id[platform_id]
    there = model.placed({platform_id: cluster_id})
    po = render_platform(there, platform_id)
    if not active:
        po = _scaled(po, 0)
    if active or p.dr.mode == "warm":
        return DRCopy(platform_id, cluster_id, home, p.dr.mode, active, po.objects(), po.workload)
    objs = [po.namespace, *po.network_policies, po.service_account, po.operator_role, po.operator_binding,
            po.auditor_binding, po.limit_range, po.resource_quota]
    return DRCopy(platform_id, cluster_id, home, p.dr.mode, active, objs, None)


def render_cluster(model: ProvinceFile, cluster_id: str, placement: dict[str, str] | None = None) -> ClusterObjects:
    """Every object of one cluster.  Raises :class:`RenderError` listing every problem.

    ``placement`` (platform id -> the cluster it runs on; ``dcops dr failover`` records it):
    a platform moved to its DR cluster runs there with its declared replicas and stays at home
    at 0 replicas (nothing of it is deleted, for the failback); the others' NetworkPolicies
    reach it where it runs. Without a placement every platform runs at home."""
    problems = render_problems(model)
    if problems:
        raise RenderError(problems)
    home_model, model = model, model.placed(placement)
    cluster = model.cluster_by_id[cluster_id]
    platforms: dict[str, PlatformObjects] = {}
    dr_copies: dict[str, DRCopy] = {}
    for hp in home_model.platforms:
        where = model.platform_by_id[hp.id].cluster
        if hp.cluster == cluster_id:
            platforms[hp.id] = render_platform(model, hp.id) if where == cluster_id else \
                _scaled(render_platform(model.placed({hp.id: cluster_id}), hp.id), 0)
        elif home_model.dr_cluster_of(hp.id) == cluster_id:
            dr_copies[hp.id] = _dr_copy(model, hp.id, cluster_id, hp.cluster, active=where == cluster_id)
    segments: dict[str, SegmentObjects] = {}
    for seg in model.datacenter.segments:
        members = [pid for pid, po in platforms.items() if po.segment == seg.id]
        if not members:
            continue
        segments[seg.id] = SegmentObjects(
            cluster=cluster_id,
            segment=seg.id,
            zone=seg.zone.value,
            cidr=seg.cidr,
            platforms=members,
            namespaces=[platforms[m].namespace for m in members],
            network_policies={m: platforms[m].network_policies for m in members},
        )
    return ClusterObjects(
        cluster=cluster_id,
        kubernetes_version=cluster.kubernetes_version,
        storage_classes=[storage_class(sc, cluster_id) for sc in model.storage_classes_on(cluster_id)],
        auditor_cluster_role=auditor_cluster_role(),
        auditor_cluster_binding=auditor_cluster_binding(),
        platforms=platforms,
        segments=segments,
        admission_policies=external_ips_policy(),
        dr_copies=dr_copies,
    )


def render_province(model: ProvinceFile, placement: dict[str, str] | None = None) -> dict[str, ClusterObjects]:
    """Every cluster's objects (``placement``: see :func:`render_cluster`); raises
    :class:`RenderError` before returning anything partial."""
    problems = render_problems(model)
    if problems:
        raise RenderError(problems)
    return {c.id: render_cluster(model, c.id, placement) for c in model.datacenter.clusters}


def iter_objects(model: ProvinceFile) -> Iterator[tuple[str, Obj]]:
    """(cluster id, object) for every object of the province, in apply order."""
    for cid, objs in render_province(model).items():
        for o in objs.objects():
            yield cid, o
