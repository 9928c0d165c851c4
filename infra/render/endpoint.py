"""The desired state of every WAN endpoint, rendered once from the province file.

One module decides what every site host and the data-center gateway must look
like; both rollout engines (the Ansible roles under ``playbooks/roles`` and the
pyinfra deploy under ``playbooks/pyinfra``) deploy exactly what it returns and
contain no configuration of their own.

WireGuard private keys are made on each host and never leave it, so rendering
takes the model plus a dict of *public* keys gathered at run time (``host ->
key``). Nothing rendered here is secret.

What :func:`render` returns, per host, is an :class:`Endpoint`: one
:class:`Part` per concept (``wireguard``, ``firewall``, ``ssh_hardening``,
``time``, ``logging``, ``sysctl``, ``node_exporter``), each holding

- ``dirs`` and ``files`` (path, content, mode, owner, group),
- ``services`` to enable and keep running, with what to do when a file of the
  part changed (``restarted``/``reloaded``) and a check to run first
  (``sshd -t`` before reloading sshd),
- ``converge`` steps for runtime state that files alone do not show (the live
  nftables ruleset, all of it: a table added by hand is drift; sysctls, the live
  WireGuard peers): a ``check`` command that prints the drift (nothing when in
  sync, always exit 0) and an ``apply`` command that repairs it.

Every comment line of a generated file goes through :mod:`infra.render.comments`
(names from the province file are one line of visible characters, and the helper
keeps any comment inert in its language). The central log server files messages
by sender address (:func:`log_senders`), never by the hostname they claim.

Routing design (the management caveat)
--------------------------------------
Management reaches every endpoint over the underlay (SSH to ``wan_address``),
while node_exporter is scraped through the tunnel (``tunnel_address:9100``
from the management segment). For the tunnel to accept those scrapes the
management segment must be in the site's AllowedIPs, which would also pull the
SSH replies from ``wan_address`` into ``wg0`` (where the hub drops them). So
a site's tunnel routes live in their own table (``Table = 51820``) consulted by
one source-based rule, ``not from <wan_address> lookup 51820``: traffic from
the WAN address (SSH replies, the WireGuard packets themselves) always takes
the underlay; everything else (the LAN towards the platforms, chrony and
rsyslog towards the hub, scrape replies from the tunnel address) takes the
tunnel. See ``playbooks/README.md``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

from ..model import ProvinceFile, Site, Zone
from .comments import comment, comment_block, nft_rule_comment

GATEWAY = "gateway"
"""Inventory name of the data-center gateway (the hub). No site may use it."""
STANDBY_GATEWAY = "gateway-standby"
"""Inventory name of the standby hub (``wan.hubs[1]``), when the province declares one."""

PARTS = ("sysctl", "firewall", "admins", "ssh_hardening", "wireguard", "node_exporter", "time", "logging")
"""The concepts, in the order the engines apply them (the tunnel before what uses it)."""

WG_DIR = "/etc/wireguard"
WG_CONF = "/etc/wireguard/wg0.conf"
WG_PRIVATE_KEY = "/etc/wireguard/private.key"
WG_TABLE = 51820
WG_RULE_PRIORITY = 1000
# The standby hub (issue 18): a second interface, its own table and rule just behind wg0's; the
# failover unit puts a rule to the standby's table just in front of wg0's while the primary is silent.
WG_STANDBY_IF = "wg1"
WG_STANDBY_CONF = "/etc/wireguard/wg1.conf"
WG_STANDBY_TABLE = 51821
FAILOVER_SCRIPT = "/usr/local/sbin/dcops-wg-failover"
FAILOVER_UNIT = "/etc/systemd/system/dcops-wg-failover.service"
FAILOVER_PROBE_S = 1  # one probe of the primary hub a second
FAILOVER_AFTER = 3  # failed probes in a row before the traffic moves to the standby
FAILBACK_AFTER = 5  # answered probes in a row before it moves back
WG_KEEPALIVE = 25
NFT_CONF = "/etc/nftables.conf"
NFT_TABLE = "inet dcops"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/50-dcops-hardening.conf"
CHRONY_CONF = "/etc/chrony/chrony.conf"
RSYSLOG_FORWARD = "/etc/rsyslog.d/90-dcops-forward.conf"
RSYSLOG_RECEIVE = "/etc/rsyslog.d/10-dcops-receive.conf"
RSYSLOG_SENDERS = "/etc/rsyslog.d/dcops-senders.json"
LOGROTATE_REMOTE = "/etc/logrotate.d/dcops-remote"
REMOTE_LOG_DIR = "/var/log/remote"
SYSCTL_CONF = "/etc/sysctl.d/90-dcops-hardening.conf"
NODE_EXPORTER_DEFAULTS = "/etc/default/prometheus-node-exporter"
NODE_EXPORTER_DROPIN_DIR = "/etc/systemd/system/prometheus-node-exporter.service.d"
NODE_EXPORTER_PORT = 9100
ADMIN_USER = "dcops"  # the automation (rollout) account: sudo with its password (wan.become.password)
AUDIT_USER = "dcops-audit"  # the checks' account: may run only the evidence collector as root
ADMINS_GROUP = "dcops-admins"  # the named administrators of the province file
ADMIN_KEYS_DIR = "/etc/ssh/dcops-admins"  # their authorized keys, root's (%u.keys): managed from the province file only
SUDOERS_DCOPS = "/etc/sudoers.d/50-dcops"
PAM_SSHD = "/etc/pam.d/sshd"
PAM_SUDO = "/etc/pam.d/sudo"
PROFILE_IDLE = "/etc/profile.d/dcops-idle.sh"
COLLECTOR_DIR = "/usr/local/libexec/dcops"
COLLECTOR = "/usr/local/libexec/dcops/collect-evidence"
TOTP_FILE = ".google_authenticator"  # in the administrator's home (pam_google_authenticator's default)
SUDOERS_EVIDENCE = ("for f in /etc/sudoers /etc/sudoers.d/*; do [ -f \"$f\" ] || continue; "
                    "printf '\\0%s\\0' \"$f\"; cat -- \"$f\" || exit 1; done")
SSH_IDLE_INTERVAL = 300
SSH_IDLE_COUNT = 2  # 10 minutes idle, then the session ends
SSH_MAX_AUTH_TRIES = 3
SYSLOG_PORT = 514
NTP_PORT = 123

SSH_CIPHERS = "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
SSH_MACS = "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com"
SSH_KEX = (
    "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
    "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512"
)

HEADER = "Managed by dcops (infra/render/endpoint.py) from the province file; local edits are reverted."

_PUBKEY = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")


class RenderError(ValueError):
    """The model and the keys cannot give a consistent endpoint (names the fix)."""


# ---------------------------------------------------------------- the output


@dataclass(frozen=True)
class File:
    path: str
    content: str
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"


@dataclass(frozen=True)
class Directory:
    path: str
    mode: str = "0755"
    owner: str = "root"
    group: str = "root"


@dataclass(frozen=True)
class Service:
    name: str
    on_change: str | None = "restarted"  # restarted | reloaded | None (files applied by a converge step)
    precheck: str | None = None  # command that must succeed before restarting (validates config)


@dataclass(frozen=True)
class Converge:
    name: str
    check: str  # bash script: prints the drift, nothing when in sync; exit 0 unless it cannot tell
    apply: str  # bash script: repairs the drift


@dataclass(frozen=True)
class Part:
    name: str
    dirs: tuple[Directory, ...] = ()
    files: tuple[File, ...] = ()
    services: tuple[Service, ...] = ()
    converge: tuple[Converge, ...] = ()
    daemon_reload: bool = False  # a systemd unit drop-in is among the files

    def to_vars(self) -> dict:
        return {
            "dirs": [asdict(d) for d in self.dirs],
            "files": [asdict(f) for f in self.files],
            "services": [asdict(s) for s in self.services],
            "converge": [asdict(c) for c in self.converge],
            "daemon_reload": self.daemon_reload,
        }


@dataclass(frozen=True)
class Endpoint:
    host: str  # inventory name: the site id, or GATEWAY
    kind: str  # "site" | "gateway"
    address: str  # where management reaches it (wan_address)
    tunnel_address: str
    parts: tuple[Part, ...]
    sysctls: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...] = ()

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    def files(self) -> list[File]:
        return [f for p in self.parts for f in p.files]

    def file(self, path: str) -> File:
        return next(f for f in self.files() if f.path == path)

    def services(self) -> list[Service]:
        return [s for p in self.parts for s in p.services]

    def to_vars(self) -> dict:
        """Host variables for the engines: ``<part>_state`` per part, plus a little metadata."""
        out: dict = {f"{p.name}_state": p.to_vars() for p in self.parts}
        out["dcops_endpoint"] = {
            "host": self.host,
            "kind": self.kind,
            "address": self.address,
            "tunnel_address": self.tunnel_address,
            "parts": [p.name for p in self.parts],
            "sysctls": dict(self.sysctls),
            "sync_check": self.sync_check(),
        }
        return out

    def sync_check(self) -> str:
        """One bash script (run as root) that checks the whole state at once.

        It checks exactly what the engines' operations check one by one: every directory and
        file (SHA-256 of the content, mode, owner, group), every service enabled and active,
        and every converge step's live-state check. It prints one line per difference and
        nothing when the host is in sync; an engine that gets no output can report the host
        unchanged after one round trip instead of a hundred (see ``docs/benchmarks.md``).
        """
        import hashlib

        lines = ["set -u", "d() { printf '%s\\n' \"$*\"; }"]
        # Every path's mode/owner/group in one `stat`, every file's SHA-256 in one `sha256sum`
        # (a process per path cost more than the round trip it saves: ~150 forks per host).
        # A missing path has no output line, so it shows as a difference too.
        stats: list[tuple[str, str]] = []
        sums: list[tuple[str, str]] = []
        for p in self.parts:
            for dd in p.dirs:
                stats.append((dd.path, f"{int(dd.mode, 8):o} {dd.owner} {dd.group}"))
            for f in p.files:
                stats.append((f.path, f"{int(f.mode, 8):o} {f.owner} {f.group}"))
                sums.append((f.path, hashlib.sha256(f.content.encode()).hexdigest()))

        def compare(what: str, cmd: str, want: list[str]) -> None:
            lines.append(f"w={shlex.quote(chr(10).join(want))}; a=$({cmd} 2>/dev/null); "
                         f"[ \"$a\" = \"$w\" ] || diff <(printf '%s\\n' \"$w\") <(printf '%s\\n' \"$a\") "
                         f"| sed -n 's/^< /{what} want: /p; s/^> /{what} have: /p'")

        if stats:
            compare("stat", "stat -c '%n %a %U %G' -- " + " ".join(shlex.quote(x) for x, _ in stats),
                    [f"{x} {w}" for x, w in stats])
        if sums:
            compare("sha256", "sha256sum -- " + " ".join(shlex.quote(x) for x, _ in sums),
                    [f"{h}  {x}" for x, h in sums])
        names = [s.name for s in self.services()]
        if names:
            units = " ".join(shlex.quote(n) for n in names)
            # one line per unit, in order: compared whole (no sort, no tr: a process each)
            for verb, state in (("is-active", "active"), ("is-enabled", "enabled")):
                lines.append(f"a=$(systemctl {verb} {units} 2>&1); [ \"$a\" = {shlex.quote(chr(10).join([state] * len(names)))} ] "
                             f"|| d \"services not all {state}: ${{a//$'\\n'/ }}\"")
        for p in self.parts:
            for c in p.converge:
                # stdout is the drift (stderr carries notes, e.g. sysctls a container cannot set)
                lines.append(f"o=$(bash -c {shlex.quote(c.check)} 2>/dev/null) || o=\"$o (check failed)\"; "
                             f"[ -z \"$o\" ] || d {shlex.quote(p.name + ': ' + c.name + ': ')}\"$o\"")
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        """Stable JSON of the whole state (for comparisons and tests)."""
        return json.dumps(self.to_vars(), sort_keys=True, ensure_ascii=False)


# ----------------------------------------------------------------- helpers


def hosts(model: ProvinceFile) -> list[str]:
    """Every endpoint's inventory name: the gateway(s) first, then the sites in file order."""
    return gateways(model) + [s.id for s in model.wan.sites]


