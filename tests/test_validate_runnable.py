"""Validation of what a real cluster can run (issue 15): one test per rule. Each bad file is
refused with the file's line, the field's path, what is wrong and the fix; the fixed file
validates again."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.validate import check_text

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "stacks" / "province-lab.yaml"


def lab_data() -> dict:
    return yaml.safe_load(LAB.read_text(encoding="utf-8"))


def problems_of(data: dict) -> list:
    model, problems = check_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert model is None, "a file with problems must not produce a model"
    return problems


def valid(data: dict) -> None:
    model, problems = check_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    assert not problems, [f"{p.path}: {p.message}" for p in problems]


def one(problems, path: str, fragment: str, fix: str):
    hits = [p for p in problems if p.path == path and fragment in p.message]
    assert hits, f"expected a problem at {path!r} containing {fragment!r}; got:\n" + "\n".join(
        f"{p.path}: {p.message}" for p in problems)
    assert fix in hits[0].fix, hits[0].fix
    assert hits[0].line, "every problem names its line"
    return hits[0]


def platform(d: dict, pid: str) -> tuple[int, dict]:
    return next((i, p) for i, p in enumerate(d["platforms"]) if p["id"] == pid)


def storage_class(d: dict, name: str) -> tuple[int, dict]:
    return next((i, c) for i, c in enumerate(d["datacenter"]["storage_classes"]) if c["name"] == name)


def test_shared_rwo_volume_with_replicas_is_refused():
    d = lab_data()
    i, p = platform(d, "dvc")  # 3 replicas
    p["storage"][0]["storage_class"] = "ssd-replicated"  # ceph-rbd: ReadWriteOnce
    pr = one(problems_of(d), f"platforms[{i}].storage[0]", "ReadWriteOnce", "per_replica: true")
    assert "multi-attach" in pr.message and "shared-files" in pr.fix  # the RWX classes of the cluster are named
    p["storage"][0]["per_replica"] = True  # each replica its own volume: a StatefulSet
    valid(d)
    p["storage"][0]["per_replica"] = False
    p["replicas"] = 1  # one replica may hold a ReadWriteOnce volume
    valid(d)


def test_rwx_volume_may_be_shared():
    d = lab_data()
    _, p = platform(d, "motcua")
    assert p["replicas"] > 1 and not p["storage"][0].get("per_replica")
    assert storage_class(d, p["storage"][0]["storage_class"])[1]["backend"] in ("cephfs", "nfs")
    valid(d)


def test_iscsi_class_is_refused():
    d = lab_data()
    i, c = storage_class(d, "hdd-archive")
    c["backend"] = "san-iscsi"
    one(problems_of(d), f"datacenter.storage_classes[{i}].backend", "does not provision volumes dynamically", "ceph-rbd")


@pytest.mark.parametrize("backend,missing", [("ceph-rbd", "pool"), ("ceph-rbd", "ceph_cluster_id"),
                                             ("cephfs", "fs_name"), ("nfs", "server"), ("nfs", "share")])
def test_driver_parameters_are_required(backend, missing):
    d = lab_data()
    name = {"ceph-rbd": "ssd-replicated", "cephfs": "shared-files", "nfs": "hdd-archive"}[backend]
    i, c = storage_class(d, name)
    del c["clusters"]["primary"][missing]
    one(problems_of(d), f"datacenter.storage_classes[{i}].clusters.primary.{missing}", f"needs '{missing}'", "primary")


def test_unknown_driver_parameter_is_refused():
    d = lab_data()
    i, c = storage_class(d, "hdd-archive")  # csi-driver-nfs refuses parameters it does not know
    c["clusters"]["primary"]["pool"] = "k8s"
    pr = one(problems_of(d), f"datacenter.storage_classes[{i}].clusters.primary.pool", "not a parameter of the nfs driver",
             "remove it")
    assert "server" in pr.fix and "share" in pr.fix


def test_class_on_unknown_cluster():
    d = lab_data()
    i, c = storage_class(d, "ssd-replicated")
    c["clusters"]["nowhere"] = dict(c["clusters"]["dr"], ceph_cluster_id="another-ceph")
    one(problems_of(d), f"datacenter.storage_classes[{i}].clusters.nowhere", "cluster 'nowhere' does not exist", "primary")


def test_volume_on_a_class_the_cluster_lacks():
    d = lab_data()
    i, p = platform(d, "lris")  # on the DR cluster
    p["storage"] = [{"name": "archive", "size_gib": 5, "storage_class": "hdd-archive", "mount_path": "/archive"}]
    one(problems_of(d), f"platforms[{i}].storage[0].storage_class", "is not on cluster 'dr'", "add 'dr'")


def test_primary_and_dr_sharing_one_ceph_is_refused():
    d = lab_data()
    i, c = storage_class(d, "ssd-replicated")
    c["clusters"]["dr"]["ceph_cluster_id"] = c["clusters"]["primary"]["ceph_cluster_id"]
    one(problems_of(d), f"datacenter.storage_classes[{i}].clusters.dr", "one disaster takes both", "its own Ceph")


def test_replicas_on_one_node_are_refused():
    d = lab_data()
    dr = next(c for c in d["datacenter"]["clusters"] if c["id"] == "dr")
    dr["node_pools"][0]["count"] = 1
    i, _ = platform(d, "lris")
    one(problems_of(d), f"platforms[{i}].replicas", "has one node in segment 'app'", "count >= 2")


def test_platform_reached_by_sites_needs_exposure():
    d = lab_data()
    dr = next(c for c in d["datacenter"]["clusters"] if c["id"] == "dr")
    del dr["exposure"]
    i, _ = platform(d, "lris")
    one(problems_of(d), f"platforms[{i}].cluster", "has no 'exposure'", "add 'exposure' to cluster 'dr'")


def test_gateway_needs_its_class_and_controller():
    d = lab_data()
    ci, c = next((i, c) for i, c in enumerate(d["datacenter"]["clusters"]) if c["id"] == "primary")
    c["exposure"] = {"method": "gateway", "address_pool": "dc-services"}
    problems = problems_of(d)
    one(problems, f"datacenter.clusters[{ci}].exposure.class_name", "needs 'class_name'", "GatewayClass")
    one(problems, f"datacenter.clusters[{ci}].exposure.controller_namespace", "needs 'controller_namespace'", "proxies")
    c["exposure"] |= {"class_name": "eg", "controller_namespace": "envoy-gateway-system"}
    valid(d)


def test_kubernetes_without_validating_admission_policy():
    d = lab_data()
    d["datacenter"]["clusters"][0]["kubernetes_version"] = "1.29"
    one(problems_of(d), "datacenter.clusters[0].kubernetes_version", "no ValidatingAdmissionPolicy", "1.30")


def test_health_port_must_exist():
    d = lab_data()
    i, p = platform(d, "dvc")
    p["health"] = {"path": "/status", "port": "metrics"}
    one(problems_of(d), f"platforms[{i}].health.port", "'metrics' is not a port", "https")


def test_port_named_for_tls_declared_plain():
    d = lab_data()
    i, p = platform(d, "dvc")
    p["ports"][0]["app_protocol"] = "http"
    one(problems_of(d), f"platforms[{i}].ports[0].app_protocol", "named for TLS", "rename")


def test_http_over_udp_is_refused():
    d = lab_data()
    i, p = platform(d, "ioc")
    p["ports"].append({"name": "stream", "port": 3001, "protocol": "UDP", "app_protocol": "http"})
    one(problems_of(d), f"platforms[{i}].ports[1].app_protocol", "runs over TCP", "make the port TCP")


def test_tls_ports_need_the_province_ca():
    d = lab_data()
    del d["datacenter"]["certificates"]
    one(problems_of(d), "datacenter", "names no CA", "ca_file")
