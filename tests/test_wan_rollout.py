"""The WAN rollout on real lab hosts: both engines, idempotence, connectivity, faults, drift.

A lab of its own (``t`` + 5 random characters) with three sites and the gateway; torn down
in a finalizer even when a test fails. Each engine is applied to fresh hosts and the
resulting hosts are compared (files, nft table, addresses, routes, rules, WireGuard,
services, sysctls).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.lab import hosts as lab_hosts
from infra.lab import netexec
from infra.paths import lab_dir
from infra.render import endpoint as E
from infra.validate import load_province

from conftest import lab_stack, write_lab_environment

REPO = Path(__file__).resolve().parent.parent
PROVINCE = REPO / "stacks" / "province-lab.yaml"
DCOPS = [str(Path(sys.executable).parent / "dcops")]
SITES = ["so-tc", "so-xd", "p-trung-tam"]  # different reach sets; a department and a ward

# Every target is tried at once, each with its own connect timeout: a dropped port costs the
# timeout once per probe, not once per target.
PROBE = r"""
import socket, sys, threading
t = float(sys.argv[1])
res = {}
def one(a):
    h, p = a.rsplit(":", 1)
    s = socket.socket(); s.settimeout(t)
    try:
        s.connect((h, int(p))); r = "open"
    except socket.timeout:
        r = "timeout"
    except ConnectionRefusedError:
        r = "refused"
    except OSError as e:
        r = "error-%s" % e.errno
    finally:
        s.close()
    res[a] = r
ts = [threading.Thread(target=one, args=(a,)) for a in sys.argv[2:]]
for x in ts: x.start()
for x in ts: x.join()
for a in sys.argv[2:]:
    print(a, res[a])
"""


class Lab:
    def __init__(self, name: str):
        self.name = name
        self.model = load_province(PROVINCE)

    # -------------------------------------------------------------- lifecycle
    def up(self) -> None:
        lab_hosts.up(self.model, self.name, sites=SITES, progress=print)
        write_lab_environment(self.name, self.model, PROVINCE)

    def down(self) -> None:
        lab_hosts.down(self.name, progress=print)

    def fresh_hosts(self) -> None:
        self.down()
        shutil.rmtree(lab_dir(self.name) / "work" / "wan", ignore_errors=True)
        self.up()

    # -------------------------------------------------------------- running
    def dcops(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [*DCOPS, "wan", *args, *lab_stack(self.name)] if args and args[0] in ("apply", "inventory") else [*DCOPS, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
        print(f"$ dcops wan {' '.join(args)} -> exit {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def apply(self, *args: str, json_out: Path | None = None) -> tuple[subprocess.CompletedProcess, dict]:
        out = json_out or (lab_dir(self.name) / f"result-{time.monotonic_ns()}.json")
        p = self.dcops("apply", *args, "--json", str(out))
        data = json.loads(out.read_text()) if out.exists() else {}
        return p, data

    def address(self, host: str) -> str:
        return self.model.wan.hub.wan_address if host == E.GATEWAY else self.model.site_by_id[host].wan_address

    def ssh(self, host: str, script: str, timeout: float = 60) -> str:
        # as the operator would: sudo with the rollout account's password (no NOPASSWD on the hosts)
        p = netexec.ssh_run(
            self.name, self.address(host), ["sudo", "-S", "-p", "", "bash", "-c", script],
            input=netexec.ssh_paths(self.name)["become_password"].read_text(), capture_output=True, text=True, timeout=timeout
        )
        assert p.returncode == 0, f"{host}: {script[:80]}...: {p.stderr}"
        return p.stdout

    def root(self, host: str, argv: list[str]) -> subprocess.CompletedProcess:
        """In the host's container without SSH (fault injection and repair)."""
        return netexec.host_run(self.name, "hub" if host == E.GATEWAY else host, argv, capture_output=True, text=True)

    def probe(self, site: str, targets: list[str], timeout: float = 2.0) -> dict[str, str]:
        p = netexec.ns_run(
            self.name, f"lan:{site}", ["python3", "-c", PROBE, str(timeout), *targets], capture_output=True, text=True
        )
        assert p.returncode == 0, p.stderr
        return dict(line.split(" ", 1) for line in p.stdout.splitlines())

    @property
    def hosts(self) -> list[str]:
        return [E.GATEWAY, *SITES]


