"""How the rollout reaches the WAN hosts: the stack's environment, nothing else.

The SSH settings (user, identity or agent, port, known_hosts, jump hosts, addresses) are
rendered once into the stack's ssh_config (:mod:`infra.environment_ssh`), which Ansible,
pyinfra and the checks all read. What the rollout keeps between runs (the hosts' WireGuard
public keys, Ansible's SSH control sockets, the rendered state) lives in the stack's work dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..environment import Stack
from ..environment_ssh import SshAccess, access
from ..model import ProvinceFile

GATEWAY = "gateway"
STANDBY_GATEWAY = "gateway-standby"


@dataclass(frozen=True)
class WanConn:
    stack: str
    ssh: SshAccess
    workdir: Path  # <work dir>/wan
    hosts_present: tuple[str, ...]  # hosts that exist in this environment (gateway included)
    become: str = "sudo"
    become_password_file: Path | None = None

    @property
    def user(self) -> str:
        return self.ssh.user

    @property
    def key(self) -> Path | None:
        return self.ssh.identity_file

    @property
    def known_hosts(self) -> Path:
        return self.ssh.known_hosts

    @property
    def ssh_config(self) -> Path:
        return self.ssh.config

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(h for h in self.hosts_present if h not in (GATEWAY, STANDBY_GATEWAY))

    @property
    def control_dir(self) -> str:
        """Ansible's SSH control sockets (ControlPersist), in the stack's work dir."""
        return str(self.workdir / "cp")

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The argv of a client: run as it is (dcops itself runs where the environment says)."""
        return list(argv)


def connect(stack: Stack, model: ProvinceFile) -> WanConn:
    """The WAN access of a stack: render its ssh_config and make the work dir (0700)."""
    wd = stack.work_dir / "wan"
    wd.mkdir(parents=True, exist_ok=True, mode=0o700)
    ssh = access(stack, model)
    b = stack.env.wan.become
    pw = stack.secret_path(b.password, "wan.become.password") if b.password is not None else None
    return WanConn(stack.name, ssh, wd, tuple(stack.hosts_present(list(ssh.addresses))), b.method, pw)
