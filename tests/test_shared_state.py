"""A team's shared Pulumi state: the lab's S3-compatible object store as the stack's backend.

`dcops lab up --state s3` starts the object store (SeaweedFS) inside the lab's management
namespace and writes the environment with an s3:// backend (credentials file, CA). Two
engineers' `dcops provision` at once: one updates the stack, the other gets Pulumi's lock
error (exit 1, said so) and changes nothing; the state stays readable and complete.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO, dcops, lab_stack


@pytest.fixture(scope="module")
def lab():
    name = "s" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    try:
        r = dcops("lab", "up", "--name", name, "--site", "so-tc", "--state", "s3")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        yield name
    finally:
        dcops("lab", "down", "--name", name)


@pytest.mark.lab
def test_two_engineers_at_once_one_gets_the_lock_error(lab):
    stack = lab_stack(lab)
    env = yaml.safe_load(open(stack[-1]).read())["config"]["dcops:environment"]
    assert env["backend"]["url"].startswith("s3://") and env["backend"]["ca_file"]
    argv = [sys.executable, "-m", "infra.cli", "provision", *stack]
    r = dcops("provision", *stack, "--preview", timeout=1200)  # the stack is made in the bucket
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    procs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)]
    time.sleep(1.0)
    procs.append(subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL))
    outs = [p.communicate(timeout=1200) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], (codes, [o[0][-1500:] + o[1][-1500:] for o in outs])
    loser = outs[codes.index(1)]
    assert "locked" in (loser[0] + loser[1]), loser
    # the state is whole: a no-change preview, and the export parses with every object
    r = dcops("provision", *stack, "--preview", timeout=1200)
    assert r.returncode == 0 and "to update" not in r.stdout and "to create" not in r.stdout, r.stdout[-2000:]
    from infra import environment as EV
    from infra.paths import tool
    from infra.pulumi_env import stack_env

    st = EV.load("lab", stack[-1])
    # the object store answers inside the lab's management namespace only: read it from there
    ex = subprocess.run(["ip", "netns", "exec", st.env.management_netns, str(tool("pulumi")), "stack", "export",
                         "--stack", "lab"], env=stack_env(st), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert ex.returncode == 0, ex.stderr[-2000:]
    doc = json.loads(ex.stdout)
    kinds = {r["type"] for r in doc["deployment"]["resources"]}
    assert any(t.startswith("kubernetes:") for t in kinds), kinds
