"""``Storage``: a cluster's StorageClasses and every platform's PersistentVolumeClaims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import pulumi

from .cluster import Cluster


@dataclass(frozen=True)
class StorageArgs:
    cluster: Cluster
    namespaces: Mapping[str, pulumi.Resource]
    """Platform id -> its Namespace (from the NetworkSegments); claims wait for it."""


class Storage(pulumi.ComponentResource):
    """StorageClasses from ``datacenter.storage_classes`` and each platform's PVCs
    (one per ``storage`` entry), all taken from ``cluster.args.objects``.

    Attributes: ``classes`` (name -> ``storage.v1.StorageClass``), ``claims`` (platform id ->
    its ``core.v1.PersistentVolumeClaim`` resources).  Outputs: ``storage_classes``, ``default_class``, ``claims``.
    """

    TYPE = "dcops:index:Storage"

    def __init__(self, name: str, args: StorageArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(self.TYPE, name, None, opts)
        cluster = args.cluster
        objects = cluster.args.objects
        self.classes: dict[str, pulumi.CustomResource] = {
            sc["metadata"]["name"]: cluster.kube(sc, parent=self) for sc in objects.storage_classes
        }
        self.claims: dict[str, list[pulumi.CustomResource]] = {}
        for pid, po in objects.platforms.items():
            self.claims[pid] = [
                cluster.kube(
                    pvc,
                    parent=self,
                    depends_on=[args.namespaces[pid], self.classes[pvc["spec"]["storageClassName"]]],
                )
                for pvc in po.pvcs
            ]
        default = [
            sc["metadata"]["name"]
            for sc in objects.storage_classes
            if sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
        ]
        self.register_outputs(
            {
                "storage_classes": list(self.classes),
                "default_class": default[0] if default else None,
                "claims": {
                    pid: [f"{c['metadata']['namespace']}/{c['metadata']['name']}" for c in po.pvcs]
                    for pid, po in objects.platforms.items()
                },
            }
        )