@pytest.fixture(scope="module")
def lab(request):
    if shutil.which("systemd-nspawn") is None:
        pytest.fail("systemd-nspawn is missing: run scripts/install-system (the lab boots hosts with it)")
    name = "t" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    lab = Lab(name)

    def teardown():
        try:
            lab.down()
        finally:
            d = lab_dir(name)
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)

    request.addfinalizer(teardown)
    lab.up()
    return lab


# ------------------------------------------------------------------ snapshots


def snapshot(lab: Lab) -> dict[str, dict[str, str]]:
    """What each host looks like: the rendered files, live table, addresses, routes, rules,
    WireGuard (public data only), services, sysctls. Public keys are replaced by host names."""
    rendered = {h: json.loads((lab_dir(lab.name) / "work" / "wan" / "rendered" / f"{h}.json").read_text()) for h in lab.hosts}
    snap: dict[str, dict[str, str]] = {}
    for h in lab.hosts:
        parts = [v for k, v in rendered[h].items() if k.endswith("_state")]
        files = [f["path"] for p in parts for f in p["files"]]
        services = [s["name"] for p in parts for s in p["services"]]
        sysctls = list(rendered[h]["dcops_endpoint"]["sysctls"])
        sections = {}
        for f in files:
            sections[f"file {f}"] = f"stat -c '%a %U %G' {f}; cat {f}"
        sections["nft"] = "nft list table inet dcops"
        sections["addresses"] = "ip -4 -o addr show | awk '{print $2, $4}' | sort"
        sections["routes"] = "ip -4 route show table all | grep -v '^local\\|^broadcast\\|table local' | sort"
        sections["rules"] = "ip -4 rule show"
        sections["wg"] = (
            "wg show wg0 public-key; wg show wg0 listen-port; wg show wg0 allowed-ips | sort; "
            "ip -o link show wg0 | grep -o 'mtu [0-9]*'"
        )
        sections["services"] = " ; ".join(f"echo {s} $(systemctl is-active {s}) $(systemctl is-enabled {s})" for s in services)
        sections["sysctl"] = " ; ".join(f"echo {k}=$(sysctl -n {k})" for k in sysctls)
        sections["key mode"] = f"stat -c '%a %U %G' {E.WG_PRIVATE_KEY}"
        script = "".join(f"echo '@@@ {name}'; {cmd} 2>&1\n" for name, cmd in sections.items())
        out = lab.ssh(h, script)
        host_snap: dict[str, str] = {}
        cur = None
        for line in out.splitlines():
            if line.startswith("@@@ "):
                cur = line[4:]
                host_snap[cur] = ""
            elif cur is not None:
                host_snap[cur] += line + "\n"
        snap[h] = host_snap
    keys = {snap[h]["wg"].splitlines()[0].strip(): h for h in lab.hosts}
    for h in snap:
        for sec, text in snap[h].items():
            for k, owner in keys.items():
                text = text.replace(k, f"<public key of {owner}>")
            if sec == "wg":  # peers are listed in key order, and keys differ between fresh hosts
                text = "".join(sorted(text.splitlines(keepends=True)))
            snap[h][sec] = text
    return snap


def _diff_snapshots(a: dict, b: dict) -> list[str]:
    out = []
    for h in sorted(set(a) | set(b)):
        for sec in sorted(set(a.get(h, {})) | set(b.get(h, {}))):
            x, y = a.get(h, {}).get(sec), b.get(h, {}).get(sec)
            if x != y:
                out.append(f"{h} / {sec}:\n--- ansible\n{x}\n--- pyinfra\n{y}")
    return out


def _counts(data: dict) -> dict:
    return data.get("counts", {})


def _status(data: dict) -> dict[str, str]:
    return {h: v["status"] for h, v in data.get("hosts", {}).items()}


# ------------------------------------------------------------------ tests


def test_ansible_lint_clean():
    p = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-lint"), "playbooks"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]


STATE: dict = {}


