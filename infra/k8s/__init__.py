"""Kubernetes objects as Pulumi resources, through our own dynamic provider.

``KubeObject(name, manifest, kubeconfig, await_ready=False, ready_timeout=300, opts=None)``;
see :mod:`infra.k8s.provider`.
"""

from .provider import DEFAULT_TIMEOUT, FIELD_MANAGER, KubeError, KubeObject, KubeProvider

__all__ = ["DEFAULT_TIMEOUT", "FIELD_MANAGER", "KubeError", "KubeObject", "KubeProvider"]
