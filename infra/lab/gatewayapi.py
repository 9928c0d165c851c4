"""Gateway API in a lab cluster: the standard-channel CRDs, installed when the cluster's exposure
is a Gateway (``exposure.method: gateway``).

A real cluster gets them with its Gateway controller (Cilium, Envoy Gateway, Istio, ...). The lab
has no controller (its nodes are kwok's: no pod really runs), so it installs the CRDs alone: the
API server then validates the rendered Gateways and HTTPRoutes against Gateway API's real schema
(OpenAPI and CEL rules) and stores them, and ``pulumi up`` applies them as it would on a cluster.
Nothing programs the routes: no Gateway or route is ever ``Accepted``/``Programmed`` in the lab.

The files are Gateway API's own ``config/crd/standard/*.yaml`` of the version pinned in
``tools/gateway-api`` (``sigs.k8s.io/gateway-api``), copied out of the Go module cache by
``scripts/install-tools gateway-api-crds`` into ``<cache>/tools/data/gateway-api-crds``: nothing
is downloaded at run time. They include the ``safe-upgrades`` ValidatingAdmissionPolicy (and its
binding) that refuses experimental-channel CRDs over these.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import yaml

from ..model import Cluster
from ..paths import ToolMissing, cache_dir

NAME = "gateway-api-crds"
GROUP = "gateway.networking.k8s.io"
_PATHS = {
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"):
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies",
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"):
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
}


def crd_dir() -> Path:
    return cache_dir() / "tools" / "data" / NAME


def needed(cluster: Cluster) -> bool:
    return bool(cluster.exposure and cluster.exposure.method == "gateway")


def manifests() -> list[dict[str, Any]]:
    """Every object of the installed files (CRDs first), or ToolMissing saying how to install them."""
    d = crd_dir()
    files = sorted(d.glob("*.yaml")) if d.is_dir() else []
    if not files:
        raise ToolMissing(f"Gateway API's CRDs are not installed (no {d}/*.yaml): run `scripts/install-tools {NAME}`")
    docs = [doc for f in files for doc in yaml.safe_load_all(f.read_text()) if doc]
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) not in _PATHS:
            raise ValueError(f"unexpected {doc.get('kind')} in {d}")
    return sorted(docs, key=lambda o: o["kind"] != "CustomResourceDefinition")


def version() -> str:
    """The bundle version the CRDs carry (``gateway.networking.k8s.io/bundle-version``)."""
    for doc in manifests():
        v = (doc.get("metadata", {}).get("annotations") or {}).get(f"{GROUP}/bundle-version")
        if v:
            return v
    return "unknown"


def install(api, progress: Callable[[str], None] = print, timeout: float = 60.0) -> list[str]:
    """Create the CRDs (and the safe-upgrades policy) in a cluster through its admin ``Api``
    (:class:`infra.lab.controlplane.Api`); wait until every CRD is Established. Returns the CRD names."""
    docs = manifests()
    for doc in docs:
        api.apply(_PATHS[(doc["apiVersion"], doc["kind"])], doc)
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"]
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if not _established(api, n)]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"Gateway API CRDs not Established after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.3)
    progress(f"Gateway API {version()} CRDs established ({len(names)}; no Gateway controller runs in the lab)")
    return names


def _established(api, name: str) -> bool:
    obj = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])