@pytest.mark.lab
@pytest.mark.timeout(900)
def test_bad_input_touches_nothing(lab, tmp_path):
    p = lab.dcops("apply", "--limit", "so-tc,no-such-site")
    assert p.returncode == 2 and "no-such-site" in p.stderr and "nothing was changed" in p.stderr
    p = lab.dcops("apply", "--limit", "x-hoa-binh")  # in the province file, not in this lab
    assert p.returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROVINCE.read_text().replace("tunnel_address: 10.200.1.2,", "tunnel_address: 10.200.1.999,"))
    import yaml

    cfg = yaml.safe_load(Path(lab_stack(lab.name)[-1]).read_text())
    cfg["config"]["dcops:province"] = str(bad)  # the lab's stack, pointed at a bad province file
    (tmp_path / "Pulumi.lab.yaml").write_text(yaml.safe_dump(cfg))
    p = subprocess.run([*DCOPS, "wan", "apply", "-s", "lab", "--config-file", str(tmp_path / "Pulumi.lab.yaml")],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 2 and "10.200.1.999" in p.stderr, p.stderr
    p = lab.dcops("apply", "--engine", "chef")
    assert p.returncode == 2
    # --check on fresh hosts: reports what would change, makes nothing (not even a key)
    p, data = lab.apply("--check", "--engine", "ansible")
    assert p.returncode == 0, p.stdout
    assert _counts(data)["changed"] == len(lab.hosts)
    assert "would change" in p.stdout and "+PasswordAuthentication no" in p.stdout
    for h in lab.hosts:
        out = lab.ssh(h, f"test -e {E.WG_PRIVATE_KEY} && echo KEY; nft list table inet dcops >/dev/null 2>&1 && echo NFT; "
                         f"test -e {E.SSHD_DROPIN} && echo SSHD; true")
        assert out.strip() == "", f"{h} was touched: {out}"


@pytest.mark.lab
@pytest.mark.timeout(600)
def test_every_rendered_ruleset_loads(lab):
    """nft itself accepts the ruleset of every endpoint of every province file (checked with
    `nft -c` in a throwaway namespace on a lab host: the machine itself has no nft)."""
    import base64

    from infra.render.endpoint import render

    script = ["set -u; d=$(mktemp -d); bad=0"]
    n = 0
    for pf in sorted((REPO / "stacks").glob("province-*.yaml")):
        model = load_province(pf)
        keys = {h: base64.b64encode(bytes([i % 256]) * 32).decode() for i, h in enumerate(E.hosts(model))}
        for h, ep in render(model, keys).items():
            n += 1
            f = f"$d/{pf.stem}-{h}.nft"
            script.append(f"cat > {f} <<'DCOPS_EOF'\n{ep.file(E.NFT_CONF).content}DCOPS_EOF")
    script.append('for f in "$d"/*.nft; do unshare --net -- nft -c -f "$f" >/dev/null 2>"$f.err" || { bad=$((bad+1)); echo "BAD $f"; head -5 "$f.err"; }; done')
    script.append('ls "$d"/*.nft | wc -l; rm -rf "$d"; exit $bad')
    p = subprocess.run(
        netexec.mgmt_argv(lab.name, netexec.ssh_argv(lab.name, lab.address(E.GATEWAY), ["sudo", "-S", "-p", "", "bash", "-s"])),
        input=netexec.ssh_paths(lab.name)["become_password"].read_text() + "\n".join(script) + "\n",
        capture_output=True, text=True, timeout=500,
    )
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == str(n)


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_ansible_fresh_then_idempotent(lab):
    p, data = lab.apply("--engine", "ansible")
    assert p.returncode == 0, p.stdout + p.stderr
    assert _counts(data)["changed"] == len(lab.hosts), data
    STATE["ansible_first"] = data["seconds"]
    p, data = lab.apply("--engine", "ansible")
    assert p.returncode == 0, p.stdout
    assert _counts(data) == {"unreachable": 0, "failed": 0, "changed": 0, "unchanged": len(lab.hosts)}, data
    STATE["ansible_again"] = data["seconds"]
    STATE["snap_ansible"] = snapshot(lab)


def _connectivity(lab: Lab) -> None:
    m = lab.model
    deadline = time.monotonic() + 60
    for site in SITES:
        s = m.site_by_id[site]
        allowed, forbidden = [], []
        for p in m.platforms:
            ports = [x.port for x in p.ports]
            if p.id in s.reach:
                allowed += [f"{p.address}:{x}" for x in ports]
                forbidden += [f"{p.address}:{x}" for x in (22, 9100, 8443 if 8443 not in ports else 8080) if x not in ports]
            else:
                forbidden += [f"{p.address}:{x}" for x in ports]
        for other in SITES:
            if other != site:
                o = m.site_by_id[other]
                forbidden += [f"{o.tunnel_address}:9100", f"{o.wan_address}:22"]
                forbidden += [f"{_lan_client(o.lan)}:22"]
        # the tunnel comes up on the first packet: retry the allowed ones for a while
        while True:
            res = lab.probe(site, allowed)
            if all(v == "open" for v in res.values()) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert all(v == "open" for v in res.values()), (site, res)
        res = lab.probe(site, forbidden, timeout=1.5)
        # dropped, not refused: the packets never reached anything that could answer
        assert all(v == "timeout" for v in res.values()), (site, res)
    # the gateway saw a recent handshake from every site
    out = lab.ssh(E.GATEWAY, "wg show wg0 latest-handshakes")
    keys = json.loads((lab_dir(lab.name) / "work" / "wan" / "pubkeys.json").read_text())
    hs = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}
    now = int(lab.ssh(E.GATEWAY, "date +%s").strip())
    for site in SITES:
        assert now - hs[keys[site]["key"]] < 180, (site, hs)
    # node_exporter answers through the tunnel (management segment, over wg) and only there
    # (every site's two curls at once: the WAN-address ones wait out their -m 3)
    from concurrent.futures import ThreadPoolExecutor

    curls = []
    for site in SITES:
        s = m.site_by_id[site]
        curls.append(["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", f"http://{s.tunnel_address}:9100/metrics"])
        curls.append(["curl", "-sS", "-m", "3", f"http://{s.wan_address}:9100/metrics"])
    with ThreadPoolExecutor(len(curls)) as pool:
        done = list(pool.map(lambda argv: netexec.mgmt_run(lab.name, argv, capture_output=True, text=True), curls))
    for i, site in enumerate(SITES):
        p = done[2 * i]
        assert p.stdout == "200", (site, p.stdout, p.stderr)
        p = done[2 * i + 1]
        assert p.returncode != 0, f"{site}: node_exporter answers on the WAN address"


