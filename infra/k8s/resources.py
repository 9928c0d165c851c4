"""Rendered Kubernetes objects as typed ``pulumi_kubernetes`` resources.

The objects come from :mod:`infra.render.k8s` (plain dicts); here each becomes the
typed resource class of its kind (``pulumi_kubernetes.core.v1.Namespace``,
``apps.v1.Deployment``, ...: see :data:`KINDS`), its ``metadata``/``spec``/... passed
as they were rendered, through an explicit ``pulumi_kubernetes.Provider`` per
cluster (:func:`cluster_provider`):

- kubeconfig: a PATH (never its contents, so nothing secret lands in the state),
  and the kubeconfig context when the stack names one;
- server-side apply (``enableServerSideApply``), as field manager ``dcops`` with
  conflicts forced (the annotations ``pulumi.com/patchFieldManager: dcops`` and
  ``pulumi.com/patchForce: "true"``: the provider has no provider-wide setting for
  them), the same as the ``kubectl apply --server-side --field-manager=dcops
  --force-conflicts`` baseline of the benchmark. An object that already exists is
  adopted in place (a server-side apply is an upsert: same uid, nothing deleted);
- the provider's own await logic: Namespaces until Active, PVCs until Bound
  (Pending for ``WaitForFirstConsumer`` classes), Deployments until rolled out
  (every replica Ready); ``skip_await`` sets ``pulumi.com/skipAwait`` instead.
  Services are never awaited (:data:`NOT_AWAITED`): the provider would wait until
  their endpoints list Ready pods, which is the Deployment's await again, and each
  waiting Service holds one of the engine's parallel step slots (8 on 2 cores)
  from its namespace's creation until its pods are Ready, so the other objects of
  the province queued behind them. ``timeout`` becomes the resource's custom
  timeouts (create, update, delete).

The annotations above are Pulumi's, so they are added here and not by the
renderer: ``kubectl`` applies the rendered objects without them.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

FIELD_MANAGER = "dcops"
DEFAULT_TIMEOUT = 300

ANNOT_FIELD_MANAGER = "pulumi.com/patchFieldManager"
ANNOT_FORCE = "pulumi.com/patchForce"
ANNOT_SKIP_AWAIT = "pulumi.com/skipAwait"
PULUMI_ANNOTATIONS = (ANNOT_FIELD_MANAGER, ANNOT_FORCE, ANNOT_SKIP_AWAIT)
NOT_AWAITED = frozenset({"Service"})

# Rendered (apiVersion, kind) -> the typed resource class that manages it.
KINDS: dict[tuple[str, str], type[pulumi.CustomResource]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "PersistentVolumeClaim"): k8s.core.v1.PersistentVolumeClaim,
    ("v1", "ResourceQuota"): k8s.core.v1.ResourceQuota,
    ("v1", "LimitRange"): k8s.core.v1.LimitRange,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("storage.k8s.io/v1", "StorageClass"): k8s.storage.v1.StorageClass,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"):
        k8s.admissionregistration.v1.ValidatingAdmissionPolicy,
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"):
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding,
    # Gateway API kinds are CRDs: the SDK's generic custom resource (apiVersion and kind passed on)
    ("gateway.networking.k8s.io/v1", "Gateway"): k8s.apiextensions.CustomResource,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): k8s.apiextensions.CustomResource,
}


class UnknownKind(KeyError):
    """The renderer made an object of a kind :data:`KINDS` does not map (add it there)."""


def resource_class(manifest: dict) -> type[pulumi.CustomResource]:
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    try:
        return KINDS[key]
    except KeyError:
        raise UnknownKind(f"{key[1]} ({key[0]}) has no typed pulumi_kubernetes class in infra.k8s.KINDS") from None


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def with_pulumi_annotations(manifest: dict, skip_await: bool = False) -> dict:
    """A copy of ``manifest`` with the annotations that make the provider apply as ``dcops``, forced."""
    m = copy.deepcopy(manifest)
    ann = m.setdefault("metadata", {}).setdefault("annotations", {})
    ann[ANNOT_FIELD_MANAGER] = FIELD_MANAGER
    ann[ANNOT_FORCE] = "true"
    if skip_await or m.get("kind") in NOT_AWAITED:
        ann[ANNOT_SKIP_AWAIT] = "true"
    return m


def resource_args(manifest: dict) -> dict[str, Any]:
    """The typed class's keyword arguments: the object's top-level fields (``roleRef`` -> ``role_ref``),
    their values as rendered (nested keys stay camelCase: the SDK passes dict keys through).
    A custom resource also takes its ``api_version`` and ``kind``."""
    custom = resource_class(manifest) is k8s.apiextensions.CustomResource
    return {_snake(k): v for k, v in manifest.items() if custom or k not in ("apiVersion", "kind")}


def cluster_provider(
    name: str, kubeconfig: str, context: Optional[str] = None, opts: Optional[pulumi.ResourceOptions] = None
) -> k8s.Provider:
    """The provider of one cluster: kubeconfig path (and context), server-side apply."""
    return k8s.Provider(
        name,
        kubeconfig=kubeconfig,
        context=context,
        enable_server_side_apply=True,
        suppress_deprecation_warnings=True,
        opts=opts,
    )


def kube_resource(
    name: str,
    manifest: dict,
    provider: k8s.Provider,
    *,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    skip_await: bool = False,
    timeout: int = DEFAULT_TIMEOUT,
) -> pulumi.CustomResource:
    """One rendered object as its typed resource on ``provider``, named ``name``."""
    cls = resource_class(manifest)
    t = f"{int(timeout)}s"
    opts = pulumi.ResourceOptions(
        parent=parent,
        provider=provider,
        depends_on=list(depends_on),
        custom_timeouts=pulumi.CustomTimeouts(create=t, update=t, delete=t),
    )
    return cls(name, opts=opts, **resource_args(with_pulumi_annotations(manifest, skip_await)))

