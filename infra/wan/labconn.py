"""How the rollout reaches the lab's hosts: from inside the management namespace.

Every client (ansible-playbook, the pyinfra engine, the tests' ssh) runs inside the lab's
management namespace (:mod:`infra.lab.netexec`), the only place that routes to the hosts;
the SSH key and the known_hosts the lab made are in ``<lab dir>/mgmt/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..lab import netexec
from ..paths import lab_dir, lab_name

USER = "dcops"


class LabNotReady(RuntimeError):
    """The lab's WAN hosts are not running (or the lab has no management namespace)."""


@dataclass(frozen=True)
class LabConn:
    lab: str
    netns: str
    key: Path
    known_hosts: Path
    sites: tuple[str, ...] = ()  # site ids that run in the lab (`lab up --sites` may start a subset)
    failed: dict = field(default_factory=dict)  # hosts the lab could not start
    user: str = USER

    @property
    def control_dir(self) -> str:
        """Ansible's SSH control sockets (ControlPersist), inside the lab's directory."""
        return str(lab_dir(self.lab) / "wan" / "cp")

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the management namespace."""
        return netexec.mgmt_argv(self.lab, list(argv))


def connect(name: str | None = None) -> LabConn:
    """The lab's management access, or LabNotReady saying what is missing."""
    lab = lab_name(name)
    try:
        lay = netexec.layout(lab)
    except netexec.LabNotRunning as e:
        raise LabNotReady(str(e)) from None
    netns = lay["netns"]["mgmt"]
    if not Path(f"/run/netns/{netns}").exists():
        raise LabNotReady(f"lab '{lab}': the management namespace {netns} is gone; `dcops lab down` then `up`")
    paths = netexec.ssh_paths(lab)
    for k in ("key", "known_hosts"):
        if not paths[k].exists():
            raise LabNotReady(f"lab '{lab}': {paths[k]} is missing (are the WAN hosts up?)")
    return LabConn(lab, netns, paths["key"], paths["known_hosts"], tuple(lay.get("site_ids") or ()), dict(lay.get("failed") or {}))