def _lan_client(lan: str) -> str:
    import ipaddress

    return str(list(ipaddress.ip_network(lan).hosts())[1])


@pytest.mark.lab
@pytest.mark.timeout(600)
def test_connectivity_after_ansible(lab):
    _connectivity(lab)


@pytest.mark.lab
@pytest.mark.timeout(2400)
def test_pyinfra_on_fresh_hosts_converges_to_the_same_state(lab):
    lab.fresh_hosts()
    p, data = lab.apply("--engine", "pyinfra")
    assert p.returncode == 0, p.stdout + p.stderr
    assert _counts(data)["changed"] == len(lab.hosts), data
    STATE["pyinfra_first"] = data["seconds"]
    p, data = lab.apply("--engine", "pyinfra")
    assert p.returncode == 0, p.stdout
    assert _counts(data) == {"unreachable": 0, "failed": 0, "changed": 0, "unchanged": len(lab.hosts)}, data
    STATE["pyinfra_again"] = data["seconds"]
    snap = snapshot(lab)
    diffs = _diff_snapshots(STATE["snap_ansible"], snap)
    assert not diffs, "\n".join(diffs)
    # and the other engine sees nothing to do on hosts the first one made
    p, data = lab.apply("--engine", "ansible")
    assert p.returncode == 0 and _counts(data)["changed"] == 0, data
    print("timings:", {k: v for k, v in STATE.items() if not k.startswith("snap")})


@pytest.mark.lab
@pytest.mark.timeout(600)
def test_connectivity_after_pyinfra(lab):
    _connectivity(lab)


