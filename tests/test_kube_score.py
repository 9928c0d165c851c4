"""A third-party manifest checker over the rendered objects of every province file (issue 15).

kube-score (pinned in tools/kube-score, built by scripts/install-tools) scores what
`dcops render k8s` writes for each province file, every test enabled (the optional ones too),
for the clusters' Kubernetes version. Every finding (warning or critical) is either fixed in
the renderer or listed with its reason in infra/render/kube-score-exceptions.yaml; an
exception that no longer matches a finding fails too.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from infra.model import ProvinceFile
from infra.paths import REPO, ToolMissing, tool
from infra.render_cli import k8s_yaml
from infra.validate import load_province

FILES = sorted((REPO / "stacks").glob("province-*.yaml"))
EXCEPTIONS = REPO / "infra" / "render" / "kube-score-exceptions.yaml"
OK, WARNING, CRITICAL = 10, 5, 1  # kube-score's grades


def kube_score() -> str:
    try:
        return str(tool("kube-score"))
    except ToolMissing as e:
        pytest.fail(f"{e} (scripts/install-tools kube-score builds it)")


def findings(model: ProvinceFile, tmp_path) -> set[tuple[str, str, str]]:
    """(check id, Kind/namespace/name, comment) of every finding graded below OK."""
    ks = kube_score()
    optional = [line.split(",")[0] for line in subprocess.run([ks, "list"], capture_output=True, text=True,
                                                              check=True).stdout.splitlines()
                if line.endswith(",optional")]
    assert optional, "kube-score lists no optional test: is this the pinned version?"
    f = tmp_path / "objects.yaml"
    f.write_text(k8s_yaml(model), encoding="utf-8")
    version = max(c.kubernetes_version for c in model.datacenter.clusters)
    cmd = [ks, "score", "--kubernetes-version", f"v{version}", "--output-format", "json",
           *[x for t in optional for x in ("--enable-optional-test", t)], str(f)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode in (0, 1), run.stderr  # 1: critical findings (judged below)
    out = set()
    scored = 0
    for obj in json.loads(run.stdout):
        md, kind = obj["object_meta"], obj["type_meta"]["kind"]
        key = f"{kind}/{md['namespace']}/{md['name']}" if md.get("namespace") else f"{kind}/{md['name']}"
        for c in obj["checks"]:
            scored += 1
            if not c["skipped"] and c["grade"] < OK:
                text = "; ".join(f"{x.get('path', '')}: {x.get('summary', '')}".strip(": ") for x in c.get("comments") or [])
                out.add((c["check"]["id"], key, text))
    assert scored > 100, "kube-score scored almost nothing: did it read the objects?"
    return out


def exceptions() -> list[dict]:
    data = yaml.safe_load(EXCEPTIONS.read_text(encoding="utf-8"))
    entries = data["exceptions"]
    for e in entries:
        assert set(e) == {"check", "object", "reason"} and len(e["reason"]) > 20, e
    return entries


def _excepted(found: tuple[str, str, str], entries: list[dict]) -> bool:
    return any(e["check"] == found[0] and e["object"] in ("*", found[1]) for e in entries)


@pytest.mark.parametrize("province", FILES, ids=lambda f: f.stem)
def test_every_finding_is_fixed_or_excepted(province, tmp_path):
    entries = exceptions()
    found = findings(load_province(province), tmp_path)
    open_ = sorted(f for f in found if not _excepted(f, entries))
    assert not open_, "kube-score findings neither fixed nor excepted:\n" + "\n".join(map(str, open_))


def test_gateway_exposure_scores_clean(tmp_path):
    """The Gateway API variant (not used by the province files, which the lab provisions)."""
    data = load_province(FILES[0]).model_dump(mode="json")
    for c in data["datacenter"]["clusters"]:
        c["exposure"] = {"method": "gateway", "address_pool": "dc-services", "class_name": "eg",
                         "controller_namespace": "envoy-gateway-system"}
    found = findings(ProvinceFile.model_validate(data), tmp_path)
    assert not [f for f in found if not _excepted(f, exceptions())], found


def test_no_stale_exception(tmp_path):
    entries = exceptions()
    found = set()
    for province in FILES:
        found |= findings(load_province(province), tmp_path)
    stale = [e for e in entries if not any(_excepted(f, [e]) for f in found)]
    assert not stale, f"exceptions that match no finding any more (remove them): {stale}"


def test_checker_sees_a_regression(tmp_path):
    """The checker really judges these objects: a container without limits and probes is caught."""
    model = load_province(FILES[0])
    text = k8s_yaml(model)
    docs = [d for d in yaml.safe_load_all(text)]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    del c["resources"], c["readinessProbe"], c["livenessProbe"]
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    run = subprocess.run([kube_score(), "score", "--kubernetes-version", "v1.34", "--output-format", "json", str(f)],
                         capture_output=True, text=True)
    bad = {(c["check"]["id"], o["object_meta"]["name"]) for o in json.loads(run.stdout) for c in o["checks"]
           if not c["skipped"] and c["grade"] < OK}
    name = dep["metadata"]["name"]
    assert ("container-resources", name) in bad and ("pod-probes", name) in bad, bad
