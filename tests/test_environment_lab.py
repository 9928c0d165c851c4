"""The product reaches a lab only through an environment, as an operator reaches a province.

A lab of its own (``e`` + 5 random characters, three sites and the clusters) is started with
`dcops lab up`; from then on every command runs as an operator on a management workstation
would run it: inside the lab's management namespace (``ip netns exec``), with the stack's
config file, and no lab name. Then:

- Prometheus served as in production (HTTPS, basic auth): a wrong CA and a wrong password
  are each exit 3, the cause named, nothing checked;
- an unreachable jump host: exit 3, nothing changed;
- a bastion as the only SSH path: from a workstation namespace with no route but to the
  bastion, the rollout and the host checks reach every host through it (ProxyJump);
- a second environment (another lab, other addresses) works with no code change;
- the standard inventory converges the hosts by hand with ansible-playbook and under
  ansible-runner;
- `dcops drift` on the provisioned lab finds a host's and a cluster's out-of-band changes, and
  nothing once they are repaired.
"""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, dcops, lab_stack, write_lab_environment
from infra.paths import tool
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
SITES = ["so-tc", "p-trung-tam", "x-tan-lap"]
HOST_IDS = "DCOPS-SSH-001,DCOPS-SSH-002,DCOPS-FW-001,DCOPS-WG-001,DCOPS-LOG-001"


def _name(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))


@pytest.fixture(scope="module")
def lab():
    name = _name("e")
    try:
        r = dcops("lab", "up", "--name", name, "--province", str(PROVINCE), *[a for s in SITES for a in ("--site", s)])
        assert r.returncode == 0, f"lab up failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
        cfg = Path(lab_stack(name)[-1])
        env = yaml.safe_load(cfg.read_text())["config"]["dcops:environment"]
        yield {"name": name, "cfg": cfg, "env": env, "mgmt": env["management_netns"]}
    finally:
        r = dcops("lab", "down", "--name", name)
        assert r.returncode == 0, r.stdout + r.stderr


def _variant(lab, tmp_path: Path, change) -> Path:
    """A copy of the lab's stack config with its environment changed."""
    doc = yaml.safe_load(lab["cfg"].read_text())
    change(doc["config"]["dcops:environment"])
    p = tmp_path / "Pulumi.lab.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    p.chmod(0o600)
    return p


@pytest.mark.lab
def test_lab_environment_is_what_lab_up_wrote(lab):
    env = lab["env"]
    assert env["kind"] == "lab" and env["management_netns"] == f"{lab['name']}-mgmt"
    assert set(env["clusters"]) == {"primary", "dr"}
    assert env["clusters"]["primary"]["checks"]["kubeconfig"].endswith("kubeconfig-auditor")
    assert env["prometheus"]["url"].startswith("https://") and "password" in env["prometheus"]["basic_auth"]
    assert env["wan"]["hosts"] == ["gateway", *SITES]
    assert "netns" not in json.dumps(env["wan"])  # nothing lab-specific in how hosts are reached
    r = dcops("validate", *lab_stack(lab["name"]))
    assert r.returncode == 0, r.stderr