@pytest.mark.lab
@pytest.mark.timeout(1200)
def test_drift_shows_in_check_and_is_repaired(lab):
    site = "so-tc"
    listing = lab.root(site, ["nft", "-a", "list", "chain", "inet", "dcops", "input"]).stdout
    handle = re.search(r"tcp dport 9100 .*# handle (\d+)", listing).group(1)
    assert lab.root(site, ["nft", "delete", "rule", "inet", "dcops", "input", "handle", handle]).returncode == 0
    assert lab.root(site, ["sed", "-i", "s/^MaxAuthTries .*/MaxAuthTries 6/", E.SSHD_DROPIN]).returncode == 0
    for engine in ("ansible", "pyinfra"):
        p, data = lab.apply("--check", "--engine", engine)
        assert p.returncode == 0, p.stdout
        assert _status(data)[site] == "changed" and _counts(data)["changed"] == 1, (engine, data)
        changes = " ".join(data["hosts"][site]["changes"])
        assert "firewall" in changes and "ssh_hardening" in changes, (engine, changes)
        assert "-MaxAuthTries 6" in p.stdout and "+MaxAuthTries 3" in p.stdout, engine
        assert "tcp dport 9100" in p.stdout, engine
    # --check changed nothing
    assert "MaxAuthTries 6" in lab.root(site, ["cat", E.SSHD_DROPIN]).stdout
    assert "9100" not in lab.root(site, ["nft", "list", "chain", "inet", "dcops", "input"]).stdout
    p, data = lab.apply()
    assert p.returncode == 0 and _status(data)[site] == "changed" and _counts(data)["changed"] == 1, data
    assert "9100" in lab.root(site, ["nft", "list", "chain", "inet", "dcops", "input"]).stdout
    assert "maxauthtries 3" in lab.root(site, ["sshd", "-T"]).stdout
    p, data = lab.apply("--check")
    assert p.returncode == 0 and _counts(data)["changed"] == 0, data


@pytest.mark.lab
@pytest.mark.timeout(1200)
def test_pyinfra_one_check_pass_sees_every_kind_of_drift(lab):
    """pyinfra first runs one whole-state check per host and skips the per-operation work when
    it prints nothing: a file's mode, a file's content, a stopped service, a disabled service and a
    live firewall rule changed by hand must each still make the host 'changed', and be repaired.
    So must the live states the check reads with bash itself: an administrator out of the group, a
    login shell, a missing TOTP secret, a WireGuard peer removed, the key's mode, the policy rule."""
    site, other, third = "so-tc", "so-xd", "p-trung-tam"
    drift = {
        site: "chmod 0600 /etc/chrony/chrony.conf; systemctl stop prometheus-node-exporter; "
              "nft flush chain inet dcops forward",
        other: f"echo '# by hand' >> {E.SSHD_DROPIN}; systemctl disable --quiet chrony",
        third: "gpasswd -d tranthib dcops-admins >/dev/null && usermod -s /bin/sh nguyenvana && "
               "mv /home/tranthib/.google_authenticator /root/totp.moved && "
               "wg set wg0 peer \"$(wg show wg0 peers | head -1)\" remove && chmod 0644 /etc/wireguard/private.key && "
               "ip -4 rule del priority 1000",
    }
    for h, script in drift.items():
        assert lab.root(h, ["bash", "-c", script]).returncode == 0
    p, data = lab.apply("--check", "--engine", "pyinfra")
    assert p.returncode == 0, p.stdout
    assert {h: v for h, v in _status(data).items() if v != "unchanged"} == {h: "changed" for h in drift}, data
    changes = {h: " ".join(data["hosts"][h]["changes"]) for h in drift}
    assert "chrony.conf" in changes[site] and "prometheus-node-exporter" in changes[site] and "firewall" in changes[site], changes
    assert E.SSHD_DROPIN in changes[other] and "chrony" in changes[other], changes
    assert "administrator accounts" in changes[third] and "TOTP" in changes[third] and "wg0 up" in changes[third], changes
    p, data = lab.apply("--engine", "pyinfra")
    assert p.returncode == 0 and _counts(data)["changed"] == 3, data
    assert "tranthib" in lab.root(third, ["getent", "group", "dcops-admins"]).stdout
    assert lab.root(third, ["stat", "-c", "%a", "/etc/wireguard/private.key"]).stdout.strip() == "600"
    assert "lookup 51820" in lab.root(third, ["ip", "-4", "rule", "show", "priority", "1000"]).stdout
    assert lab.root(site, ["stat", "-c", "%a", "/etc/chrony/chrony.conf"]).stdout.strip() == "644"
    assert lab.root(other, ["systemctl", "is-enabled", "chrony"]).stdout.strip() == "enabled"
    p, data = lab.apply("--engine", "pyinfra")
    assert p.returncode == 0 and _counts(data) == {"unreachable": 0, "failed": 0, "changed": 0,
                                                   "unchanged": len(lab.hosts)}, data


