"""The lab's WAN hosts, for real: network namespaces, systemd-nspawn hosts, sshd.

The tests marked ``lab`` boot real hosts (root, systemd-nspawn, the base image;
the first run builds the image with debootstrap, a few minutes) under their own
lab names (``t`` + 5 random characters) and tear them down in fixture
finalizers even when a test fails.  Every probe goes only to addresses inside
the lab's own namespaces; the only outside address used is the machine's
default gateway, and only with ``ip route get`` (a routing-table lookup, no
packet is sent).
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.lab import hosts, image, netexec, topology
from infra.lab.state import LabState, pid_alive
from infra.paths import REPO, lab_dir
from infra.validate import check_text, load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"


def new_lab_name() -> str:
    return "t" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))


@pytest.fixture(scope="module")
def model():
    return load_province(PROVINCE)


# --------------------------------------------------------------------------- pure: names and addresses


def test_topology_names_and_addresses(model) -> None:
    topo = topology.build(model, "abcdefgh")
    assert len(topo.sites) == len(model.wan.sites)
    s0 = topo.site(model.wan.sites[0].id)
    assert s0.netns == "abcdefgh-s0" and s0.lan_netns == "abcdefgh-l0" and s0.machine == "abcdefgh-s0"
    assert s0.wan_cidr == f"{model.wan.sites[0].wan_address}/16"
    assert s0.gateway == model.wan.hub.wan_address
    lan = ipaddress.ip_network(model.wan.sites[0].lan)
    assert s0.lan_address == str(lan.network_address + 1) and s0.lan_client_address == str(lan.network_address + 2)
    assert topo.gateway.wan_address == model.wan.hub.wan_address
    mseg = ipaddress.ip_network(model.management_segment().cidr)
    assert ipaddress.ip_address(topo.mgmt.address) in mseg and topo.mgmt.address.endswith(".10")
    assert topo.mgmt.gateway == topo.gateway.mgmt_address
    assert {f.address for f in topo.dc.frontends} == {p.address for p in model.platforms}
    # every name fits the kernel's 15 characters and carries the lab name where it must
    for s in topo.sites:
        assert len(s.switch_port) <= 15 and s.switch_port.startswith("abcdefgh")
    for ns in topo.namespaces():
        assert ns.startswith("abcdefgh-")
    assert len(set(topo.namespaces())) == len(topo.namespaces())
    # a site keeps its names whichever subset is started
    sub = topology.build(model, "abcdefgh", [model.wan.sites[4].id])
    assert sub.sites[0].netns == "abcdefgh-s4"
    assert [s.site_id for s in topology.build(model, "x", 3).sites] == [s.id for s in model.wan.sites[:3]]
    with pytest.raises(topology.TopologyError, match="unknown site"):
        topology.build(model, "x", ["nope"])
    with pytest.raises(topology.TopologyError, match="only"):
        topology.build(model, "x", len(model.wan.sites) + 1)


def test_scaled_province_validates(model) -> None:
    import yaml

    big = topology.scaled_province(model, 250)
    assert len(big.wan.sites) == 250
    assert big.wan.sites[: len(model.wan.sites)] == model.wan.sites
    _, problems = check_text(yaml.safe_dump(big.model_dump(mode="json"), allow_unicode=True))
    assert problems == []
    topo = topology.build(big, "abcdefgh")
    assert max(len(s.switch_port) for s in topo.sites) <= 15


def test_netem_args() -> None:
    from infra.model import LinkShape

    assert topology.netem_args(LinkShape(delay_ms=25, jitter_ms=5, loss_pct=0.1)) == [
        "netem", "delay", "25ms", "5ms", "loss", "0.1%"]
    assert topology.netem_args(LinkShape(rate_mbit=10)) == ["netem", "rate", "10mbit"]


# --------------------------------------------------------------------------- helpers for the real lab


def lab_netns(name: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {ln.split()[0] for ln in out.splitlines() if ln.split() and ln.split()[0].startswith(f"{name}-")}


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()}


def lab_mounts(name: str) -> list[str]:
    d = str(lab_dir(name))
    return [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines() if d in ln.split()[1]]


def lab_cgroup_pids(name: str) -> list[int]:
    pids: list[int] = []
    for root in hosts._cgroup_roots():
        # os.walk based: systemd inside a booting host adds and removes cgroups while we look
        pids += hosts._cgroup_pids(root / f"dcops-{name}")
    return pids


def lab_leftovers(name: str) -> list[str]:
    """Everything of lab ``name`` still on the machine (should be empty after down)."""
    left = [f"netns {n}" for n in sorted(lab_netns(name))]
    left += [f"mount {m}" for m in lab_mounts(name)]
    left += [f"cgroup {root}/dcops-{name}" for root in hosts._cgroup_roots() if (root / f"dcops-{name}").exists()]
    left += [f"link {ln}" for ln in root_links() if ln.startswith(name)]
    left += [f"nspawn dir {p}" for p in Path("/run/systemd/nspawn/propagate").glob(f"{name}-*")]
    left += [f"dir {d}" for d in (hosts.hosts_dir(name), netexec.mgmt_dir(name)) if d.exists()]
    left += [f"dir {d}" for d in Path("/etc/netns").glob(f"{name}-*")]
    return left


def assert_no_leftovers(name: str, pids: list[int]) -> None:
    assert lab_leftovers(name) == []
    alive = [p for p in pids if pid_alive(p)]
    assert alive == [], f"processes of lab {name} still alive: {alive}"
    st = LabState.load(name)
    assert st.processes(hosts.COMPONENT) == []
    assert [r for r in st.resources() if r.get("component") == hosts.COMPONENT] == []


def recorded_pids(name: str) -> list[int]:
    return [p["pid"] for p in LabState.load(name).processes(hosts.COMPONENT)]


def container_pids(name: str) -> list[int]:
    """PIDs of every process in the lab's host cgroups (containers included)."""
    return lab_cgroup_pids(name)


