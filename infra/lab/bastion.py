"""A bastion for the lab: the only SSH path from an operator's workstation to the WAN hosts.

A real province reaches its sites through a jump host in the management zone.  The lab makes
the same shape from parts it owns:

- ``<lab>-ops``: a network namespace, the operator's workstation.  Its only link is a veth to
  ``<lab>-mgmt`` (``169.254.77.2/30``); it has no default route, so from there nothing but the
  bastion is reachable;
- the bastion: an ``sshd`` (this machine's OpenSSH server binary, its own config, host key and
  authorized key, all in ``<lab dir>/bastion``) listening on ``169.254.77.1:22`` inside
  ``<lab>-mgmt``, the management zone.  It runs no shell for anyone (``ForceCommand
  /bin/false``, no TTY) and only forwards TCP to port 22 (``PermitOpen``): ``ProxyJump``.

Every link, namespace and process is recorded in the lab's state (component ``hosts``), so
``dcops lab down`` removes them with the rest.  :func:`up` returns what an environment needs:
the workstation namespace, the jump host's address and user, and a known_hosts file holding
the bastion's key beside the hosts'.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from ..paths import lab_dir
from . import netexec
from .state import LabState

COMPONENT = "hosts"  # removed by infra.lab.hosts.down with the lab's other namespaces and links
ADDR_BASTION, ADDR_OPS = "169.254.77.1", "169.254.77.2"


def bastion_dir(lab: str) -> Path:
    return lab_dir(lab) / "bastion"


def _run(argv: list[str]) -> None:
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")


def up(lab: str) -> dict:
    """Start the bastion and the workstation namespace (idempotent)."""
    st = LabState.load(lab)
    d = bastion_dir(lab)
    ops = f"{lab}-ops"
    mgmt = netexec.netns(lab, "mgmt")
    kh = d / "known_hosts"
    info = {"netns": ops, "host": ADDR_BASTION, "user": "root", "known_hosts": kh}
    if any(p["name"] == "bastion" for p in st.alive(COMPONENT)):
        return info
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    # the workstation namespace and its one link
    a, b = f"{lab}bo0", f"{lab}bo1"
    st.add_resource("netns", ops, component=COMPONENT)
    if not Path(f"/run/netns/{ops}").exists():
        _run(["ip", "netns", "add", ops])
    st.add_resource("link", a, component=COMPONENT, netns=mgmt, ifname=a)
    st.add_resource("link", b, component=COMPONENT, netns=ops, ifname=b)
    _run(["ip", "-n", mgmt, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ops])
    _run(["ip", "-n", mgmt, "addr", "add", f"{ADDR_BASTION}/30", "dev", a])
    _run(["ip", "-n", mgmt, "link", "set", a, "up"])
    _run(["ip", "-n", ops, "addr", "add", f"{ADDR_OPS}/30", "dev", b])
    _run(["ip", "-n", ops, "link", "set", b, "up"])
    _run(["ip", "-n", ops, "link", "set", "lo", "up"])
    # sshd: its own host key, the lab's management key as the only authorized key
    hk = d / "ssh_host_ed25519_key"
    if not hk.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{lab}-bastion", "-f", str(hk)])
    ak = d / "authorized_keys"
    ak.write_text(netexec.ssh_paths(lab)["pub"].read_text())
    os.chmod(ak, 0o600)
    cfg = d / "sshd_config"
    cfg.write_text(
        f"# dcops lab {lab}: the bastion (jump host) in the management zone; forwards SSH only\n"
        f"ListenAddress {ADDR_BASTION}:22\n"
        f"HostKey {hk}\n"
        f"PidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {ak}\n"
        "AllowUsers root\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitTTY no\nX11Forwarding no\nAllowAgentForwarding no\nGatewayPorts no\nPermitTunnel no\n"
        "AllowTcpForwarding local\nPermitOpen *:22\nForceCommand /bin/false\n"
        "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512@openssh.com\n"
        "LogLevel VERBOSE\n"
    )
    os.chmod(cfg, 0o600)
    _run(["/usr/sbin/sshd", "-t", "-f", str(cfg)])
    log = d / "sshd.log"
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(["ip", "netns", "exec", mgmt, "/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    st.add_process(COMPONENT, "bastion", proc.pid, log=str(log), cmd=list(proc.args), netns=mgmt)
    # known_hosts: the lab's hosts and the bastion
    pub = (hk.with_suffix(".pub")).read_text().split()
    kh.write_text(netexec.ssh_paths(lab)["known_hosts"].read_text() + f"{ADDR_BASTION} {pub[0]} {pub[1]}\n")
    os.chmod(kh, 0o600)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bastion's sshd exited ({log}): {log.read_text()[-500:]}")
        r = subprocess.run(["ip", "netns", "exec", ops, "bash", "-c", f"exec 3<>/dev/tcp/{ADDR_BASTION}/22"],
                           capture_output=True)
        if r.returncode == 0:
            return info
        time.sleep(0.2)
    raise RuntimeError(f"the bastion did not answer on {ADDR_BASTION}:22 in 15 s ({log})")
