"""Load and validate a province file, reporting every problem at once.

Each problem names the file, the line, the path inside the file (for example
``wan.sites[12].lan``), what is wrong and how to fix it.  Nothing downstream
(Pulumi, the WAN rollout, the checks) runs on a file that has a problem:
:func:`load_province` raises :class:`ProvinceError` instead of returning a
partial model.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from pydantic import ValidationError

from .model import LEVEL3_ZONES, ProvinceFile, Zone, refused_chars, show


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str
    line: int | None = None

    def render(self, file: str) -> str:
        """One line, whatever the file name, path or message hold (control characters escaped)."""
        where = f"{file}:{self.line}" if self.line else file
        text = f"{where}: {self.path or '(top level)'}: {self.message} -- fix: {self.fix}"
        bad = {i for i, _, _ in refused_chars(text)}
        return "".join(repr(ch)[1:-1] if i in bad else ch for i, ch in enumerate(text)) if bad else text


class ProvinceError(Exception):
    """A province file that does not validate; carries every problem."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        lines = [p.render(file) for p in problems]
        super().__init__(f"{file}: {len(problems)} problem(s)\n" + "\n".join(lines))


# --------------------------------------------------------------------------- YAML


def _fmt_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


MAX_BYTES = 4 * 1024 * 1024
"""Largest province file read (a province of 1,000 sites is well under 1 MiB)."""
MAX_DEPTH = 32
"""Deepest nesting of mappings and lists (a province file needs 6)."""


class YamlRefused(yaml.YAMLError):
    """A YAML construct a province file may not use (aliases, deep nesting)."""

    def __init__(self, message: str, fix: str, mark: yaml.Mark | None):
        super().__init__(message)
        self.message, self.fix, self.problem_mark = message, fix, mark


def _refused(event: Any) -> YamlRefused:
    kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
    return YamlRefused(
        f"YAML {kind}{str(event.anchor)[:40]} is not allowed in a province file (anchors, aliases and '<<' "
        "merges can expand a small file into billions of values)",
        "write the values out in full where they are used",
        event.start_mark,
    )


def _too_deep(event: Any) -> YamlRefused:
    return YamlRefused(f"nesting deeper than {MAX_DEPTH} levels",
                       "a province file needs about 6 levels: check the indentation and brackets",
                       event.start_mark)


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases, and with bounded nesting.

    An alias is a pointer: ten nested levels of ten aliases each ("billion laughs") make a
    1 KiB file a billion values to walk and validate. A province file has no use for them,
    so the composer refuses the first anchor or alias it meets, before anything is built.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _refused(event)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _too_deep(event)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_CLoader = getattr(yaml, "CSafeLoader", None) if getattr(yaml, "__with_libyaml__", False) else None
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


def _compose_c(text: str) -> tuple[yaml.Node | None, Any]:
    """The same as :class:`_Loader`, with libyaml (ten times faster on a province of 700 sites):
    a first pass over the parser's events refuses the first anchor or alias and nesting deeper
    than MAX_DEPTH, at the same place and with the same words; only then is the file composed."""
    assert _CLoader is not None
    loader = _CLoader(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, _NODE_EVENTS):
                if isinstance(event, yaml.AliasEvent) or event.anchor:
                    raise _refused(event)
                if depth + 1 > MAX_DEPTH:
                    raise _too_deep(event)
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    finally:
        loader.dispose()
    return _compose_with(_CLoader, text)


def _compose_py(text: str) -> tuple[yaml.Node | None, Any]:
    return _compose_with(_Loader, text)


