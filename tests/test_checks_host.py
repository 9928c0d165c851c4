"""Host controls over SSH (pytest-testinfra) on real lab hosts.

The lab part starts its own WAN hosts (the gateway and two sites, booted
Debian in network namespaces; lab name `t` + 5 random characters), rolls the
rendered endpoint state out with `dcops wan apply`, checks that every host
control passes on every host, then, for every host control, puts one site into
the control's fail scenario (`checks/scenarios/host/<ID>.fail.sh`) and its
pass scenario (`<ID>.pass.sh`) and asserts the verdict of that control on
that host.  The fault test changes sshd on one site and asserts that only that
control on that site fails.  Everything is torn down at the end.
"""

from __future__ import annotations

import random
import string
import subprocess
import sys
import time

import pytest

from infra.lab import scenario_host as S
from checks.catalog import catalog, scenario_files
from checks.controls import host as H
from checks.result import Status
from infra.paths import REPO
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
SITES = 2
IDS = list(H.CONTROLS)
# Controls of machine-wide kernel keys: a lab host (a container) cannot be put into their
# states; unit tests cover their verdicts (tests/test_checks_evidence.py), the lab test below
# that they report the container exception.
MACHINE_WIDE = [c for c in IDS if catalog().get(c).params.get("machine_wide")]
LAB_IDS = [c for c in IDS if c not in MACHINE_WIDE]
UNREADABLE = [c for c in IDS if scenario_files(c)["unreadable"]]
# Controls whose code has a branch of its own for the gateway (the hub serves the WAN's time,
# receives the sites' logs and listens for both): their scenarios run on the gateway too.
GATEWAY_BRANCHES = ["DCOPS-NTP-001", "DCOPS-NTP-002", "DCOPS-LOG-001", "DCOPS-FW-003",
                    "DCOPS-UPD-001"]  # and pending updates, new for both kinds of host (issue 16)
# The lab's hosts reach no package mirror: apt has no lists, and pending updates are not
# assessed (with that reason) until a scenario gives the host a mirror of its own.
NO_MIRROR = ["DCOPS-UPD-001"]


def _scenario_host(lab, cid):
    """Where a control's scenarios run: a site, or the gateway for a control of the gateway only."""
    return lab["site"] if "endpoint" in catalog().get(cid).applies_to else "gateway"


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


def test_every_host_control_has_code_and_scenarios():
    cat = {c.id for c in catalog().controls if {"endpoint", "gateway"} & set(c.applies_to)}
    assert cat == set(H.CONTROLS)
    assert len(cat) >= 25
    for cid in set(LAB_IDS):
        sc = scenario_files(cid)
        assert sc["pass"] and sc["fail"], cid
        assert S.description(cid, "pass") and S.description(cid, "fail")
    assert MACHINE_WIDE == ["DCOPS-SYS-008"]


def test_parsers():
    ruleset = """table inet dcops {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "lo" accept
		ip saddr 10.10.5.0/24 tcp dport 22 accept comment "ssh from management"
		ip saddr 172.30.0.1 udp dport 51820 accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}"""
    ch = {c["chain"]: c for c in H._chains(ruleset)}
    assert ch["input"]["policy"] == "drop" and ch["output"]["policy"] == "accept"
    assert [H._opens_ssh(r.split(" comment ")[0]) for r in ch["input"]["rules"]] == [False, False, True, False]
    assert H._opens_ssh("tcp dport { 22, 80 } accept") and H._opens_ssh("accept")
    assert not H._opens_ssh("tcp dport 9100 accept")
    assert H._selects_auth("*.*") and H._selects_auth("auth,authpriv.*")
    assert not H._selects_auth("*.*;auth,authpriv.none") and not H._selects_auth("*.emerg")


# --------------------------------------------------------------------------- the lab


from conftest import dcops, lab_stack, write_lab_environment  # noqa: E402


