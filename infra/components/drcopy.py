"""``DRCopy``: a platform's copy on its DR cluster (standing by, or running there after a failover)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from ..render.k8s import DRCopy as DRCopyObjects
from .cluster import Cluster
from .storage import Storage


@dataclass(frozen=True)
class DRCopyArgs:
    cluster: Cluster
    """The DR cluster."""
    objects: DRCopyObjects
    """``render_cluster(...).dr_copies[platform_id]``."""
    storage: Storage
    """The DR cluster's storage component (its StorageClasses)."""


class DRCopy(pulumi.ComponentResource):
    """The objects of :class:`infra.render.k8s.DRCopy` in order: the namespace, its
    NetworkPolicies, then the rest (after the policies, so no pod ever runs unisolated), the
    workload last. The component's name (``<cluster>/<platform>``) does not change when a failover
    makes the copy active: its objects keep their URNs, so a ``pulumi up`` after a failover
    updates them in place (replicas from the placement record) and never replaces them.

    Outputs: ``platform``, ``cluster``, ``home``, ``mode``, ``active``, ``replicas``, ``objects``.
    """

    TYPE = "dcops:index:DRCopy"

    def __init__(self, name: str, args: DRCopyArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        c, cluster = args.objects, args.cluster
        ns_obj, rest = c.objects[0], c.objects[1:]
        assert ns_obj["kind"] == "Namespace", "a DR copy starts with its namespace"
        self.namespace = cluster.kube(ns_obj, parent=self)
        policies = [o for o in rest if o["kind"] == "NetworkPolicy"]
        self.policies = [cluster.kube(o, parent=self, depends_on=[self.namespace]) for o in policies]
        made: list[pulumi.Resource] = [self.namespace, *self.policies]
        others = [o for o in rest if o["kind"] != "NetworkPolicy" and o is not c.workload]
        self.objects = [cluster.kube(o, parent=self, depends_on=[*made, args.storage]) for o in others]
        self.workload = None
        if c.workload is not None:
            self.workload = cluster.kube(c.workload, parent=self, depends_on=[*made, *self.objects, args.storage])
        self.register_outputs({
            "platform": c.platform,
            "cluster": c.cluster,
            "home": c.home,
            "mode": c.mode,
            "active": c.active,
            "replicas": (c.workload or {}).get("spec", {}).get("replicas"),
            "objects": len(c.objects),
        })