def _compose_with(loader_cls: Any, text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree and its data, built by ``loader_cls`` (the C or the Python loader)."""
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _compose(text: str) -> tuple[Any, dict[str, int], list[Problem]]:
    """Parse YAML, returning data, a path -> line map and duplicate-key problems.

    With libyaml (PyYAML's C parser) when the installed PyYAML has it.  A file it refuses or
    cannot read is read again by the pure-Python loader, which says what is wrong: every
    problem (an anchor, too deep a nesting, a syntax error) is reported with the same words
    and line whichever parser the machine has."""
    node = data = None
    done = False
    if _CLoader is not None:
        try:
            node, data = _compose_c(text)
            done = True
        except Exception:  # noqa: BLE001 - the pure-Python loader below says what is wrong
            done = False
    if not done:
        node, data = _compose_py(text)
    lines: dict[str, int] = {}
    problems: list[Problem] = []

    def walk(n: yaml.Node, path: list[Any]) -> None:
        lines.setdefault(_fmt_path(path), n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, v in n.value:
                key = k.value
                if key in seen:
                    problems.append(
                        Problem(
                            _fmt_path([*path, key]),
                            f"key '{key}' appears twice (first on line {seen[key]})",
                            "keep one of them; YAML would silently drop the first",
                            k.start_mark.line + 1,
                        )
                    )
                seen[key] = k.start_mark.line + 1
                walk(v, [*path, key])
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, [*path, i])

    if node is not None:
        walk(node, [])
    return data, lines, problems


# ------------------------------------------------------------------ structure

_FIXES = {
    "extra_forbidden": "remove it or correct its spelling (see stacks/README.md for the allowed keys)",
    "missing": "add this field",
    "string_pattern_mismatch": "use lower-case letters, digits and '-' (ids become host and namespace names)",
    "greater_than_equal": "raise the value to the allowed minimum",
    "less_than_equal": "lower the value to the allowed maximum",
    "literal_error": "use one of the allowed values",
    "enum": "use one of the allowed values",
    "too_short": "add at least one entry",
    "value_error": "write a valid value",
}


def _structural(data: Any) -> list[Problem]:
    try:
        ProvinceFile.model_validate(data)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            kind = err["type"]
            msg = err["msg"]
            if kind == "extra_forbidden":
                msg = f"unknown key '{loc[-1]}'"
            elif kind == "missing":
                msg = f"required field '{loc[-1]}' is missing"
            elif kind == "value_error":
                msg = msg.removeprefix("Value error, ")
            if "input" in err and kind not in ("missing", "extra_forbidden") and not (kind == "dcops" and show(err["input"]) in msg):
                msg += f" (got {show(err['input'])})"
            ctx = err.get("ctx") or {}
            fix = ctx.get("fix") or _FIXES.get(kind, "correct the value")
            bound = next((ctx[k] for k in ("ge", "le", "gt", "lt", "min_length", "max_length") if k in ctx), None)
            if bound is not None and kind != "dcops":
                fix += f" ({bound})"
            if kind == "dcops":
                pass
            elif "network" in msg:
                fix = "write the network address with its prefix, host bits zero, e.g. 10.30.2.0/24"
            elif "IP address" in msg:
                fix = "write a single address, e.g. 10.200.1.7"
            out.append(Problem(_fmt_path(loc), msg, fix))
        return out
    return []


# ------------------------------------------------------------------ semantics


def _items(data: Any, *keys: str) -> Iterator[tuple[int, dict]]:
    cur = data
    for k in keys:
        cur = cur.get(k) if isinstance(cur, dict) else None
    if isinstance(cur, list):
        for i, item in enumerate(cur):
            if isinstance(item, dict):
                yield i, item


def _net(v: Any) -> ipaddress.IPv4Network | None:
    """An IPv4 network, or None (anything else is reported by the model's own check)."""
    try:
        return ipaddress.IPv4Network(v, strict=True) if isinstance(v, str) else None
    except ValueError:
        return None


def _addr(v: Any) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(v) if isinstance(v, str) else None
    except ValueError:
        return None


def _administrators(d: dict) -> list[Problem]:
    """Named administrators: unique names, and no key shared by two of them (an account per person)."""
    P: list[Problem] = []
    admins = list(_items(d, "wan", "administrators"))
    _duplicates(P, [(f"wan.administrators[{i}].name", a.get("name")) for i, a in admins], "administrator name")
    keys = [(f"wan.administrators[{i}].ssh_keys[{k}]", " ".join(str(v).split()[:2]))
            for i, a in admins for k, v in enumerate(a.get("ssh_keys") or []) if isinstance(v, str)]
    _duplicates(P, keys, "SSH key")
    return P


def hubs_of(wan: dict) -> list[tuple[str, dict]]:
    """(path, mapping) of every hub of a raw ``wan`` mapping: ``hubs`` (primary, standby) or ``hub``."""
    if isinstance(wan.get("hubs"), list):
        return [(f"wan.hubs[{i}]", h) for i, h in enumerate(wan["hubs"]) if isinstance(h, dict)]
    return [("wan.hub", wan["hub"])] if isinstance(wan.get("hub"), dict) else []


def _duplicates(problems: list[Problem], entries: list[tuple[str, Any]], what: str) -> set:
    seen: dict[Any, str] = {}
    ids = set()
    for path, value in entries:
        if value is None:
            continue
        if value in seen:
            problems.append(
                Problem(path, f"duplicate {what} '{value}' (also at {seen[value]})", f"give each {what} a unique value")
            )
        else:
            seen[value] = path
        ids.add(value)
    return ids


def _semantic(d: Any) -> list[Problem]:
    if not isinstance(d, dict):
        return [Problem("", "the file is not a mapping", "start from stacks/province-lab.yaml")]
    P: list[Problem] = []

    # ids ----------------------------------------------------------------
    seg_entries = [(f"datacenter.segments[{i}].id", s.get("id")) for i, s in _items(d, "datacenter", "segments")]
    segments = _duplicates(P, seg_entries, "segment id")
    clusters = _duplicates(
        P, [(f"datacenter.clusters[{i}].id", c.get("id")) for i, c in _items(d, "datacenter", "clusters")], "cluster id"
    )
    classes = _duplicates(
        P,
        [(f"datacenter.storage_classes[{i}].name", c.get("name")) for i, c in _items(d, "datacenter", "storage_classes")],
        "storage class",
    )
    platforms = _duplicates(P, [(f"platforms[{i}].id", p.get("id")) for i, p in _items(d, "platforms")], "platform id")
    nationals = _duplicates(
        P, [(f"national_endpoints[{i}].id", n.get("id")) for i, n in _items(d, "national_endpoints")], "national endpoint id"
    )
    tiers = _duplicates(P, [(f"wan.tiers[{i}].id", t.get("id")) for i, t in _items(d, "wan", "tiers")], "tier id")
    sites = _duplicates(P, [(f"wan.sites[{i}].id", s.get("id")) for i, s in _items(d, "wan", "sites")], "site id")
    _duplicates(P, [(f"datacenter.segments[{i}].vlan", s.get("vlan")) for i, s in _items(d, "datacenter", "segments")], "VLAN")
    for ci, c in _items(d, "datacenter", "clusters"):
        _duplicates(P, [(f"datacenter.clusters[{ci}].node_pools[{i}].name", n.get("name")) for i, n in _items(c, "node_pools")], "node pool name")
        for ni, n in _items(c, "node_pools"):
            taints = [(f"datacenter.clusters[{ci}].node_pools[{ni}].taints[{ti}]", (t.get("key"), t.get("effect")))
                      for ti, t in _items(n, "taints") if isinstance(t.get("key"), str) and isinstance(t.get("effect"), str)]
            _duplicates(P, taints, "taint (key, effect)")
    for ni, n in _items(d, "national_endpoints"):
        ports = n.get("ports")
        _duplicates(P, [(f"national_endpoints[{ni}].ports[{i}]", v) for i, v in enumerate(ports if isinstance(ports, list) else [])
                        if isinstance(v, int)], "port")
    if platforms & sites:
        for i, s in _items(d, "wan", "sites"):
            if s.get("id") in platforms:
                P.append(Problem(f"wan.sites[{i}].id", f"site id '{s['id']}' is also a platform id", "rename the site"))

    # references ----------------------------------------------------------
    def ref(path: str, value: Any, known: set, what: str, where: str) -> None:
        if isinstance(value, str) and value not in known:
            hint = ", ".join(sorted(map(str, known))[:12]) or "none defined"
            P.append(Problem(path, f"{what} '{value}' does not exist", f"use one of the ids in {where}: {hint}"))

    for ci, c in _items(d, "datacenter", "clusters"):
        for ni, n in _items(c, "node_pools"):
            ref(f"datacenter.clusters[{ci}].node_pools[{ni}].segment", n.get("segment"), segments, "segment", "datacenter.segments")
    backup = (d.get("datacenter") or {}).get("backup") if isinstance(d.get("datacenter"), dict) else None
    if isinstance(backup, dict):
        ref("datacenter.backup.target_cluster", backup.get("target_cluster"), clusters, "cluster", "datacenter.clusters")
    defaults = [c for _, c in _items(d, "datacenter", "storage_classes") if c.get("default") is True]
    if classes and len(defaults) != 1:
        P.append(
            Problem("datacenter.storage_classes", f"{len(defaults)} storage classes are marked default", "mark exactly one with 'default: true'")
        )

    graph: dict[str, list[str]] = {}
    for pi, p in _items(d, "platforms"):
        base = f"platforms[{pi}]"
        ref(f"{base}.cluster", p.get("cluster"), clusters, "cluster", "datacenter.clusters")
        ref(f"{base}.segment", p.get("segment"), segments, "segment", "datacenter.segments")
        mounts: dict[str, str] = {}
        for vi, v in _items(p, "storage"):
            ref(f"{base}.storage[{vi}].storage_class", v.get("storage_class"), classes, "storage class", "datacenter.storage_classes")
            mount = v.get("mount_path", "/data")
            if mount in mounts:
                P.append(Problem(f"{base}.storage[{vi}].mount_path", f"{mount} is also the mount path of volume '{mounts[mount]}'", "give each volume its own 'mount_path'"))
            mounts.setdefault(mount, v.get("name"))
        cl = next((c for _, c in _items(d, "datacenter", "clusters") if c.get("id") == p.get("cluster")), None)
        if cl is not None and isinstance(p.get("segment"), str) and p["segment"] in segments:
            if not any(n.get("segment") == p["segment"] for _, n in _items(cl, "node_pools")):
                P.append(
                    Problem(
                        f"{base}.segment",
                        f"cluster '{cl.get('id')}' has no node pool in segment '{p['segment']}', so the platform's pods could not be scheduled",
                        f"add a node pool with 'segment: {p['segment']}' to cluster '{cl.get('id')}' or move the platform",
                    )
                )
        deps = p.get("depends_on") or []
        for di, dep in enumerate(deps if isinstance(deps, list) else []):
            ref(f"{base}.depends_on[{di}]", dep, platforms, "platform", "platforms")
            if dep == p.get("id"):
                P.append(Problem(f"{base}.depends_on[{di}]", "a platform cannot depend on itself", "remove this entry"))
        for ni, nat in enumerate(p.get("national") or []):
            ref(f"{base}.national[{ni}]", nat, nationals, "national endpoint", "national_endpoints")
        for ni, nat in enumerate(p.get("national_via_lgsp") or []):
            ref(f"{base}.national_via_lgsp[{ni}]", nat, nationals, "national endpoint", "national_endpoints")
        for xi, x in _items(p, "national_exceptions"):
            ref(f"{base}.national_exceptions[{xi}].endpoint", x.get("endpoint"), nationals, "national endpoint", "national_endpoints")
        if isinstance(p.get("id"), str) and isinstance(deps, list):
            graph[p["id"]] = [x for x in deps if isinstance(x, str) and x in platforms and x != p["id"]]
        slo = p.get("slo")
        if isinstance(slo, dict):
            for key in ("availability", "latency_target"):
                v = slo.get(key)
                if isinstance(v, (int, float)) and not (50.0 <= v < 100.0):
                    P.append(
                        Problem(
                            f"{base}.slo.{key}",
                            f"target {v}% is out of range",
                            "use a percentage at least 50 and below 100 (100% leaves no error budget), e.g. 99.9",
                        )
                    )
        seg = next((x for _, x in _items(d, "datacenter", "segments") if x.get("id") == p.get("segment")), None)
        addr, segnet = _addr(p.get("address")), _net(seg.get("cidr")) if seg else None
        if addr is not None and segnet is not None and (addr not in segnet or addr in (segnet.network_address, segnet.broadcast_address)):
            P.append(Problem(f"{base}.address", f"{addr} is not a host address of its segment {seg.get('id')} ({segnet})", f"pick an address inside {segnet}"))
        ports = [x.get("port") for _, x in _items(p, "ports")]
        _duplicates(P, [(f"{base}.ports[{i}].port", v) for i, v in enumerate(ports)], "port")
        lvl = p.get("security_level")
        prov_lvl = (d.get("province") or {}).get("security_level") if isinstance(d.get("province"), dict) else None
        if isinstance(lvl, int) and isinstance(prov_lvl, int) and lvl > prov_lvl:
            P.append(
                Problem(
                    f"{base}.security_level",
                    f"level {lvl} is above the province's level {prov_lvl}: the data center's zones and controls are built for level {prov_lvl}",
                    f"raise province.security_level to {lvl} or lower this platform's level",
                )
            )

    P += _lgsp_door(d)

    # cycles ---------------------------------------------------------------
    for cycle in _cycles(graph):
        pi = next((i for i, p in _items(d, "platforms") if p.get("id") == cycle[0]), None)
        P.append(
            Problem(
                f"platforms[{pi}].depends_on",
                "dependency cycle: " + " -> ".join(cycle + [cycle[0]]),
                "break the cycle: one of these platforms must not call the other (use LGSP as the bus)",
            )
        )

    # WAN ------------------------------------------------------------------
    for si, s in _items(d, "wan", "sites"):
        base = f"wan.sites[{si}]"
        if s.get("id") in ("gateway", "gateway-standby"):
            P.append(Problem(f"{base}.id", f"'{s.get('id')}' is the inventory name of a hub",
                             "give the site another id (the hubs are 'gateway' and 'gateway-standby')"))
        ref(f"{base}.tier", s.get("tier"), tiers, "tier", "wan.tiers")
        ref(f"{base}.parent", s.get("parent"), sites, "site", "wan.sites")
        if s.get("parent") is not None and s.get("parent") == s.get("id"):
            P.append(Problem(f"{base}.parent", "a site cannot be its own parent", "remove 'parent' or name another site"))
        for ri, r in enumerate(s.get("reach") or []):
            ref(f"{base}.reach[{ri}]", r, platforms, "platform", "platforms")
    P += _administrators(d)
    parent_of = {s.get("id"): s.get("parent") for _, s in _items(d, "wan", "sites") if isinstance(s.get("id"), str)}
    for si, s in _items(d, "wan", "sites"):
        seen, cur = set(), s.get("id")
        while isinstance(cur, str) and cur in parent_of and cur not in seen:
            seen.add(cur)
            cur = parent_of[cur]
        if isinstance(cur, str) and cur in seen and cur == s.get("id"):
            P.append(Problem(f"wan.sites[{si}].parent", "parent chain loops back to this site", "fix the 'parent' links"))

    # address plan ---------------------------------------------------------
    wan = d.get("wan") if isinstance(d.get("wan"), dict) else {}
    ranges: list[tuple[str, Any]] = []
    ranges += [(f"datacenter.segments[{i}].cidr", _net(s.get("cidr"))) for i, s in _items(d, "datacenter", "segments")]
    ranges += [(f"wan.sites[{i}].lan", _net(s.get("lan"))) for i, s in _items(d, "wan", "sites")]
    ranges += [(f"national_endpoints[{i}].cidr", _net(n.get("cidr"))) for i, n in _items(d, "national_endpoints")]
    ranges += [("wan.tunnel_pool", _net(wan.get("tunnel_pool"))), ("wan.underlay", _net(wan.get("underlay")))]
    ranges = [(p, n) for p, n in ranges if n is not None]
    # sort by start so overlap detection is O(n log n) even for large provinces
    ranges.sort(key=lambda r: (r[1].version, int(r[1].network_address), -r[1].prefixlen))
    active: list[tuple[str, Any]] = []
    for path, net in ranges:
        active = [(p, n) for p, n in active if n.version == net.version and int(n.broadcast_address) >= int(net.network_address)]
        for other_path, other in active:
            P.append(
                Problem(
                    path,
                    f"{net} overlaps {other_path} ({other})",
                    "give each segment, site LAN, national endpoint and pool its own range",
                )
            )
        active.append((path, net))

    tunnel_pool = _net(wan.get("tunnel_pool"))
    underlay = _net(wan.get("underlay"))
    tunnel_addrs = [(f"{path}.tunnel_address", h.get("tunnel_address")) for path, h in hubs_of(wan)]
    wan_addrs = [(f"{path}.wan_address", h.get("wan_address")) for path, h in hubs_of(wan)]
    for si, s in _items(d, "wan", "sites"):
        tunnel_addrs.append((f"wan.sites[{si}].tunnel_address", s.get("tunnel_address")))
        wan_addrs.append((f"wan.sites[{si}].wan_address", s.get("wan_address")))
    _duplicates(P, [(f"platforms[{i}].address", p.get("address")) for i, p in _items(d, "platforms")], "platform address")
    _duplicates(P, tunnel_addrs, "tunnel address")
    _duplicates(P, wan_addrs, "WAN address")
    for pool, pool_path, entries in ((tunnel_pool, "wan.tunnel_pool", tunnel_addrs), (underlay, "wan.underlay", wan_addrs)):
        if pool is None:
            continue
        for path, value in entries:
            a = _addr(value)
            if a is not None and a not in pool:
                P.append(Problem(path, f"{a} is outside {pool_path} ({pool})", f"pick an address inside {pool}"))
            elif a is not None and a in (pool.network_address, pool.broadcast_address) and pool.prefixlen < 31:
                P.append(Problem(path, f"{a} is the network or broadcast address of {pool}", "pick a host address"))

    # security level zones -------------------------------------------------
    prov = d.get("province") if isinstance(d.get("province"), dict) else {}
    level = prov.get("security_level")
    levels = [level] + [p.get("security_level") for _, p in _items(d, "platforms")]
    top = max((x for x in levels if isinstance(x, int)), default=None)
    zones = {s.get("zone") for _, s in _items(d, "datacenter", "segments")}
    if isinstance(top, int) and top >= 3:
        needed = [z.value for z in LEVEL3_ZONES]
        if prov.get("has_wireless"):
            needed.append(Zone.wireless.value)
        missing = [z for z in needed if z not in zones]
        if missing:
            P.append(
                Problem(
                    "datacenter.segments",
                    f"security level {top} requires the network zones {', '.join(needed)}; missing: {', '.join(missing)}",
                    "add a segment with 'zone: <name>' for each missing zone (TCVN 11930:2017, level 3 network design)",
                )
            )
    P += _level_requirements(d, top)
    mgmt = [i for i, s in _items(d, "datacenter", "segments") if s.get("zone") == "management"]
    if len(mgmt) > 1:
        P.append(Problem("datacenter.segments", "more than one management segment", "keep one management zone"))
    P += _runnable(d, clusters)
    P += _dr(d)
    return P


# ------------------------------------------------------------------ disaster recovery


def _dr(d: dict) -> list[Problem]:
    """Each platform's DR mode against the DR cluster and the backup schedule (``platforms[i].dr``)."""
    from .model import cron_max_gap_minutes

    P: list[Problem] = []
    clusters = {c.get("id"): c for _, c in _items(d, "datacenter", "clusters") if isinstance(c.get("id"), str)}
    dr_ids = [cid for cid, c in clusters.items() if c.get("role") == "dr"]
    classes = {sc.get("name"): sc for _, sc in _items(d, "datacenter", "storage_classes")}
    dc = d.get("datacenter") if isinstance(d.get("datacenter"), dict) else {}
    backup = dc.get("backup") if isinstance(dc.get("backup"), dict) else {}
    schedule = backup.get("schedule")
    try:
        interval = cron_max_gap_minutes(schedule) if isinstance(schedule, str) else None
    except ValueError:
        interval = None
    for pi, p in _items(d, "platforms"):
        dr = p.get("dr")
        if not isinstance(dr, dict):
            continue
        base = f"platforms[{pi}].dr"
        mode, home, pid = dr.get("mode", "none"), p.get("cluster"), p.get("id")
        rpo = dr.get("rpo_minutes")
        if mode in ("cold", "warm"):
            for key, example in (("rpo_minutes", "15" if mode == "warm" else "1440"), ("rto_minutes", "60")):
                if dr.get(key) is None:
                    P.append(Problem(f"{base}.{key}", f"a {mode} platform needs its recovery objective '{key}' "
                                     "(the recovery plan of a level-3 dossier states RPO and RTO per system)",
                                     f"add '{key}: {example}' (minutes)"))
            target = dr.get("cluster")
            if target is None:
                if len(dr_ids) != 1:
                    P.append(Problem(f"{base}.mode", f"DR mode {mode} needs a DR cluster, and the province has "
                                     f"{len(dr_ids)} clusters with role dr" + (f" ({', '.join(dr_ids)})" if dr_ids else ""),
                                     "name it with 'dr.cluster'" if dr_ids else
                                     "add a cluster with 'role: dr' to datacenter.clusters, or set 'mode: none'"))
                    continue
                target = dr_ids[0]
            where = f"{base}.cluster" if dr.get("cluster") else f"{base}.mode"
            tc = clusters.get(target)
            if tc is None:
                P.append(Problem(f"{base}.cluster", f"cluster '{target}' does not exist",
                                 f"use one of the ids in datacenter.clusters: {', '.join(sorted(clusters))}"))
                continue
            if tc.get("role") != "dr":
                P.append(Problem(where, f"cluster '{target}' has role {tc.get('role')}, not dr: a standby belongs on "
                                 "the DR site", "name a cluster with 'role: dr'"))
            if target == home:
                P.append(Problem(where, f"'{pid}' runs on cluster '{home}' itself: it cannot stand by for itself",
                                 "set 'mode: none' (its objectives are then met by backups) or move the platform to the "
                                 "primary cluster"))
                continue
            segment = dr.get("segment") or p.get("segment")
            segs = {s.get("id"): s for _, s in _items(d, "datacenter", "segments")}
            if dr.get("segment") and segment not in segs:
                P.append(Problem(f"{base}.segment", f"segment '{segment}' does not exist",
                                 f"use one of the ids in datacenter.segments: {', '.join(sorted(map(str, segs)))}"))
            addr, net = _addr(dr.get("address")), _net((segs.get(segment) or {}).get("cidr"))
            if addr and net and addr not in net:
                P.append(Problem(f"{base}.address", f"{addr} is not an address of segment '{segment}' ({net}), where "
                                 f"'{pid}' runs on the DR site", f"pick an address inside {net}"))
            taken = {q.get("address"): f"platforms[{qi}].address" for qi, q in _items(d, "platforms")}
            taken |= {(q.get("dr") or {}).get("address"): f"platforms[{qi}].dr.address" for qi, q in _items(d, "platforms")
                      if qi < pi and isinstance(q.get("dr"), dict)}
            if addr and str(addr) in taken:
                P.append(Problem(f"{base}.address", f"{addr} is already used by {taken[str(addr)]}",
                                 "give the platform an address of its own at the DR site (or leave 'address' out to "
                                 "keep its own, announced from the DR site)"))
            if isinstance(segment, str) and not any(n.get("segment") == segment for _, n in _items(tc, "node_pools")):
                P.append(Problem(where, f"DR cluster '{target}' has no node pool in segment '{segment}', so '{pid}' "
                                 "could not be scheduled there after a failover",
                                 f"add a node pool with 'segment: {segment}' to cluster '{target}', or set 'mode: none'"))
            for vi, v in _items(p, "storage"):
                sc = classes.get(v.get("storage_class"))
                on = sc.get("clusters") if isinstance(sc, dict) else None
                if isinstance(on, dict) and target not in on:
                    P.append(Problem(where, f"volume '{v.get('name')}' is on storage class '{v.get('storage_class')}', "
                                     f"which is not on DR cluster '{target}' (it is on: {', '.join(map(str, on))}): "
                                     "its data would have nowhere to be " + ("replicated" if mode == "warm" else "restored"),
                                     f"add '{target}' under the class's 'clusters' (its own Ceph or NFS there), or use "
                                     f"a class of '{target}' for the volume"))
            hc = clusters.get(home) or {}
            if isinstance(hc.get("exposure"), dict) and not isinstance(tc.get("exposure"), dict):
                P.append(Problem(where, f"'{pid}' is reached at {p.get('address')} through cluster '{home}''s exposure, "
                                 f"but DR cluster '{target}' has no 'exposure': after a failover nobody could reach it",
                                 f"add 'exposure' to cluster '{target}' (its address pool must be able to announce "
                                 f"{p.get('address')})"))
            if mode == "cold" and backup.get("target_cluster") == home:
                P.append(Problem(where, f"the backups are kept on cluster '{home}', the one a cold standby replaces: "
                                 "they are lost with it", "keep the backups on the DR site ('datacenter.backup."
                                 "target_cluster') or make the platform warm"))
        if mode in ("cold", "none") and isinstance(rpo, int) and interval and rpo < interval:
            P.append(Problem(f"{base}.rpo_minutes",
                             f"RPO {rpo} min is shorter than the backup interval: '{schedule}' leaves up to {interval} "
                             f"min between backups, so a loss just before a backup loses {interval} min of data"
                             + (" (a cold standby restores the latest backup)" if mode == "cold" else ""),
                             f"raise 'rpo_minutes' to at least {interval}, back up more often (datacenter.backup.schedule, "
                             "e.g. '0 * * * *' for hourly), or make the platform warm (replicated data)"))
    return P


# ------------------------------------------------------------------ LGSP, the door to national systems


def _lgsp_door(d: dict) -> list[Problem]:
    """Only LGSP links to national endpoints; the other platforms use them through LGSP
    (``national_via_lgsp``), or directly by a declared exception with its reason."""
    from .model import LGSP_KIND

    P: list[Problem] = []
    plats = list(_items(d, "platforms"))
    lgsp = {p.get("id"): (i, p) for i, p in plats if p.get("kind") == LGSP_KIND and isinstance(p.get("id"), str)}

    def links(p: dict) -> list:
        v = p.get("national")
        return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []

    for pi, p in plats:
        base, pid = f"platforms[{pi}]", p.get("id")
        via = p.get("national_via_lgsp") if isinstance(p.get("national_via_lgsp"), list) else []
        excs = [(xi, x) for xi, x in _items(p, "national_exceptions")]
        if p.get("kind") == LGSP_KIND:
            if via:
                P.append(Problem(f"{base}.national_via_lgsp", f"'{pid}' is LGSP: it links to national systems itself",
                                 "list these endpoints in its 'national' and remove 'national_via_lgsp'"))
            for xi, _ in excs:
                P.append(Problem(f"{base}.national_exceptions[{xi}]", f"'{pid}' is LGSP: its direct links need no exception",
                                 "list the endpoint in its 'national' and remove this exception"))
            continue
        excepted = {x.get("endpoint") for _, x in excs}
        for ni, nat in enumerate(links(p)):
            approved = " (it is declared under 'national_exceptions': list it there only)" if nat in excepted else ""
            P.append(Problem(
                f"{base}.national[{ni}]",
                f"'{pid}' is not LGSP (kind: {LGSP_KIND}) and links directly to national endpoint '{nat}'{approved}: "
                "the province reaches national systems through LGSP",
                f"move '{nat}' to 'national_via_lgsp' (LGSP lists it in its 'national'), or, if this direct link was "
                f"approved, declare it under 'national_exceptions' as {{endpoint: {nat}, reason: <why, and who approved it>}}"))
        seen: dict[str, str] = {}
        for ni, nat in enumerate(via):
            where = f"{base}.national_via_lgsp[{ni}]"
            if isinstance(nat, str) and nat in seen:
                P.append(Problem(where, f"national endpoint '{nat}' is listed twice (also at {seen[nat]})", "keep one"))
            if isinstance(nat, str):
                seen.setdefault(nat, where)
        for xi, x in excs:
            nat, where = x.get("endpoint"), f"{base}.national_exceptions[{xi}].endpoint"
            if isinstance(nat, str) and nat in seen:
                also = "through LGSP" if "national_via_lgsp" in seen[nat] else "as an exception"
                P.append(Problem(where, f"national endpoint '{nat}' is also used {also} (at {seen[nat]})",
                                 "keep one: through LGSP (national_via_lgsp) or directly by this exception"))
            if isinstance(nat, str):
                seen.setdefault(nat, where)
        if not via:
            continue
        deps = p.get("depends_on") if isinstance(p.get("depends_on"), list) else []
        doors = [x for x in deps if x in lgsp]
        if not lgsp:
            P.append(Problem(f"{base}.national_via_lgsp", f"'{pid}' uses national systems through LGSP, but no platform "
                             f"is LGSP (kind: {LGSP_KIND})",
                             f"add the LGSP platform (kind: {LGSP_KIND}) with these endpoints in its 'national'"))
            continue
        if not doors:
            names = ", ".join(sorted(lgsp))
            P.append(Problem(f"{base}.national_via_lgsp", f"'{pid}' uses national systems through LGSP but does not call "
                             f"LGSP ({names}): its NetworkPolicies would not let it reach LGSP",
                             f"add '{sorted(lgsp)[0]}' to its 'depends_on'"))
            continue
        reached = {n for g in doors for n in links(lgsp[g][1])}
        for ni, nat in enumerate(via):
            if isinstance(nat, str) and nat not in reached:
                gi = lgsp[doors[0]][0]
                P.append(Problem(f"{base}.national_via_lgsp[{ni}]",
                                 f"LGSP ('{', '.join(doors)}') does not connect to national endpoint '{nat}'",
                                 f"add '{nat}' to the 'national' of LGSP (platforms[{gi}].national), or remove it here"))
    return P


# ------------------------------------------------------------------ what the security level asks of the file


def _level_requirements(d: dict, top: Any) -> list[Problem]:
    """Central log retention, the hub's authoritative time source and the provincial registry,
    as the province's highest security level asks (TCVN 11930:2017 clause (L+4).2)."""
    from .model import LOG_RETENTION_MIN_DAYS

    P: list[Problem] = []
    if not isinstance(top, int):
        return P
    dc = d.get("datacenter") if isinstance(d.get("datacenter"), dict) else {}
    days = dc.get("log_retention_days", 90)
    need = LOG_RETENTION_MIN_DAYS.get(top)
    if need and isinstance(days, int) and not isinstance(days, bool) and days < need:
        P.append(Problem("datacenter.log_retention_days",
                         f"central logs are kept {days} days; security level {top} asks for at least {need} days",
                         f"set datacenter.log_retention_days to {need} or more"))
    if top < 3:
        return P
    wan = d.get("wan") if isinstance(d.get("wan"), dict) else {}
    hubs = [(f"wan.hubs[{i}]", h) for i, h in _items(wan, "hubs")] or (
        [("wan.hub", wan["hub"])] if isinstance(wan.get("hub"), dict) else [])
    for i, (where, hub) in enumerate(hubs):
        if hub.get("ntp_server") != hub.get("tunnel_address") or hub.get("time_upstream"):
            continue
        who = "the standby hub" if i else "the hub"
        P.append(Problem(f"{where}.time_upstream",
                         f"{who} serves the WAN's time (ntp_server is its tunnel address) but follows no upstream "
                         f"source: at security level {top} time must come from an authoritative source, not a free-running clock"
                         + (" (the sites follow it while the primary hub is away)" if i else ""),
                         f"add {where}.time_upstream: [{{address: <the national time source or the data center's GPS/NTP "
                         "appliance>, name: <what it is>}]"))
    reg = dc.get("registry")
    if reg is None:
        P.append(Problem("datacenter.registry",
                         f"no provincial image registry is declared: at security level {top} the platforms' images "
                         "must come from the province's own registry (scanned and approved there)",
                         "add datacenter.registry: {host: registry.<province>.gov.vn}"))
        return P
    host = reg.get("host") if isinstance(reg, dict) else None
    if not isinstance(host, str):
        return P  # the model reports it
    excepted = {x.get("image") for _, x in _items(reg, "exceptions")}
    for i, p in _items(d, "platforms"):
        img = p.get("image")
        if not isinstance(img, str) or img in excepted:
            continue
        if "/" not in img or img.split("/", 1)[0] != host:
            P.append(Problem(f"platforms[{i}].image",
                             f"'{img}' does not come from the provincial registry {host}",
                             f"push it to {host} and name it {host}/<path>:<tag>, or declare it under "
                             f"datacenter.registry.exceptions as {{image: {img}, reason: <why, and who approved it>}}"))
    used = {p.get("image") for _, p in _items(d, "platforms")}
    for xi, x in _items(reg, "exceptions"):
        if isinstance(x.get("image"), str) and x["image"] not in used:
            P.append(Problem(f"datacenter.registry.exceptions[{xi}].image",
                             f"'{x['image']}' is the image of no platform", "remove the exception"))
    return P


# ------------------------------------------------------------------ what a real cluster can run

_BACKEND_PARAMS = {
    "ceph-rbd": ({"ceph_cluster_id", "pool"}, {"secret_namespace", "provisioner_secret", "node_secret"}),
    "cephfs": ({"ceph_cluster_id", "fs_name"}, {"pool", "secret_namespace", "provisioner_secret", "node_secret"}),
    "nfs": ({"server", "share"}, {"mount_options"}),
    "local-path": (set(), set()),
}
_BACKEND_EXAMPLE = {
    "ceph-rbd": "{ceph_cluster_id: <the Ceph fsid in ceph-csi's config>, pool: <RBD pool>}",
    "cephfs": "{ceph_cluster_id: <the Ceph fsid in ceph-csi's config>, fs_name: <CephFS name>}",
    "nfs": "{server: <NFS server>, share: <export path>}",
    "local-path": "{}",
}


def _runnable(d: dict, clusters: set) -> list[Problem]:
    """Storage, exposure and availability rules: what a real cluster could not run."""
    from .model import RWX_BACKENDS

    P: list[Problem] = []
    classes: dict[str, dict] = {}
    backend_of_storage: dict[tuple[str, str], tuple[str, str]] = {}  # (kind, identity) -> (cluster, path)
    roles = {c.get("id"): c.get("role") for _, c in _items(d, "datacenter", "clusters")}
    for i, sc in _items(d, "datacenter", "storage_classes"):
        base = f"datacenter.storage_classes[{i}]"
        classes.setdefault(sc.get("name"), sc)
        backend = sc.get("backend")
        if backend == "san-iscsi":
            P.append(Problem(f"{base}.backend", "an iSCSI CSI driver does not provision volumes dynamically: every "
                             "PersistentVolumeClaim of this class would stay Pending",
                             "use ceph-rbd or cephfs (Ceph) or nfs for volumes the platforms claim; keep SAN LUNs "
                             "for what is provisioned by hand, outside the province file"))
            continue
        per_cluster = sc.get("clusters")
        if not isinstance(per_cluster, dict) or backend not in _BACKEND_PARAMS:
            continue
        need, may = _BACKEND_PARAMS[backend]
        for cid, params in per_cluster.items():
            where = f"{base}.clusters.{cid}"
            if isinstance(cid, str) and cid not in clusters:
                P.append(Problem(where, f"cluster '{cid}' does not exist",
                                 f"use one of the ids in datacenter.clusters: {', '.join(sorted(map(str, clusters)))}"))
            if not isinstance(params, dict):
                continue
            given = {k for k, v in params.items() if v not in (None, [], {})}
            for key in sorted(need - given):
                P.append(Problem(f"{where}.{key}", f"the {backend} driver needs '{key}' to provision a volume",
                                 f"give the class's parameters on cluster '{cid}': {_BACKEND_EXAMPLE[backend]}"))
            for key in sorted(given - need - may):
                P.append(Problem(f"{where}.{key}", f"'{key}' is not a parameter of the {backend} driver "
                                 + ("(csi-driver-nfs refuses unknown parameters)" if backend == "nfs" else ""),
                                 f"remove it; {backend} takes {', '.join(sorted(need | may)) or 'no parameters'}"))
            ident = ("ceph", str(params.get("ceph_cluster_id"))) if backend in ("ceph-rbd", "cephfs") else \
                ("nfs", str(params.get("server"))) if backend == "nfs" else None
            if ident and "None" not in ident:
                other = backend_of_storage.get(ident)
                if other and other[0] != cid and {roles.get(other[0]), roles.get(cid)} == {"primary", "dr"}:
                    P.append(Problem(where, f"clusters '{other[0]}' and '{cid}' (primary and DR) use the same storage "
                                     f"{ident[0]} {ident[1]} (also at {other[1]}): one disaster takes both",
                                     "give the DR cluster its own Ceph cluster or NFS server"))
                backend_of_storage.setdefault(ident, (cid, where))

    nodes: dict[tuple[str, str], int] = {}
    for _, c in _items(d, "datacenter", "clusters"):
        for _, n in _items(c, "node_pools"):
            key = (c.get("id"), n.get("segment"))
            nodes[key] = nodes.get(key, 0) + (n.get("count") if isinstance(n.get("count"), int) else 0)
    exposed = {c.get("id") for _, c in _items(d, "datacenter", "clusters") if isinstance(c.get("exposure"), dict)}
    reached = {r for _, s in _items(d, "wan", "sites") for r in (s.get("reach") or []) if isinstance(r, str)}
    https = False
    for pi, p in _items(d, "platforms"):
        base = f"platforms[{pi}]"
        replicas = p.get("replicas") if isinstance(p.get("replicas"), int) else 1
        cid = p.get("cluster")
        for vi, v in _items(p, "storage"):
            sc = classes.get(v.get("storage_class"))
            if not sc:
                continue
            on = sc.get("clusters")
            if isinstance(on, dict) and isinstance(cid, str) and cid in clusters and cid not in on:
                P.append(Problem(f"{base}.storage[{vi}].storage_class",
                                 f"storage class '{sc.get('name')}' is not on cluster '{cid}' (it is on: "
                                 f"{', '.join(map(str, on)) or 'none'}), so the claim would stay Pending",
                                 f"add '{cid}' under the class's 'clusters' with its backend's parameters, or use a class of '{cid}'"))
            rwx = [str(c.get("name")) for c in classes.values() if c.get("backend") in RWX_BACKENDS
                   and isinstance(c.get("clusters"), dict) and cid in c["clusters"]]
            if replicas > 1 and not v.get("per_replica") and sc.get("backend") not in RWX_BACKENDS:
                P.append(Problem(f"{base}.storage[{vi}]",
                                 f"volume '{v.get('name')}' is on '{sc.get('name')}' ({sc.get('backend')}, ReadWriteOnce) and "
                                 f"shared by {replicas} replicas: a ReadWriteOnce volume attaches to one node, so pods on "
                                 "other nodes fail with a multi-attach error (and a rolling update deadlocks)",
                                 "set 'per_replica: true' (a StatefulSet gives each replica its own volume), or put it on a "
                                 "ReadWriteMany class (cephfs, nfs)" + (f": {', '.join(rwx)}" if rwx else "")
                                 + ", or run one replica"))
        segment = p.get("segment")
        if replicas > 1 and isinstance(cid, str) and (cid, segment) in nodes and nodes[(cid, segment)] < 2:
            P.append(Problem(f"{base}.replicas",
                             f"{replicas} replicas but cluster '{cid}' has one node in segment '{segment}': a drain or a node "
                             "failure stops every replica at once",
                             f"add a node to a pool of segment '{segment}' on cluster '{cid}' (count >= 2), or run one replica"))
        names = [x.get("name") for _, x in _items(p, "ports")]
        health = p.get("health") if isinstance(p.get("health"), dict) else {}
        if isinstance(health.get("port"), str) and health["port"] not in names:
            P.append(Problem(f"{base}.health.port", f"port '{health['port']}' is not a port of the platform",
                             f"name one of its ports: {', '.join(map(str, names))}"))
        for xi, x in _items(p, "ports"):
            name, proto, app = str(x.get("name")), x.get("protocol", "TCP"), x.get("app_protocol")
            if proto == "UDP" and app in ("http", "https"):
                P.append(Problem(f"{base}.ports[{xi}].app_protocol", f"{app} runs over TCP, the port is UDP",
                                 "remove 'app_protocol' or make the port TCP"))
            if name.startswith("https") and app in ("http", "tcp"):
                P.append(Problem(f"{base}.ports[{xi}].app_protocol", f"port '{name}' is named for TLS but declared {app}",
                                 "rename the port (e.g. http) or set app_protocol: https"))
            https = https or app == "https" or (app is None and proto == "TCP" and name.startswith("https"))
        if p.get("id") in reached and isinstance(cid, str) and cid in clusters and cid not in exposed:
            P.append(Problem(f"{base}.cluster",
                             f"WAN sites may reach '{p.get('id')}' (their 'reach'), but cluster '{cid}' has no 'exposure': "
                             f"its Service is inside the cluster only, so {p.get('address')} answers nothing",
                             f"add 'exposure' to cluster '{cid}' (loadbalancer with an address pool, or gateway with its "
                             "class and the controller's namespace)"))
    for ci, c in _items(d, "datacenter", "clusters"):
        version = c.get("kubernetes_version")
        if isinstance(version, str) and version.startswith("1.") and version[2:].isdigit() and int(version[2:]) < 30:
            P.append(Problem(f"datacenter.clusters[{ci}].kubernetes_version",
                             f"Kubernetes {version} has no ValidatingAdmissionPolicy (GA in 1.30), which dcops uses to refuse "
                             "Services with externalIPs (the operators may create Services)",
                             "upgrade the cluster to 1.30 or later and write its version here"))
        e = c.get("exposure")
        if isinstance(e, dict) and e.get("method") == "gateway":
            for key in ("class_name", "controller_namespace"):
                if not e.get(key):
                    P.append(Problem(f"datacenter.clusters[{ci}].exposure.{key}", f"the gateway method needs '{key}'",
                                     "name the GatewayClass of the controller the province runs (class_name) and the "
                                     "namespace of its proxies (controller_namespace)"))
    dc = d.get("datacenter") if isinstance(d.get("datacenter"), dict) else {}
    if https and not isinstance(dc.get("certificates"), dict):
        P.append(Problem("datacenter", "platforms serve TLS (https ports) but the province names no CA",
                         "add 'certificates: {ca_file: <path of the province's CA bundle on the probing host>}' so probes "
                         "verify the platforms' certificates"))
    return P


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each elementary cycle once (Tarjan SCCs; the report shows one path per SCC)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, []):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                # walk the cycle in graph order starting from the smallest id
                start = min(comp)
                path, cur, members = [start], start, set(comp)
                while True:
                    nxt = next(x for x in graph[cur] if x in members)
                    if nxt == start or nxt in path:
                        break
                    path.append(nxt)
                    cur = nxt
                out.append(path)

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


# ------------------------------------------------------------------ entry points


def check_text(text: str) -> tuple[ProvinceFile | None, list[Problem]]:
    """Validate YAML text: the model if valid, and every problem found."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return None, [_too_big(size)]
    try:
        data, lines, problems = _compose(text)
    except YamlRefused as e:
        mark = e.problem_mark
        return None, [Problem("", e.message, e.fix, mark.line + 1 if mark else None)]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return None, [
            Problem("", f"not valid YAML: {getattr(e, 'problem', e)}", "fix the YAML syntax", mark.line + 1 if mark else None)
        ]
    except (ValueError, OverflowError) as e:  # e.g. an integer of more than 4300 digits
        return None, [Problem("", f"a value cannot be read: {str(e)[:160]}", "write plain numbers and strings")]
    problems = problems + _structural(data) + _semantic(data)
    # de-duplicate (a bad CIDR may be reported structurally and skipped semantically, but be safe)
    uniq: dict[tuple[str, str], Problem] = {}
    for p in problems:
        line = p.line or _line_for(lines, p.path)
        uniq.setdefault((p.path, p.message), Problem(p.path, p.message, p.fix, line))
    problems = sorted(uniq.values(), key=lambda p: (p.line or 0, p.path))
    if problems:
        return None, problems
    return ProvinceFile.model_validate(data), []


def _too_big(size: int) -> Problem:
    return Problem("", f"the file is {size:,} bytes, more than the {MAX_BYTES // (1024 * 1024)} MiB a province file may have",
                   "check that this is a province file; split generated content or remove what does not belong")


def _line_for(lines: dict[str, int], path: str) -> int | None:
    cur = path
    while True:
        if cur in lines:
            return lines[cur]
        if not cur:
            return None
        cut = max(cur.rfind("."), cur.rfind("["))
        cur = cur[: max(cut, 0)]


def load_province(path: str | Path) -> ProvinceFile:
    """Load a province file or raise :class:`ProvinceError` with every problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:  # never more than the limit into memory
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ProvinceError(str(path), [_too_big(path.stat().st_size)])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ProvinceError(str(path), [Problem("", "file not found", "check the path (province files live in stacks/)")])
    except OSError as e:
        raise ProvinceError(str(path), [Problem("", f"cannot be read: {e.strerror}", "check the path and its permissions")])
    except UnicodeDecodeError as e:
        raise ProvinceError(str(path), [Problem("", f"not UTF-8: {e}", "save the file as UTF-8")])
    model, problems = check_text(text)
    if problems:
        raise ProvinceError(str(path), problems)
    assert model is not None
    return model