@pytest.fixture(scope="module")
def lab(pf):
    from infra.lab import hosts, netexec

    name = "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    try:
        hosts.up(pf, name, sites=SITES, progress=lambda m: None)
        write_lab_environment(name, pf, PROVINCE)
        r = dcops("wan", "apply", *lab_stack(name), "--engine", "ansible")
        assert r.returncode == 0, f"wan apply failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
        started = [h for h in netexec.layout(name)["ssh"] if h in pf.site_by_id]
        assert len(started) == SITES, netexec.layout(name)
        # nothing here sets what the controls check: the hosts are as the rollout left them
        yield {"name": name, "sites": started, "site": started[0]}
    finally:
        # `lab down` ends every recorded process (hosts, and the monitoring started below) and removes the lab dir
        r = dcops("lab", "down", "--name", name)
        assert r.returncode == 0, r.stdout + r.stderr


def _check(lab, pf, names=None, only=None):
    """The host controls through the lab's environment, from inside its management namespace."""
    from checks.netns import in_netns
    from infra import environment as EV
    from infra.environment_ssh import access
    from infra.lab.environment import config_path

    st = EV.load("lab", config_path(lab["name"]))
    acc = access(st, pf)
    present = set(st.hosts_present(list(acc.addresses)))
    return in_netns(st.env.management_netns, H.check_hosts, acc, pf, names=names, only=only, present=present)


def _wait_all_pass(lab, pf, timeout=120):
    """Right after the rollout the tunnel and chrony need a few seconds."""
    deadline = time.monotonic() + timeout
    while True:
        res = _check(lab, pf, names=set(lab["sites"]) | {"gateway"})
        bad = {(r.control, r.target): r.reason for r in res if r.status not in (Status.passed, Status.skipped)}
        if all(c in MACHINE_WIDE + NO_MIRROR for c, _ in bad) or time.monotonic() > deadline:
            return res, bad
        time.sleep(5)


@pytest.mark.lab
def test_lab_rolled_out_hosts_pass_every_control(lab, pf):
    res, bad = _wait_all_pass(lab, pf)
    # the one exception the lab shows: machine-wide kernel keys are the lab machine's (reported, not a pass)
    exc = {k: v for k, v in bad.items() if k[0] in MACHINE_WIDE}
    assert {k: v for k, v in bad.items() if k[0] not in MACHINE_WIDE + NO_MIRROR} == {}
    for (cid, host), why in exc.items():
        r = next(r for r in res if (r.control, r.target) == (cid, host))
        assert r.status == Status.not_assessed and "container (systemd-nspawn)" in r.reason, r
    # no mirror: pending updates are not assessed, never passed, on every host
    for r in res:
        if r.control in NO_MIRROR:
            assert r.status == Status.not_assessed and "no package lists" in r.reason, r
    # every host control ran on every started host (skips only where it does not apply)
    for r in res:
        if r.status == Status.skipped:
            kind = "gateway" if r.target == "gateway" else "endpoint"
            assert kind not in catalog().get(r.control).applies_to and f"not a {kind}" in r.reason, r
    # the gateway-only controls ran there: the hub follows its upstream time source, the log server keeps the logs
    assert {r.control for r in res if r.target == "gateway" and r.status == Status.passed} >= {"DCOPS-NTP-003", "DCOPS-LOG-004"}


@pytest.mark.lab
@pytest.mark.parametrize("cid", LAB_IDS)
def test_lab_scenarios(lab, pf, cid):
    site = _scenario_host(lab, cid)
    for kind, want in (("fail", Status.failed), ("pass", Status.passed)):
        S.apply(lab["name"], site, cid, kind)
        r = _check(lab, pf, names={site}, only={cid})[0]
        assert (r.control, r.target) == (cid, site)
        assert r.status == want, f"{cid} {kind} scenario ({S.description(cid, kind)}): got {r.status.value}: {r.reason} {r.evidence}"


