"""The Pulumi components of the data integration center, one per concept.

Build order (each step depends on the one before; :mod:`infra.program` does it)::

    cluster  = Cluster(cluster_id, ClusterArgs(objects, kubeconfig, context=...))     # Provider, auditor ClusterRole
    segment  = NetworkSegment(f"{cluster_id}/{segment_id}", NetworkSegmentArgs(cluster, segment_objects))
                                                                                      # Namespaces + NetworkPolicies
    storage  = Storage(cluster_id, StorageArgs(cluster, namespaces))                  # StorageClasses + PVCs
    platform = Platform(platform_id, PlatformArgs(cluster, platform_objects, segment, storage))
                                                                                      # SA, RBAC, quota, limits, Service, Deployment

Every Kubernetes object is a typed ``pulumi_kubernetes`` resource (:func:`infra.k8s.kube_resource`)
parented under its component, on its cluster's explicit ``pulumi_kubernetes.Provider``; objects
come from :mod:`infra.render.k8s` (never built here).
"""

from .cluster import Cluster, ClusterArgs
from .drcopy import DRCopy, DRCopyArgs
from .platform import Platform, PlatformArgs
from .segment import NetworkSegment, NetworkSegmentArgs
from .storage import Storage, StorageArgs

__all__ = [
    "Cluster", "ClusterArgs", "NetworkSegment", "NetworkSegmentArgs", "Storage", "StorageArgs",
    "Platform", "PlatformArgs", "DRCopy", "DRCopyArgs",
]