@pytest.mark.lab
def test_operator_workflow_inside_the_management_namespace(lab, tmp_path):
    """wan apply, the checks and the report, run inside <lab>-mgmt with the stack only."""
    stack = lab_stack(lab["name"])
    r = dcops("wan", "apply", *stack, netns=lab["mgmt"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    r = dcops("wan", "apply", *stack, netns=lab["mgmt"])
    assert r.returncode == 0 and "unchanged" in r.stdout, r.stdout[-2000:]
    r = dcops("lab", "monitor", "--name", lab["name"])  # the lab's own part: start its Prometheus
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "latest.json"
    r = dcops("check", *stack, "--only", HOST_IDS + ",DCOPS-SLA-003", "--output", str(out), netns=lab["mgmt"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["environment"]["kind"] == "lab" and doc["stack"] == "lab"
    got = {(x["control"], x["target"]): x["status"] for x in doc["results"]}
    assert got[("DCOPS-SSH-001", "gateway")] == "pass"
    # the SLA was read from the HTTPS Prometheus: a young lab has too little data for a 30-day verdict
    assert got[("DCOPS-SLA-003", SITES[0])] in ("pass", "insufficient_data"), got
    # the same command from the machine's namespace re-executes itself inside the environment's
    r = dcops("check", *stack, "--only", "DCOPS-SSH-001", "-t", SITES[1], "--output", str(tmp_path / "b.json"))
    assert r.returncode == 0, r.stderr


@pytest.mark.lab
@pytest.mark.parametrize("fault, words", [
    ("ca", "certificate is not trusted"),
    ("password", "refused the credentials"),
])
def test_prometheus_wrong_ca_or_password_is_exit_3(lab, tmp_path, fault, words):
    dcops("lab", "monitor", "--name", lab["name"])  # idempotent
    if fault == "ca":
        other = tmp_path / "other-ca.crt"  # a CA that did not sign Prometheus's certificate
        other.write_text(Path(lab["env"]["clusters"]["primary"]["evidence"]["etcd"]["ca_file"]).read_text())

        def change(e):
            e["prometheus"]["ca_file"] = str(other)
    else:
        pw = tmp_path / "wrong-password"
        pw.write_text("not-the-password\n")
        pw.chmod(0o600)

        def change(e):
            e["prometheus"]["basic_auth"]["password"] = {"file": str(pw)}
    cfg = _variant(lab, tmp_path, change)
    out = tmp_path / "r.json"
    r = dcops("check", "-s", "lab", "--config-file", str(cfg), "--only", "DCOPS-SLA-001,DCOPS-SSH-001", "--output", str(out))
    assert r.returncode == 3, r.stdout + r.stderr
    assert words in r.stderr and "nothing was checked" in r.stderr
    assert not out.exists()
    assert "not-the-password" not in r.stdout + r.stderr


@pytest.mark.lab
def test_unreachable_jump_host_is_exit_3_nothing_changed(lab, tmp_path):
    """A jump host in the lab's management segment where nothing answers."""
    def change(e):
        e["wan"]["jump_host"] = {"host": "10.10.5.99", "user": "dcops"}
        e["wan"]["connect_timeout"] = 3

    cfg = _variant(lab, tmp_path, change)
    r = dcops("wan", "apply", "-s", "lab", "--config-file", str(cfg), "--json", str(tmp_path / "w.json"))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "jump host 10.10.5.99:22" in r.stderr and "nothing was changed" in r.stderr
    assert not (tmp_path / "w.json").exists()


@pytest.mark.lab
def test_bastion_is_the_only_ssh_path(lab, tmp_path):
    from infra.lab import bastion
    from infra.lab import netexec

    b = bastion.up(lab["name"])
    key = str(netexec.ssh_paths(lab["name"])["key"])

    def change(e):
        e["management_netns"] = b["netns"]
        e["work_dir"] = str(tmp_path / "work")
        e["wan"]["jump_host"] = {"host": b["host"], "user": b["user"], "identity_file": key}
        e["wan"]["known_hosts"] = str(b["known_hosts"])

    cfg = _variant(lab, tmp_path, change)
    # the workstation reaches nothing but the bastion
    direct = subprocess.run(["ip", "netns", "exec", b["netns"], "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                             "-i", key, "dcops@10.10.5.1", "true"], capture_output=True, text=True)
    assert direct.returncode != 0 and "unreachable" in direct.stderr.lower(), direct.stderr
    # a drifted host is repaired through it, and the host checks read every host through it
    netexec.host_run(lab["name"], SITES[0], ["sysctl", "-w", "net.ipv4.tcp_syncookies=0"], capture_output=True)
    drop = "/etc/ssh/sshd_config.d/50-dcops-hardening.conf"
    netexec.host_run(lab["name"], SITES[0], ["sed", "-i", "s/^LogLevel .*/LogLevel QUIET/", drop], capture_output=True)
    r = dcops("wan", "apply", "-s", "lab", "--config-file", str(cfg), "--engine", "pyinfra")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    import re

    assert re.search(r"changed [1-9]", r.stdout), r.stdout[-2000:]
    r = dcops("wan", "apply", "-s", "lab", "--config-file", str(cfg), "--engine", "ansible")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "changed 0" in r.stdout, r.stdout[-2000:]
    out = tmp_path / "r.json"
    r = dcops("check", "-s", "lab", "--config-file", str(cfg), "--only", "DCOPS-SSH-001,DCOPS-SSH-010", "--output", str(out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert {x["target"] for x in doc["results"] if x["status"] == "pass"} == {"gateway", *SITES}
    log = (bastion.bastion_dir(lab["name"]) / "sshd.log").read_text()
    assert "Accepted publickey for root" in log


@pytest.mark.lab
def test_inventory_runs_by_hand_and_under_ansible_runner(lab, tmp_path):
    """`dcops wan inventory` writes a standard inventory; ansible-playbook (and ansible-runner,
    AWX's engine) converge a drifted host with it, with no dcops in between."""
    from infra.lab import netexec

    inv = tmp_path / "inv"
    r = dcops("wan", "apply", *lab_stack(lab["name"]))  # the hosts' public keys, for the tunnels' state
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = dcops("wan", "inventory", *lab_stack(lab["name"]), "--out", str(inv))
    assert r.returncode == 0, r.stdout + r.stderr
    site = SITES[1]
    conf = "/etc/chrony/chrony.conf"  # rendered by dcops (time part)
    before = netexec.host_run(lab["name"], site, ["sha256sum", conf], capture_output=True, text=True).stdout
    netexec.host_run(lab["name"], site, ["bash", "-c", f"echo '# drift' >> {conf}"], capture_output=True)
    bindir = Path(sys.executable).parent
    # the hosts' sudo asks for the rollout account's password: the operator gives its file (never in the inventory)
    pw = netexec.ssh_paths(lab["name"])["become_password"]
    check = subprocess.run(["ip", "netns", "exec", lab["mgmt"], str(bindir / "ansible-playbook"), "-i", str(inv / "hosts.yml"),
                            str(REPO / "playbooks" / "wan.yml"), "--limit", site, "--check", "--diff",
                            "--become-password-file", str(pw)],
                           capture_output=True, text=True, cwd=REPO, timeout=600)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    import re

    assert re.search(rf"{site}\s*:.*changed=[1-9]", check.stdout), check.stdout[-2000:]
    # ansible-runner: the same inventory and playbook, unchanged
    rd = tmp_path / "runner"
    (rd / "project").mkdir(parents=True)
    runner = subprocess.run(["ip", "netns", "exec", lab["mgmt"], str(bindir / "ansible-runner"), "run", str(rd),
                             "-p", str(REPO / "playbooks" / "wan.yml"), "--inventory", str(inv / "hosts.yml"),
                             "--limit", site, "--cmdline", f"--become-password-file {pw}"],
                            capture_output=True, text=True, cwd=REPO, timeout=600,
                            env={**__import__("os").environ, "PATH": f"{bindir}:{__import__('os').environ['PATH']}"})
    assert runner.returncode == 0, runner.stdout[-3000:] + runner.stderr[-2000:]
    after = netexec.host_run(lab["name"], site, ["sha256sum", conf], capture_output=True, text=True).stdout
    assert after == before  # converged back to the rendered file
    # the pyinfra CLI with the pyinfra inventory: same convergence
    netexec.host_run(lab["name"], site, ["bash", "-c", f"echo '# drift' >> {conf}"], capture_output=True)
    cfg = tmp_path / "pyinfra_config.py"  # pyinfra's config file: the sudo password read from the lab's file
    # (pyinfra 3 reads its config through the config object: a bare SUDO_PASSWORD global is ignored)
    cfg.write_text(f"from pyinfra import config\nconfig.SUDO_PASSWORD = open({str(pw)!r}).read().strip()\n")
    py = subprocess.run(["ip", "netns", "exec", lab["mgmt"], str(bindir / "pyinfra"), str(inv / "pyinfra_inventory.py"),
                         str(REPO / "playbooks" / "pyinfra" / "deploy.py"), "--sudo", "-y", "--limit", site,
                         "--config", str(cfg)],
                        capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert py.returncode == 0, py.stdout[-3000:] + py.stderr[-2000:]
    assert netexec.host_run(lab["name"], site, ["sha256sum", conf], capture_output=True, text=True).stdout == before


@pytest.mark.lab
def test_drift_finds_host_and_cluster_changes_then_nothing(lab, tmp_path):
    """`dcops drift` (the daily run of deploy/systemd) on this lab, provisioned, rolled out and monitored
    through its environment: one host's firewall and one cluster object are changed out of band;
    `dcops drift` finds both (exit 1); after `dcops wan apply`, `dcops provision --refresh` and
    `dcops provision` the next run reports nothing (exit 0). (It had a lab of its own in tests/test_drift.py.)"""
    from infra.lab import controlplane as cp
    from infra.lab import netexec

    name = lab["name"]
    for step in (["provision"], ["wan", "apply"]):
        r = dcops(*step, *lab_stack(name), timeout=1800)
        assert r.returncode == 0, f"{step}: " + r.stdout[-3000:] + r.stderr[-2000:]
    r = dcops("lab", "monitor", "--name", name)  # the SLA controls read it (idempotent)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = tmp_path / "drift"
    r = dcops("drift", *lab_stack(name), "--out", str(out), timeout=3600)  # the baseline of the controls
    first = json.loads((out / "drift.json").read_text())
    assert first["clusters"]["status"] == "clean", first["clusters"]
    assert first["hosts"]["status"] == "clean", first["hosts"]
    assert first["controls"]["status"] == "baseline"
    # out of band: one host's firewall, one cluster object
    netexec.host_run(name, "so-tc", ["nft", "add", "table", "inet", "intruder"], capture_output=True, check=True)
    kc = str(cp.kubeconfig_path(name, "primary"))
    k = subprocess.run([str(tool("kubectl")), "--kubeconfig", kc, "-n", "motcua",
                        "scale", "deployment", "--all", "--replicas=1"], capture_output=True, text=True)
    assert k.returncode == 0, k.stderr
    r = dcops("drift", *lab_stack(name), "--out", str(out), timeout=3600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    doc = json.loads((out / "drift.json").read_text())
    assert set(doc["hosts"]["hosts"]) == {"so-tc"} and any("firewall" in c for c in doc["hosts"]["hosts"]["so-tc"]["changes"])
    assert any(x["resource"].startswith("primary/Deployment/motcua") for x in doc["clusters"]["changed"]), doc["clusters"]
    assert "so-tc" in (out / "drift.md").read_text()
    # repaired the ordinary way (Pulumi learns of an out-of-band edit by a refresh, then up puts
    # the object back): the next run finds nothing
    for step in (["wan", "apply"], ["provision", "--refresh"], ["provision"]):
        r = dcops(*step, *lab_stack(name), timeout=1800)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    r = dcops("drift", *lab_stack(name), "--out", str(out), timeout=3600)
    doc = json.loads((out / "drift.json").read_text())
    assert doc["clusters"]["status"] == "clean", doc["clusters"]
    assert doc["hosts"]["status"] == "clean", doc["hosts"]
    assert r.returncode == 0, r.stdout[-2000:]  # controls only got better since the last run
    assert not any(x["worse"] for x in doc["controls"]["changes"]), doc["controls"]


def _shifted_province(tmp_path: Path) -> Path:
    """The lab province at other addresses: WAN underlay, tunnels, LANs and data-center segments."""
    text = PROVINCE.read_text()
    for a, b in (("172.30.", "172.29."), ("10.200.", "10.199."), ("10.30.", "10.40."), ("10.31.", "10.41."),
                 ("10.32.", "10.42."), ("10.10.", "10.11.")):
        text = text.replace(a, b)
    p = tmp_path / "province-lab-shifted.yaml"
    p.write_text(text)
    load_province(p)  # still valid
    return p


@pytest.mark.lab
def test_second_environment_other_addresses(tmp_path):
    """Another lab, other addresses, its own environment: the same commands work unchanged."""
    from infra.lab import hosts

    prov = _shifted_province(tmp_path)
    model = load_province(prov)
    name = _name("f")
    try:
        hosts.up(model, name, sites=["so-xd", "x-hoa-binh"], progress=lambda m: None)
        cfg = write_lab_environment(name, model, prov)
        env = yaml.safe_load(cfg.read_text())["config"]["dcops:environment"]
        assert env["wan"]["addresses"]["gateway"].startswith("10.11.5.")
        r = dcops("wan", "apply", "-s", "lab", "--config-file", str(cfg))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        out = tmp_path / "r.json"
        r = dcops("check", "-s", "lab", "--config-file", str(cfg), "--only", HOST_IDS, "--output", str(out))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        doc = json.loads(out.read_text())
        assert {x["target"] for x in doc["results"] if x["status"] == "pass"} == {"gateway", "so-xd", "x-hoa-binh"}
    finally:
        hosts.down(name, progress=lambda m: None)
        from infra.paths import lab_dir

        shutil.rmtree(lab_dir(name), ignore_errors=True)
