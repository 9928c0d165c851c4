"""Names and addresses of the lab's WAN hosts, derived from the province file.

Pure: no side effects, nothing touched on the machine.  :mod:`infra.lab.hosts`
creates exactly what :func:`build` describes; the WAN rollout, the checks and
the tests use the same description to find hosts, namespaces and addresses.

Layout (lab name ``L``, 1-8 characters; site index ``i`` = position of the
site in ``wan.sites``, so the first N sites keep their names when N grows)::

                       L-sw  (WAN switch: bridge Lbr, no way out)
           port Lp<i> /   \\ port Lpgw  (netem per tier on the site ports)
                wan0 /     \\ wan0 = hub.wan_address/<underlay len>
        L-s<i> (site host)  L-gw (gateway host, ip_forward=1, no default route)
          lan0 = LAN .1       mgmt0 = mgmt segment .1 ---- eth0 of L-mgmt (.10)
           |                  dc0   = platform segments .1 -- eth0 of L-dc
          eth0 = LAN .2                                  (every platform address,
        L-l<i> (LAN client, no processes)                 front ends listening)

- Site host ``L-s<i>``: systemd-nspawn machine ``L-s<i>``, hostname = site id,
  ``wan0`` = site ``wan_address`` with the underlay's prefix length, default
  route via the hub's WAN address; ``lan0`` = first host address of the site
  LAN.  LAN client ``L-l<i>``: ``eth0`` = second host address, default route
  via the site host.
- Gateway ``L-gw``: machine ``L-gw``, hostname ``hub``; ``wan0`` = hub WAN
  address; ``mgmt0`` = first free host address of the management segment;
  ``dc0`` = first free host address of every segment holding a platform.  No
  default route: anything that is not in the lab is unreachable from it.
- Management host ``L-mgmt`` (a namespace, no container): ``eth0`` = the
  management segment's ``.10`` (the second host address in segments smaller
  than /28), default route via the gateway.
- Data-center namespace ``L-dc``: ``eth0`` holds every platform's ``address``
  with its segment's prefix length; default route via the gateway.

Interface names inside a namespace are short and fixed (``wan0``, ``lan0``,
``eth0``...): each lives only in the lab's own namespaces.  The switch ports,
the one place where many links meet, carry the lab name: ``<lab>p<i>`` (at
most 8 + 1 + 4 = 13 characters, the kernel allows 15).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from ..model import LinkShape, ProvinceFile, Site, Tier

IFNAMSIZ = 15
MAX_SITES = 9999  # keeps switch port names within IFNAMSIZ


class TopologyError(ValueError):
    """The province file cannot be laid out as a lab (the message says why)."""


@dataclass(frozen=True)
class SiteHost:
    index: int
    site_id: str
    tier: str
    hostname: str
    netns: str
    machine: str
    key: str  # short per-lab key: directory and cgroup name ("s<i>")
    wan_if: str
    wan_address: str
    wan_cidr: str
    gateway: str
    switch_port: str
    netem: LinkShape | None
    lan_if: str
    lan_network: str
    lan_address: str
    lan_cidr: str
    lan_netns: str
    lan_client_if: str
    lan_client_address: str
    lan_client_cidr: str
    tunnel_address: str

    @property
    def ssh_address(self) -> str:
        """Where the management host reaches this host's sshd."""
        return self.wan_address


@dataclass(frozen=True)
class Gateway:
    netns: str
    machine: str
    key: str
    hostname: str
    wan_if: str
    wan_address: str
    wan_cidr: str
    switch_port: str
    mgmt_if: str
    mgmt_address: str
    mgmt_cidr: str
    dc_if: str
    dc_cidrs: tuple[str, ...]
    tunnel_address: str

    @property
    def ssh_address(self) -> str:
        return self.mgmt_address


@dataclass(frozen=True)
class Frontend:
    platform_id: str
    address: str
    cidr: str
    ports: tuple[tuple[int, str], ...]  # (port, "TCP"|"UDP")
    tls_ports: tuple[int, ...] = ()  # the TCP ports that speak TLS (https)
    hostname: str | None = None  # the platform's DNS name (in its certificate)


def frontend_of(p, prefixlen: int = 32) -> Frontend:
    """A platform's front end (``p``: a :class:`infra.model.Platform`) at its address."""
    return Frontend(p.id, p.address, f"{p.address}/{prefixlen}", tuple((x.port, x.protocol) for x in p.ports),
                    tuple(x.port for x in p.ports if x.scheme == "https"), p.hostname)


