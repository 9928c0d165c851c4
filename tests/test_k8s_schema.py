"""Every Kubernetes object rendered for every province file validates against the
OpenAPI schema of the pinned Kubernetes version (strict: unknown fields fail).

The program declares exactly the rendered objects (tests/test_program_mocks.py
checks that), so this covers everything ``pulumi up`` would send.
"""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from infra.paths import REPO
from infra.render import k8s as render
from infra.validate import load_province

K8S_VERSION = "1.34.0"
PROVINCES = sorted((REPO / "stacks").glob("province-*.yaml"))


def validate(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_schema_version_is_pinned():
    """Validation must use the 1.34 schema itself, not a fallback to an older one."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    assert kubernetes_validate.validate(ns, K8S_VERSION, strict=True) == "1.34"


def test_lab_province_is_covered():
    assert REPO / "stacks" / "province-lab.yaml" in PROVINCES


@pytest.mark.parametrize("path", PROVINCES, ids=lambda p: p.name)
def test_every_rendered_object_validates(path):
    model = load_province(path)
    rendered = render.render_province(model)
    kinds: set[str] = set()
    problems: list[str] = []
    for cid, objs in rendered.items():
        for obj in objs.objects():
            kinds.add(obj["kind"])
            try:
                validate(obj)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{cid}: {render.object_key(obj)}: {e.message} at {list(e.path)}")
        # the cluster versions the model pins are what the schema checks
        assert objs.kubernetes_version == "1.34"
        for node in render.node_pool_nodes(model, cid):
            try:
                validate(node)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{cid}: node {node['metadata']['name']}: {e.message}")
    assert problems == []
    assert {"Namespace", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ResourceQuota",
            "LimitRange", "Deployment", "Service", "StorageClass"} <= kinds


def _deployment() -> dict:
    model = load_province(REPO / "stacks" / "province-lab.yaml")
    return copy.deepcopy(render.render_cluster(model, "primary").platforms["dvc"].deployment)


@pytest.mark.parametrize(
    "breakage",
    [
        "unknown field",
        "wrong type",
        "missing required field",
        "scalar for a list",
    ],
)
def test_a_broken_object_is_rejected(breakage):
    obj = _deployment()
    validate(obj)  # intact, it passes
    if breakage == "unknown field":
        obj["spec"]["replicaz"] = 3
    elif breakage == "wrong type":
        obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "https"
    elif breakage == "missing required field":
        del obj["spec"]["selector"]
    elif breakage == "scalar for a list":
        obj["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"] = {"drop": "ALL"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(obj)


def test_a_broken_network_policy_is_rejected():
    model = load_province(REPO / "stacks" / "province-lab.yaml")
    pol = copy.deepcopy(render.render_cluster(model, "primary").platforms["lgsp"].network_policies[0])
    validate(pol)
    pol["spec"]["ingres"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(pol)