@pytest.mark.lab
@pytest.mark.parametrize("cid", GATEWAY_BRANCHES)
def test_lab_gateway_scenarios(lab, pf, cid):
    """The gateway's own branch of a control (the hub serves time, receives the logs, listens
    for them): its fail scenario fails there, its pass scenario passes."""
    for kind, want in (("fail", Status.failed), ("pass", Status.passed)):
        S.apply(lab["name"], "gateway", cid, kind)
        r = _check(lab, pf, names={"gateway"}, only={cid})[0]
        assert (r.control, r.target) == (cid, "gateway")
        assert r.status == want, f"{cid} {kind} scenario on the gateway ({S.description(cid, kind)}): got {r.status.value}: {r.reason} {r.evidence}"


@pytest.mark.lab
def test_lab_fault_sshd_change_fails_only_that_control_on_that_site(lab, pf):
    site = lab["site"]
    S.apply(lab["name"], site, "DCOPS-SSH-002", "fail")  # PasswordAuthentication yes on one site
    try:
        res = _check(lab, pf, names=set(lab["sites"]) | {"gateway"})
        bad = {(r.control, r.target) for r in res if r.status not in (Status.passed, Status.skipped, Status.not_assessed)}
        assert bad == {("DCOPS-SSH-002", site)}, [(r.control, r.target, r.reason) for r in res if r.status not in (Status.passed, Status.skipped)]
    finally:
        S.apply(lab["name"], site, "DCOPS-SSH-002", "pass")


@pytest.mark.lab
@pytest.mark.parametrize("cid", UNREADABLE)
def test_lab_unreadable_evidence_is_an_error(lab, pf, cid):
    """The control's evidence made unreadable on a real host (``<ID>.unreadable.sh``): an error
    with the reason, never a pass; the pass scenario then restores the rolled-out state."""
    site = _scenario_host(lab, cid)
    S.apply(lab["name"], site, cid, "unreadable")
    try:
        r = _check(lab, pf, names={site}, only={cid})[0]
        assert r.status == Status.error and r.reason, f"{cid} ({S.description(cid, 'unreadable')}): got {r.status.value}: {r.reason}"
    finally:
        S.apply(lab["name"], site, cid, "pass")
    assert _check(lab, pf, names={site}, only={cid})[0].status == Status.passed


@pytest.mark.lab
def test_lab_hub_key_unreadable_is_an_error(lab, pf):
    """WG-001 on the sites compares their peer with the hub's key read on the gateway: an
    environment without the gateway cannot read it, and the sites' WG-001 is an error."""
    from checks.netns import in_netns
    from infra import environment as EV
    from infra.environment_ssh import access
    from infra.lab.environment import config_path

    st = EV.load("lab", config_path(lab["name"]))
    acc = access(st, pf)
    res = in_netns(st.env.management_netns, H.check_hosts, acc, pf, names=set(lab["sites"]), only={"DCOPS-WG-001"},
                   present=set(lab["sites"]))
    assert {r.target: r.status for r in res} == {s: Status.error for s in lab["sites"]}, [(r.target, r.reason) for r in res]
    assert all("hub's public key" in r.reason and "not in this environment" in r.reason for r in res)