@dataclass(frozen=True)
class Mgmt:
    netns: str
    ifname: str
    address: str
    cidr: str
    gateway: str
    segment_cidr: str
    gateway2: str = ""  # the standby gateway's leg (``ifname2``), when the province declares one
    ifname2: str = "eth1"


@dataclass(frozen=True)
class Dc:
    netns: str
    ifname: str
    gateway: str
    frontends: tuple[Frontend, ...]
    gateway2: str = ""  # the standby gateway's leg (``ifname2``), when the province declares one
    ifname2: str = "eth1"

    @property
    def cidrs(self) -> tuple[str, ...]:
        return tuple(f.cidr for f in self.frontends)


@dataclass(frozen=True)
class Switch:
    netns: str
    bridge: str


@dataclass(frozen=True)
class Topology:
    lab: str
    underlay: str
    switch: Switch
    gateway: Gateway
    mgmt: Mgmt
    dc: Dc
    sites: tuple[SiteHost, ...]
    _by_id: dict[str, SiteHost] = field(default_factory=dict, compare=False, repr=False)
    standby: Gateway | None = None  # L-gw2, hostname hub2: wan.hubs[1]

    @property
    def gateways(self) -> tuple[Gateway, ...]:
        return (self.gateway,) + ((self.standby,) if self.standby else ())

    def site(self, site_id: str) -> SiteHost:
        try:
            return self._by_id[site_id]
        except KeyError:
            raise KeyError(f"site '{site_id}' is not in lab '{self.lab}'") from None

    def namespaces(self) -> list[str]:
        """Every network namespace of the lab's WAN part, in creation order."""
        out = [self.switch.netns, self.gateway.netns, self.mgmt.netns, self.dc.netns]
        if self.standby:
            out.append(self.standby.netns)
        for s in self.sites:
            out += [s.netns, s.lan_netns]
        return out

    def netns_map(self) -> dict[str, str]:
        """Host name -> network namespace, as accepted by :func:`infra.lab.netexec.ns_run`.

        Keys: every site id, ``lan:<site id>`` for its LAN client, and
        ``hub``/``gw``, ``mgmt``, ``dc``, ``sw``.
        """
        m = {s.site_id: s.netns for s in self.sites}
        m.update({f"lan:{s.site_id}": s.lan_netns for s in self.sites})
        m.update(
            {"hub": self.gateway.netns, "gw": self.gateway.netns, "mgmt": self.mgmt.netns,
             "dc": self.dc.netns, "sw": self.switch.netns}
        )
        if self.standby:
            m.update({"hub2": self.standby.netns, "gw2": self.standby.netns})
        return m

    def machines(self) -> Iterator[SiteHost | Gateway]:
        yield from self.gateways
        yield from self.sites


