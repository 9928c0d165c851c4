"""``Cluster``: one Kubernetes cluster of the data center (its provider, cluster-wide RBAC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from ..k8s import DEFAULT_TIMEOUT, cluster_provider, kube_resource
from ..render.k8s import ClusterObjects, object_key


@dataclass(frozen=True)
class ClusterArgs:
    objects: ClusterObjects
    """Everything rendered for the cluster (``infra.render.k8s.render_cluster``)."""
    kubeconfig: str
    """Absolute path of the cluster's admin kubeconfig."""
    await_ready: bool = True
    """Let the provider await each object (Deployments rolled out, PVCs bound, ...) before it counts as made."""
    ready_timeout: int = DEFAULT_TIMEOUT
    """Seconds for each object's create, update and delete (awaits included)."""
    context: Optional[str] = None
    """The kubeconfig context to use (None: the kubeconfig's current context)."""


class Cluster(pulumi.ComponentResource):
    """A cluster: its ``pulumi_kubernetes.Provider`` (kubeconfig path, context, server-side
    apply as field manager ``dcops``) and the cluster-level objects.

    Node pools are not Pulumi resources: the lab (kwok) creates the Nodes from
    ``infra.render.k8s.node_pool_nodes``; StorageClasses belong to :class:`Storage`.
    Attributes: ``provider``, ``auditor_role``.
    Outputs: ``cluster``, ``kubeconfig``, ``auditor_cluster_role``.
    """

    TYPE = "dcops:index:Cluster"

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        self.args = args
        self.cluster_id = args.objects.cluster
        self.kubeconfig = args.kubeconfig
        self.provider: k8s.Provider = cluster_provider(
            self.cluster_id, args.kubeconfig, args.context, pulumi.ResourceOptions(parent=self)
        )
        self.auditor_role = self.kube(args.objects.auditor_cluster_role, parent=self)
        self.auditor_binding = self.kube(args.objects.auditor_cluster_binding, parent=self, depends_on=[self.auditor_role])
        policies = args.objects.admission_policies
        self.admission_policies = [self.kube(o, parent=self) for o in policies[:1]]
        self.admission_policies += [self.kube(o, parent=self, depends_on=self.admission_policies) for o in policies[1:]]
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
    ) -> pulumi.CustomResource:
        """The typed resource of a rendered object on this cluster, named ``<cluster>/<Kind>/<namespace>/<name>``."""
        return kube_resource(
            f"{self.cluster_id}/{object_key(manifest)}",
            manifest,
            self.provider,
            parent=parent,
            depends_on=depends_on,
            skip_await=not self.args.await_ready,
            timeout=self.args.ready_timeout,
        )
