"""``Platform``: one shared platform's workload in its namespace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from ..render.k8s import PlatformObjects
from .cluster import Cluster
from .segment import NetworkSegment
from .storage import Storage


@dataclass(frozen=True)
class PlatformArgs:
    cluster: Cluster
    objects: PlatformObjects
    """``render_cluster(...).platforms[platform_id]``."""
    segment: NetworkSegment
    """The segment component that made the platform's namespace and policies."""
    storage: Storage
    """The cluster's storage component (the platform's PVCs)."""


class Platform(pulumi.ComponentResource):
    """ServiceAccount, RBAC (``platform-operator`` Role for ``dcops:<id>:operators``,
    read-only ``dcops-auditor`` for ``dcops:auditors``), LimitRange,
    ResourceQuota, Service (+ the headless one of a StatefulSet, + Gateway and
    HTTPRoutes), PodDisruptionBudget and the workload (Deployment or StatefulSet).

    The Deployment waits for the namespace's NetworkPolicies, the PVCs, the
    limits and the quota, so pods never start unisolated or unbounded.
    Attributes: ``deployment``, ``service``, ``objects`` (every typed resource made here).
    Outputs: ``platform``, ``cluster``, ``namespace``, ``segment``, ``service``,
    ``address``, ``ports``, ``replicas``, ``image``, ``pvcs``.
    """

    TYPE = "dcops:index:Platform"

    def __init__(self, name: str, args: PlatformArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        po, cluster = args.objects, args.cluster
        pid = po.platform
        ns = args.segment.namespaces[pid]
        policies = args.segment.policies[pid]
        claims = args.storage.claims.get(pid, [])

        def kube(manifest: dict, *deps: pulumi.Resource) -> pulumi.CustomResource:
            return cluster.kube(manifest, parent=self, depends_on=[ns, *deps])

        self.service_account = kube(po.service_account)
        self.operator_role = kube(po.operator_role)
        self.operator_binding = kube(po.operator_binding, self.operator_role)
        self.auditor_binding = kube(po.auditor_binding, cluster.auditor_role)
        self.limit_range = kube(po.limit_range)
        self.resource_quota = kube(po.resource_quota, *claims)
        self.service = kube(po.service)
        extra = [kube(o, self.service) for o in [
            *([po.headless_service] if po.headless_service else []), *po.exposure, po.disruption_budget]]
        self.deployment = kube(  # the workload: a Deployment or a StatefulSet
            po.workload,
            self.service_account, self.limit_range, self.resource_quota, *policies, *claims, *extra,
        )
        self.objects = [
            self.service_account, self.operator_role, self.operator_binding, self.auditor_binding,
            self.limit_range, self.resource_quota, self.service, *extra, self.deployment,
        ]
        svc = po.service
        self.register_outputs(
            {
                "platform": pid,
                "cluster": po.cluster,
                "namespace": po.namespace_name,
                "segment": po.segment,
                "service": f"{svc['metadata']['name']}.{po.namespace_name}.svc",
                "address": svc["metadata"]["annotations"]["dcops.gov.vn/address"],
                "ports": [p["port"] for p in svc["spec"]["ports"]],
                "replicas": po.deployment["spec"]["replicas"],
                "image": po.deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                "pvcs": [c["metadata"]["name"] for c in po.pvcs],
                "deployment_uid": self.deployment.metadata.apply(lambda m: m.uid if m else None),
            }
        )