@pytest.mark.lab
@pytest.mark.timeout(1200)
def test_pyinfra_key_made_anew_is_not_judged_by_the_cached_check(lab):
    """The whole-state check that runs in the key's round trip is rendered from the keys of earlier
    runs. A site whose WireGuard key is made anew must still reach the gateway: the gateway's
    check from the old keys passes on the gateway, but it is not the check rendered from the keys
    read now, so its verdict does not count and the gateway gets the new peer."""
    site = "p-trung-tam"
    p, data = lab.apply("--engine", "pyinfra")
    assert p.returncode == 0 and _counts(data)["changed"] == 0, data
    assert lab.root(site, ["rm", E.WG_PRIVATE_KEY]).returncode == 0
    p, data = lab.apply("--engine", "pyinfra")
    assert p.returncode == 0, p.stdout
    assert {h: v for h, v in _status(data).items() if v != "unchanged"} == {site: "changed", E.GATEWAY: "changed"}, data
    new_key = lab.root(site, ["wg", "show", "wg0", "public-key"]).stdout.strip()
    assert new_key and new_key in lab.root(E.GATEWAY, ["wg", "show", "wg0", "peers"]).stdout
    p, data = lab.apply("--engine", "pyinfra")
    assert p.returncode == 0 and _counts(data)["changed"] == 0, data


@pytest.mark.lab
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("engine", ["ansible", "pyinfra"])
def test_unreachable_site_others_complete(lab, engine):
    down, other = "p-trung-tam", "so-xd"
    # something to do on another site, so that it visibly completes its work
    assert lab.root(other, ["sed", "-i", "s/^LoginGraceTime .*/LoginGraceTime 90/", E.SSHD_DROPIN]).returncode == 0
    assert lab.root(down, ["systemctl", "stop", "ssh"]).returncode == 0
    try:
        p, data = lab.apply("--engine", engine)
        assert p.returncode == 1, p.stdout
        st = _status(data)
        assert st[down] == "unreachable" and st[other] == "changed", st
        assert all(v == "unchanged" for h, v in st.items() if h not in (down, other)), st
        assert down in p.stdout and "unreachable" in p.stdout
    finally:
        assert lab.root(down, ["systemctl", "start", "ssh"]).returncode == 0
    p, data = lab.apply("--engine", engine)
    assert p.returncode == 0 and _counts(data)["failed"] == 0 and _counts(data)["unreachable"] == 0, data


@pytest.mark.lab
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("engine", ["ansible", "pyinfra"])
def test_site_failing_midway_then_repaired(lab, engine):
    site = "so-xd"
    # /etc/chrony becomes a file: the 'time' part fails after the earlier parts applied
    assert lab.root(site, ["bash", "-c", "rm -rf /etc/chrony && echo broken > /etc/chrony"]).returncode == 0
    assert lab.root(site, ["sed", "-i", "s/^LoginGraceTime .*/LoginGraceTime 90/", E.SSHD_DROPIN]).returncode == 0
    p, data = lab.apply("--engine", engine)
    assert p.returncode == 1, p.stdout
    st = _status(data)
    assert st[site] == "failed" and "time" in data["hosts"][site]["detail"], data["hosts"][site]
    assert all(v == "unchanged" for h, v in st.items() if h != site), st
    # the parts before the failure were applied
    assert "LoginGraceTime 30" in lab.root(site, ["cat", E.SSHD_DROPIN]).stdout
    assert lab.root(site, ["bash", "-c", "rm -f /etc/chrony && mkdir /etc/chrony"]).returncode == 0
    p, data = lab.apply("--engine", engine)
    assert p.returncode == 0 and _status(data)[site] == "changed", data
    assert "server 10.200.0.1 iburst" in lab.root(site, ["cat", E.CHRONY_CONF]).stdout
    assert lab.root(site, ["systemctl", "is-active", "chrony"]).stdout.strip() == "active"
    p, data = lab.apply("--engine", engine)
    assert p.returncode == 0 and _counts(data)["changed"] == 0, data


# ------------------------------------------------------------------ the central log server (issue 13)
# (were tests/test_log_spoofing.py, with a lab of its own: they run last here, on rolled-out hosts)

SENDER, VICTIM = "so-tc", "so-xd"


