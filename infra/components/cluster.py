"""``Cluster``: one Kubernetes cluster of the data center (kubeconfig, cluster-wide RBAC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi

from ..k8s import DEFAULT_TIMEOUT, KubeObject
from ..render.k8s import ClusterObjects, object_key


@dataclass(frozen=True)
class ClusterArgs:
    objects: ClusterObjects
    """Everything rendered for the cluster (``infra.render.k8s.render_cluster``)."""
    kubeconfig: str
    """Absolute path of the cluster's admin kubeconfig."""
    await_ready: bool = True
    """Wait for Deployments to be Ready before a platform counts as created."""
    ready_timeout: int = DEFAULT_TIMEOUT
    """Seconds to wait for readiness and for deletions."""


class Cluster(pulumi.ComponentResource):
    """A cluster: holds its kubeconfig path and creates the cluster-level objects.

    Node pools are not Pulumi resources: the lab (kwok) creates the Nodes from
    ``infra.render.k8s.node_pool_nodes``; StorageClasses belong to :class:`Storage`.
    Outputs: ``cluster``, ``kubeconfig``, ``auditor_cluster_role``.
    """

    TYPE = "dcops:index:Cluster"

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.args = args
        self.cluster_id = args.objects.cluster
        self.kubeconfig = args.kubeconfig
        self.auditor_role = self.kube(args.objects.auditor_cluster_role, parent=self)
        self.register_outputs(
            {
                "cluster": self.cluster_id,
                "kubeconfig": self.kubeconfig,
                "auditor_cluster_role": args.objects.auditor_cluster_role["metadata"]["name"],
            }
        )

    def kube(
        self,
        manifest: dict,
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource] = (),
        await_ready: bool = False,
    ) -> KubeObject:
        """A KubeObject on this cluster, named ``<cluster>/<Kind>/<namespace>/<name>``."""
        return KubeObject(
            f"{self.cluster_id}/{object_key(manifest)}",
            manifest,
            self.kubeconfig,
            await_ready=await_ready and self.args.await_ready,
            ready_timeout=self.args.ready_timeout,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )
