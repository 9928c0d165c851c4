"""The OpenSSH client configuration of a stack's WAN access: the one place it is rendered.

Every SSH client of dcops reads it: Ansible (``-F``), pyinfra (``ssh_config_file``), the host
checks (testinfra's ssh backend) and whoever runs ``ssh -F`` by hand.  From the environment's
``wan`` section: user, identity file or agent, port, known_hosts (strict: no trust on first
use), key-exchange algorithms, connect timeout, and jump hosts (``ProxyJump``) for every host,
per group or per host.

Hosts are addressed by their SSH address: the environment's ``wan.addresses`` where given,
else the province file's ``wan_address`` (the gateway: the hub's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .environment import JumpHost, Stack
from .model import ProvinceFile

GATEWAY = "gateway"
STANDBY_GATEWAY = "gateway-standby"  # wan.hubs[1], when the province declares a standby hub


def groups_of(model: ProvinceFile) -> dict[str, list[str]]:
    """The inventory's groups (hosts in file order, the gateway first): ``gateway``, ``sites``,
    ``tier_<tier>`` per tier, ``parent_<site>`` per parent (every site below it, at any depth).
    Ansible group names cannot hold ``-``: ids are written with ``_`` there."""
    gws = [GATEWAY] + ([STANDBY_GATEWAY] if model.wan.standby else [])
    g: dict[str, list[str]] = {"gateway": gws, "sites": [s.id for s in model.wan.sites]}
    for t in model.wan.tiers:
        g[f"tier_{t.id.replace('-', '_')}"] = [s.id for s in model.wan.sites if s.tier == t.id]
    children: dict[str, list[str]] = {}
    for s in model.wan.sites:
        if s.parent:
            children.setdefault(s.parent, []).append(s.id)

    def below(p: str, seen: set[str]) -> list[str]:
        out = []
        for c in children.get(p, []):
            if c not in seen:
                seen.add(c)
                out += [c, *below(c, seen)]
        return out

    order = {s.id: i for i, s in enumerate(model.wan.sites)}
    for p in sorted(children):
        g[f"parent_{p.replace('-', '_')}"] = sorted(below(p, set()), key=order.__getitem__)
    return g


def ssh_addresses(stack: Stack, model: ProvinceFile) -> dict[str, str]:
    """host -> the address SSH connects to (gateway first, then the sites in file order)."""
    a = {GATEWAY: model.wan.hub.wan_address}
    if model.wan.standby:
        a[STANDBY_GATEWAY] = model.wan.standby.wan_address
    a.update({s.id: s.wan_address for s in model.wan.sites})
    a.update(stack.env.wan.addresses)
    return a


def jump_for(stack: Stack, model: ProvinceFile) -> dict[str, JumpHost | None]:
    """host -> its jump host (None: direct). A host's own entry wins, then the first group of
    ``wan.jump_hosts`` (in the file's order) that holds it, then ``wan.jump_host``."""
    w = stack.env.wan
    groups = groups_of(model)
    out: dict[str, JumpHost | None] = {}
    for h in ssh_addresses(stack, model):
        if h in w.jump_hosts:
            out[h] = w.jump_hosts[h]
            continue
        chosen: JumpHost | None | str = "unset"
        for g, j in w.jump_hosts.items():
            if h in groups.get(g, ()):
                chosen = j
                break
        out[h] = w.jump_host if chosen == "unset" else chosen  # type: ignore[assignment]
    return out


@dataclass(frozen=True)
class SshAccess:
    config: Path  # the rendered ssh_config (0600)
    addresses: dict[str, str]
    jumps: dict[str, JumpHost | None]
    user: str
    identity_file: Path | None
    known_hosts: Path
    port: int
    audit_user: str | None = None  # the checks' own account, when not ``user`` (wan.audit_user)

    def jump_hosts(self) -> dict[str, JumpHost]:
        """ssh_config alias (``dcops-jump-N``) -> jump host, for every jump host in use."""
        return _aliases(self.jumps)


def _key(j: JumpHost) -> tuple:
    return (j.host, j.port, j.user, j.identity_file)


def _aliases(jumps: dict[str, JumpHost | None]) -> dict[str, JumpHost]:
    out: dict[str, JumpHost] = {}
    seen: set[tuple] = set()
    for j in jumps.values():
        if j is not None and _key(j) not in seen:
            seen.add(_key(j))
            out[f"dcops-jump-{len(out)}"] = j
    return out


def render(stack: Stack, model: ProvinceFile) -> str:
    w = stack.env.wan
    addresses = ssh_addresses(stack, model)
    jumps = jump_for(stack, model)
    aliases: dict[tuple, str] = {}
    lines = [f"# dcops: SSH to the WAN hosts of stack '{stack.name}' (generated from its environment; do not edit)"]
    for alias, j in _aliases(jumps).items():
        aliases[_key(j)] = alias
        # Port only when not 22: paramiko (pyinfra's ProxyJump) reads it as a string and would look
        # the host key up as "[host]:22", which known_hosts never holds for the default port.
        lines += [f"Host {alias}", f"  HostName {j.host}"] + ([f"  Port {j.port}"] if j.port != 22 else [])
        if j.user:
            lines.append(f"  User {j.user}")
        if j.identity_file:
            lines += [f"  IdentityFile {stack.resolve(j.identity_file)}", "  IdentitiesOnly yes"]
    by_jump: dict[str, list[str]] = {}
    for h, j in jumps.items():
        if j is not None:
            by_jump.setdefault(aliases[_key(j)], []).append(addresses[h])
    for alias, addrs in by_jump.items():
        for i in range(0, len(addrs), 64):  # short Host lines
            lines += [f"Host {' '.join(dict.fromkeys(addrs[i:i + 64]))}", f"  ProxyJump {alias}"]
    lines += ["Host *", f"  User {w.user}"] + ([f"  Port {w.port}"] if w.port != 22 else [])
    if w.identity_file:
        lines += [f"  IdentityFile {stack.resolve(w.identity_file)}", "  IdentitiesOnly yes"]
    if not w.ssh_agent:
        lines.append("  IdentityAgent none")
    lines += [
        f"  UserKnownHostsFile {stack.resolve(w.known_hosts)}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        "  BatchMode yes",
        f"  ConnectTimeout {w.connect_timeout}",
        "  ServerAliveInterval 3",
        "  ServerAliveCountMax 5",
        "  LogLevel ERROR",
    ]
    if w.kex_algorithms:
        lines.append(f"  KexAlgorithms {','.join(w.kex_algorithms)}")
    return "\n".join(lines) + "\n"


def access(stack: Stack, model: ProvinceFile) -> SshAccess:
    """Render the stack's ssh_config into its work dir (0600) and describe the access."""
    d = stack.work_dir / "ssh"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / "ssh_config"
    text = render(stack, model)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    w = stack.env.wan
    return SshAccess(path, ssh_addresses(stack, model), jump_for(stack, model), w.user,
                     stack.resolve(w.identity_file) if w.identity_file else None, stack.resolve(w.known_hosts), w.port,
                     w.audit_user if w.audit_user and w.audit_user != w.user else None)
