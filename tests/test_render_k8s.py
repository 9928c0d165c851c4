"""The rendered objects are what a real cluster runs (issue 15): per-replica volumes make a
StatefulSet, shared ones a ReadWriteMany claim; rollouts cannot deadlock; PodDisruptionBudgets,
spread across nodes and probes on the health path; exposure at the platform's address
(LoadBalancer from the province's pool, or Gateway API with TLS from the province's
certificates); a policy refusing Services with externalIPs."""

from __future__ import annotations

import copy

import pytest
import yaml

from infra.model import ProvinceFile
from infra.paths import REPO
from infra.render import k8s as K
from infra.validate import load_province

FILES = [REPO / "stacks" / "province-lab.yaml", REPO / "stacks" / "province-thanhhoa.yaml"]


@pytest.fixture(scope="module", params=FILES, ids=lambda f: f.stem)
def model(request) -> ProvinceFile:
    return load_province(request.param)


def test_workload_kind_follows_the_storage(model):
    for p in model.platforms:
        po = K.render_platform(model, p.id)
        w = po.workload
        if p.per_replica_storage:
            assert w["kind"] == "StatefulSet"
            assert [t["metadata"]["name"] for t in w["spec"]["volumeClaimTemplates"]] == \
                [v.name for v in p.storage if v.per_replica]
            assert w["spec"]["serviceName"] == po.headless_service["metadata"]["name"]
            # the controller makes those claims: they do not carry dcops' managed-by label
            assert all(t["metadata"]["labels"] == {K.LABEL_PLATFORM: p.id} for t in w["spec"]["volumeClaimTemplates"])
            assert po.headless_service["spec"]["clusterIP"] == "None"
            assert w["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        else:
            assert w["kind"] == "Deployment" and po.headless_service is None
        # shared claims: ReadWriteMany whenever more than one replica mounts them
        for c in po.pvcs:
            if p.replicas > 1:
                assert c["spec"]["accessModes"] == ["ReadWriteMany"], (p.id, c)
        assert {c["metadata"]["name"] for c in po.pvcs} == {v.name for v in p.storage if not v.per_replica}


def test_rollout_cannot_deadlock_on_a_volume(model):
    data = model.model_dump(mode="json")
    p = next(x for x in data["platforms"] if x["id"] == "motcua")
    p["replicas"] = 1
    p["storage"] = [{"name": "files", "size_gib": 5, "storage_class": "ssd-replicated", "mount_path": "/data"}]
    one = ProvinceFile.model_validate(data)
    d = K.render_platform(one, "motcua").workload
    assert d["kind"] == "Deployment" and d["spec"]["strategy"] == {"type": "Recreate"}  # RWO: no surge pod
    for q in model.platforms:
        w = K.render_platform(model, q.id).workload
        if w["kind"] == "Deployment" and w["spec"]["strategy"]["type"] == "RollingUpdate":
            modes = {K.access_mode(model, v.storage_class) for v in q.storage if not v.per_replica}
            assert modes <= {"ReadWriteMany"}, q.id  # a surge pod can always mount what it needs


def test_availability(model):
    for p in model.platforms:
        po = K.render_platform(model, p.id)
        pdb = po.disruption_budget
        assert pdb["kind"] == "PodDisruptionBudget" and pdb["spec"]["maxUnavailable"] == 1  # never 0: drains proceed
        assert pdb["spec"]["selector"]["matchLabels"].items() <= po.workload["spec"]["template"]["metadata"]["labels"].items()
        pod = po.workload["spec"]["template"]["spec"]
        if p.replicas > 1:
            (tsc,) = pod["topologySpreadConstraints"]
            assert tsc["topologyKey"] == "kubernetes.io/hostname" and tsc["maxSkew"] == 1
            assert tsc["nodeTaintsPolicy"] == "Honor"  # a cordoned node is not a domain: a drain never strands a pod
            assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        (c,) = pod["containers"]
        port = p.health_port()
        for probe in ("startupProbe", "readinessProbe"):
            pr = c[probe]
            if port.scheme == "tcp":
                assert pr["tcpSocket"] == {"port": port.name}
            else:
                assert pr["httpGet"] == {"path": p.health.path, "port": port.name, "scheme": port.scheme.upper()}
        # liveness: the process answers on its port (no liveness path declared): a failing dependency
        # makes the pod unready, it does not restart every replica
        assert c["livenessProbe"]["tcpSocket"] == {"port": port.name}
        assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= p.health.startup_seconds
        assert c["readinessProbe"] != c["livenessProbe"]
        assert c["image"] == p.image
        assert c["imagePullPolicy"] == "Always"


def test_liveness_path_when_declared():
    m = load_province(FILES[0])
    data = m.model_dump(mode="json")
    next(p for p in data["platforms"] if p["id"] == "dvc")["health"] = {"path": "/ready", "liveness_path": "/alive"}
    c = K.render_platform(ProvinceFile.model_validate(data), "dvc").workload["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"] == {"path": "/alive", "port": "https", "scheme": "HTTPS"}
    assert c["readinessProbe"]["httpGet"]["path"] == c["startupProbe"]["httpGet"]["path"] == "/ready"


def test_thanhhoa_images_by_digest():
    m = load_province(FILES[1])
    assert all("@sha256:" in p.image for p in m.platforms)


def test_storage_classes_per_cluster(model):
    for c in model.datacenter.clusters:
        objs = K.render_cluster(model, c.id)
        for sc_obj in objs.storage_classes:
            sc = model.storage_class_by_name[sc_obj["metadata"]["name"]]
            assert c.id in sc.clusters
            params = sc_obj.get("parameters", {})
            if sc.backend == "ceph-rbd":
                assert params["clusterID"] == sc.clusters[c.id].ceph_cluster_id and params["pool"]
                assert params["csi.storage.k8s.io/provisioner-secret-name"] and params["csi.storage.k8s.io/node-stage-secret-namespace"]
            if sc.backend == "cephfs":
                assert params["fsName"] == sc.clusters[c.id].fs_name
            if sc.backend == "nfs":
                assert set(params) == {"server", "share"}
    # DR and primary are different Ceph clusters
    ids = {cid: K.render_cluster(model, cid).storage_classes[0]["parameters"]["clusterID"] for cid in ("primary", "dr")}
    assert ids["primary"] != ids["dr"]


def test_loadbalancer_exposure(model):
    for p in model.platforms:
        exposure = model.cluster_by_id[p.cluster].exposure
        assert exposure and exposure.method == "loadbalancer"
        po = K.render_platform(model, p.id)
        svc = po.service
        assert svc["spec"]["type"] == "LoadBalancer"
        assert svc["metadata"]["annotations"][K.METALLB_IPS] == p.address
        assert svc["metadata"]["annotations"][K.METALLB_POOL] == exposure.address_pool
        assert svc["spec"]["externalTrafficPolicy"] == "Local"  # the sites' addresses reach the NetworkPolicies
        assert svc["spec"]["allocateLoadBalancerNodePorts"] is False
        hard = po.resource_quota["spec"]["hard"]
        assert hard["services.loadbalancers"] == "1" and hard["services.nodeports"] == "0"
        sites = model.sites_reaching(p.id)
        if sites:
            allow = next(x for x in po.network_policies if x["metadata"]["name"] == "allow-sites")
            assert {b["ipBlock"]["cidr"] for b in allow["spec"]["ingress"][0]["from"]} == {s.lan for s in sites}
        assert not po.exposure


def test_gateway_exposure():
    m = load_province(FILES[0])
    data = m.model_dump(mode="json")
    for c in data["datacenter"]["clusters"]:
        c["exposure"] = {"method": "gateway", "address_pool": "dc-services", "class_name": "eg",
                         "controller_namespace": "envoy-gateway-system", "controller_pods": {"app.kubernetes.io/name": "envoy"}}
    next(p for p in data["platforms"] if p["id"] == "dvc")["hostname"] = "dichvucong.lab.gov.vn"
    g = ProvinceFile.model_validate(data)
    po = K.render_platform(g, "dvc")
    assert po.service["spec"]["type"] == "ClusterIP"
    gw, *routes = po.exposure
    assert gw["kind"] == "Gateway" and gw["spec"]["gatewayClassName"] == "eg"
    assert gw["spec"]["addresses"] == [{"type": "IPAddress", "value": "10.10.2.10"}]
    (listener,) = gw["spec"]["listeners"]
    assert listener["protocol"] == "HTTPS" and listener["hostname"] == "dichvucong.lab.gov.vn"
    assert listener["tls"] == {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "dvc-tls"}]}
    (route,) = routes
    assert route["spec"]["parentRefs"] == [{"name": "dvc", "sectionName": "https"}]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "dvc", "port": 8443}]
    pol = next(x for x in po.network_policies if x["metadata"]["name"] == "allow-gateway")
    (peer,) = pol["spec"]["ingress"][0]["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {K.NS_NAME_LABEL: "envoy-gateway-system"}
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "envoy"}
    # default deny still holds: the gateway's proxies are admitted on the platform's ports only
    assert pol["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8443}]
    # the Pulumi program can make them: the generic custom resource
    from infra.k8s.resources import resource_args, resource_class
    import pulumi_kubernetes as k8s

    assert resource_class(gw) is k8s.apiextensions.CustomResource
    assert resource_args(gw)["api_version"] == K.GATEWAY_API and resource_args(gw)["kind"] == "Gateway"


def test_external_ips_refused_by_policy(model):
    for c in model.datacenter.clusters:
        objs = K.render_cluster(model, c.id)
        policy, binding = objs.admission_policies
        assert policy["kind"] == "ValidatingAdmissionPolicy" and binding["kind"] == "ValidatingAdmissionPolicyBinding"
        assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
        (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
        assert rule["resources"] == ["services"] and set(rule["operations"]) == {"CREATE", "UPDATE"}
        assert "externalIPs" in policy["spec"]["validations"][0]["expression"]
        assert policy in objs.cluster_scoped()


def test_every_kind_has_its_typed_resource(model):
    from infra.k8s.resources import resource_class

    for objs in K.render_province(model).values():
        for o in objs.objects():
            resource_class(o)  # raises UnknownKind otherwise


def test_objects_carry_no_yaml_aliases(model):
    text = yaml.safe_dump_all([o for objs in K.render_province(model).values() for o in objs.objects()])
    assert "&id" not in text and "*id" not in text  # no object shared between two places
    objs = K.render_province(model)
    before = copy.deepcopy([o for c in objs.values() for o in c.objects()])
    assert before == [o for c in K.render_province(model).values() for o in c.objects()]
