"""Gateway exposure on a lab cluster: a province variant whose primary cluster is exposed through
Gateway API (``exposure.method: gateway``) is provisioned with ``dcops provision`` on a lab whose
control plane has Gateway API's standard CRDs (installed by ``lab up`` for such a cluster, from the
module pinned in tools/gateway-api). The API server validates the rendered Gateways and HTTPRoutes
against the real schema (an invalid one is refused) and stores them, and the cluster controls pass.

No Gateway controller runs in the lab (its nodes are kwok's): nothing programs the routes, so every
Gateway stays "Accepted: Unknown (Pending)", as the CRD's defaults say; the test asserts that too.
"""

from __future__ import annotations

import json
import random
import string

import pytest
import yaml

from conftest import dcops, lab_stack
from infra.paths import REPO, ToolMissing
from infra.render.k8s import GATEWAY_API, render_province
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
CLUSTER = "primary"
GATEWAY = {"method": "gateway", "address_pool": "dc-services", "class_name": "dcops-lab",
           "controller_namespace": "gateway-system", "controller_pods": {"app.kubernetes.io/name": "gateway-proxy"}}


def _variant(out):
    doc = yaml.safe_load(PROVINCE.read_text())
    [c] = [c for c in doc["datacenter"]["clusters"] if c["id"] == CLUSTER]
    c["exposure"] = dict(GATEWAY)
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return load_province(out)  # it must validate


