"""`dcops render k8s -p FILE [--cluster C] [-o OUT]` writes exactly the rendered objects as YAML."""

from __future__ import annotations

import subprocess
import sys

import yaml

from infra.paths import REPO
from infra.render.k8s import object_key, render_province
from infra.validate import load_province

LAB = REPO / "stacks" / "province-lab.yaml"


def dcops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_render_k8s_writes_every_object_in_apply_order(tmp_path):
    out = tmp_path / "objects.yaml"
    r = dcops("render", "k8s", "-p", str(LAB), "-o", str(out))
    assert r.returncode == 0, r.stderr
    docs = list(yaml.safe_load_all(out.read_text(encoding="utf-8")))
    want = [o for objs in render_province(load_province(LAB)).values() for o in objs.objects()]
    assert [object_key(d) for d in docs] == [object_key(o) for o in want]
    assert docs == want  # the same objects, field for field
    assert "&id" not in out.read_text(encoding="utf-8")


def test_render_k8s_one_cluster_to_stdout():
    r = dcops("render", "k8s", "-p", str(LAB), "--cluster", "dr")
    assert r.returncode == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    assert docs and r.stdout.startswith("# cluster: dr\n") and "# cluster: primary" not in r.stdout
    # LRIS runs there; the warm (motcua) and cold (ioc) DR copies of the lab province wait there
    assert {d["metadata"].get("namespace") for d in docs} - {None} == {"lris", "motcua", "ioc"}


def test_render_k8s_refuses_bad_input(tmp_path):
    r = dcops("render", "k8s", "-p", str(LAB), "--cluster", "nowhere")
    assert r.returncode == 2 and "no cluster 'nowhere'" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(LAB.read_text(encoding="utf-8").replace("per_replica: true}]  # a StatefulSet", "}]"), encoding="utf-8")
    r = dcops("render", "k8s", "-p", str(bad))
    assert r.returncode == 2 and "per_replica: true" in r.stderr and r.stdout == ""
