"""``NetworkSegment``: the namespaces of one segment on one cluster and their isolation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from ..render.k8s import SegmentObjects
from .cluster import Cluster


@dataclass(frozen=True)
class NetworkSegmentArgs:
    cluster: Cluster
    objects: SegmentObjects
    """``render_cluster(...).segments[segment_id]``."""


class NetworkSegment(pulumi.ComponentResource):
    """Namespaces (labelled by segment, zone, security level, Pod Security
    ``restricted``) of the platforms in this segment, each with default-deny and
    the allow NetworkPolicies derived from the dependency graph.

    Attributes: ``namespaces`` (platform id -> its ``core.v1.Namespace``) and
    ``policies`` (platform id -> its ``networking.v1.NetworkPolicy`` resources).
    Outputs: ``segment``, ``zone``, ``cidr``, ``namespaces``, ``network_policies``.
    """

    TYPE = "dcops:index:NetworkSegment"

    def __init__(self, name: str, args: NetworkSegmentArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        seg, cluster = args.objects, args.cluster
        self.segment_id = seg.segment
        self.namespaces: dict[str, pulumi.CustomResource] = {}
        self.policies: dict[str, list[pulumi.CustomResource]] = {}
        for pid, ns in zip(seg.platforms, seg.namespaces):
            self.namespaces[pid] = cluster.kube(ns, parent=self)
            self.policies[pid] = [
                cluster.kube(pol, parent=self, depends_on=[self.namespaces[pid]]) for pol in seg.network_policies[pid]
            ]
        self.register_outputs(
            {
                "segment": seg.segment,
                "zone": seg.zone,
                "cidr": seg.cidr,
                "namespaces": list(seg.platforms),
                "network_policies": {
                    pid: [p["metadata"]["name"] for p in seg.network_policies[pid]] for pid in seg.platforms
                },
            }
        )