@pytest.mark.lab
def test_lab_rollout_fails_on_a_sysctl_it_cannot_set(lab, pf):
    """The rollout sets the network keys for real (the lab's hosts have their own writable
    /proc/sys/net); a key it cannot write is a failure of that host, named, not 'converged'."""
    from infra.lab import netexec

    site = lab["site"]
    conf = "/proc/sys/net/ipv4/conf/all"
    sh = lambda cmd: netexec.host_run(lab["name"], site, ["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    r = sh(f"echo 1 > {conf}/send_redirects && mount -o bind,ro {conf} {conf}")
    assert r.returncode == 0, r.stderr
    try:
        r = dcops("wan", "apply", *lab_stack(lab["name"]), "--engine", "ansible", "--limit", site)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"{site}  failed" in r.stdout, r.stdout[-3000:]
        # the host's failure names the key and why (the sysctl role fails with the repair's own words)
        assert "net.ipv4.conf.all.send_redirects: cannot be set here (read-only): 1, want 0" in r.stdout, r.stdout[-3000:]
    finally:
        sh(f"umount {conf}")
    r = dcops("wan", "apply", *lab_stack(lab["name"]), "--engine", "ansible", "--limit", site)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sh(f"cat {conf}/send_redirects").stdout.strip() == "0"  # set by the rollout, not by this test


# --------------------------------------------------------------------------- SLAs and `dcops check` on the same lab


@pytest.fixture(scope="module")
def monitored(lab, pf):
    from infra.lab import monitoring

    info = monitoring.start(lab["name"], pf, progress=lambda m: None)
    monitoring.wait_for_samples(lab["name"], pf, timeout=180)
    # coverage is counted in whole monitored minutes: wait until every platform has one
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if all(r.status != Status.insufficient_data for r in _sla({"name": lab["name"]}, pf, info).values()):
            break
        time.sleep(5)
    return info


def _sla(lab, pf, info, only=("DCOPS-SLA-001",)):
    from checks import sla
    from checks.netns import in_netns
    from infra.lab import monitoring

    prom = monitoring.prom(lab["name"])
    # The lab's Prometheus holds minutes of a 30-day window: these tests judge those minutes
    # (a coverage threshold of 0.001%); the province's own threshold gives "insufficient data",
    # which test_lab_fault_frontend_stopped_fails_only_that_platform_sla shows through the CLI.
    return {r.target: r for r in in_netns(info["netns"], lambda: sla.run_all(pf, prom, only=set(only), min_coverage_pct=0.001))}


@pytest.mark.lab
def test_lab_cli_check_targets_a_site(lab, pf, tmp_path):
    site = lab["site"]
    outp = tmp_path / "latest.json"
    r = dcops("check", *lab_stack(lab["name"]), "--target", site, "--only", "DCOPS-SSH-001,DCOPS-FW-001,DCOPS-WG-002", "--output", str(outp))
    assert r.returncode == 0, r.stdout + r.stderr
    import json

    doc = json.loads(outp.read_text())
    assert {(x["control"], x["target"], x["status"]) for x in doc["results"]} == {
        ("DCOPS-SSH-001", site, "pass"), ("DCOPS-FW-001", site, "pass"), ("DCOPS-WG-002", site, "pass")}
    assert len(list(tmp_path.glob("*.json"))) == 2  # latest + timestamped copy
    assert "summary" in r.stdout and "DCOPS-SSH-001" in r.stdout


SLA_SCN = REPO / "checks" / "scenarios" / "sla"



def _frontend_argv(lab, p, delay_ms=0, tls=None):
    """The lab's own front end of platform ``p`` (HTTPS on its TLS ports with a certificate of the
    lab province's CA unless ``tls`` names another), answering ``delay_ms`` late."""
    from infra.lab import hosts
    from infra.lab.topology import frontend_of

    f = frontend_of(p)
    return hosts.frontend_argv(f, tls or hosts.frontend_certificate(lab["name"], f), delay_ms)


def _stop_frontend(lab, platform):
    import os
    import signal

    from infra.lab.state import LabState, pid_alive

    fe = [p for p in LabState.load(lab["name"]).processes() if p["name"] == f"frontend:{platform}"]
    assert len(fe) == 1, fe
    os.kill(fe[0]["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid_alive(fe[0]["pid"], fe[0].get("start_time")) and time.monotonic() < deadline:
        time.sleep(0.2)


def _poll(fn, until, timeout=150, every=3):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if until(v) or time.monotonic() > deadline:
            return v
        time.sleep(every)


@pytest.mark.lab
def test_lab_fault_frontend_stopped_fails_only_that_platform_sla(lab, pf, monitored, tmp_path):
    import json
    import os
    import signal

    from infra.lab.state import LabState

    before = _sla(lab, pf, monitored)
    assert {p: r.status for p, r in before.items()} == {p.id: Status.passed for p in pf.platforms}, {p: r.reason for p, r in before.items()}
    # the fault is DCOPS-SLA-004's fail scenario (its file names the platform and the action)
    import yaml

    sc = yaml.safe_load((SLA_SCN / "DCOPS-SLA-004.fail.yaml").read_text())
    assert sc["action"] == "stop_frontend" and sc["target"] in pf.platform_by_id, sc
    victim = sc["target"]
    _stop_frontend(lab, victim)
    deadline = time.monotonic() + 120
    while True:
        after = _sla(lab, pf, monitored)
        if after[victim].status == Status.failed or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert after[victim].status == Status.failed, after[victim]
    assert after[victim].evidence["availability_pct"] < 100
    assert {p: r.status for p, r in after.items() if p != victim} == {p.id: Status.passed for p in pf.platforms if p.id != victim}
    # the same through the command line, with the province's threshold (90% of 30 days): minutes
    # of data are "insufficient data" for every platform, with the time observed; not a failure (exit 0)
    outp = tmp_path / "latest.json"
    r = dcops("check", *lab_stack(lab["name"]), "--only", "DCOPS-SLA-001", "--output", str(outp))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(outp.read_text())
    assert {x["status"] for x in doc["results"]} == {"insufficient_data"}, [(x["target"], x["status"], x["reason"]) for x in doc["results"]]
    assert doc["summary"]["insufficient_data"] == len(pf.platforms) and doc["summary"]["pass"] == 0
    for x in doc["results"]:
        assert "insufficient data: observed" in x["reason"] and x["evidence"]["coverage_pct"] < 1, x
        assert 0 < x["evidence"]["monitored_s"] < 3600 and x["evidence"]["window_s"] == 30 * 86400
    # DCOPS-SLA-004's fail scenario: the victim's 14.4x page fires, no other platform pages
    # The lab's Prometheus holds minutes of data, so the 6h window reads what the 1h window does
    # and its lower threshold (6x) is crossed first: wait for the 14.4x page itself.
    page_1h = "DcopsPlatformAvailabilityBurn[availability,1h]"
    pages = _poll(lambda: _sla(lab, pf, monitored, only=("DCOPS-SLA-004",)),
                  lambda v: v[victim].status == Status.failed and page_1h in v[victim].evidence.get("firing", []))
    assert pages[victim].status == Status.failed, pages[victim]
    assert page_1h in pages[victim].evidence["firing"], pages[victim].evidence
    assert {p: r.status for p, r in pages.items() if p != victim and p in pf.platform_by_id} == {
        p.id: Status.passed for p in pf.platforms if p.id != victim}


@pytest.mark.lab
def test_lab_sla_latency_scenarios(lab, pf, monitored):
    """DCOPS-SLA-002: pass as the lab started (motcua's front end, stopped by the test above,
    answered fast while it ran); fail when one front end answers slower than its threshold."""
    import yaml

    from infra.lab import netexec

    good = _sla(lab, pf, monitored, only=("DCOPS-SLA-002",))
    assert {p: r.status for p, r in good.items()} == {p.id: Status.passed for p in pf.platforms}, {p: r.reason for p, r in good.items()}
    sc = yaml.safe_load((SLA_SCN / "DCOPS-SLA-002.fail.yaml").read_text())
    assert sc["action"] == "slow_frontend", sc  # the fault as its scenario file states it
    victim = pf.platform_by_id[sc["target"]]
    assert sc["delay_ms"] > victim.slo.latency_ms
    _stop_frontend(lab, victim.id)
    slow = netexec.ns_popen(lab["name"], "dc", _frontend_argv(lab, victim, sc["delay_ms"]))
    try:
        after = _poll(lambda: _sla(lab, pf, monitored, only=("DCOPS-SLA-002",)), lambda v: v[victim.id].status == Status.failed)
        assert after[victim.id].status == Status.failed, after[victim.id]
        assert after[victim.id].evidence["fast_pct"] < victim.slo.latency_target
        assert {p: r.status for p, r in after.items() if p != victim.id} == {p.id: Status.passed for p in pf.platforms if p.id != victim.id}
    finally:
        slow.terminate()
        slow.wait(10)


@pytest.mark.lab
def test_lab_sla_tls_front_end_with_a_certificate_of_another_ca_fails(lab, pf, monitored, tmp_path):
    """The probes verify TLS: a TLS platform's front end replaced by one whose certificate (same
    address) another CA signed fails its probe (unknown authority) and then DCOPS-SLA-001; a
    platform on plain HTTP stays up."""
    from infra.lab import netexec, pki
    from infra.render import prometheus as R

    victim = next(p for p in pf.platforms if p.ports[0].scheme == "https" and p.id != "lgsp")  # lgsp: the latency test's
    plain = next(p for p in pf.platforms if p.ports[0].scheme == "http" and p.id != "motcua")  # motcua: stopped above
    assert R.probe_url(victim).startswith("https://") and R.probe_url(plain).startswith("http://")
    code = ("import sys, urllib.parse as q, urllib.request as u\n"
            "for t, m in zip(sys.argv[1::2], sys.argv[2::2]):\n"
            "    url = 'http://127.0.0.1:9115/probe?' + q.urlencode({'target': t, 'module': m, 'debug': 'true'})\n"
            "    print(u.urlopen(url, timeout=20).read().decode().replace('\\n', ' | '))\n")

    def probes() -> list[str]:
        r = netexec.mgmt_run(lab["name"], [sys.executable, "-c", code, R.probe_url(victim), R.probe_module(victim),
                                           R.probe_url(plain), R.probe_module(plain)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    ok = probes()
    assert all("probe_success 1" in ln for ln in ok), ok  # the lab province's CA verifies the real front end
    other = tmp_path / "other-ca"
    pki.province_ca(other, cn="not the province's CA")
    rogue_cert = pki.issue_server(other, "rogue", [victim.address], [victim.hostname] if victim.hostname else [])
    _stop_frontend(lab, victim.id)
    rogue = netexec.ns_popen(lab["name"], "dc", _frontend_argv(lab, victim, tls=rogue_cert))
    try:
        # until the rogue listens (before, the probe fails with a refused connection)
        got = _poll(probes, lambda v: "certificate signed by unknown authority" in v[0], timeout=60, every=1)
        assert "probe_success 0" in got[0] and "certificate signed by unknown authority" in got[0], got[0][-3000:]
        assert "probe_success 1" in got[1], got[1][-2000:]
        after = _poll(lambda: _sla(lab, pf, monitored), lambda v: v[victim.id].status == Status.failed)
        assert after[victim.id].status == Status.failed, after[victim.id]
        assert after[victim.id].evidence["availability_pct"] < 100
        assert after[plain.id].status == Status.passed, after[plain.id]
    finally:
        rogue.terminate()
        rogue.wait(10)


@pytest.mark.lab
def test_lab_prometheus_stopped_is_an_environment_error(lab, pf, monitored, tmp_path):
    """An unreachable Prometheus: exit 3, the cause named, nothing checked (never a pass)."""
    from infra.lab import monitoring

    monitoring.stop(lab["name"])
    outp = tmp_path / "latest.json"
    r = dcops("check", *lab_stack(lab["name"]), "--only", "DCOPS-SLA-001,DCOPS-SLA-003", "--output", str(outp))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Prometheus at https://127.0.0.1:9090 is unreachable" in r.stderr and "nothing was checked" in r.stderr
    assert not outp.exists()
