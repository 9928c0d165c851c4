"""`dcops bench --cases sla` at a small scale: the province scaled down to 10 sites, 2 days of history.

The case runs for real (Debian's Prometheus and promtool in a loopback-only namespace of its own,
named from the lab name): the recording rules are backfilled with promtool here, so the test also
checks that the recorded series the full-size case computes itself (``recorded_series``) are what
promtool records.  With and without recording rules the report must give the same SLIs, the raw one
must equal the generated ground truth, every result must be a verdict, and a measure and a target
must come out.  Afterwards the namespace, the processes and the files are gone.
"""

from __future__ import annotations

import random
import string
import subprocess

import pytest

from checks.result import Status
from infra.bench import BenchOptions
from infra.bench import sla as B
from infra.bench.core import case_markdown
from infra.paths import lab_dir


def _name() -> str:
    return "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=4))


def _leftovers(name: str) -> list[str]:
    ns = [ln.split()[0] for ln in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
          if ln.startswith(f"{name}s-")]
    return ns + ([str(lab_dir(f"{name}s"))] if lab_dir(f"{name}s").exists() else [])


@pytest.mark.lab
def test_sla_case_small_with_promtool_rules():
    name = _name()
    seen: list[str] = []
    # over 2 days the hour-weighted latency SLI of the rules is up to ~0.3 pp off the probe-weighted raw
    # one (48 hourly ratios; over 30 days 0.004 pp); availability must agree to 0.01 pp as in the full case
    scale = B.Scale(sites=10, days=2, rules="promtool", compacted=False, latency_tolerance_pp=0.5)
    try:
        r, o = B.measure(BenchOptions(repeat=2, name=name, progress=seen.append), scale)
    finally:
        left = _leftovers(name)
    assert not left, f"left behind: {left}"
    assert not o.failures, o.failures
    assert o.recorded_vs_promtool is not None and o.recorded_vs_promtool < 1e-9
    assert o.rules_vs_raw["availability"] < B.TOLERANCE_PP and o.rules_vs_raw["latency"] < 0.5
    assert o.truth["raw"]["availability"] < 1e-4 and o.truth["raw"]["latency"] < 1e-4
    # every SLA control a history can judge (SLA-001/002 per platform, SLA-003 per site: SLA-004 needs
    # live alert evaluation), each a verdict; both verdicts occur
    rules = o.results["rules"]
    assert len(rules) == 6 * 2 + 10 * 1
    assert {x.status for x in rules} == {Status.passed, Status.failed}
    # measures: with rules against the raw baseline, each timed twice
    m = r.get("sla.rules")
    assert m and m.baseline == "sla.raw" and len(m.samples) == 2 and all(x > 0 for x in m.samples)
    assert r.ratio("sla.rules") is not None and r.get("sla.raw").samples
    assert len(r.targets) == 1 and r.targets[0].measured.endswith(" s")
    assert any(n.startswith("Slowest query") for n in r.notes)
    # the report read the hourly ratios (the window is covered), every other variant ran too
    assert all(":ratio_hourly" in x.evidence["query"] for x in rules if x.control in B.SLI_KEYS)
    assert {m.key for m in r.measures} == {f"sla.{v}" for v in B.VARIANTS}
    assert "ratio to baseline" in case_markdown(r)
    assert any("untimed" in s for s in seen) and any("run 2/2" in s for s in seen)


@pytest.mark.lab
def test_sla_case_generated_recorded_series():
    """The full case's path: recorded series computed and backfilled with the raw ones."""
    name = _name()
    try:
        r, o = B.measure(BenchOptions(repeat=1, name=name, progress=lambda m: None),
                         B.Scale(sites=3, days=1, compacted=False, latency_tolerance_pp=0.5))
    finally:
        left = _leftovers(name)
    assert not left, f"left behind: {left}"
    assert not o.failures, o.failures
    assert o.recorded_vs_promtool is None
    assert o.rules_vs_raw["availability"] < B.TOLERANCE_PP
    assert r.get("sla.rules").samples and r.targets


def test_scale_follows_sites_option():
    assert B.scale_for(BenchOptions()) == B.Scale()                       # default --sites: the full province
    assert B.scale_for(BenchOptions(sites=[10])) == B.Scale(sites=10)
    assert len(B.province(B.Scale(sites=12)).wan.sites) == 12
    assert len(B.province(B.Scale()).wan.sites) == 225
