"""The provisioning case of `dcops bench` (infra/bench/provision.py).

Without the lab: the trace profile arithmetic and the stack-config plumbing.
With the lab (``@pytest.mark.lab``): the whole case at its smallest useful scale (the lab
province, one run of each measure) on a lab of its own, which must be gone afterwards.
"""

from __future__ import annotations

import json
import random
import string

import pytest

from infra.bench import BenchOptions
from infra.bench import provision
from infra.bench.core import CaseResult, case_markdown
from infra.paths import REPO, lab_dir
from infra.render.k8s import render_province
from infra.validate import load_province

from test_lab_controlplane import dcops

MEASURES = {
    "provision.kubectl.apply": None,
    "provision.kubectl.ready": None,
    "provision.kubectl.again": None,
    "provision.kubectl.delete": None,
    "provision.pulumi.up": "provision.kubectl.apply",
    "provision.pulumi.again": "provision.kubectl.again",
    "provision.pulumi.preview": "provision.kubectl.again",
    "provision.pulumi.destroy": "provision.kubectl.delete",
    "provision.pulumi.up.untuned": "provision.pulumi.up",
    "provision.pulumi.again.untuned": "provision.pulumi.again",
    "provision.pulumi.preview.untuned": "provision.pulumi.preview",
    "provision.pulumi.destroy.untuned": "provision.pulumi.destroy",
}


# --------------------------------------------------------------------------- no lab


def test_stack_configs_name_their_provinces():
    assert provision.province_of(provision.FULL_CONFIG) == REPO / "stacks" / "province-thanhhoa.yaml"
    assert provision.province_of(provision.LAB_CONFIG) == REPO / "stacks" / "province-lab.yaml"


def test_profile_of_a_trace():
    """Two calls overlap, then a gap with nothing running, then a Deployment that waits for readiness."""
    start = 1000.0
    ev = [
        {"op": "create", "kind": "Namespace", "t0": 1002.0, "dt": 1.0, "api": 0.2},         # 0.8 s client start
        {"op": "create", "kind": "StorageClass", "t0": 1002.5, "dt": 0.5, "api": 0.1},
        {"op": "create", "kind": "Deployment", "t0": 1004.0, "dt": 2.0, "api": 0.5, "ready": 1.5},
    ]
    p = provision.profile({"start": start, "wall": 7.0, "events": ev})
    assert p["before"] == pytest.approx(2.0) and p["span"] == pytest.approx(4.0) and p["after"] == pytest.approx(1.0)
    assert p["conc_max"] == 2 and p["idle"] == pytest.approx(1.0)
    assert p["api"] == pytest.approx(0.8) and p["ready"] == pytest.approx(1.5) and p["ready_max"] == pytest.approx(1.5)
    assert p["client"] == pytest.approx(0.8) and p["ops"] == 3


def test_resources_summary_of_pulumi_output():
    out = "Updating (lab):\n...\nResources:\n    + 123 created\n    1 unchanged\n\nDuration: 30s\n"
    assert provision._resources_summary(out) == "+ 123 created, 1 unchanged"
    assert provision._resources_summary("nothing") == ""


# --------------------------------------------------------------------------- the lab


@pytest.mark.lab
def test_provision_case_on_the_lab_province():
    name = "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=4))
    lab = f"{name}p"
    said: list[str] = []
    try:
        r = provision.run(BenchOptions(repeat=1, name=name, progress=said.append), stack_config=provision.LAB_CONFIG)
    finally:
        gone = not lab_dir(lab).exists()
        if not gone:
            dcops("lab", "down", "--name", lab)
    assert gone, f"the case left its lab {lab} behind"

    n = sum(len(o.objects()) for o in render_province(load_province(provision.province_of(provision.LAB_CONFIG))).values())
    checks = r.checks  # type: ignore[attr-defined]
    assert checks["problems"] == [] and checks["same_objects"], "\n".join(checks["problems"] + said[-20:])
    assert not r.failed
    assert checks["objects"] == n and checks["kubectl_runs"] == checks["pulumi_runs"] == 1
    assert checks["no_change_moved"] == {"kubectl": 0, "pulumi": 0}, [s for s in said if "changed during" in s]

    assert r.case == "provision"
    for key, base in MEASURES.items():
        m = r.get(key)
        assert m is not None, key
        assert len(m.samples) == 1 and m.samples[0] > 0 and m.n == n and m.unit == "s", m
        assert m.baseline == base
        if base:
            assert r.ratio(key) and r.ratio(key) > 0
    for key in ("kubectl.apply", "kubectl.again", "kubectl.delete", "pulumi.up", "pulumi.again", "pulumi.preview",
                "pulumi.destroy", "pulumi.up.untuned", "pulumi.again.untuned", "pulumi.preview.untuned",
                "pulumi.destroy.untuned"):
        m = r.get(f"provision.cpu.{key}")
        assert m is not None and m.unit == "s CPU" and len(m.samples) == 1 and m.samples[0] > 0, key
        if key.startswith("pulumi"):
            assert r.ratio(m.key) and r.ratio(m.key) > 0, key
    # pulumi runs a program, an engine and a provider: it cannot cost less CPU than kubectl
    assert r.get("provision.cpu.pulumi.up").samples[0] > r.get("provision.cpu.kubectl.apply").samples[0]
    assert r.get("provision.kubectl.ready").samples[0] >= r.get("provision.kubectl.apply").samples[0]
    assert f"+ {n}" in r.get("provision.pulumi.up").detail or "created" in r.get("provision.pulumi.up").detail

    notes = "\n".join(r.notes)
    assert f"exactly the {n} rendered ones" in notes
    for part in ("Where `pulumi up` from empty goes", "no-change `pulumi preview`", "Where `pulumi destroy` goes",
                 "PULUMI_SKIP_CHECKPOINTS", "The `untuned:` rows", "pulumi up, from empty ", "stack traces; untuned"):
        assert part in notes, part
    # untuned, the engine writes the whole state after every step: more CPU than dcops's way (one run each,
    # but the difference is several times the noise even at this small scale)
    up, up_untuned = (r.get(f"provision.cpu.pulumi.up{s}").samples[0] for s in ("", ".untuned"))
    assert up_untuned > up, (up, up_untuned)
    assert any("kubectl [1/1]" in s for s in said) and any("pulumi [1/1]" in s for s in said)

    # what `dcops bench` saves and prints
    again = CaseResult.from_json(json.loads(json.dumps(r.to_json())))
    md = case_markdown(again)
    assert "pulumi preview, no change" in md and "kubectl delete" in md