def gateways(model: ProvinceFile) -> list[str]:
    """The hubs' inventory names: the primary, then the standby when there is one."""
    return [GATEWAY] + ([STANDBY_GATEWAY] if model.wan.standby else [])


def as_hub(model: ProvinceFile, name: str) -> ProvinceFile:
    """The province seen from one hub: ``wan.hub`` is that hub (the standby's gateway renders
    with the same code as the primary's)."""
    if name != STANDBY_GATEWAY or model.wan.standby is None:
        return model
    return model.model_copy(update={"wan": model.wan.model_copy(update={"hub": model.wan.standby})})


def valid_public_key(key: str) -> bool:
    return bool(_PUBKEY.match(key or ""))


def _check_keys(pubkeys: Mapping[str, str]) -> None:
    bad = sorted(h for h, k in pubkeys.items() if k is not None and not valid_public_key(k))
    if bad:
        raise RenderError(f"not a WireGuard public key for: {', '.join(bad)} -- fix: gather them again (wg pubkey)")


def _net(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(cidr)


def _sorted_nets(nets: Iterable[str]) -> list[str]:
    uniq = {str(_net(n)) for n in nets}
    return sorted(uniq, key=lambda n: (_net(n).network_address, _net(n).prefixlen))


def _set(items: Iterable[str]) -> str:
    """An nft anonymous set; a lone plain value stays bare, but a lone concatenation
    (``a . b . c``) must still be a set: nft refuses singleton concatenations."""
    items = list(items)
    if len(items) == 1 and " . " not in items[0]:
        return items[0]
    return "{ " + ", ".join(items) + " }"


def _mgmt_cidr(model: ProvinceFile) -> str:
    try:
        return model.management_segment().cidr
    except StopIteration:
        raise RenderError("the data center has no management segment -- fix: add a segment with zone: management")


def site_reach(model: ProvinceFile, site: Site) -> list[tuple[str, str, str, int]]:
    """(platform id, address, protocol, port) the site's LAN may open, sorted."""
    out = []
    for pid in site.reach:
        p = model.platform_by_id[pid]
        # a warm or cold platform with an address of its own at the DR site answers there after a failover
        dr_address = [p.dr.address] if p.dr.mode != "none" and p.dr.address else []
        for address in [p.address, *dr_address]:
            for port in p.ports:
                out.append((p.id, address, port.protocol.lower(), port.port))
    return sorted(set(out), key=lambda t: (ipaddress.ip_address(t[1]), t[2], t[3], t[0]))


def site_allowed_ips(model: ProvinceFile, site: Site, standby: bool = False) -> list[str]:
    """What the site routes into the tunnel: the hub's tunnel address, the data-center
    segments of the platforms it may reach, and the management segment (scrapes arrive
    through the tunnel; replies from the WAN address bypass it by policy rule).
    ``standby``: the tunnel to the standby hub (the same, with the standby's address)."""
    hub = model.wan.standby if standby and model.wan.standby else model.wan.hub
    nets = [f"{hub.tunnel_address}/32", _mgmt_cidr(model)]
    for pid in site.reach:
        p = model.platform_by_id[pid]
        nets.append(model.segment_by_id[p.segment].cidr)
        if p.dr.mode != "none" and p.dr.segment:  # where it runs after a failover
            nets.append(model.segment_by_id[p.dr.segment].cidr)
    return _sorted_nets(nets)


def _dc_segments(model: ProvinceFile) -> list[str]:
    return _sorted_nets(s.cidr for s in model.datacenter.segments if s.zone != Zone.management)


# ------------------------------------------------------------ the parts


def _wireguard_site(model: ProvinceFile, site: Site, hub_key: str, standby_key: str | None = None) -> Part:
    hub = model.wan.hub
    rule = f"not from {site.wan_address} lookup {WG_TABLE} priority {WG_RULE_PRIORITY}"
    head = comment_block(
        HEADER,
        f"{site.id}: {site.name}",
        f"The private key is made on this host ({WG_PRIVATE_KEY}, 0600), never leaves it and is loaded",
        "by PostUp; only its public key is known to dcops.",
        f"Tunnel routes live in table {WG_TABLE}; the rule sends everything there except traffic",
        "from the WAN address, so SSH from management (underlay) is answered over the underlay.",
    )
    conf = head + f"""[Interface]
Address = {site.tunnel_address}/32
ListenPort = {hub.listen_port}
Table = {WG_TABLE}
PreUp = ip -4 rule del {rule} 2>/dev/null || true
PreUp = ip -4 rule add {rule}
PostUp = wg set %i private-key {WG_PRIVATE_KEY}
PostDown = ip -4 rule del {rule} || true

[Peer]
{comment(f"hub: {hub.name}")}
PublicKey = {hub_key}
Endpoint = {hub.wan_address}:{hub.listen_port}
AllowedIPs = {", ".join(site_allowed_ips(model, site))}
PersistentKeepalive = {WG_KEEPALIVE}
"""
    if model.wan.standby is None or not standby_key:
        return Part(
            "wireguard",
            dirs=(Directory(WG_DIR, "0700"),),
            files=(File(WG_CONF, conf, "0600"),),
            services=(Service("wg-quick@wg0", "restarted"),),
            converge=(_wg_converge([hub_key], site.wan_address),),
        )
    sb = model.wan.standby
    port = hub.listen_port + 1 if sb.listen_port == hub.listen_port else sb.listen_port
    rule1 = f"not from {site.wan_address} lookup {WG_STANDBY_TABLE} priority {WG_RULE_PRIORITY + 1}"
    conf1 = comment_block(
        HEADER,
        f"{site.id}: the tunnel to the standby hub. Its routes live in table {WG_STANDBY_TABLE}, looked up",
        f"just after wg0's; {FAILOVER_SCRIPT} puts that table in front of wg0's while the primary hub",
        "does not answer. The same private key as wg0.",
    ) + f"""[Interface]
Address = {site.tunnel_address}/32
ListenPort = {port}
Table = {WG_STANDBY_TABLE}
PreUp = ip -4 rule del {rule1} 2>/dev/null || true
PreUp = ip -4 rule add {rule1}
PostUp = wg set %i private-key {WG_PRIVATE_KEY}
PostDown = ip -4 rule del {rule1} || true

[Peer]
{comment(f"standby hub: {sb.name}")}
PublicKey = {standby_key}
Endpoint = {sb.wan_address}:{sb.listen_port}
AllowedIPs = {", ".join(site_allowed_ips(model, site, standby=True))}
PersistentKeepalive = {WG_KEEPALIVE}
"""
    return Part(
        "wireguard",
        dirs=(Directory(WG_DIR, "0700"),),
        files=(File(WG_CONF, conf, "0600"), File(WG_STANDBY_CONF, conf1, "0600"),
               File(FAILOVER_SCRIPT, _failover_script(model, site), "0755"),
               File(FAILOVER_UNIT, _failover_unit(model, site))),
        services=(Service("wg-quick@wg0", "restarted"), Service(f"wg-quick@{WG_STANDBY_IF}", "restarted"),
                  Service("dcops-wg-failover", "restarted")),
        converge=(_wg_converge([hub_key], site.wan_address),
                  _wg_converge([standby_key], site.wan_address, iface=WG_STANDBY_IF)),
        daemon_reload=True,
    )


def failover_rule(site: Site) -> str:
    """The rule the failover unit adds while the primary hub is silent (in front of wg0's)."""
    return f"not from {site.wan_address} lookup {WG_STANDBY_TABLE} priority {WG_RULE_PRIORITY - 1}"


def log_failover_rule(model: ProvinceFile) -> str | None:
    """While the primary hub is silent: new log connections to its log server are refused at once
    (a rule, in front of every table), so rsyslog moves to the standby's without waiting for TCP's
    timeouts. None when both hubs name the same log server (routing alone moves its traffic)."""
    servers = log_servers(model)
    if len(servers) < 2:
        return None
    # ipproto by number: ip reads protocol names from /etc/protocols, which a minimal Debian lacks
    return f"to {servers[0]}/32 ipproto 6 dport {SYSLOG_PORT} prohibit priority {WG_RULE_PRIORITY - 2}"


def _failover_script(model: ProvinceFile, site: Site) -> str:
    hub = model.wan.hub
    rule = failover_rule(site)
    logs = log_failover_rule(model)
    on_fail = on_back = ""
    if logs:
        primary_log = log_servers(model)[0]
        on_fail = (f"\n    ip -4 rule add {logs} 2>/dev/null; "
                   f"ss -K dst {primary_log} dport = {SYSLOG_PORT} >/dev/null 2>&1")
        on_back = f"\n    ip -4 rule del {logs} 2>/dev/null"
    return "#!/bin/sh\n" + comment_block(
        HEADER,
        f"{site.id}: moves the site's traffic to the standby hub while the primary hub does not answer,",
        f"and back. One ping every {FAILOVER_PROBE_S} s to the primary's tunnel address through wg0; after",
        f"{FAILOVER_AFTER} unanswered in a row the rule '{rule}'",
        f"sends everything (except what leaves from the WAN address) through {WG_STANDBY_IF};",
        f"after {FAILBACK_AFTER} answered in a row the rule goes. Both tunnels stay up all the time",
        "(keepalives), so moving is only a routing change: no daemon besides this loop.",
        *([f"While it is silent, new log connections to {log_servers(model)[0]} are refused and the open one",
           f"is ended, so rsyslog forwards to the standby's log server at once ({RSYSLOG_FORWARD})."]
          if logs else []),
    ) + f"""PRIMARY={hub.tunnel_address}
fails=0
oks=0
while :; do
  if ping -n -q -c 1 -W 1 -I wg0 "$PRIMARY" >/dev/null 2>&1; then oks=$((oks + 1)); fails=0; else fails=$((fails + 1)); oks=0; fi
  if ip -4 rule show priority {WG_RULE_PRIORITY - 1} | grep -q 'lookup {WG_STANDBY_TABLE}'; then active=1; else active=0; fi
  if [ "$active" = 0 ] && [ "$fails" -ge {FAILOVER_AFTER} ]; then
    ip -4 rule add {rule} && logger -t dcops-wg-failover "primary hub $PRIMARY does not answer: traffic through the standby hub ({WG_STANDBY_IF})"{on_fail}
  elif [ "$active" = 1 ] && [ "$oks" -ge {FAILBACK_AFTER} ]; then
    ip -4 rule del {rule} && logger -t dcops-wg-failover "primary hub $PRIMARY answers again: traffic back through wg0"{on_back}
  fi
  sleep {FAILOVER_PROBE_S}
done
"""


def _failover_unit(model: ProvinceFile, site: Site) -> str:
    return comment_block(HEADER, f"{site.id}: failover between the primary and the standby hub ({FAILOVER_SCRIPT}).") + f"""[Unit]
Description=dcops: site traffic through the standby hub while the primary does not answer
After=wg-quick@wg0.service wg-quick@{WG_STANDBY_IF}.service
Wants=wg-quick@wg0.service wg-quick@{WG_STANDBY_IF}.service

[Service]
ExecStart={FAILOVER_SCRIPT}
ExecStopPost=-/sbin/ip -4 rule del {failover_rule(site)}
""" + (f"ExecStopPost=-/sbin/ip -4 rule del {log_failover_rule(model)}\n" if log_failover_rule(model) else "") + """Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""


def _wireguard_gateway(model: ProvinceFile, pubkeys: Mapping[str, str]) -> tuple[Part, list[str]]:
    hub = model.wan.hub
    peers, keys, warnings = [], [], []
    for s in sorted(model.wan.sites, key=lambda s: s.id):
        key = pubkeys.get(s.id)
        if not key:
            warnings.append(f"{s.id}: public key not known yet, left out of the hub's peers until it is gathered")
            continue
        keys.append(key)
        peers.append(
            f"""
[Peer]
{comment(f"{s.id}: {s.name} ({s.tier}{', under ' + s.parent if s.parent else ''})")}
PublicKey = {key}
AllowedIPs = {s.tunnel_address}/32, {s.lan}
"""
        )
    head = comment_block(
        HEADER,
        f"Hub of the provincial WAN: {hub.name}",
        "One peer per site (its tunnel address and LAN).",
        f"The private key is made on this host ({WG_PRIVATE_KEY}, 0600) and never leaves it.",
    )
    conf = head + f"""[Interface]
Address = {hub.tunnel_address}/32
ListenPort = {hub.listen_port}
PostUp = wg set %i private-key {WG_PRIVATE_KEY}
""" + "".join(peers)
    part = Part(
        "wireguard",
        dirs=(Directory(WG_DIR, "0700"),),
        files=(File(WG_CONF, conf, "0600"),),
        services=(Service("wg-quick@wg0", "restarted"),),
        converge=(_wg_converge(keys),),
    )
    return part, warnings


def _wg_converge(peer_keys: list[str], wan_address: str | None = None, iface: str = "wg0") -> Converge:
    want = "\n".join(sorted(peer_keys))
    rule_check = ""
    if wan_address:
        table, prio = (WG_STANDBY_TABLE, WG_RULE_PRIORITY + 1) if iface == WG_STANDBY_IF else (WG_TABLE, WG_RULE_PRIORITY)
        rule = f"not from {wan_address} lookup {table}"
        rule_check = (
            f"case \"$(ip -4 rule show priority {prio})\" in *{shlex.quote(rule)}*) ;; "
            f"*) echo {shlex.quote(f'policy rule {rule} is missing')};; esac\n"
        )
    conf = f"{WG_DIR}/{iface}.conf"
    # few processes (this runs on every host at every re-apply): one `wg show dump` gives the peers
    # and the interface's private key, compared with the key file by bash itself
    wants = " ".join(sorted(peer_keys))
    check = f"""dump=$(wg show {iface} dump 2>/dev/null) || {{ echo '{iface} is down'; exit 0; }}
{{ IFS=$'\\t' read -r priv _; mapfile -t rows; }} <<< "$dump"
have=(); for r in "${{rows[@]}}"; do [ -n "$r" ] && have+=("${{r%%$'\\t'*}}"); done
ok=; [ ${{#have[@]}} -eq {len(peer_keys)} ] && ok=1
for k in {wants}; do case " ${{have[*]}} " in *" $k "*) ;; *) ok=;; esac; done
if [ -z "$ok" ]; then
  want={shlex.quote(want)}
  echo '{iface} peers differ from {conf}:'; diff <(for k in "${{have[@]}}"; do printf '%s\\n' "$k"; done | sort) <(printf '%s\\n' "$want") | grep '^[<>]'
fi
key=; read -r key 2>/dev/null < {WG_PRIVATE_KEY}; [ -n "$key" ] && [ "$key" = "$priv" ] || echo '{iface} does not use {WG_PRIVATE_KEY}'
[ "$(stat -c %a {WG_PRIVATE_KEY})" = 600 ] || echo '{WG_PRIVATE_KEY} is not mode 0600'
{rule_check}true"""
    return Converge(f"{iface} up with the rendered peers", check, f"chmod 0600 {WG_PRIVATE_KEY}; systemctl restart wg-quick@{iface}")


def _nft_converge() -> Converge:
    # The desired ruleset is what nft itself makes of the file in a throwaway network
    # namespace: comparing two canonical listings of the WHOLE ruleset shows any rule removed
    # or added by hand, and any other table (an injected table is drift, and `nft -f` of the
    # file, which starts with `flush ruleset`, removes it).
    check = f"""want=$(unshare --net -- sh -c 'nft -f {NFT_CONF} && nft list ruleset' 2>&1) || {{ printf 'desired ruleset does not load:\\n%s\\n' "$want"; exit 0; }}
have=$(nft list ruleset 2>&1) || have="(cannot list the ruleset: $have)"
[ "$have" = "$want" ] || diff -u --label live --label {NFT_CONF} <(printf '%s\\n' "$have") <(printf '%s\\n' "$want") || true"""
    return Converge(f"live nftables ruleset = {NFT_CONF}", check, f"nft -f {NFT_CONF}")


def _firewall(rules_input: list[str], rules_forward: list[str], sets: list[str], about: list[str]) -> Part:
    def block(lines: list[str]) -> str:
        return "".join(f"\t\t{line}\n" for line in lines)

    conf = (
        "#!/usr/sbin/nft -f\n"
        + comment_block(
            HEADER,
            *about,
            "This file is the whole ruleset: it replaces everything atomically; any other table is drift.",
        )
        + "flush ruleset\n"
        f"table {NFT_TABLE} {{\n"
        + "".join(sets)
        + "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy drop;\n"
        "\t\tct state established,related accept\n"
        "\t\tct state invalid drop\n"
        '\t\tiifname "lo" accept\n'
        + block(rules_input)
        + "\t}\n\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter; policy drop;\n"
        "\t\tct state established,related accept\n"
        + block(rules_forward)
        + "\t}\n\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t}\n"
        "}\n"
    )
    return Part(
        "firewall",
        files=(File(NFT_CONF, conf, "0755"),),
        services=(Service("nftables", None),),
        converge=(_nft_converge(),),
    )


def _firewall_site(model: ProvinceFile, site: Site) -> Part:
    hub, mgmt, sb = model.wan.hub, _mgmt_cidr(model), model.wan.standby
    wg = '{ "wg0", "%s" }' % WG_STANDBY_IF if sb else '"wg0"'
    inp = [
        f"ip saddr {mgmt} tcp dport 22 accept {nft_rule_comment('ssh from management')}",
        f"ip saddr {hub.wan_address} udp dport {hub.listen_port} accept {nft_rule_comment('wireguard from the hub')}",
    ]
    if sb:
        port = hub.listen_port + 1 if sb.listen_port == hub.listen_port else sb.listen_port
        inp.append(f"ip saddr {sb.wan_address} udp dport {port} accept {nft_rule_comment('wireguard from the standby hub')}")
    inp += [
        f'iifname {wg} ip saddr {mgmt} ip daddr {site.tunnel_address} tcp dport {NODE_EXPORTER_PORT} '
        'accept ' + nft_rule_comment("node_exporter from management via the tunnel"),
        f'iifname {wg} ip saddr {mgmt} ip daddr {site.tunnel_address} icmp type echo-request '
        'accept ' + nft_rule_comment("link probes from management via the tunnel"),
    ]
    fwd = []
    reach = site_reach(model, site)
    if reach:
        elems = [f"{addr} . {proto} . {port}" for _, addr, proto, port in reach]
        fwd.append(
            f'oifname {wg} ip saddr {site.lan} ip daddr . meta l4proto . th dport {_set(elems)} '
            'accept ' + nft_rule_comment("site LAN to the platforms it may reach")
        )
    return _firewall(inp, fwd, [], [f"{site.id}: {site.name}", f"LAN {site.lan} may reach {', '.join(site.reach) or 'nothing'}"])


def _firewall_gateway(model: ProvinceFile) -> Part:
    hub, mgmt, wan = model.wan.hub, _mgmt_cidr(model), model.wan
    inp = [
        f'ip saddr {mgmt} tcp dport 22 accept ' + nft_rule_comment("ssh from management"),
        f'ip saddr {wan.underlay} udp dport {hub.listen_port} accept ' + nft_rule_comment("wireguard from the sites"),
        f'ip saddr {mgmt} ip daddr {hub.tunnel_address} tcp dport {NODE_EXPORTER_PORT} accept ' + nft_rule_comment("node_exporter from management"),
    ]
    if model.wan.standby:
        inp.append(f'iifname "wg0" ip saddr {wan.tunnel_pool} ip daddr {hub.tunnel_address} icmp type echo-request accept '
                   + nft_rule_comment("failover probes from the sites"))
    if hub.ntp_server == hub.tunnel_address:
        inp.append(f'iifname "wg0" ip saddr {wan.tunnel_pool} udp dport {NTP_PORT} accept ' + nft_rule_comment("ntp for the sites"))
    if hub.log_server == hub.tunnel_address:
        inp.append(f'iifname "wg0" ip saddr {wan.tunnel_pool} tcp dport {SYSLOG_PORT} accept ' + nft_rule_comment("syslog from the sites"))
    elems = []
    for s in sorted(model.wan.sites, key=lambda s: s.id):
        for _, addr, proto, port in site_reach(model, s):
            elems.append(f"{s.lan} . {addr} . {proto} . {port}")
    sets = []
    fwd = []
    if elems:
        sets.append(
            "\tset site_reach {\n"
            "\t\ttype ipv4_addr . ipv4_addr . inet_proto . inet_service\n"
            "\t\tflags interval\n"
            "\t\telements = { " + ",\n\t\t\t     ".join(elems) + " }\n"
            "\t}\n\n"
        )
        fwd.append(
            'iifname "wg0" ip saddr . ip daddr . meta l4proto . th dport @site_reach '
            'accept ' + nft_rule_comment("each site LAN to the platforms it may reach")
        )
    fwd += [
        f'ip saddr {mgmt} ip daddr {wan.underlay} tcp dport 22 accept ' + nft_rule_comment("management to the sites over the underlay"),
        f'ip saddr {mgmt} oifname "wg0" ip daddr {wan.tunnel_pool} tcp dport {NODE_EXPORTER_PORT} '
        'accept ' + nft_rule_comment("management scrapes the sites through the tunnel"),
        f'ip saddr {mgmt} oifname "wg0" ip daddr {wan.tunnel_pool} icmp type echo-request '
        'accept ' + nft_rule_comment("management probes the site links through the tunnel"),
        f'ip saddr {mgmt} ip daddr {_set(_dc_segments(model))} accept ' + nft_rule_comment("management administers the data center"),
    ]
    return _firewall(inp, fwd, sets, ["Data-center gateway (hub): sites reach only their platforms' ports"])


def ssh_allow_users(model: ProvinceFile) -> list[str]:
    """Who may log in over SSH: the automation account, the checks' account, the named administrators."""
    return [ADMIN_USER, AUDIT_USER] + [a.name for a in model.wan.administrators]


def _sshd_admin_blocks(model: ProvinceFile) -> str:
    """Match blocks for the named administrators (a Match in a drop-in ends with its file)."""
    admins = model.wan.administrators
    if not admins:
        return ""
    out = comment_block("Named administrators (province file wan.administrators): keys from the province file only,",
                        "and a second factor: a TOTP code (keyboard-interactive through PAM, pam_google_authenticator)",
                        "or a FIDO security key (sk- keys, touch required). The automation and audit accounts stay",
                        "key-only: non-interactive, limited by sudoers (password, or the evidence collector only).")
    fido = [a.name for a in admins if a.mfa == "fido"]
    if fido:
        out += (f"Match User {','.join(fido)}\n"
                "    AuthenticationMethods publickey\n"
                "    PubkeyAcceptedAlgorithms sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com\n"
                "    PubkeyAuthOptions touch-required\n"
                f"    AuthorizedKeysFile {ADMIN_KEYS_DIR}/%u.keys\n")
    out += (f"Match Group {ADMINS_GROUP}\n"
            "    AuthenticationMethods publickey,keyboard-interactive\n"
            "    KbdInteractiveAuthentication yes\n"
            f"    AuthorizedKeysFile {ADMIN_KEYS_DIR}/%u.keys\n")
    return out


def _ssh_hardening(model: ProvinceFile) -> Part:
    # idle sessions: OpenSSH 9.2 (Debian 12) names session channels session:shell, session:command,
    # session:subsystem:NAME (session:* covers them); from 9.5 on they are all "session"
    idle = model.wan.admin_idle_timeout_s
    conf = comment_block(HEADER, "First value wins in sshd: this drop-in is read before the rest of sshd_config.") + f"""PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
PubkeyAuthentication yes
AuthenticationMethods publickey
AllowUsers {' '.join(ssh_allow_users(model))}
MaxAuthTries {SSH_MAX_AUTH_TRIES}
LoginGraceTime 30
ClientAliveInterval {SSH_IDLE_INTERVAL}
ClientAliveCountMax {SSH_IDLE_COUNT}
ChannelTimeout session:*={idle}s session={idle}s
UnusedConnectionTimeout {idle}s
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
AllowStreamLocalForwarding no
PermitTunnel no
PermitUserEnvironment no
LogLevel VERBOSE
Ciphers {SSH_CIPHERS}
MACs {SSH_MACS}
KexAlgorithms {SSH_KEX}
""" + _sshd_admin_blocks(model)
    return Part(
        "ssh_hardening",
        files=(File(SSHD_DROPIN, conf),),
        services=(Service("ssh", "reloaded", "/usr/sbin/sshd -t"),),
    )


# ---------------------------------------------------------------- named administrators, sudo, evidence


PAM_SSHD_TEXT = """\
# PAM of sshd. Its auth stack serves only the named administrators' keyboard-interactive step (every
# other login is key-only, PasswordAuthentication no): the second factor, a TOTP code. No nullok: an
# administrator without a TOTP secret cannot log in.
auth       required     pam_google_authenticator.so
account    required     pam_nologin.so
@include common-account
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close
session    required     pam_loginuid.so
session    optional     pam_keyinit.so force revoke
@include common-session
session    optional     pam_motd.so  motd=/run/motd.dynamic
session    optional     pam_motd.so noupdate
session    optional     pam_mail.so standard noenv
session    required     pam_limits.so
session    required     pam_env.so
session    required     pam_env.so user_readenv=1 envfile=/etc/default/locale
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so open
@include common-password
"""

PAM_SUDO_TEXT = """\
#%PAM-1.0
# sudo asks the named administrators (group {group}) for a fresh TOTP code, everyone else
# (the automation account) for their password: nobody runs commands as root unauthenticated.
session    required   pam_limits.so
auth       [success=ignore default=1] pam_succeed_if.so quiet user ingroup {group}
auth       [success=done default=die] pam_google_authenticator.so
@include common-auth
@include common-account
@include common-session-noninteractive
"""


def evidence_commands(model: ProvinceFile) -> list[str]:
    """What the host controls read as root, run by the evidence collector (exactly these strings:
    the checks look their answers up by them). Commands readable by anyone are not here: the checks
    run those as the audit account itself. A new control that needs root adds its command here."""
    cmds = [
        "/usr/sbin/sshd -T",
        "nft -nn list ruleset",
        "ss -H -tulnp",
        # wg0: the tunnel to the hub; wg1: a site's tunnel to the standby hub, where there is one
        *(f"wg show {i} {w}" for i in ("wg0", "wg1") for w in ("endpoints", "allowed-ips", "latest-handshakes", "public-key")),
        f"stat -c '%U %a %n' {WG_DIR} {WG_DIR}/* 2>/dev/null || true",
        "awk -F: '($2 == \"\") {print $1}' /etc/shadow",
        "rsyslogd -N1",
        "chronyc -n tracking",
        "chronyc -n sources",
        "chronyc -N sources",
        "date +%s",
        SUDOERS_EVIDENCE,
    ]
    cmds += [sshd_match_command(model, a.name) for a in model.wan.administrators]
    cmds += [totp_evidence_command(model)] if model.wan.administrators else []
    return cmds


def sshd_match_command(model: ProvinceFile, user: str) -> str:
    """``sshd -T`` for a login of ``user`` from the management range (shows the Match blocks' effect)."""
    mgmt = next(_net(_mgmt_cidr(model)).hosts())
    return f"/usr/sbin/sshd -T -C user={user},host=management,addr={mgmt}"


def totp_evidence_command(model: ProvinceFile) -> str:
    """Owner, mode and size of each TOTP administrator's secret (never its content)."""
    names = [a.name for a in model.wan.administrators if a.mfa == "totp"]
    return ("for u in " + (" ".join(names) or "none") + "; do h=$(getent passwd \"$u\" | cut -d: -f6); "
            f"f=\"${{h:-/nonexistent}}/{TOTP_FILE}\"; if [ -f \"$f\" ]; then echo \"$u $(stat -c '%U %a %s' \"$f\")\"; "
            "else echo \"$u missing\"; fi; done")


# The first line of an answer written with ``frame`` (the collector's, the one-round-trip scripts').
FRAME_MAGIC = b"dcops-evidence/2\n"


# Python (embedded in the evidence collector and in the checks' one-round-trip scripts): ``run(c)``
# runs command ``c`` as ``/bin/sh -c c`` would and returns its exit status, stdout and stderr
# (bytes). A simple command (plain words and 'single-quoted' parts: no other shell syntax, no
# assignment first, a plain program name) is executed directly: the same program and arguments, without a shell process (dozens per host per
# check). Only ``os`` and ``sys`` are imported (no subprocess, json, base64 or re: their imports cost
# more CPU on every host than the commands themselves): the command's output goes to memory files,
# read back once it has exited. ``begin`` starts an answer (:data:`FRAME_MAGIC`) and ``frame``
# writes one record of it, which :func:`read_frames` reads.
RUN_COMMAND_PY = r"""
import os, sys
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./@:,+%-=")
# the shell's own commands, which its programs of the same name may not match (dash's printf, echo)
_BUILTIN = frozenset("alias bg cd command echo eval exec exit export fc fg getopts hash jobs kill local printf pwd read "
                     "readonly return set shift test times trap type ulimit umask unalias unset wait [".split())
def _words(c):
    # the arguments of a simple command: words of _WORD characters and 'single-quoted' parts,
    # one space apart; None for anything else (the shell's job), or an assignment first
    a, w, i, n = [], [], 0, len(c)
    while i < n:
        ch = c[i]
        if ch == "'":
            j = c.find("'", i + 1)
            if j < 0:
                return None
            w.append(c[i + 1:j])
            i = j + 1
        elif ch == " ":
            if not w or i + 1 == n:
                return None
            a.append("".join(w))
            w = []
            i += 1
        elif ch in _WORD:
            w.append(ch)
            i += 1
        else:
            return None
    if not w:
        return None
    a.append("".join(w))
    first = c.split(" ", 1)[0]  # the program: plain (no quotes), not an assignment, not the shell's own
    return None if "'" in first or "=" in first or first in _BUILTIN else a
def _simple(c):
    return _words(c) is not None
def run(c):
    a = _words(c) or ["/bin/sh", "-c", c]
    o, e = os.memfd_create("o"), os.memfd_create("e")
    try:
        try:
            pid = os.posix_spawnp(a[0], a, os.environ, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, o, 1), (os.POSIX_SPAWN_DUP2, e, 2)])
        except FileNotFoundError:
            return 127, b"", ("/bin/sh: 1: %s: not found\n" % a[0]).encode()
        except PermissionError:
            return 126, b"", ("/bin/sh: 1: %s: Permission denied\n" % a[0]).encode()
        st = os.waitpid(pid, 0)[1]
        rc = os.WEXITSTATUS(st) if os.WIFEXITED(st) else -os.WTERMSIG(st)
        return rc, os.pread(o, os.fstat(o).st_size, 0), os.pread(e, os.fstat(e).st_size, 0)
    finally:
        os.close(o)
        os.close(e)
def frame(w, key, rc, out, err):
    k = key.encode()
    w(b"%d %d %d %d\n" % (rc, len(k), len(out), len(err)) + k + out + err)
""" + f"""def begin():
    w = sys.stdout.buffer.write
    w({FRAME_MAGIC!r})
    return w
"""

def read_frames(data: bytes) -> list[tuple[str, int, bytes, bytes]]:
    """The records ``frame`` wrote after :data:`FRAME_MAGIC`: (key, exit status, stdout, stderr)
    each. ValueError if ``data`` is not such an answer, or is cut short."""
    if not data.startswith(FRAME_MAGIC):
        raise ValueError(f"not a dcops evidence answer: {data[:60]!r}")
    rows, i, n = [], len(FRAME_MAGIC), len(data)
    while i < n:
        j = data.index(b"\n", i)
        rc, kl, ol, el = (int(x) for x in data[i:j].split(b" "))
        i = j + 1
        if i + kl + ol + el > n:
            raise ValueError("the evidence answer is cut short")
        rows.append((data[i:i + kl].decode(), rc, data[i + kl:i + kl + ol], data[i + kl + ol:i + kl + ol + el]))
        i += kl + ol + el
    return rows


_COLLECTOR_TEMPLATE = """\
#!/usr/bin/python3 -IS
# {header}
# The evidence collector of the host checks: the account {audit} may run it as root (sudoers:
# this path, no arguments) and nothing else. It runs a fixed list of read-only commands and prints
# each one's exit status and output, length-prefixed (one round trip per host).
{run_command}
COMMANDS = {commands}

if len(sys.argv) != 1:
    sys.exit("collect-evidence takes no arguments")
os.chdir("/")
os.environ.clear()
os.environ.update({{"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}})
w = begin()
for c in COMMANDS:
    frame(w, c, *run(c))
"""


def collector_script(model: ProvinceFile) -> str:
    return _COLLECTOR_TEMPLATE.format(header=HEADER, audit=AUDIT_USER, run_command=RUN_COMMAND_PY,
                                      commands=json.dumps(evidence_commands(model), indent=1))


def sudoers_text(model: ProvinceFile) -> str:
    """The sudo rules dcops manages: administrators authenticate (TOTP through PAM), the audit
    account runs the collector only (no arguments). Never NOPASSWD: ALL."""
    out = comment_block(HEADER, f"Named administrators (group {ADMINS_GROUP}): any command, after authenticating.",
                        f"The checks' account {AUDIT_USER}: the evidence collector only, with no arguments.")
    out += f"Defaults:%{ADMINS_GROUP} timestamp_timeout=5\n"
    out += f"%{ADMINS_GROUP} ALL=(ALL:ALL) ALL\n"
    out += f'{AUDIT_USER} ALL=(root) NOPASSWD: {COLLECTOR} ""\n'
    return out


def _gecos(text: str) -> str:
    return re.sub(r"[:,=\\]", " ", text)


def _passwd_fields(names: list[str]) -> str:
    """Bash that reads the accounts' passwd entries with ONE getent into the arrays ``shell``,
    ``home`` and ``pgid`` (by account name; an account that does not exist has no entry)."""
    return ("declare -A shell home pgid\n"
            f"while IFS=: read -r n _ _ g _ h s; do [ -n \"$n\" ] && shell[$n]=$s home[$n]=$h pgid[$n]=$g; "
            f"done <<< \"$(getent passwd {' '.join(names)})\"\n") if names else ""


def _admins(model: ProvinceFile) -> Part:
    admins = model.wan.administrators
    names = [a.name for a in admins]
    files = [
        File(SUDOERS_DCOPS, sudoers_text(model), "0440"),
        File(PAM_SSHD, PAM_SSHD_TEXT),
        File(PAM_SUDO, PAM_SUDO_TEXT.format(group=ADMINS_GROUP)),
        File(PROFILE_IDLE, comment_block(HEADER, "Idle interactive shells end (wan.admin_idle_timeout_s); sshd's ChannelTimeout ends idle sessions too.")
             + f"TMOUT={model.wan.admin_idle_timeout_s}\nreadonly TMOUT\nexport TMOUT\n"),
        File(COLLECTOR, collector_script(model), "0755"),
    ]
    files += [File(f"{ADMIN_KEYS_DIR}/{a.name}.keys", comment_block(HEADER, f"{a.name}: {a.full_name}") + "".join(k + "\n" for k in a.ssh_keys))
              for a in admins]
    # accounts: the group, one account per administrator (login shell, no password: keys and the
    # second factor), members of the group exactly; a removed administrator is locked and leaves the group
    want = " ".join(names)
    # bash itself reads the two getent answers (this runs on every host at every re-apply: a
    # process per account and field cost more than the rest of the check). Membership as `id -nG`
    # sees it: listed in the group, or the group is the account's primary group.
    check = (f"gr=$(getent group {ADMINS_GROUP}) || echo 'group {ADMINS_GROUP} missing'\n"
             f"IFS=: read -r _ _ gid members <<< \"$gr\"\n"
             + _passwd_fields(names)
             + "".join(f"e=${{shell[{n}]-}}; [ \"$e\" = /bin/bash ] || echo 'account {n}: shell '\"${{e:-missing}}\"\n"
                       f"case \",$members,\" in *,{n},*) ;; *) [ -n \"$gid\" ] && [ \"${{pgid[{n}]-}}\" = \"$gid\" ] "
                       f"|| echo 'account {n} not in {ADMINS_GROUP}';; esac\n"
                       for n in names)
             + f"IFS=, read -ra m <<< \"$members\"; ok=; [ ${{#m[@]}} -eq {len(names)} ] && ok=1\n"
             + f"for u in \"${{m[@]}}\"; do case ' {want} ' in *\" $u \"*) ;; *) ok=;; esac; done\n"
             + (f"for u in {want}; do case \",$members,\" in *\",$u,\"*) ;; *) ok=;; esac; done\n" if names else "")
             + f"[ -n \"$ok\" ] || echo \"{ADMINS_GROUP} members: ${{members//,/ }}\"\n")
    apply = (f"set -e\ngetent group {ADMINS_GROUP} >/dev/null || groupadd --system {ADMINS_GROUP}\n"
             + "".join(f"id -u {a.name} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --comment {shlex.quote(_gecos(a.full_name))} {a.name}\n"
                       f"usermod --shell /bin/bash --comment {shlex.quote(_gecos(a.full_name))} --append --groups {ADMINS_GROUP} {a.name}\n"
                       f"[ \"$(getent shadow {a.name} | cut -d: -f2)\" != '' ] || usermod -p '*' {a.name}\n"
                       f"case \"$(getent shadow {a.name} | cut -d: -f2)\" in '!'*) usermod -p '*' {a.name};; esac\n"
                       for a in admins)
             + f"for u in $(getent group {ADMINS_GROUP} | cut -d: -f4 | tr ',' ' '); do case \" {want} \" in *\" $u \"*) ;; "
               f"*) gpasswd -d \"$u\" {ADMINS_GROUP}; usermod --lock --shell /usr/sbin/nologin \"$u\";; esac; done\n")
    totp = [a.name for a in admins if a.mfa == "totp"]
    # each TOTP administrator's secret is made on the host (it never leaves it through dcops); the
    # administrator enrols it from the host's console or with a colleague (README: named administrators)
    tcheck = _passwd_fields(totp) + "".join(
        f"h=${{home[{n}]-}}; [ -n \"$h\" ] && [ -s \"$h/{TOTP_FILE}\" ] || echo '{n}: no TOTP secret'\n" for n in totp)
    tapply = "set -e\n" + "".join(
        f"h=$(getent passwd {n} | cut -d: -f6); if [ ! -s \"$h/{TOTP_FILE}\" ]; then "
        f"google-authenticator --time-based --disallow-reuse --force --quiet --qr-mode=NONE --rate-limit=3 --rate-time=30 "
        f"--window-size=3 --emergency-codes=0 --secret=\"$h/{TOTP_FILE}\" >/dev/null; chown {n}: \"$h/{TOTP_FILE}\"; chmod 0400 \"$h/{TOTP_FILE}\"; fi\n"
        for n in totp)
    converge = [Converge("administrator accounts", check, apply)]
    if totp:
        converge.append(Converge("administrators' TOTP secrets", tcheck, tapply))
    return Part(
        "admins",
        dirs=(Directory(ADMIN_KEYS_DIR), Directory(COLLECTOR_DIR)),
        files=tuple(files),
        converge=tuple(converge),
    )


def _time(model: ProvinceFile, *, serve: bool) -> Part:
    hub, wan = model.wan.hub, model.wan
    if serve and hub.time_upstream:
        src = (
            comment_block("The hub serves the sites and follows the authoritative sources of the province file",
                          "(wan.hub.time_upstream): " + "; ".join(f"{t.address} ({t.name})" for t in hub.time_upstream) + ".",
                          "While none of them answers it keeps serving its own clock (local stratum 10 orphan),",
                          "which DCOPS-NTP-003 reports as a free-running hub.")
            + "".join(f"server {t.address} iburst\n" for t in hub.time_upstream)
            + "local stratum 10 orphan\n"
            f"allow {wan.tunnel_pool}\n"
        )
    elif serve:
        src = (
            comment_block("The hub serves the sites. With no upstream in the province file it keeps its own clock",
                          "as a local reference (orphan mode) so that every endpoint agrees on one time",
                          "(refused at security level 3: DCOPS-NTP-003 fails a free-running hub).")
            + "local stratum 8 orphan\n"
            f"allow {wan.tunnel_pool}\n"
        )
    else:
        servers = time_servers(model)
        src = "".join(f"server {s} iburst\n" for s in servers)
        if len(servers) > 1:
            src = comment_block("The primary hub's time server, then the standby hub's: chronyd follows the best",
                                "of those that answer, so time keeps coming while either hub is away.") + src
    conf = comment_block(HEADER, "Time comes from the data center only (no other pool or server).") + f"""{src}driftfile /var/lib/chrony/chrony.drift
ntsdumpdir /var/lib/chrony
logdir /var/log/chrony
makestep 1 3
leapsectz right/UTC
cmdport 0
"""
    # The lab's containers may not set the clock: the lab image runs chronyd with -x
    # (infra/lab/image.py); the configuration here is the same everywhere.
    return Part("time", files=(File(CHRONY_CONF, conf),), services=(Service("chrony", "restarted"),))


def time_servers(model: ProvinceFile) -> list[str]:
    """The time servers a site follows: each declared hub's ``ntp_server`` (the primary's first), once each."""
    return list(dict.fromkeys(h.ntp_server for h in model.wan.hubs))


def log_servers(model: ProvinceFile) -> list[str]:
    """Where a site forwards its logs: the primary hub's ``log_server``, then the standby's when it
    is another server (used only while the primary's cannot be reached)."""
    return list(dict.fromkeys(h.log_server for h in model.wan.hubs))


def log_senders(model: ProvinceFile) -> dict[str, str]:
    """Tunnel address -> site id: whose file a message received over the tunnel goes to."""
    return {s.tunnel_address: s.id for s in sorted(model.wan.sites, key=lambda s: ipaddress.ip_address(s.tunnel_address))}


def log_file(site_id: str) -> str:
    """The central log server's file of one site."""
    return f"{REMOTE_LOG_DIR}/{site_id}.log"


def log_senders_table(model: ProvinceFile) -> str:
    """rsyslog lookup table (JSON) of :func:`log_senders`; an unknown sender looks up ``""``."""
    rows = [json.dumps({"index": a, "value": sid}) for a, sid in log_senders(model).items()]
    return '{"version": 1, "nomatch": "", "type": "string", "table": [\n ' + ",\n ".join(rows) + "\n]}\n"


def _logging(model: ProvinceFile, *, receive: bool) -> Part:
    hub = model.wan.hub
    files, dirs = [], []
    if receive:
        days = model.datacenter.log_retention_days
        files.append(
            File(
                RSYSLOG_RECEIVE,
                comment_block(
                    HEADER,
                    f"Central log server of the WAN: every site forwards here over the tunnel (tcp/{SYSLOG_PORT}).",
                    f"One file per site under {REMOTE_LOG_DIR}, kept {days} days (datacenter.log_retention_days).",
                    "A file is named by the address the message came from (the sender's tunnel address, which",
                    "WireGuard ties to its key), never by the hostname the message claims: the site id comes from",
                    f"{RSYSLOG_SENDERS} (tunnel address -> site id, from the province file); any other",
                    "sender writes to unknown-<address>.log. secpath-replace keeps '/' and '..' out of the name.",
                )
                + f"""module(load="imtcp")
lookup_table(name="dcops_senders" file="{RSYSLOG_SENDERS}")
template(name="DcopsRemoteFile" type="string" string="{REMOTE_LOG_DIR}/%$.dcops_sender:::secpath-replace%.log")
ruleset(name="dcops_remote") {{
  set $.dcops_sender = lookup("dcops_senders", $fromhost-ip);
  if $.dcops_sender == "" then {{ set $.dcops_sender = "unknown-" & $fromhost-ip; }}
  action(type="omfile" dynaFile="DcopsRemoteFile" dirCreateMode="0750" fileCreateMode="0640")
}}
input(type="imtcp" port="{SYSLOG_PORT}" ruleset="dcops_remote")
""",
            )
        )
        files.append(File(RSYSLOG_SENDERS, log_senders_table(model)))
        dirs.append(Directory(REMOTE_LOG_DIR, "0750"))
        files.append(
            File(
                LOGROTATE_REMOTE,
                comment_block(HEADER) + f"{REMOTE_LOG_DIR}/*.log {{\n\tdaily\n\trotate {days}\n\tmaxage {days}\n"
                "\tmissingok\n\tnotifempty\n\tcompress\n\tdelaycompress\n\tsharedscripts\n"
                "\tpostrotate\n\t\t/usr/lib/rsyslog/rsyslog-rotate\n\tendscript\n}\n",
            )
        )
    elif len(log_servers(model)) > 1:
        files.append(File(RSYSLOG_FORWARD, _forward_with_failover(model)))
    else:
        files.append(
            File(
                RSYSLOG_FORWARD,
                comment_block(
                    HEADER,
                    "Everything (auth and authpriv included) goes to the data center's log server over the",
                    "tunnel, over TCP, queued on disk while the server is away.",
                )
                + f"""*.* action(type="omfwd" target="{hub.log_server}" port="{SYSLOG_PORT}" protocol="tcp"
           queue.type="LinkedList" queue.filename="dcops_forward" queue.maxDiskSpace="256m"
           queue.saveOnShutdown="on" action.resumeRetryCount="-1" action.resumeInterval="10")
""",
            )
        )
    return Part(
        "logging",
        dirs=tuple(dirs),
        files=tuple(files),
        services=(Service("rsyslog", "restarted", "/usr/sbin/rsyslogd -N1"),),
    )


def _forward_with_failover(model: ProvinceFile) -> str:
    """A site's forwarding with two hubs: to the primary's log server and, while that one cannot be
    reached (its action is suspended), to the standby's. The disk-assisted queue belongs to the
    ruleset, not to an action: an action with a queue of its own accepts every message and is never
    suspended, so its failover action would never run (rsyslog's documented failover pattern)."""
    primary, standby = log_servers(model)[:2]
    return comment_block(
        HEADER,
        "Everything (auth and authpriv included) goes to the data center's log server over the tunnel,",
        f"over TCP: the primary hub's ({primary}) and, while that one cannot be reached, the standby",
        f"hub's ({standby}); queued on disk while neither answers. When the primary hub stops answering",
        f"{FAILOVER_SCRIPT} also ends the connection to it (ss -K) and refuses new ones until it answers",
        "again, so the switch does not wait for TCP's own timeouts.",
    ) + f"""ruleset(name="dcops_forward" queue.type="LinkedList" queue.filename="dcops_forward" queue.maxDiskSpace="256m"
        queue.saveOnShutdown="on") {{
  action(type="omfwd" name="dcops_forward_primary" target="{primary}" port="{SYSLOG_PORT}" protocol="tcp"
         action.resumeInterval="10")
  action(type="omfwd" name="dcops_forward_standby" target="{standby}" port="{SYSLOG_PORT}" protocol="tcp"
         action.execOnlyWhenPreviousIsSuspended="on" action.resumeRetryCount="-1" action.resumeInterval="10")
}}
*.* call dcops_forward
"""


MACHINE_WIDE_SYSCTLS = ("kernel.kptr_restrict", "kernel.dmesg_restrict", "kernel.unprivileged_bpf_disabled",
                        "net.core.bpf_jit_harden", "fs.protected_hardlinks", "fs.protected_symlinks", "fs.suid_dumpable")
"""Keys of :func:`sysctls_for` that are the machine's, not a network namespace's: a container
cannot set them (its host does); DCOPS-SYS-008 checks them, and reports them as an exception in
a container."""


def sysctls_for(forwarding: bool) -> list[tuple[str, str]]:
    """Kernel hardening. ``net.*`` keys belong to the endpoint's network namespace (the lab's
    hosts have their own, writable: the rollout sets them for real); the others
    (:data:`MACHINE_WIDE_SYSCTLS`) are machine-wide: in a container they are the container
    host's, which the rollout reports as an exception rather than setting them or failing."""
    kv = [("net.ipv4.ip_forward", "1" if forwarding else "0")]
    for scope in ("all", "default"):
        kv += [
            (f"net.ipv4.conf.{scope}.rp_filter", "1"),
            (f"net.ipv4.conf.{scope}.accept_redirects", "0"),
            (f"net.ipv4.conf.{scope}.secure_redirects", "0"),
            (f"net.ipv4.conf.{scope}.send_redirects", "0"),
            (f"net.ipv4.conf.{scope}.accept_source_route", "0"),
            (f"net.ipv4.conf.{scope}.log_martians", "1"),
            (f"net.ipv6.conf.{scope}.accept_redirects", "0"),
            (f"net.ipv6.conf.{scope}.accept_source_route", "0"),
            (f"net.ipv6.conf.{scope}.accept_ra", "0"),
        ]
    kv += [
        ("net.ipv4.icmp_echo_ignore_broadcasts", "1"),
        ("net.ipv4.icmp_ignore_bogus_error_responses", "1"),
        ("net.ipv4.tcp_syncookies", "1"),
        ("kernel.kptr_restrict", "2"),
        ("kernel.dmesg_restrict", "1"),
        ("kernel.unprivileged_bpf_disabled", "1"),
        ("net.core.bpf_jit_harden", "2"),
        ("fs.protected_hardlinks", "1"),
        ("fs.protected_symlinks", "1"),
        ("fs.suid_dumpable", "0"),
    ]
    return kv


_SYSCTL_SCRIPT = """mode=${1:-check}; rc=0
# A key this host cannot set is a failure: the check prints it as drift and the repair exits 1
# naming it. One exception, reported as such on stderr and never silently: in a container
# (systemd-detect-virt -c) a key that is machine-wide (outside net.*, or a net.* key the
# container's own network namespace does not have, such as net.core.bpf_jit_harden) belongs
# to the container's host; DCOPS-SYS-008 reports those keys on every check.
ctr=unknown  # asked once, and only when a key cannot be set (a process less on every host)
while read -r k v; do
  p=/proc/sys/${k//.//}
  if [ -e "$p" ]; then read -ra f < "$p"; cur="${f[*]}"; else cur="(absent)"; fi  # builtins only: no fork per key
  [ "$cur" = "$v" ] && continue
  if [ ! -e "$p" ] || [ ! -w "$p" ]; then
    if [ -e "$p" ]; then why=read-only; else why="not in this kernel or namespace"; fi
    [ "$ctr" = unknown ] && { ctr=$(systemd-detect-virt -c 2>/dev/null) || ctr=; }
    if [ -n "$ctr" ] && { [ "${k#net.}" = "$k" ] || [ ! -e "$p" ]; }; then
      echo "exception: $k is machine-wide and this host is a container ($ctr): the container host's value applies ($cur, want $v)" >&2
      continue
    fi
    echo "$k: $cur -> $v: cannot be set here ($why)"
    if [ "$mode" = apply ]; then echo "$k: cannot be set here ($why): $cur, want $v" >&2; rc=1; fi
    continue
  fi
  echo "$k: $cur -> $v"
  if [ "$mode" = apply ]; then printf '%s\\n' "$v" > "$p" || { echo "$k: writing $v failed" >&2; rc=1; }; fi
done <<'EOF'
"""


def _sysctl(kv: list[tuple[str, str]], forwarding: bool) -> Part:
    why = "this host forwards (site LAN or tunnel traffic)" if forwarding else "this host does not forward"
    conf = comment_block(HEADER, f"ip_forward: {why}.") + "".join(f"{k} = {v}\n" for k, v in kv)
    body = _SYSCTL_SCRIPT + "".join(f"{k} {v}\n" for k, v in kv) + "EOF\nexit $rc"
    return Part(
        "sysctl",
        files=(File(SYSCTL_CONF, conf),),
        converge=(
            Converge(
                "live sysctls = " + SYSCTL_CONF,
                f"set -- check\n{body}",
                f"set -- apply\n{body}",
            ),
        ),
    )


def _node_exporter(tunnel_address: str) -> Part:
    return Part(
        "node_exporter",
        dirs=(Directory(NODE_EXPORTER_DROPIN_DIR),),
        files=(
            File(
                NODE_EXPORTER_DEFAULTS,
                comment_block(HEADER, "Metrics only on the tunnel address: management scrapes them through the tunnel.")
                + f'ARGS="--web.listen-address={tunnel_address}:{NODE_EXPORTER_PORT}"\n',
            ),
            File(
                f"{NODE_EXPORTER_DROPIN_DIR}/dcops.conf",
                comment_block(HEADER, "The listen address exists once the tunnel is up.")
                + "[Unit]\nAfter=wg-quick@wg0.service\nWants=wg-quick@wg0.service\n\n"
                "[Service]\nRestart=always\nRestartSec=5\n",
            ),
        ),
        services=(Service("prometheus-node-exporter", "restarted"),),
        daemon_reload=True,
    )


# ---------------------------------------------------------------- rendering


def render_site(model: ProvinceFile, site_id: str, pubkeys: Mapping[str, str]) -> Endpoint:
    _check_keys(pubkeys)
    if site_id == GATEWAY:
        raise RenderError(f"a site may not be called '{GATEWAY}' (the gateway's name) -- fix: rename the site")
    site = model.site_by_id.get(site_id)
    if site is None:
        raise RenderError(f"unknown site '{site_id}'")
    hub_key = pubkeys.get(GATEWAY)
    if not hub_key:
        raise RenderError(f"{site_id}: the hub's public key is not known -- fix: gather it from the gateway first")
    standby_key = pubkeys.get(STANDBY_GATEWAY) if model.wan.standby else None
    if model.wan.standby and not standby_key:
        raise RenderError(f"{site_id}: the standby hub's public key is not known -- fix: gather it from "
                          f"{STANDBY_GATEWAY} first")
    forwarding = bool(site.reach)
    kv = sysctls_for(forwarding)
    parts = {
        "sysctl": _sysctl(kv, forwarding),
        "firewall": _firewall_site(model, site),
        "admins": _admins(model),
        "ssh_hardening": _ssh_hardening(model),
        "wireguard": _wireguard_site(model, site, hub_key, standby_key),
        "node_exporter": _node_exporter(site.tunnel_address),
        "time": _time(model, serve=False),
        "logging": _logging(model, receive=False),
    }
    return Endpoint(site.id, "site", site.wan_address, site.tunnel_address, tuple(parts[n] for n in PARTS), tuple(kv))


def render_gateway(model: ProvinceFile, pubkeys: Mapping[str, str], name: str = GATEWAY) -> Endpoint:
    """The hub ``name`` (GATEWAY, the primary; STANDBY_GATEWAY, the standby): each has every
    site as a peer, so either carries the WAN alone."""
    _check_keys(pubkeys)
    model = as_hub(model, name)
    hub = model.wan.hub
    wg, warnings = _wireguard_gateway(model, pubkeys)
    kv = sysctls_for(True)
    serve_time = hub.ntp_server == hub.tunnel_address
    receive_logs = hub.log_server == hub.tunnel_address
    parts = {
        "sysctl": _sysctl(kv, True),
        "firewall": _firewall_gateway(model),
        "admins": _admins(model),
        "ssh_hardening": _ssh_hardening(model),
        "wireguard": wg,
        "node_exporter": _node_exporter(hub.tunnel_address),
        "time": _time(model, serve=serve_time),
        "logging": _logging(model, receive=receive_logs),
    }
    return Endpoint(
        name, "gateway", hub.wan_address, hub.tunnel_address, tuple(parts[n] for n in PARTS), tuple(kv), tuple(warnings)
    )


def render(
    model: ProvinceFile,
    pubkeys: Mapping[str, str],
    only: Iterable[str] | None = None,
) -> dict[str, Endpoint]:
    """Every endpoint (or those in ``only``), keyed by inventory name, gateway first."""
    for g in (GATEWAY, STANDBY_GATEWAY):
        if g in model.site_by_id:
            raise RenderError(f"a site may not be called '{g}' (a gateway's name) -- fix: rename the site")
    wanted = set(only) if only is not None else None
    out: dict[str, Endpoint] = {}
    for h in hosts(model):
        if wanted is not None and h not in wanted:
            continue
        out[h] = render_gateway(model, pubkeys, h) if h in (GATEWAY, STANDBY_GATEWAY) else render_site(model, h, pubkeys)
    return out


# ------------------------------------------------------- the key (first pass)


def key_script(create: bool) -> str:
    """The command both engines run first on every host: make the private key if there is
    none (only when ``create``), print the public key. Prints ``MISSING`` when there is no key
    and it may not make one (check mode); prints ``CREATED`` on its own line when it made one."""
    if create:
        return (
            f"set -e; install -d -m 0700 -o root -g root {WG_DIR}\n"
            f"if [ ! -s {WG_PRIVATE_KEY} ]; then umask 077; wg genkey > {WG_PRIVATE_KEY}.new; "
            f"mv {WG_PRIVATE_KEY}.new {WG_PRIVATE_KEY}; echo CREATED; fi\n"
            f"wg pubkey < {WG_PRIVATE_KEY}"
        )
    return f"if [ ! -s {WG_PRIVATE_KEY} ]; then echo MISSING; exit 0; fi\nwg pubkey < {WG_PRIVATE_KEY}"


def parse_key_output(stdout: str) -> tuple[str | None, bool]:
    """(public key or None, created?) from :func:`key_script`'s output."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    created = "CREATED" in lines
    keys = [line for line in lines if valid_public_key(line)]
    return (keys[-1] if keys else None), created