def _hosts(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list:
    if net.num_addresses <= 2:
        return list(net)
    return list(net.hosts())


def _free_host(net, taken: set[str], first: int = 0) -> str:
    for a in _hosts(net)[first:]:
        if str(a) not in taken:
            return str(a)
    raise TopologyError(f"no free address left in {net}")


def _check_ifname(n: str) -> str:
    if len(n) > IFNAMSIZ:
        raise TopologyError(f"interface name '{n}' is longer than {IFNAMSIZ} characters")
    return n


def select_sites(model: ProvinceFile, sites: int | Sequence[str] | None) -> list[tuple[int, Site]]:
    """``(index, site)`` of the chosen sites: all (None), the first N (int) or the named ids.

    The index is the site's position in ``wan.sites``, so a site keeps its
    namespace and interface names whichever subset is started.
    """
    all_sites = list(enumerate(model.wan.sites))
    if sites is None:
        return all_sites
    if isinstance(sites, int):
        if sites < 1:
            raise TopologyError(f"--sites must be at least 1 (got {sites})")
        if sites > len(all_sites):
            raise TopologyError(
                f"--sites {sites}: the province file has only {len(all_sites)} sites "
                f"(infra.lab.topology.scaled_province() makes a bigger test province)"
            )
        return all_sites[:sites]
    wanted = list(dict.fromkeys(sites))
    known = {s.id for _, s in all_sites}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise TopologyError(f"unknown site(s): {', '.join(unknown)} (sites of the province file: wan.sites[].id)")
    if not wanted:
        raise TopologyError("no site chosen")
    return [(i, s) for i, s in all_sites if s.id in wanted]


def build(model: ProvinceFile, name: str, sites: int | Sequence[str] | None = None) -> Topology:
    """The lab layout for ``model``: all sites, the first ``sites`` (int) or the named site ids."""
    chosen = select_sites(model, sites)
    if chosen and chosen[-1][0] >= MAX_SITES:
        raise TopologyError(f"the lab holds at most {MAX_SITES} sites")
    underlay = ipaddress.ip_network(model.wan.underlay)
    tiers: dict[str, Tier] = {t.id: t for t in model.wan.tiers}
    hub = model.wan.hub

    # Management segment: gateway leg and the management host.
    mseg = model.management_segment()
    mnet = ipaddress.ip_network(mseg.cidr)
    platform_addrs = {p.address for p in model.platforms}
    for p in model.platforms:
        if ipaddress.ip_address(p.address) in mnet:
            raise TopologyError(
                f"platform {p.id} ({p.address}) is in the management segment {mseg.cidr}; "
                "the lab keeps management and platform segments on separate legs"
            )
    gw_mgmt = _free_host(mnet, platform_addrs)
    mhosts = _hosts(mnet)
    mgmt_addr = str(mhosts[9]) if len(mhosts) > 10 else _free_host(mnet, {gw_mgmt})
    if mgmt_addr == gw_mgmt:
        mgmt_addr = _free_host(mnet, {gw_mgmt})

    # Platform segments: one leg from the gateway, every platform address in L-dc.
    seg_nets: dict[str, ipaddress.IPv4Network] = {}
    frontends: list[Frontend] = []
    for p in model.platforms:
        seg = model.segment_by_id[p.segment]
        net = ipaddress.ip_network(seg.cidr)
        if ipaddress.ip_address(p.address) not in net:
            raise TopologyError(f"platform {p.id}: address {p.address} is not in its segment {seg.cidr}")
        seg_nets.setdefault(seg.id, net)
        frontends.append(
            frontend_of(p, net.prefixlen)
        )
    dc_cidrs = tuple(f"{_free_host(n, platform_addrs)}/{n.prefixlen}" for n in seg_nets.values())
    dc_gateway = dc_cidrs[0].split("/")[0] if dc_cidrs else ""

    gateway = Gateway(
        netns=f"{name}-gw",
        machine=f"{name}-gw",
        key="gw",
        hostname="hub",
        wan_if="wan0",
        wan_address=hub.wan_address,
        wan_cidr=f"{hub.wan_address}/{underlay.prefixlen}",
        switch_port=_check_ifname(f"{name}pgw"),
        mgmt_if="mgmt0",
        mgmt_address=gw_mgmt,
        mgmt_cidr=f"{gw_mgmt}/{mnet.prefixlen}",
        dc_if="dc0",
        dc_cidrs=dc_cidrs,
        tunnel_address=hub.tunnel_address,
    )
    if ipaddress.ip_address(hub.wan_address) not in underlay:
        raise TopologyError(f"hub wan_address {hub.wan_address} is not in the underlay {underlay}")
    standby = None
    if model.wan.standby is not None:
        # The standby: its own machine on the switch, and its own legs into the management and
        # data-center namespaces (eth1 there), so that a powered-off hub takes its links down and
        # those namespaces' routes through it with them (ignore_routes_with_linkdown).
        sb = model.wan.standby
        taken = platform_addrs | {gw_mgmt, mgmt_addr} | {c.split("/")[0] for c in dc_cidrs}
        sb_mgmt = _free_host(mnet, taken)
        standby = Gateway(
            netns=f"{name}-gw2", machine=f"{name}-gw2", key="gw2", hostname="hub2", wan_if="wan0",
            wan_address=sb.wan_address, wan_cidr=f"{sb.wan_address}/{underlay.prefixlen}",
            switch_port=_check_ifname(f"{name}pgw2"), mgmt_if="mgmt0", mgmt_address=sb_mgmt,
            mgmt_cidr=f"{sb_mgmt}/{mnet.prefixlen}", dc_if="dc0",
            dc_cidrs=tuple(f"{_free_host(n, taken)}/{n.prefixlen}" for n in seg_nets.values()),
            tunnel_address=sb.tunnel_address,
        )

    hosts: list[SiteHost] = []
    for i, s in chosen:
        if ipaddress.ip_address(s.wan_address) not in underlay:
            raise TopologyError(f"site {s.id}: wan_address {s.wan_address} is not in the underlay {underlay}")
        lan = ipaddress.ip_network(s.lan)
        lh = _hosts(lan)
        if len(lh) < 2:
            raise TopologyError(f"site {s.id}: LAN {s.lan} needs at least two host addresses")
        shape = tiers[s.tier].link if s.tier in tiers else None
        if shape is not None and not (shape.delay_ms or shape.jitter_ms or shape.loss_pct or shape.rate_mbit):
            shape = None
        hosts.append(
            SiteHost(
                index=i,
                site_id=s.id,
                tier=s.tier,
                hostname=s.id,
                netns=f"{name}-s{i}",
                machine=f"{name}-s{i}",
                key=f"s{i}",
                wan_if="wan0",
                wan_address=s.wan_address,
                wan_cidr=f"{s.wan_address}/{underlay.prefixlen}",
                gateway=hub.wan_address,
                switch_port=_check_ifname(f"{name}p{i}"),
                netem=shape,
                lan_if="lan0",
                lan_network=str(lan),
                lan_address=str(lh[0]),
                lan_cidr=f"{lh[0]}/{lan.prefixlen}",
                lan_netns=f"{name}-l{i}",
                lan_client_if="eth0",
                lan_client_address=str(lh[1]),
                lan_client_cidr=f"{lh[1]}/{lan.prefixlen}",
                tunnel_address=s.tunnel_address,
            )
        )
    return Topology(
        lab=name,
        underlay=str(underlay),
        switch=Switch(netns=f"{name}-sw", bridge=_check_ifname(f"{name}br")),
        gateway=gateway,
        mgmt=Mgmt(
            netns=f"{name}-mgmt", ifname="eth0", address=mgmt_addr, cidr=f"{mgmt_addr}/{mnet.prefixlen}",
            gateway=gw_mgmt, segment_cidr=str(mnet), gateway2=standby.mgmt_address if standby else "",
        ),
        dc=Dc(netns=f"{name}-dc", ifname="eth0", gateway=dc_gateway, frontends=tuple(frontends),
              gateway2=standby.dc_cidrs[0].split("/")[0] if standby and standby.dc_cidrs else ""),
        sites=tuple(hosts),
        _by_id={h.site_id: h for h in hosts},
        standby=standby,
    )


def netem_args(shape: LinkShape) -> list[str]:
    """``tc qdisc ... netem`` arguments for a tier's link shape."""
    args = ["netem"]
    if shape.delay_ms or shape.jitter_ms:
        args += ["delay", f"{shape.delay_ms}ms"]
        if shape.jitter_ms:
            args += [f"{shape.jitter_ms}ms"]
    if shape.loss_pct:
        args += ["loss", f"{shape.loss_pct}%"]
    if shape.rate_mbit:
        args += ["rate", f"{shape.rate_mbit}mbit"]
    return args


def scaled_province(model: ProvinceFile, sites: int) -> ProvinceFile:
    """A copy of ``model`` with ``sites`` WAN sites: the file's own, then generated ones.

    For scale tests of the lab and the rollout (200+ sites) with a small province
    file.  Generated sites (``gen-0001``...) cycle through the tiers and parents of
    the real ones, get LANs from 10.64.0.0/10, WAN and tunnel addresses from the
    unused parts of the underlay and tunnel pools, and may reach the platforms of
    the real site they copy.
    """
    real = list(model.wan.sites)

    def with_sites(ss: list[Site]) -> ProvinceFile:
        data = model.model_dump(mode="json")
        data["wan"]["sites"] = [x.model_dump(mode="json") for x in ss]
        return ProvinceFile.model_validate(data)

    if sites <= len(real):
        return with_sites(real[:sites])
    underlay = ipaddress.ip_network(model.wan.underlay)
    tpool = ipaddress.ip_network(model.wan.tunnel_pool)
    used = {s.wan_address for s in real} | {model.wan.hub.wan_address}
    used_t = {s.tunnel_address for s in real} | {model.wan.hub.tunnel_address}
    lans = [ipaddress.ip_network(s.lan) for s in real]
    dc_nets = [ipaddress.ip_network(s.cidr) for s in model.datacenter.segments]

    def addresses(pool, taken):
        # generated units start in the upper half of the pool, away from the file's own
        start = int(pool.network_address) + pool.num_addresses // 2
        for n in range(start, int(pool.broadcast_address)):
            a = ipaddress.ip_address(n)
            if str(a) not in taken and n & 0xFF not in (0, 255):
                yield str(a)

    wan_it = addresses(underlay, used)
    tun_it = addresses(tpool, used_t)
    lan_it = (
        n for n in ipaddress.ip_network("10.64.0.0/10").subnets(new_prefix=24)
        if not any(n.overlaps(x) for x in lans + dc_nets + [underlay, tpool])
    )
    out = list(real)
    k = 0
    while len(out) < sites:
        tmpl = real[k % len(real)]
        k += 1
        out.append(
            Site(
                id=f"gen-{k:04d}",
                name=f"Đơn vị thử nghiệm {k}",
                tier=tmpl.tier,
                parent=tmpl.parent,
                lan=str(next(lan_it)),
                wan_address=next(wan_it),
                tunnel_address=next(tun_it),
                reach=list(tmpl.reach),
            )
        )
    return with_sites(out)