def _sh(lab: Lab, host: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``bash -c script`` as root in the host's container (no SSH)."""
    return netexec.host_run(lab.name, "hub" if host == E.GATEWAY else host, ["bash", "-c", script],
                            capture_output=True, text=True, timeout=timeout)


def _send(lab: Lab, claimed: str, marker: str) -> None:
    """From SENDER, one RFC 3164 message to the hub's log server claiming HOSTNAME ``claimed``
    (retried while the tunnel comes up)."""
    hub = lab.model.wan.hub
    script = (f"printf '<13>%s {claimed} spoof: {marker}\\n' \"$(LC_ALL=C date '+%b %e %H:%M:%S')\" "
              f"> /dev/tcp/{hub.log_server}/{E.SYSLOG_PORT}")
    deadline = time.monotonic() + 90
    while True:
        p = _sh(lab, SENDER, script, timeout=30)
        if p.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert p.returncode == 0, f"could not reach the log server from {SENDER}: {p.stderr}"


def _wait_for_log(lab: Lab, path: str, marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _sh(lab, E.GATEWAY, f"grep -qF {marker} {path}").returncode == 0:
            return
        time.sleep(1)
    listing = _sh(lab, E.GATEWAY, f"ls -la {E.REMOTE_LOG_DIR}; tail -n 5 {E.REMOTE_LOG_DIR}/*.log").stdout
    pytest.fail(f"{marker} never reached {path}:\n{listing}")


@pytest.mark.lab
@pytest.mark.timeout(2400)
def test_a_site_cannot_write_into_another_sites_log(lab):
    """The central log server cannot be fooled by a claimed hostname. Site A writes syslog messages
    straight to the hub's log server (tcp/514 over the tunnel) that claim to come from site B, and
    from a path like ``../../etc/x``. The hub files each message by the address it came from (A's
    tunnel address, which WireGuard ties to A's key), so they land in A's own file only: B's file
    never gets them and no file is made from a claimed name."""
    # the victim's own forwarding works: its file exists and is named by its id
    own = "own-" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    assert _sh(lab, VICTIM, f"logger -t dcops-test {own}").returncode == 0
    _wait_for_log(lab, E.log_file(VICTIM), own, timeout=90)

    spoof = "spoof-" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    _send(lab, VICTIM, spoof)  # claims to be the victim
    traversal = "trav-" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    _send(lab, "../../../etc/dcops-evil", traversal)  # claims a path as its hostname
    _wait_for_log(lab, E.log_file(SENDER), spoof)
    _wait_for_log(lab, E.log_file(SENDER), traversal)

    victim_log = _sh(lab, E.GATEWAY, f"cat {E.log_file(VICTIM)}").stdout
    assert own in victim_log and spoof not in victim_log and traversal not in victim_log
    files = _sh(lab, E.GATEWAY, f"ls -1 {E.REMOTE_LOG_DIR}").stdout.split()
    assert set(files) <= {f"{s}.log" for s in SITES}, files  # the lab's sites' own files, none from a claimed name
    assert _sh(lab, E.GATEWAY, "ls /etc/dcops-evil* /var/log/dcops-evil* 2>/dev/null").stdout.strip() == ""
    # whatever the message claims, the sender's file holds it (the claimed name is only text)
    line = next(ln for ln in _sh(lab, E.GATEWAY, f"cat {E.log_file(SENDER)}").stdout.splitlines() if spoof in ln)
    assert VICTIM in line


@pytest.mark.lab
@pytest.mark.timeout(1200)
def test_an_injected_nft_table_is_drift_and_is_removed(lab):
    """A table added by hand (here one that would accept everything) shows in `--check` as
    firewall drift, for the engine's one-pass sync check, and the apply removes it."""
    assert _sh(lab, SENDER, "nft add table ip evil; nft add chain ip evil input "
                            "'{ type filter hook input priority -10; policy accept; }'").returncode == 0
    p, data = lab.apply("--engine", "pyinfra", "--check")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert data["hosts"][SENDER]["status"] == "changed", data["hosts"][SENDER]
    assert "firewall" in " ".join(data["hosts"][SENDER]["changes"]), data["hosts"][SENDER]
    assert data["hosts"][VICTIM]["status"] == "unchanged", data["hosts"][VICTIM]
    assert "table ip evil" in _sh(lab, SENDER, "nft list tables").stdout, "--check changed nothing"
    assert lab.apply("--engine", "pyinfra")[0].returncode == 0
    assert _sh(lab, SENDER, "nft list tables").stdout.split("\n")[:-1] == ["table inet dcops"]
