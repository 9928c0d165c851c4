"""The SLA probes follow a platform that a failover moved (issue 19): the rendered Prometheus
configuration comes from the province as placed (the DR placement record), so a platform with an
address of its own at the DR site (``platforms[].dr.address``) is probed there after
``dcops dr failover`` and at home again after ``dcops dr failback``."""

from __future__ import annotations

import pytest
import yaml

from infra.dr import placement as PL
from infra.paths import REPO
from infra.render import prometheus as R
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
MOVED, DR_ADDRESS = "motcua", "10.10.3.40"


@pytest.fixture(scope="module")
def pf(tmp_path_factory):
    data = yaml.safe_load(PROVINCE.read_text())
    p = next(p for p in data["platforms"] if p["id"] == MOVED)
    assert p["dr"]["mode"] == "warm"
    p["dr"]["address"] = DR_ADDRESS
    path = tmp_path_factory.mktemp("prov") / "province.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return load_province(path)


def probes(out_dir) -> dict[str, tuple[str, str]]:
    """platform -> (probe target, cluster label) in the rendered prometheus.yml."""
    doc = yaml.safe_load((out_dir / "prometheus.yml").read_text())
    job = next(j for j in doc["scrape_configs"] if j["job_name"] == R.JOB_PLATFORM)
    return {sc["labels"]["platform"]: (sc["targets"][0], sc["labels"]["cluster"]) for sc in job["static_configs"]}


def test_probe_targets_follow_the_placement_record(pf, tmp_path):
    work = tmp_path / "work"
    home = pf.platform_by_id[MOVED]
    assert home.address != DR_ADDRESS

    R.render(pf, tmp_path / "before", placement=PL.placement(work))  # no record yet: everything at home
    before = probes(tmp_path / "before")
    assert before[MOVED] == (R.probe_url(home), home.cluster)
    assert f"//{home.address}:" in before[MOVED][0]

    PL.set_running(work, MOVED, "dr", home.cluster, "warm", "failover")  # what `dcops dr failover` records
    R.render(pf, tmp_path / "failover", placement=PL.placement(work))
    after = probes(tmp_path / "failover")
    assert f"//{DR_ADDRESS}:{home.ports[0].port}/healthz" in after[MOVED][0] and after[MOVED][1] == "dr"
    assert home.address not in after[MOVED][0]
    assert {k: v for k, v in after.items() if k != MOVED} == {k: v for k, v in before.items() if k != MOVED}
    # the SLIs aggregate by platform: its SLA history goes on across the move (the rules do not change)
    assert (tmp_path / "failover" / "rules" / "slo-recording.yml").read_text() == \
        (tmp_path / "before" / "rules" / "slo-recording.yml").read_text()

    PL.set_running(work, MOVED, home.cluster, home.cluster, "warm", "failback")  # `dcops dr failback`
    R.render(pf, tmp_path / "failback", placement=PL.placement(work))
    assert probes(tmp_path / "failback") == before


def test_a_platform_with_the_same_address_at_dr_is_probed_at_it_with_the_dr_cluster_label(pf, tmp_path):
    other = next(p for p in pf.platforms if p.id != MOVED and p.dr.mode != "none" and not p.dr.address)
    R.render(pf, tmp_path, placement={other.id: "dr"})
    target, cluster = probes(tmp_path)[other.id]
    assert target == R.probe_url(other) and cluster == "dr"
