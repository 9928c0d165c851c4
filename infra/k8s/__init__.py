"""Kubernetes objects as typed ``pulumi_kubernetes`` resources (the pulumi-kubernetes provider).

``cluster_provider(name, kubeconfig, context)`` and ``kube_resource(name, manifest, provider, ...)``;
see :mod:`infra.k8s.resources`.
"""

from .resources import (
    DEFAULT_TIMEOUT,
    FIELD_MANAGER,
    KINDS,
    NOT_AWAITED,
    PULUMI_ANNOTATIONS,
    UnknownKind,
    cluster_provider,
    kube_resource,
    resource_class,
)

__all__ = [
    "DEFAULT_TIMEOUT", "FIELD_MANAGER", "KINDS", "NOT_AWAITED", "PULUMI_ANNOTATIONS", "UnknownKind", "cluster_provider",
    "kube_resource", "resource_class",
]