def test_gateway_crds_are_installed_from_the_pinned_module():
    from infra.lab import gatewayapi

    try:
        docs = gatewayapi.manifests()
    except ToolMissing as e:
        pytest.fail(str(e))
    crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
            "gatewayclasses.gateway.networking.k8s.io"} <= set(crds)
    pinned = [ln.split()[-1] for ln in (REPO / "tools" / "gateway-api" / "go.mod").read_text().splitlines()
              if ln.startswith("require sigs.k8s.io/gateway-api ")]
    assert pinned and gatewayapi.version() == pinned[0]
    for d in crds.values():  # the standard channel, served as v1 where the renderer uses v1
        assert d["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard", d["metadata"]["name"]
    for kind in ("gateways", "httproutes"):
        assert any(v["name"] == "v1" and v["served"] for v in crds[f"{kind}.gateway.networking.k8s.io"]["spec"]["versions"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from infra.lab import controlplane as cp

    try:
        cp.check_tools()
        from infra.lab import gatewayapi

        gatewayapi.manifests()
    except ToolMissing as e:
        pytest.fail(str(e))
    province = tmp_path_factory.mktemp("gw") / "province-gateway.yaml"
    model = _variant(province)
    name = "gw" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    r = dcops("lab", "up", "--name", name, "--no-hosts", "--province", str(province))
    try:
        assert r.returncode == 0, f"lab up failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        assert f"{CLUSTER}: Gateway API v1.6.3 CRDs established" in r.stdout, r.stdout[-3000:]
        yield {"name": name, "model": model, "province": province, "up": r.stdout,
               "api": {c.id: cp.Api.for_cluster(name, c.id) for c in model.datacenter.clusters}}
    finally:
        d = dcops("lab", "down", "--name", name)
        assert d.returncode == 0, d.stdout + d.stderr


@pytest.fixture(scope="module")
def provisioned(lab):
    r = dcops("provision", *lab_stack(lab["name"]))
    assert r.returncode == 0, f"dcops provision failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
    return r


def _gw_objects(model):
    return [o for o in render_province(model)[CLUSTER].objects() if o["apiVersion"] == GATEWAY_API]


@pytest.mark.lab
def test_crds_only_where_the_exposure_is_a_gateway(lab):
    crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gateways.gateway.networking.k8s.io"
    status, _ = lab["api"][CLUSTER].request("GET", crd)
    assert status == 200
    status, _ = lab["api"]["dr"].request("GET", crd)  # dr keeps its LoadBalancer exposure
    assert status == 404


@pytest.mark.lab
def test_provisioned_gateways_and_routes_are_stored_as_rendered(lab, provisioned):
    api = lab["api"][CLUSTER]
    want = _gw_objects(lab["model"])
    https = [p for p in lab["model"].platforms if p.cluster == CLUSTER and any(x.scheme == "https" for x in p.ports)]
    assert {o["kind"] for o in want} == {"Gateway", "HTTPRoute"} and https
    for o in want:
        plural = {"Gateway": "gateways", "HTTPRoute": "httproutes"}[o["kind"]]
        m = o["metadata"]
        got = api.get(f"/apis/{GATEWAY_API}/namespaces/{m['namespace']}/{plural}/{m['name']}")
        assert any(f.get("manager") == "dcops" for f in got["metadata"].get("managedFields", [])), m
        if o["kind"] == "Gateway":
            assert got["spec"]["gatewayClassName"] == GATEWAY["class_name"]
            assert got["spec"]["addresses"] == o["spec"]["addresses"]
            assert [(x["name"], x["port"], x["protocol"]) for x in got["spec"]["listeners"]] == [
                (x["name"], x["port"], x["protocol"]) for x in o["spec"]["listeners"]]
            for g, w in zip(got["spec"]["listeners"], o["spec"]["listeners"]):
                if "tls" in w:  # the schema's default group ("": core) added by the API server
                    assert g["tls"] == {**w["tls"], "certificateRefs": [{"group": "", **r} for r in w["tls"]["certificateRefs"]]}
                else:
                    assert "tls" not in g
            # no controller in the lab: the CRD's default status, never Accepted/Programmed
            cond = {c["type"]: (c["status"], c["reason"]) for c in got["status"]["conditions"]}
            assert cond["Accepted"] == ("Unknown", "Pending") and cond["Programmed"] == ("Unknown", "Pending"), cond
        else:
            assert got["spec"]["parentRefs"][0]["name"] == o["spec"]["parentRefs"][0]["name"]
            assert got["spec"]["rules"][0]["backendRefs"][0]["port"] == o["spec"]["rules"][0]["backendRefs"][0]["port"]
            # the schema's defaults were applied by the API server: a rule with no match matches every path
            assert got["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}], got["spec"]
    tls = [x for o in want if o["kind"] == "Gateway" for x in o["spec"]["listeners"] if x["protocol"] == "HTTPS"]
    assert len(tls) == len(https)


@pytest.mark.lab
def test_the_api_server_validates_against_the_real_schema(lab, provisioned):
    """A plain HTTP listener carrying TLS settings (a CEL rule of the CRD) and a listener on port 0
    (its OpenAPI schema) are refused, as a real cluster refuses them; the rendered one passes."""
    api = lab["api"][CLUSTER]
    gw = next(o for o in _gw_objects(lab["model"]) if o["kind"] == "Gateway"
              and any(x["protocol"] == "HTTPS" for x in o["spec"]["listeners"]))
    ns = gw["metadata"]["namespace"]
    bad = json.loads(json.dumps(gw))
    bad["metadata"] = {"name": "broken", "namespace": ns}
    for x in bad["spec"]["listeners"]:
        x["protocol"] = "HTTP"  # keeps its tls
    status, out = api.request("POST", f"/apis/{GATEWAY_API}/namespaces/{ns}/gateways?dryRun=All", bad)
    assert status == 422, (status, out)
    assert "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']" in json.dumps(out), out
    bad_port = json.loads(json.dumps(gw))
    bad_port["metadata"] = {"name": "broken", "namespace": ns}
    bad_port["spec"]["listeners"][0]["port"] = 0
    status, out = api.request("POST", f"/apis/{GATEWAY_API}/namespaces/{ns}/gateways?dryRun=All", bad_port)
    assert status == 422 and "spec.listeners[0].port" in json.dumps(out), (status, out)
    ok = json.loads(json.dumps(gw))
    ok["metadata"] = {"name": "dry-run-ok", "namespace": ns}
    status, out = api.request("POST", f"/apis/{GATEWAY_API}/namespaces/{ns}/gateways?dryRun=All", ok)
    assert status == 201, (status, out)


@pytest.mark.lab
def test_cluster_controls_pass_with_gateway_exposure(lab, provisioned, tmp_path):
    """Every Kubernetes control (DCOPS-K8S-*: default deny with the gateway's proxies admitted,
    quotas, RBAC, workloads...) passes on the provisioned cluster, through `dcops check`."""
    from checks.controls import cluster as C

    outp = tmp_path / "latest.json"
    r = dcops("check", *lab_stack(lab["name"]), "--target", CLUSTER, "--only", ",".join(C.CONTROLS), "--output", str(outp))
    doc = json.loads(outp.read_text()) if outp.exists() else {}
    bad = [(x["control"], x["status"], x["reason"]) for x in doc.get("results", []) if x["status"] != "pass"]
    assert not bad, bad
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert {x["control"] for x in doc["results"]} == set(C.CONTROLS)
