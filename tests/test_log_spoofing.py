"""The central log server cannot be fooled by a claimed hostname (issue 13, lab).

A lab of its own (``h1`` + 4 random characters): the gateway and two sites, rolled out with
pyinfra. Site A then writes syslog messages straight to the hub's log server (tcp/514 over
the tunnel) that claim to come from site B, and from a path like ``../../etc/x``. The hub
files each message by the address it came from (A's tunnel address, which WireGuard ties to
A's key), so they land in A's own file only: B's file never gets them and no file is made
from a claimed name.
"""

from __future__ import annotations

import os
import random
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

REPO = Path(__file__).resolve().parent.parent
PROVINCE = REPO / "stacks" / "province-lab.yaml"
DCOPS = [str(Path(sys.executable).parent / "dcops")]
SENDER, VICTIM = "so-tc", "so-xd"


class Lab:
    def __init__(self, name: str):
        self.name = name
        self.model = load_province(PROVINCE)

    def up(self) -> None:
        lab_hosts.up(self.model, self.name, sites=[SENDER, VICTIM], progress=print)
        from infra.lab import environment as labenv

        self.config = labenv.write(self.name, self.model, PROVINCE)

    def down(self) -> None:
        lab_hosts.down(self.name, progress=print)

    def apply(self) -> subprocess.CompletedProcess:
        p = subprocess.run([*DCOPS, "wan", "apply", "-s", "lab", "--config-file", str(self.config), "--engine", "pyinfra"],
                           capture_output=True, text=True, timeout=1500, cwd=REPO, env={**os.environ, "DCOPS_LAB": self.name})
        print(f"$ dcops wan apply -> exit {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def root(self, host: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return netexec.host_run(self.name, "hub" if host == E.GATEWAY else host, ["bash", "-c", script],
                                capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def lab(request):
    if shutil.which("systemd-nspawn") is None:
        pytest.fail("systemd-nspawn is missing: run scripts/install-system (the lab boots hosts with it)")
    name = "h1" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(4))
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
    p = lab.apply()
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return lab


def _send(lab: Lab, claimed: str, marker: str) -> None:
    """From SENDER, one RFC 3164 message to the hub's log server claiming HOSTNAME ``claimed``
    (retried while the tunnel comes up)."""
    hub = lab.model.wan.hub
    script = (f"printf '<13>%s {claimed} spoof: {marker}\\n' \"$(LC_ALL=C date '+%b %e %H:%M:%S')\" "
              f"> /dev/tcp/{hub.log_server}/{E.SYSLOG_PORT}")
    deadline = time.monotonic() + 90
    while True:
        p = lab.root(SENDER, script, timeout=30)
        if p.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert p.returncode == 0, f"could not reach the log server from {SENDER}: {p.stderr}"


def _wait_for(lab: Lab, path: str, marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.root(E.GATEWAY, f"grep -qF {marker} {path}").returncode == 0:
            return
        time.sleep(1)
    listing = lab.root(E.GATEWAY, f"ls -la {E.REMOTE_LOG_DIR}; tail -n 5 {E.REMOTE_LOG_DIR}/*.log").stdout
    pytest.fail(f"{marker} never reached {path}:\n{listing}")


@pytest.mark.lab
@pytest.mark.timeout(2400)
def test_a_site_cannot_write_into_another_sites_log(lab):
    # the victim's own forwarding works: its file exists and is named by its id
    own = "own-" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    assert lab.root(VICTIM, f"logger -t dcops-test {own}").returncode == 0
    _wait_for(lab, E.log_file(VICTIM), own, timeout=90)

    spoof = "spoof-" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    _send(lab, VICTIM, spoof)  # claims to be the victim
    traversal = "trav-" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    _send(lab, "../../../etc/dcops-evil", traversal)  # claims a path as its hostname
    _wait_for(lab, E.log_file(SENDER), spoof)
    _wait_for(lab, E.log_file(SENDER), traversal)

    victim_log = lab.root(E.GATEWAY, f"cat {E.log_file(VICTIM)}").stdout
    assert own in victim_log and spoof not in victim_log and traversal not in victim_log
    files = lab.root(E.GATEWAY, f"ls -1 {E.REMOTE_LOG_DIR}").stdout.split()
    assert set(files) <= {f"{s}.log" for s in (SENDER, VICTIM)}, files
    assert lab.root(E.GATEWAY, "ls /etc/dcops-evil* /var/log/dcops-evil* 2>/dev/null").stdout.strip() == ""
    # whatever the message claims, the sender's file holds it (the claimed name is only text)
    line = next(ln for ln in lab.root(E.GATEWAY, f"cat {E.log_file(SENDER)}").stdout.splitlines() if spoof in ln)
    assert VICTIM in line


@pytest.mark.lab
@pytest.mark.timeout(1200)
def test_an_injected_nft_table_is_drift_and_is_removed(lab):
    """The same lab: a table added by hand (here one that would accept everything) shows in
    `--check` as firewall drift, for the engine's one-pass sync check, and the apply removes it."""
    import json

    assert lab.root(SENDER, "nft add table ip evil; nft add chain ip evil input "
                            "'{ type filter hook input priority -10; policy accept; }'").returncode == 0
    out = lab_dir(lab.name) / "check.json"
    p = subprocess.run([*DCOPS, "wan", "apply", "-s", "lab", "--config-file", str(lab.config), "--engine", "pyinfra",
                        "--check", "--json", str(out)], capture_output=True, text=True, timeout=900, cwd=REPO,
                       env={**os.environ, "DCOPS_LAB": lab.name})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["hosts"][SENDER]["status"] == "changed", data["hosts"][SENDER]
    assert "firewall" in " ".join(data["hosts"][SENDER]["changes"]), data["hosts"][SENDER]
    assert data["hosts"][VICTIM]["status"] == "unchanged", data["hosts"][VICTIM]
    assert "table ip evil" in lab.root(SENDER, "nft list tables").stdout, "--check changed nothing"
    assert lab.apply().returncode == 0
    assert lab.root(SENDER, "nft list tables").stdout.split("\n")[:-1] == ["table inet dcops"]
