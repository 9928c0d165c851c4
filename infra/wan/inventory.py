"""The rollout's inventory, generated from the province file.

Hosts: the data-center gateway (``gateway``, at the hub's ``wan_address``) and one host per
site (its id, at its ``wan_address``). Groups:

- ``gateway``, ``sites``;
- ``tier_<tier>`` per tier (``tier_department``, ``tier_commune``...);
- ``parent_<site>`` per parent: every site below it, at any depth (``parent_vp_ubnd``).

Ansible group names cannot hold ``-``, so ids are written with ``_`` there; ``--limit``
accepts either spelling, a bare tier id (``commune``) and comma-separated lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..environment_ssh import groups_of
from ..model import ProvinceFile
from ..render.endpoint import GATEWAY, STANDBY_GATEWAY, Endpoint


class LimitError(ValueError):
    """An unknown site or group in --limit (the message lists what exists)."""


def _g(s: str) -> str:
    return s.replace("-", "_")


@dataclass(frozen=True)
class Plan:
    """Hosts, their addresses and groups: what both engines are given."""

    addresses: dict[str, str]  # host -> wan_address, gateway first
    groups: dict[str, list[str]]  # group -> hosts (in host order)

    @property
    def hosts(self) -> list[str]:
        return list(self.addresses)


def plan(model: ProvinceFile, ssh_addresses: dict[str, str] | None = None) -> Plan:
    """Hosts and groups; ``ssh_addresses`` (the environment's) where they differ from the file's."""
    addresses = {GATEWAY: model.wan.hub.wan_address}
    if model.wan.standby:
        addresses[STANDBY_GATEWAY] = model.wan.standby.wan_address
    addresses.update({s.id: s.wan_address for s in model.wan.sites})
    if ssh_addresses:
        addresses.update({h: a for h, a in ssh_addresses.items() if h in addresses})
    return Plan(addresses, groups_of(model))


def resolve_limit(p: Plan, model: ProvinceFile, limit: str | None) -> list[str]:
    """Hosts selected by ``--limit`` (all when None), in inventory order; LimitError if unknown."""
    if not limit or limit.strip() in ("all", ""):
        return p.hosts
    tiers = {t.id: f"tier_{_g(t.id)}" for t in model.wan.tiers}
    by_norm = {_g(k): k for k in p.groups}
    chosen: set[str] = set()
    unknown = []
    for raw in limit.split(","):
        name = raw.strip()
        if not name:
            continue
        if name == "all":
            chosen.update(p.hosts)
        elif name in p.addresses:
            chosen.add(name)
        elif name in tiers:
            chosen.update(p.groups[tiers[name]])
        elif _g(name) in by_norm:
            chosen.update(p.groups[by_norm[_g(name)]])
        else:
            unknown.append(name)
    if unknown:
        groups = ", ".join(sorted(p.groups))
        raise LimitError(
            f"--limit: unknown site or group: {', '.join(unknown)}. "
            f"Sites are the ids of wan.sites (or 'gateway'); groups: {groups}; tiers: {', '.join(tiers)}"
        )
    return [h for h in p.hosts if h in chosen]


# ------------------------------------------------------------- Ansible files


class _Unsafe(str):
    """Rendered text: written with Ansible's !unsafe tag so it is never templated."""


def _unsafe_representer(dumper: yaml.SafeDumper, data: _Unsafe):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("!unsafe", str(data), style=style)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Unsafe, _unsafe_representer)


_PLAIN = re.compile(r"[\w@./:+,=\- ]*")


def _mark_unsafe(v):
    """Free text (file contents, scripts) is tagged !unsafe; plain tokens (paths, modes,
    names) stay plain so that YAML keeps their type (a tagged '0755' would become a number)."""
    if isinstance(v, str):
        return v if _PLAIN.fullmatch(v) else _Unsafe(v)
    if isinstance(v, dict):
        return {k: _mark_unsafe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_mark_unsafe(x) for x in v]
    return v


def dump_yaml(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)


@dataclass(frozen=True)
class Connection:
    """How the control host reaches the hosts: the stack's ssh_config (jump hosts, keys,
    known_hosts), the SSH user and port, and where Ansible keeps its control sockets."""

    user: str
    port: int
    ssh_config: str
    control_dir: str | None = None  # Ansible's SSH control sockets (None: Ansible's default)
    jumps: dict | None = None  # host -> jump host address (for the inventory's readers)