def teardown(name: str) -> None:
    try:
        hosts.down(name, progress=lambda m: None)
    finally:
        d = lab_dir(name)
        if d.exists() and not lab_mounts(name):
            subprocess.run(["rm", "-rf", str(d)], check=False)


def ssh(name: str, host: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return netexec.ssh_run(name, host, list(argv), capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- the real lab (3 sites)


@pytest.fixture(scope="module")
def lab(model):
    name = new_lab_name()
    links_before = root_links()
    lines: list[str] = []
    t0 = time.monotonic()
    # two departments and the slowest tier's first site (communes: more delay, some loss)
    slow = max(model.wan.tiers, key=lambda t: t.link.delay_ms).id
    chosen = [s.id for s in model.wan.sites[:2]] + [next(s.id for s in model.wan.sites if s.tier == slow)]
    try:
        hosts.up(model, name, sites=chosen, progress=lines.append)
        print(f"\nlab {name} up in {time.monotonic() - t0:.1f}s:\n" + "\n".join(lines))
        yield {"name": name, "topo": topology.build(model, name, chosen), "lines": lines,
               "links_before": links_before}
    finally:
        teardown(name)


@pytest.mark.lab
def test_up_reports_progress_time_and_memory(lab) -> None:
    text = "\n".join(lab["lines"])
    assert re.search(r"\[hosts\] 4/4 up", text), text
    assert re.search(r"4/4 hosts up in [\d.]+s .* MiB per host", text), text
    assert "FAILED" not in text


@pytest.mark.lab
def test_every_host_answers_ssh_with_strict_host_keys(lab) -> None:
    name = lab["name"]
    cfg = netexec.ssh_paths(name)["config"].read_text()
    assert "StrictHostKeyChecking yes" in cfg and "BatchMode yes" in cfg
    key = netexec.ssh_paths(name)["key"]
    assert key.stat().st_mode & 0o777 == 0o600
    for host in ["hub", *[s.site_id for s in lab["topo"].sites]]:
        r = ssh(name, host, "id", "-un")
        assert r.returncode == 0 and r.stdout.strip() == "dcops", (host, r.stderr)
        # no NOPASSWD: sudo asks the rollout account for its password (the lab's, 0600, named by its environment)
        r = ssh(name, host, "sudo", "-n", "true")
        assert r.returncode != 0 and "password is required" in r.stderr, (host, r.stderr)
        pw = netexec.ssh_paths(name)["become_password"]
        assert pw.stat().st_mode & 0o777 == 0o600
        r = netexec.ssh_run(name, host, ["sudo", "-S", "-p", "", "id", "-un"], input=pw.read_text(), capture_output=True,
                            text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == "root", (host, r.stderr)
    # strict: the same host with an empty known_hosts is refused
    s0 = lab["topo"].sites[0]
    r = netexec.mgmt_run(name, ["ssh", "-F", str(netexec.ssh_paths(name)["config"]), "-o",
                                "UserKnownHostsFile=/dev/null", s0.wan_address, "true"],
                         capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "verification failed" in r.stderr.lower(), r.stderr


@pytest.mark.lab
def test_hosts_run_systemd(lab) -> None:
    for host in ["hub", *[s.site_id for s in lab["topo"].sites]]:
        r = ssh(lab["name"], host, "systemctl", "is-system-running", "--wait")
        assert r.stdout.strip() in ("running", "degraded"), (host, r.stdout, r.stderr)
        r = ssh(lab["name"], host, "ps", "-p", "1", "-o", "comm=")
        assert r.stdout.strip() == "systemd"
        r = ssh(lab["name"], host, "systemctl", "is-active", "ssh", "rsyslog", "chrony")
        assert r.stdout.split() == ["active"] * 3, (host, r.stdout)


@pytest.mark.lab
def test_daily_timers_fire_at_different_times_on_each_host(lab) -> None:
    """The hosts share one kernel and so one boot ID, from which systemd places a timer within its
    accuracy window: without a per-host delay, every host's logrotate fired in the same second
    (a load average of 675 at 700 sites).  Each host's next rotation is at its own time."""
    nxt = {}
    for host in ["hub", *[s.site_id for s in lab["topo"].sites]]:
        r = ssh(lab["name"], host, "systemctl", "show", "logrotate.timer", "-p", "RandomizedDelayUSec",
                "-p", "FixedRandomDelay", "-p", "NextElapseUSecRealtime")
        props = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        assert props.get("FixedRandomDelay") == "yes" and props.get("RandomizedDelayUSec") == "23h", (host, r.stdout)
        nxt[host] = props["NextElapseUSecRealtime"]
        assert nxt[host].strip(), (host, r.stdout)  # e.g. "Mon 2026-12-07 09:06:50 UTC": the delay included
    assert len(set(nxt.values())) == len(nxt), nxt


@pytest.mark.lab
def test_each_host_has_its_own_etc(lab) -> None:
    a, b = (s.site_id for s in lab["topo"].sites[:2])
    marker = "/etc/dcops-test-" + "".join(random.choices(string.ascii_lowercase, k=8))
    r = netexec.host_run(lab["name"], a, ["sh", "-c", f"echo here > {marker} && cat {marker}"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "here", r.stderr
    assert ssh(lab["name"], b, "test", "-e", marker).returncode == 1
    assert ssh(lab["name"], "hub", "test", "-e", marker).returncode == 1
    assert not (image.rootfs_path() / marker.lstrip("/")).exists()  # the shared image is untouched
    assert ssh(lab["name"], a, "hostname").stdout.strip() == a
    assert ssh(lab["name"], b, "hostname").stdout.strip() == b


@pytest.mark.lab
def test_host_keys_differ_and_are_made_in_each_host(lab) -> None:
    keys = {}
    for host in ["hub", *[s.site_id for s in lab["topo"].sites]]:
        r = ssh(lab["name"], host, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
        assert r.returncode == 0
        keys[host] = r.stdout.split()[1]
    assert len(set(keys.values())) == len(keys)
    assert not list((image.rootfs_path() / "etc/ssh").glob("ssh_host_*"))
    kh = netexec.ssh_paths(lab["name"])["known_hosts"].read_text()
    for k in keys.values():
        assert k in kh
    machine_ids = {ssh(lab["name"], h, "cat", "/etc/machine-id").stdout.strip()
                   for h in ["hub", *[s.site_id for s in lab["topo"].sites]]}
    assert len(machine_ids) == 4


@pytest.mark.lab
def test_lan_client_pings_its_site(lab) -> None:
    for s in lab["topo"].sites:
        r = netexec.ns_run(lab["name"], f"lan:{s.site_id}", ["ping", "-c", "1", "-W", "3", s.lan_address],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
    r = netexec.ns_run(lab["name"], f"lan:{lab['topo'].sites[0].site_id}", ["ip", "-o", "route", "show", "default"],
                       capture_output=True, text=True)
    assert f"via {lab['topo'].sites[0].lan_address}" in r.stdout


@pytest.mark.lab
def test_nothing_routes_out_of_the_lab(lab) -> None:
    name, topo = lab["name"], lab["topo"]
    out = subprocess.run(["ip", "-o", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    outside = out[out.index("via") + 1] if "via" in out else "192.0.2.1"
    lab_addrs = {topo.gateway.wan_address, topo.gateway.mgmt_address, topo.dc.gateway}
    lab_addrs |= {s.lan_address for s in topo.sites}
    for ns in topo.namespaces():
        r = subprocess.run(["ip", "-n", ns, "-o", "route", "get", outside], capture_output=True, text=True)
        if ns in (topo.gateway.netns, topo.switch.netns):
            # the gateway and the switch have no default route: the lookup fails
            assert r.returncode != 0 and "unreachable" in r.stderr.lower(), (ns, r.stdout, r.stderr)
        else:
            # everyone else's default route points at a lab address (and ends at the gateway)
            assert r.returncode == 0, (ns, r.stderr)
            hop = r.stdout.split()[r.stdout.split().index("via") + 1]
            assert hop in lab_addrs, (ns, r.stdout)
    # no lab link in the machine's own namespace, and inside the lab only veths, bridges and
    # loopbacks: no physical device of the machine was moved in
    assert not [ln for ln in root_links() if ln.startswith(name)]
    for ns in topo.namespaces():
        r = subprocess.run(["ip", "-n", ns, "-o", "-d", "link", "show"], capture_output=True, text=True).stdout
        for ln in r.splitlines():
            assert "link/loopback" in ln or " veth " in ln or "bridge " in ln, (ns, ln)


@pytest.mark.lab
def test_platform_front_ends_answer_from_mgmt(lab) -> None:
    name, topo = lab["name"], lab["topo"]
    # HTTPS on the TLS ports, verified against the lab province's CA (the others: plain HTTP)
    from infra.lab import pki

    ca = pki.province_dir(name) / f"{pki.PROVINCE_CA}.crt"
    code = ("import json,ssl,sys,urllib.request as u\n"
            "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
            "for a in sys.argv[2:]:\n"
            "    s, hp = a.split('://')\n"
            "    r = u.urlopen(f'{a}/healthz', timeout=10, context=ctx if s == 'https' else None)\n"
            "    print(hp, r.status, json.load(r)['platform'], s)\n")
    targets = [f"{'https' if p in f.tls_ports else 'http'}://{f.address}:{p}"
               for f in topo.dc.frontends for p, proto in f.ports if proto == "TCP"]
    assert any(t.startswith("https://") for t in targets) and any(t.startswith("http://") for t in targets)
    r = netexec.mgmt_run(name, [sys.executable, "-c", code, str(ca), *targets], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = {ln.split()[0]: (ln.split()[1], ln.split()[2]) for ln in r.stdout.splitlines()}
    for f in topo.dc.frontends:
        for p, _ in f.ports:
            assert got[f"{f.address}:{p}"] == ("200", f.platform_id)
    # from a site host's WAN address too, through the switch and the gateway
    s0 = topo.sites[0]
    r = netexec.ns_run(name, s0.site_id, [sys.executable, "-c", code, str(ca), targets[0]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and " 200 " in r.stdout, r.stderr
    # but not from a site LAN: the gateway has no route back to the LANs until the
    # rollout's tunnels carry them (the LANs reach the data center only through a tunnel)
    code_short = code.replace("timeout=10", "timeout=3")
    r = netexec.ns_run(name, f"lan:{s0.site_id}", [sys.executable, "-c", code_short, str(ca), targets[0]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "timed out" in r.stderr, r.stdout + r.stderr


@pytest.mark.lab
def test_status_and_host_run(lab) -> None:
    rows = hosts.status(lab["name"])
    sites = [r for r in rows if r["kind"] in ("site", "gateway")]
    assert len(sites) == 4 and all(r["running"] and r["ssh"] for r in sites), rows
    assert all(r["running"] for r in rows), [r for r in rows if not r["running"]]
    assert "4/4 running, 4/4 answer ssh" in hosts.summary(rows)
    s0 = lab["topo"].sites[0].site_id
    r = netexec.host_run(lab["name"], s0, ["hostname"], capture_output=True, text=True)
    assert r.stdout.strip() == s0


@pytest.mark.lab
def test_link_shapes_per_tier(lab) -> None:
    """Each site's link has its tier's delay: communes answer slower than departments."""
    name, topo = lab["name"], lab["topo"]
    rtt = {}
    for s in topo.sites:
        r = netexec.mgmt_run(name, ["ping", "-c", "10", "-i", "0.2", "-q", s.wan_address], capture_output=True,
                             text=True, timeout=60)
        rtt[s.site_id] = float(re.search(r"= [\d.]+/([\d.]+)/", r.stdout).group(1))
        want = s.netem.delay_ms if s.netem else 0
        assert rtt[s.site_id] >= 0.8 * want, (s.site_id, want, r.stdout)
        assert rtt[s.site_id] < want + 2 * (s.netem.jitter_ms if s.netem else 0) + 30, (s.site_id, r.stdout)
    dept, commune = topo.sites[0], topo.sites[-1]
    assert rtt[commune.site_id] > rtt[dept.site_id] + 10, rtt


# --------------------------------------------------------------------------- down: exact, twice, after a crash


@pytest.mark.lab
def test_down_removes_everything_and_spares_another_lab(model, lab) -> None:
    """A second lab next to the module's: its down removes all of it, twice, and the first lab lives on."""
    other = lab["name"]
    name = new_lab_name()
    netns_before = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    other_ns = lab_netns(other)
    other_pids = recorded_pids(other)
    try:
        hosts.up(model, name, sites=[model.wan.sites[1].id, model.wan.sites[8].id], progress=lambda m: None)
        assert len(lab_netns(name)) == 4 + 2 * 2
        assert len(lab_mounts(name)) == 1 + 3  # the hosts' tmpfs and an overlay per host
        pids = recorded_pids(name) + container_pids(name)
        assert len(pids) > 10
        r = ssh(name, model.wan.sites[8].id, "hostname")
        assert r.stdout.strip() == model.wan.sites[8].id
        # Left in the management namespace: a client of this lab whose parent was stopped (an
        # Ansible worker orphaned by a stopped run, its argv naming the lab's inventory; SSH
        # ControlMasters daemonize likewise) and someone's process that is not the lab's.
        # down ends the first (by PID) and leaves the second alone.
        inv = lab_dir(name) / "work" / "wan" / "ansible" / "inventory" / "hosts.yml"
        orphan = subprocess.Popen(netexec.mgmt_argv(name, [sys.executable, "-c", "import time; time.sleep(600)", str(inv)]),
                                  start_new_session=True)
        bystander = subprocess.Popen(netexec.mgmt_argv(name, ["sleep", "600"]))
        time.sleep(0.5)
    finally:
        hosts.down(name, progress=lambda m: None)
    try:
        assert orphan.wait(5) is not None, "the lab's orphaned client survived down"
        assert bystander.poll() is None, "down ended a process that was not the lab's"
    finally:
        for proc in (bystander, orphan):
            proc.kill()
            proc.wait()
    assert_no_leftovers(name, pids)
    hosts.down(name, progress=lambda m: None)  # twice: nothing to do, no error
    assert_no_leftovers(name, pids)
    # nothing else was removed (other engineers' test labs, t?????-*, come and go on their own)
    netns_after = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    gone = {n for n in netns_before - netns_after if not re.match(r"^t[a-z0-9]{5}-", n) and "(id:" not in n}
    assert gone == set()
    # the other lab is untouched and still works
    assert lab_netns(other) == other_ns
    assert all(pid_alive(p) for p in other_pids)
    assert ssh(other, lab["topo"].sites[0].site_id, "true").returncode == 0
    subprocess.run(["rm", "-rf", str(lab_dir(name))])


@pytest.mark.lab
def test_down_after_up_crashed_midway(model) -> None:
    """`up` killed with SIGKILL while hosts boot: down still finds and removes everything."""
    name = new_lab_name()
    p = subprocess.Popen([sys.executable, "-m", "infra.lab.hosts", "up", name, "--sites", "3"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert p.stdout is not None
        for line in p.stdout:
            if "booting" in line:
                break
        time.sleep(1.5)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        assert lab_netns(name), "up was killed before it made anything"
        pids = recorded_pids(name) + container_pids(name)
        assert pids
    finally:
        if p.poll() is None:
            p.kill()
        hosts.down(name, progress=lambda m: None)
    assert_no_leftovers(name, pids)
    subprocess.run(["rm", "-rf", str(lab_dir(name))])


@pytest.mark.lab
def test_many_sites_in_parallel(model) -> None:
    """A province grown to 30 sites: every host boots (in parallel batches) and answers; down is exact."""
    big = topology.scaled_province(model, 30)
    name = new_lab_name()
    lines: list[str] = []
    try:
        hosts.up(big, name, progress=lines.append)
        text = "\n".join(lines)
        assert "31/31 hosts up" in text and "FAILED" not in text, text
        print("\n" + "\n".join(ln for ln in lines if "up (" not in ln))
        rows = hosts.status(name)
        bad = [r for r in rows if not r["running"] or (r["kind"] in ("site", "gateway") and not r["ssh"])]
        assert bad == []
        last = big.wan.sites[-1].id
        assert ssh(name, last, "hostname").stdout.strip() == last
        pids = recorded_pids(name) + container_pids(name)
    finally:
        hosts.down(name, progress=lines.append)
    print(lines[-1])
    assert_no_leftovers(name, pids)
    subprocess.run(["rm", "-rf", str(lab_dir(name))])


@pytest.mark.lab
def test_one_host_failing_does_not_stop_the_others(model) -> None:
    """A host whose systemd dies while it boots is reported; every other host comes up; down is exact."""
    import threading

    name = new_lab_name()
    victim = model.wan.sites[1].id
    killed: list[int] = []
    stop = threading.Event()

    def kill_victim() -> None:  # the real fault: the host's init (PID 1 inside it) is killed at boot
        while not stop.is_set() and not killed:
            for p in LabState.load(name).processes(hosts.COMPONENT):
                if p.get("host") == victim:
                    init = netexec.init_pid(int(p["pid"]))  # the host's systemd, not nspawn's outer child
                    if init:
                        os.kill(init, signal.SIGKILL)
                        killed.append(init)
            time.sleep(0.02)

    t = threading.Thread(target=kill_victim, daemon=True)
    lines: list[str] = []
    t.start()
    try:
        with pytest.raises(hosts.HostsFailed) as err:
            hosts.up(model, name, sites=3, progress=lines.append)
        stop.set()
        assert killed, "the fault was not injected"
        assert set(err.value.failed) == {victim}, err.value.failed
        text = "\n".join(lines)
        assert f"{victim} (" in text and "FAILED" in text and "3/4 hosts up" in text, text
        for s in [model.wan.sites[0].id, model.wan.sites[2].id, "hub"]:
            assert ssh(name, s, "true").returncode == 0
        rows = {r["host"]: r for r in hosts.status(name)}
        assert rows[victim]["failed"] and not rows[victim]["ssh"]
        pids = recorded_pids(name) + container_pids(name)
    finally:
        stop.set()
        hosts.down(name, progress=lambda m: None)
    assert_no_leftovers(name, pids)
    subprocess.run(["rm", "-rf", str(lab_dir(name))])
