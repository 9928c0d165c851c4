"""Run commands inside the lab's network namespaces (and inside its hosts).

Every lab client (ssh, ansible, pyinfra, curl, Prometheus) runs inside the
management namespace ``<lab>-mgmt`` through ``ip netns exec``: it then sees
only the lab's addresses (the namespace has no route out of the machine).

- :func:`mgmt_run` ``(name, argv, **kw)``: ``argv`` in the management namespace.
- :func:`ns_run` ``(name, host, argv, **kw)``: ``argv`` in the network namespace
  of ``host``: a site id, ``lan:<site id>`` (the site's LAN client), ``hub``
  (or ``gw``), ``mgmt``, ``dc``, ``sw``, or a namespace name of the lab.  Only
  the network is the host's: files are the machine's (use :func:`ssh_run` or
  :func:`host_run` to act inside a host).
- :func:`ssh_run` ``(name, host, argv, **kw)``: ``argv`` on a lab host over SSH
  from the management namespace, as ``dcops`` with the lab key and strict host
  key checking (the lab's ``known_hosts``).
- :func:`host_run` ``(name, host, argv, **kw)``: ``argv`` inside a host's
  container (all its namespaces, as root) without SSH: for repairs and fault
  injection (for example stopping a host's sshd).

``**kw`` goes to :func:`subprocess.run` (``check``, ``capture_output``,
``text``, ``timeout``, ``input``, ``env``...).  Paths of the management key,
``known_hosts`` and an ``ssh_config`` for other tools: :func:`ssh_paths`.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any, Sequence

from ..paths import lab_dir, lab_name
from .state import LabState, pid_alive

COMPONENT = "hosts"


class LabNotRunning(RuntimeError):
    """The lab (or the named host) is not up; ``dcops lab up`` first."""


def mgmt_dir(name: str) -> Path:
    return lab_dir(name) / "mgmt"


def ssh_paths(name: str) -> dict[str, Path]:
    """``key`` (private, 0600; never print it), ``pub``, ``known_hosts``, ``config`` of the lab,
    ``become_password`` (0600; never print it) and its crypt hash ``become_hash``."""
    d = mgmt_dir(name)
    return {
        "key": d / "id_ed25519",
        "pub": d / "id_ed25519.pub",
        "known_hosts": d / "known_hosts",
        "config": d / "ssh_config",
        # sudo password of the rollout account on every lab host (0600; the environment names it)
        "become_password": d / "become.password",
        "become_hash": d / "become.hash",
    }


def layout(name: str) -> dict[str, Any]:
    """What ``hosts.up`` recorded: ``netns`` (host -> namespace), ``ssh`` (host -> address),
    ``machines`` (host -> nspawn machine), ``sites`` (count or None)."""
    lay = LabState.load(lab_name(name)).get("hosts.layout")
    if not lay:
        raise LabNotRunning(f"lab '{name}' has no WAN hosts: run `dcops lab up --name {name}` first")
    return lay


def netns(name: str, host: str) -> str:
    """Network namespace of ``host`` (see the module docstring for the accepted names)."""
    lay = layout(name)
    m: dict[str, str] = lay["netns"]
    if host in m:
        return m[host]
    if host.startswith(f"{name}-") and host in m.values():
        return host
    raise KeyError(f"lab '{name}' has no host '{host}' (sites, lan:<site>, hub, mgmt, dc, sw)")


def _ns_argv(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *[str(a) for a in argv]]


def ns_run(name: str, host: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` in the network namespace of ``host``; returns the CompletedProcess."""
    return subprocess.run(_ns_argv(netns(name, host), argv), **kw)


def ns_popen(name: str, host: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen:
    """Like :func:`ns_run` but returns a Popen (for long-running clients)."""
    return subprocess.Popen(_ns_argv(netns(name, host), argv), **kw)


def mgmt_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` in the management namespace (for tools that take an argv)."""
    return _ns_argv(netns(name, "mgmt"), argv)


def mgmt_run(name: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the lab's management namespace (every lab client runs there)."""
    return subprocess.run(mgmt_argv(name, argv), **kw)


def ssh_argv(name: str, host: str, argv: Sequence[str] = ()) -> list[str]:
    """``ssh`` argv (to be run in the management namespace) for ``host`` (name or address).

    ``argv`` runs on the host exactly as given (it is quoted for the remote
    shell); use ``["sh", "-c", "a | b"]`` for shell syntax.
    """
    lay = layout(name)
    addr = lay["ssh"].get(host, host)
    cfg = ssh_paths(name)["config"]
    cmd = [] if not argv else ["--", shlex.join(str(a) for a in argv)]
    return ["ssh", "-F", str(cfg), addr, *cmd]


def ssh_run(name: str, host: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` on ``host`` over SSH as ``dcops`` from the management namespace."""
    return mgmt_run(name, ssh_argv(name, host, argv), **kw)


def init_pid(nspawn_pid: int) -> int | None:
    """PID (on this machine) of the process that is PID 1 inside the container of ``nspawn_pid``.

    Not simply nspawn's first child: while a host boots that is nspawn's short-lived "outer
    child", which may already have forked the container's init and be about to exit.
    """
    todo, seen = [nspawn_pid], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        ns = next((ln.split()[1:] for ln in status.splitlines() if ln.startswith("NSpid:")), [])
        if pid != nspawn_pid and len(ns) >= 2 and ns[-1] == "1":
            return pid
        todo.extend(int(k) for k in kids)
    return None


def container_pid(name: str, host: str) -> int:
    """PID (on this machine) of the host container's init (systemd)."""
    lay = layout(name)
    key = lay["keys"].get(host, host)
    st = LabState.load(lab_name(name))
    for p in st.processes(COMPONENT):
        if p.get("kind") == "nspawn" and p["name"] == key and pid_alive(p["pid"], p.get("start_time")):
            pid = init_pid(p["pid"])
            if pid:
                return pid
    raise LabNotRunning(f"host '{host}' of lab '{name}' is not running")


def host_run(name: str, host: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` as root inside ``host``'s container (its mount, PID, UTS, IPC, net namespaces)."""
    from .hosts import _lab_cgroups  # (hosts imports this module)

    pid = container_pid(name, host)
    key = layout(name)["keys"].get(host, host)
    # Join the host's cgroup first, so that whatever this starts ends with the host at `down`.
    joins = "".join(f"echo $$ > {shlex.quote(str(c / key / 'cgroup.procs'))} 2>/dev/null; "
                    for c in _lab_cgroups(lab_name(name)))
    cmd = ["/bin/sh", "-c", f'{joins}exec "$@"', "sh",
           "nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "--", *[str(a) for a in argv]]
    return subprocess.run(cmd, **kw)