def connection_of(conn) -> Connection:
    """The inventory's view of a :class:`infra.wan.connection.WanConn`."""
    jumps = {h: f"{j.user + '@' if j.user else ''}{j.host}:{j.port}" for h, j in conn.ssh.jumps.items() if j is not None}
    return Connection(conn.user, conn.ssh.port, str(conn.ssh_config), conn.control_dir, jumps)


def write_ansible_inventory(directory: Path, p: Plan, conn: Connection, group_vars: dict, note: str = "dcops wan apply") -> Path:
    """A standard Ansible YAML inventory: ``hosts.yml`` (hosts with ansible_host, groups by tier
    and parent), ``group_vars/all.yml``; host_vars are written by :func:`write_host_vars`.
    SSH settings come from the stack's ssh_config (``-F``): jump hosts (ProxyJump), identity,
    known_hosts with strict checking, so ``ansible-playbook -i hosts.yml`` works by hand."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "group_vars").mkdir(exist_ok=True)
    (directory / "host_vars").mkdir(exist_ok=True)
    hosts: dict[str, dict] = {}
    for h, a in p.addresses.items():
        hv: dict = {"ansible_host": a}
        if conn.jumps and h in conn.jumps:
            hv["dcops_jump_host"] = conn.jumps[h]  # informational: ssh_config's ProxyJump does the work
        hosts[h] = hv
    inv = {
        "all": {
            "vars": {
                "ansible_user": conn.user,
                "ansible_port": conn.port,
                "ansible_ssh_common_args": f"-F {conn.ssh_config}",
                "ansible_python_interpreter": "/usr/bin/python3",
            },
            "hosts": hosts,
            "children": {g: {"hosts": {h: None for h in hs}} for g, hs in p.groups.items() if hs},
        }
    }
    (directory / "hosts.yml").write_text(f"# Generated by `{note}` from the province file and the stack's environment.\n"
                                         + dump_yaml(inv))
    (directory / "group_vars" / "all.yml").write_text(
        f"# Generated by `{note}` (infra/render/endpoint.py).\n" + dump_yaml(_mark_unsafe(group_vars))
    )
    return directory / "hosts.yml"


def write_host_vars(directory: Path, endpoints: dict[str, Endpoint]) -> None:
    hv = directory / "host_vars"
    hv.mkdir(parents=True, exist_ok=True)
    for h, ep in endpoints.items():
        text = (
            f"# Generated by `dcops wan apply`: the state infra/render/endpoint.py rendered for {h}.\n"
            + dump_yaml(_mark_unsafe(ep.to_vars()))
        )
        path = hv / f"{h}.yml"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


_PYINFRA_INVENTORY = '''"""pyinfra inventory of stack {stack}: generated by `dcops wan inventory` (do not edit).

    pyinfra {this} playbooks/pyinfra/deploy.py --sudo [--dry]

Hosts and groups as in hosts.yml beside it; SSH through ssh_config (jump hosts, identity,
strict known_hosts); each host's rendered state is read from host_vars/<host>.yml.
"""

from pathlib import Path

import yaml

_HERE = Path(__file__).resolve().parent
_ADDRESSES = {addresses!r}
_GROUPS = {groups!r}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _data(host):
    data = {{
        "ssh_hostname": _ADDRESSES[host],
        "ssh_user": {user!r},
        "ssh_port": {port!r},
        "ssh_config_file": str(_HERE / "ssh_config"),
        "ssh_strict_host_key_checking": "yes",
    }}
    hv = _HERE / "host_vars" / f"{{host}}.yml"
    if hv.exists():
        data.update(yaml.load(hv.read_text(), Loader=_Loader) or {{}})
    return data


all_hosts = [(h, _data(h)) for h in _ADDRESSES]
_BY_NAME = dict(all_hosts)
for _g, _hs in _GROUPS.items():
    globals()[_g] = [(h, _BY_NAME[h]) for h in _hs if h in _BY_NAME]
'''


def write_pyinfra_inventory(path: Path, p: Plan, conn: Connection, host_vars: Path, stack: str = "") -> Path:
    """An inventory file for the pyinfra CLI with the same hosts, groups and SSH settings."""
    groups = {g: hs for g, hs in p.groups.items() if hs and g != "all_hosts"}
    path.write_text(_PYINFRA_INVENTORY.format(stack=stack or "?", this=path.name, addresses=dict(p.addresses),
                                              groups=groups, user=conn.user, port=conn.port))
    return path
