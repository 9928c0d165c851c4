"""Typed model of a province file (``stacks/province-*.yaml``).

The province file is the one source of truth: the Pulumi program, the WAN
renderer, the checks and the reports all read these classes.  Structure is
enforced here (unknown keys, types, ranges); rules that span the file
(duplicate ids, overlapping CIDRs, references, cycles, security-level zones)
live in :mod:`infra.validate`, which reports every problem at once.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import unicodedata
from datetime import date as _date
from enum import Enum
from functools import cached_property
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Zone(str, Enum):
    """Network zones named by TCVN 11930:2017 for level 3 and above."""

    internal_users = "internal_users"
    edge = "edge"
    internal_servers = "internal_servers"
    dmz = "dmz"
    database = "database"
    management = "management"
    wireless = "wireless"


LEVEL3_ZONES = (
    Zone.internal_users,
    Zone.edge,
    Zone.internal_servers,
    Zone.dmz,
    Zone.database,
    Zone.management,
)

AUDIT_STANDARDS = ("TCVN 11930:2017", "TCVN 14423:2025")
"""TCVN 14423:2025 is "An ninh mạng – Yêu cầu đối với hệ thống thông tin quan trọng" (Ministry of
Science and Technology, 29/05/2025), the successor of TCVN 11930:2017, issued in 2025 (a later year in its number is a wrong name)."""


# ------------------------------------------------------------------ problems with a fix


def bad(message: str, fix: str) -> PydanticCustomError:
    """A validation error whose message and fix :mod:`infra.validate` reports as they are."""
    return PydanticCustomError("dcops", "{message}", {"message": message, "fix": fix})


# ------------------------------------------------------------------ ids and free text

Id = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")]
"""Ids are DNS labels (they become namespace and host names, nft/rsyslog/Prometheus values).

The grammar is a subset of every config language an id lands in: a Kubernetes DNS label
(63), a host name, a file name, a Prometheus label value, a JSON string without escapes."""

SecurityLevel = Annotated[int, Field(ge=1, le=5)]

NAME_MAX = 150
"""Longest name (Vietnamese official names run to about 100 characters)."""
TEXT_MAX = 300
"""Longest free-text description (for example ``datacenter.backup.target``)."""

# Unicode categories no name needs and each of which can change a generated file:
# Cc control (newline, CR, tab, NUL, ESC, U+0085 NEL), Cf format (bidi overrides and
# isolates, zero-width characters, BOM), Zl/Zp line and paragraph separators (line breaks
# to YAML and to Python's splitlines), Cs surrogates, Co private use, Cn unassigned.
_REFUSED_CATEGORIES = {"Cc": "control", "Cf": "invisible format", "Zl": "line separator", "Zp": "paragraph separator",
                       "Cs": "surrogate", "Co": "private-use", "Cn": "unassigned"}


def refused_chars(value: str) -> list[tuple[int, str, str]]:
    """(position, character, why) of every character a text field may not hold."""
    out = []
    for i, ch in enumerate(value):
        cat = unicodedata.category(ch)
        if cat in _REFUSED_CATEGORIES:
            out.append((i, ch, _REFUSED_CATEGORIES[cat]))
    return out


def show(value: object, limit: int = 80) -> str:
    """A value for a message: its repr (control characters escaped), cut to ``limit``."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + f"...' ({len(str(value))} characters)"


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X}" + (f" {unicodedata.name(ch)}" if unicodedata.name(ch, "") else "")


def _text(max_len: int, what: str):
    def check(value: str) -> str:
        bad_chars = refused_chars(value)
        if bad_chars:
            shown = ", ".join(f"{_char_name(ch)} ({why}) at {i}" for i, ch, why in bad_chars[:5])
            more = f" and {len(bad_chars) - 5} more" if len(bad_chars) > 5 else ""
            raise bad(
                f"{what} contains characters it may not hold: {shown}{more}",
                "write it on one line with visible characters only: no newline, carriage return, tab, NUL, "
                "or invisible (bidi, zero-width) characters; they could change the generated config files",
            )
        if len(value) > max_len:
            raise bad(f"{what} is {len(value)} characters long, the maximum is {max_len}",
                      f"shorten it to at most {max_len} characters")
        if value != value.strip():
            raise bad(f"{what} starts or ends with a space", "remove the leading and trailing spaces")
        return value

    return check


Name = Annotated[str, Field(min_length=1), AfterValidator(_text(NAME_MAX, "the name"))]
"""A name in Vietnamese or English: one line of visible characters, at most ``NAME_MAX``."""
Text = Annotated[str, Field(min_length=1), AfterValidator(_text(TEXT_MAX, "the text"))]
"""A free-text description: one line of visible characters, at most ``TEXT_MAX``."""

_K8S_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def _qualified_name(value: str) -> str:
    """Kubernetes' qualified name (label and taint keys): ``[prefix/]name``."""
    fix = ("use a Kubernetes qualified name: an optional DNS prefix and '/', then 1-63 letters, digits, "
           "'-', '_' or '.', starting and ending with a letter or digit, e.g. dcops.gov.vn/dmz")
    if not value:
        raise bad("the key is empty (an empty taint key would render a toleration of every taint)", fix)
    prefix, _, name = value.rpartition("/")
    if "/" in value and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise bad(f"{show(value)} has an invalid prefix (a lower-case DNS name of at most 253 characters)", fix)
    if not _K8S_NAME.fullmatch(name):
        raise bad(f"{show(value)} is not a Kubernetes qualified name", fix)
    return value


def _label_value(value: str) -> str:
    if not _LABEL_VALUE.fullmatch(value):
        raise bad(
            f"{show(value)} is not a Kubernetes label value",
            "use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or leave it empty)",
        )
    return value


QualifiedName = Annotated[str, AfterValidator(_qualified_name)]
LabelValue = Annotated[str, AfterValidator(_label_value)]

_IMAGE = re.compile(
    r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?/)?"  # registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # :tag
    r"(?:@sha256:[a-f0-9]{64})?$"  # @digest
)


def _image(value: str) -> str:
    if len(value) > 255 or not _IMAGE.fullmatch(value):
        raise bad(f"{show(value)} is not a container image reference",
                  "write registry/path/name:tag (lower case; optionally @sha256:<digest>), e.g. registry.dcops.lab/dvc/portal:2.4.1")
    return value


Image = Annotated[str, AfterValidator(_image)]

_CRON_FIELD = r"(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?(,(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?)*"
_CRON = re.compile(rf"^{_CRON_FIELD}( {_CRON_FIELD}){{4}}$")


def _cron(value: str) -> str:
    if not _CRON.fullmatch(value):
        raise bad(f"{show(value)} is not a cron expression", "write five numeric fields: minute hour day month weekday, e.g. '30 1 * * *'")
    return value


Cron = Annotated[str, AfterValidator(_cron)]


def _cron_values(field: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for item in field.split(","):
        rng, _, step = item.partition("/")
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a, b = (int(x) for x in rng.split("-"))
        else:
            a = int(rng)
            b = hi if step else a
        out.update(v for v in range(a, b + 1, int(step) if step else 1) if lo <= v <= hi)
    return out


def cron_max_gap_minutes(expr: str) -> int | None:
    """The longest time between two consecutive runs of a cron expression (a year of runs), in
    minutes; None when it never runs. Day of month and weekday, both restricted, are either-or
    (cron's rule); weekday 7 is Sunday."""
    from datetime import date, timedelta

    minute, hour, dom, month, dow = expr.split()
    mins, hours = sorted(_cron_values(minute, 0, 59)), sorted(_cron_values(hour, 0, 23))
    doms, months = _cron_values(dom, 1, 31), _cron_values(month, 1, 12)
    dows = {0 if v == 7 else v for v in _cron_values(dow, 0, 7)}
    if not (mins and hours):
        return None
    runs: list[int] = []
    start = date(2027, 1, 1)  # a year that is not leap, then its wrap into the next
    for i in range(366 + 31):
        d = start + timedelta(days=i)
        wd = (d.weekday() + 1) % 7  # cron: 0 Sunday
        in_dom, in_dow = d.day in doms, wd in dows
        if dom != "*" and dow != "*":
            day_ok = in_dom or in_dow
        else:
            day_ok = in_dom and in_dow
        if d.month in months and day_ok:
            runs.extend(i * 1440 + h * 60 + m for h in hours for m in mins)
    if len(runs) < 2:
        return None
    return max(b - a for a, b in zip(runs, runs[1:]))


def _port_name(value: str) -> str:
    """An IANA service name, which Kubernetes requires of port names."""
    if not (re.fullmatch(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$", value) and re.search(r"[a-z]", value) and "--" not in value):
        raise bad(f"{show(value)} is not a port name",
                  "use 1-15 lower-case letters, digits and single '-' (at least one letter, no '-' at either end), e.g. https")
    return value


PortName = Annotated[str, AfterValidator(_port_name)]

# ------------------------------------------------------------------ mount paths

TMP_MOUNT = "/tmp"
"""The writable scratch directory the Kubernetes renderer mounts into every platform pod."""
RENDERER_MOUNTS = (TMP_MOUNT,)
"""Mounts :mod:`infra.render.k8s` adds to every platform container."""
RUNTIME_MOUNTS = ("/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
                  "/var/run/secrets/kubernetes.io", "/run/secrets/kubernetes.io")
"""What the kubelet and the container runtime mount themselves."""
MOUNT_MAX = 200


def _mount_path(value: str) -> str:
    fix = "write an absolute, normalised path of its own, e.g. /var/lib/<platform> or /data"
    if not value.startswith("/"):
        raise bad(f"mount path {show(value)} is not absolute", fix)
    if len(value) > MOUNT_MAX:
        raise bad(f"mount path is {len(value)} characters long, the maximum is {MOUNT_MAX}", fix)
    if not re.fullmatch(r"^/[A-Za-z0-9._/-]*$", value):
        raise bad(f"mount path {show(value)} may hold only letters, digits, '.', '_', '-' and '/'", fix)
    if ".." in value.split("/") or "." in value.split("/") or "//" in value or posixpath.normpath(value) != value or value == "/":
        raise bad(f"mount path {show(value)} is not normalised (no '.', '..', '//', trailing '/', nor '/' itself)", fix)
    for fixed in RENDERER_MOUNTS + RUNTIME_MOUNTS:
        if value == fixed or value.startswith(fixed + "/"):
            owner = "dcops mounts its scratch volume there" if fixed in RENDERER_MOUNTS else "the container runtime mounts it"
            raise bad(f"mount path {show(value)} is {'' if value == fixed else 'inside '}{fixed}: {owner}", fix)
    return value


MountPath = Annotated[str, AfterValidator(_mount_path)]

# ------------------------------------------------------------------ addresses

_IPV6_LATER = "IPv6 is not rendered yet: the WAN and firewall renderers emit IPv4 rules only"


def _special(a: ipaddress.IPv4Address) -> str | None:
    for attr, why in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"), ("is_multicast", "multicast"),
                      ("is_link_local", "link-local"), ("is_reserved", "reserved")):
        if getattr(a, attr):
            return why
    return None


def _network(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise ValueError(f"not a valid network ({e})") from None
    if net.version != 4:
        raise bad(f"{value} is an IPv6 network; {_IPV6_LATER}", "write an IPv4 network, e.g. 10.30.2.0/24")
    if str(net) != value:
        raise bad(f"{value} is not written as address/prefix-length", f"write it as {net}")
    why = _special(net.network_address)
    if why or net.prefixlen == 0:
        raise bad(f"{value} is a {why or 'default-route'} range, not a network of the province",
                  "use a private or public unicast range, e.g. 10.30.2.0/24")
    return value


def _address(value: str) -> str:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError as e:
        raise ValueError(f"not a valid IP address ({e})") from None
    if addr.version != 4:
        raise bad(f"{value} is an IPv6 address; {_IPV6_LATER}", "write an IPv4 address, e.g. 10.200.1.7")
    if str(addr) != value:
        raise bad(f"{value} is not written in its usual form", f"write it as {addr}")
    why = _special(addr)
    if why:
        raise bad(f"{value} is a {why} address", "write a unicast address of the province, e.g. 10.200.1.7")
    return value


def _province_code(value: str) -> str:
    if not re.fullmatch(r"[A-Z0-9-]{2,12}", value):
        raise bad(f"{show(value)} is not a province code", "use 2-12 upper-case letters, digits or '-', e.g. THA")
    return value


def _k8s_version(value: str) -> str:
    if not re.fullmatch(r"1\.[0-9]{1,3}", value):
        raise bad(f"{show(value)} is not a Kubernetes minor version", "write it quoted, e.g. \"1.34\"")
    return value


class Province(Strict):
    code: Annotated[str, AfterValidator(_province_code)]
    name: Name = Field(description="Vietnamese name, diacritics kept")
    name_en: Name | None = None
    security_level: SecurityLevel
    audit_standard: Literal["TCVN 11930:2017", "TCVN 14423:2025"] = "TCVN 11930:2017"
    has_wireless: bool = False
    targets: "ProvinceTargets" = Field(default_factory=lambda: ProvinceTargets())


    @field_validator("audit_standard", mode="before")
    @classmethod
    def _standard_name(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().startswith("TCVN 14423") and v.strip() != "TCVN 14423:2025":
            raise bad(f"{show(v)} is not the standard's name",
                      "write TCVN 14423:2025 (An ninh mạng – Yêu cầu đối với hệ thống thông tin quan trọng, issued 29/05/2025)")
        return v


class ProvinceTargets(Strict):
    """The province's own goals, set against results in the report."""

    sites_connected_pct: float = Field(100.0, ge=0, le=100)
    sites_compliant_pct: float = Field(100.0, ge=0, le=100)
    sla_min_coverage_pct: float = Field(90.0, gt=0, le=100, description="an SLA is judged only when its window was monitored at least this much; below it is 'insufficient data'")


class Segment(Strict):
    id: Id
    name: Name
    zone: Zone
    cidr: str
    vlan: int = Field(ge=1, le=4094)

    _v_cidr = field_validator("cidr")(_network)


class Taint(Strict):
    key: QualifiedName
    value: LabelValue = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(Strict):
    name: Id
    count: int = Field(ge=1, le=1000)
    cpu: int = Field(ge=1, le=512, description="cores per node")
    memory_gib: int = Field(ge=1, le=4096)
    segment: Id
    labels: dict[QualifiedName, LabelValue] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)


class Exposure(Strict):
    """How the platforms of a cluster are reached at their ``address`` from outside the cluster.

    ``loadbalancer``: each platform's Service is of type LoadBalancer and takes its address from the
    address pool the province runs (MetalLB's ``IPAddressPool``), ``externalTrafficPolicy: Local``
    keeping the client's address so the NetworkPolicies' ipBlock rules see the WAN sites; TLS ends in
    the platform (its certificate in the Secret ``<platform>-tls``). ``gateway``: a Gateway API
    Gateway per platform (class ``class_name``, its address from ``address_pool``), listeners
    terminating TLS with ``<platform>-tls``, an HTTPRoute to the Service; the controller's proxies
    (``controller_namespace``, ``controller_pods``) are what the NetworkPolicies admit."""

    method: Literal["loadbalancer", "gateway"]
    address_pool: Id = Field(description="the load balancer's address pool (MetalLB IPAddressPool)")
    class_name: Id | None = Field(None, description="GatewayClass of the controller the province runs (gateway)")
    controller_namespace: Id | None = Field(None, description="namespace of the gateway controller's proxies (gateway)")
    controller_pods: dict[QualifiedName, LabelValue] = Field(default_factory=dict, description="labels of its proxy pods")


class Cluster(Strict):
    id: Id
    name: Name
    role: Literal["primary", "dr"]
    kubernetes_version: Annotated[str, AfterValidator(_k8s_version)] = "1.34"
    node_pools: list[NodePool] = Field(min_length=1)
    exposure: Exposure | None = Field(None, description="how its platforms are reached at their address (none: inside the cluster only)")


_CEPH_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_HOST = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
_EXPORT = r"^/[A-Za-z0-9._/-]{0,200}$"
_MOUNT_OPTION = r"^[a-z0-9_]{1,32}(=[A-Za-z0-9._:/-]{1,64})?$"

STORAGE_BACKENDS = ("ceph-rbd", "cephfs", "nfs", "local-path", "san-iscsi")
"""Backends a class may name (``san-iscsi`` only to be refused with its fix: no dynamic provisioning)."""
RWX_BACKENDS = ("cephfs", "nfs")
"""Backends whose volumes many nodes mount at once (ReadWriteMany); the others are ReadWriteOnce."""


class ClassOnCluster(Strict):
    """A storage class's backend as one cluster sees it: the driver's StorageClass parameters.

    ceph-rbd: ``ceph_cluster_id`` and ``pool``; cephfs: ``ceph_cluster_id`` and ``fs_name`` (``pool``
    optional: a data pool); both name the ceph-csi Secrets in ``secret_namespace``. nfs: ``server``
    and ``share`` (csi-driver-nfs accepts nothing else), ``mount_options``. local-path: nothing."""

    ceph_cluster_id: Annotated[str, Field(pattern=_CEPH_ID)] | None = Field(
        None, description="ceph-csi clusterID: the Ceph cluster's fsid as ceph-csi's config names it")
    pool: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    fs_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    secret_namespace: Id | None = Field(None, description="namespace of the ceph-csi Secrets (default: ceph-csi-rbd / ceph-csi-cephfs)")
    provisioner_secret: Id | None = Field(None, description="ceph-csi provisioner (and expansion) Secret (default csi-<rbd|cephfs>-provisioner)")
    node_secret: Id | None = Field(None, description="ceph-csi node-stage Secret (default csi-<rbd|cephfs>-node)")
    server: Annotated[str, Field(pattern=_HOST, max_length=253)] | None = Field(None, description="NFS server: host name or IPv4 address")
    share: Annotated[str, Field(pattern=_EXPORT)] | None = Field(None, description="NFS export path, e.g. /export/k8s")
    mount_options: list[Annotated[str, Field(pattern=_MOUNT_OPTION)]] = Field(default_factory=list, max_length=16)


class StorageClass(Strict):
    name: Id
    backend: Literal["local-path", "ceph-rbd", "cephfs", "nfs", "san-iscsi"]
    replication: int = Field(ge=1, le=5, description="copies the backend keeps (the Ceph pool's size); descriptive")
    reclaim_policy: Literal["Retain", "Delete"]
    default: bool = False
    clusters: dict[Id, ClassOnCluster] = Field(
        min_length=1, description="cluster id -> the backend's parameters there; the class exists on these clusters only")

    @property
    def access_mode(self) -> str:
        return "ReadWriteMany" if self.backend in RWX_BACKENDS else "ReadWriteOnce"


class Certificates(Strict):
    """The province's PKI as the platforms and the probers use it. Each platform's certificate and
    key are the Secret ``<platform>-tls`` in its namespace (made by the province's PKI or
    cert-manager, never in this repository); ``ca_file`` is where the probers (blackbox_exporter)
    read the CA bundle that signed them."""

    ca_file: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]{1,200}$")] = Field(
        description="absolute path of the province's CA bundle on the probing host")


class BackupPolicy(Strict):
    schedule: Cron = Field(description="cron expression")
    retention_days: int = Field(ge=1, le=36500)
    target: Text = Field(description="where backups go")
    target_cluster: Id | None = Field(None, description="cluster that holds the copies")
    separate_infrastructure: bool
    restore_test_interval_days: int = Field(ge=1, le=3650)
    encrypted: bool = True


class DataCenter(Strict):
    name: Name
    segments: list[Segment] = Field(min_length=1)
    clusters: list[Cluster] = Field(min_length=1)
    storage_classes: list[StorageClass] = Field(min_length=1)
    certificates: "Certificates | None" = None
    backup: BackupPolicy
    log_retention_days: int = Field(90, ge=1, le=36500, description="lands in logrotate's rotate/maxage; at least "
                                    "LOG_RETENTION_MIN_DAYS[level] (level 3: 90 days)")
    registry: "Registry | None" = Field(None, description="the provincial image registry: every platform image comes from it")


LOG_RETENTION_MIN_DAYS = {2: 30, 3: 90, 4: 180, 5: 180}
"""Central log retention each security level asks for (level 2: 1 month, level 3: 3 months, level 4:
6 months, as summarised publicly; level 5 is taken as level 4's, not confirmed)."""

_REGISTRY_HOST = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$"


class RegistryException(Strict):
    """An image allowed from outside the provincial registry, with why."""

    image: Image = Field(description="the exact image reference, as the platform names it")
    reason: Text = Field(description="why it cannot come from the provincial registry (Vietnamese)")
    approved_by: Name | None = Field(None, description="who approved it, e.g. the decision's number")


class Registry(Strict):
    """The provincial image registry: images are scanned and approved there, the clusters pull from it."""

    host: Annotated[str, Field(pattern=_REGISTRY_HOST, max_length=253)] = Field(
        description="registry host[:port], e.g. registry.thanhhoa.gov.vn")
    exceptions: list[RegistryException] = Field(default_factory=list, max_length=64)

    def allows(self, image: str) -> bool:
        """Does ``image`` come from this registry, or is it a declared exception?"""
        return image.split("/", 1)[0] == self.host and "/" in image or any(x.image == image for x in self.exceptions)


class Port(Strict):
    name: PortName
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"
    app_protocol: Literal["http", "https", "tcp"] | None = Field(
        None, description="what the port speaks; default from its name: https* -> https, http* -> http, else tcp")

    @property
    def scheme(self) -> str:
        """``https`` (TLS), ``http`` or ``tcp``."""
        if self.app_protocol:
            return self.app_protocol
        if self.protocol == "TCP" and self.name.startswith("https"):
            return "https"
        if self.protocol == "TCP" and self.name.startswith("http"):
            return "http"
        return "tcp"


class Volume(Strict):
    name: Id
    size_gib: int = Field(ge=1, le=1048576)
    storage_class: Id
    mount_path: MountPath = "/data"
    per_replica: bool = Field(False, description="each replica gets its own volume (a StatefulSet's volumeClaimTemplate); "
                                                 "false: one volume shared by every replica (ReadWriteMany class when replicas > 1)")


class Health(Strict):
    """Where the platform says it is alive and ready (liveness, readiness and startup probes)."""

    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]{0,200}$")] = Field(
        "/healthz", description="ready to serve (startup and readiness probes)")
    liveness_path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]{0,200}$")] | None = Field(
        None, description="alive (liveness probe; default: the port answers), never failing for a dependency")
    port: PortName | None = Field(None, description="port name (default: the first port)")
    startup_seconds: int = Field(120, ge=10, le=3600, description="how long the platform may take to start")


class Resources(Strict):
    cpu_millicores: int = Field(ge=10, le=512000)
    memory_mib: int = Field(ge=16, le=4194304)


class SLO(Strict):
    availability: float = Field(description="percent, for example 99.9")
    latency_ms: int = Field(ge=1, le=600000, description="threshold for the latency SLI")
    latency_target: float = Field(99.0, description="percent of requests under latency_ms")
    window_days: int = Field(30, ge=1, le=365)


class Recovery(Strict):
    """A platform's disaster recovery: its objectives and how the DR cluster stands by for it.

    ``none``: no standby (the platform is restored in place from backups). ``cold``: the DR
    cluster holds only what a restore needs (namespace, NetworkPolicies, RBAC, quota, limits);
    on failover the objects and data come back from the latest backup, so up to the backup
    interval of data is lost (``rpo_minutes`` may not be shorter). ``warm``: the platform's
    objects are on the DR cluster, scaled to 0, its volumes' data replicated by the storage
    (for example Ceph RBD mirroring); on failover it only scales up. ``dcops dr failover``
    moves it; docs/runbook-dr.md is the procedure."""

    mode: Literal["none", "cold", "warm"] = "none"
    cluster: Id | None = Field(None, description="the DR cluster (default: the province's one cluster with role dr)")
    rpo_minutes: int | None = Field(None, ge=1, le=525600, description="data that may be lost, in minutes")
    rto_minutes: int | None = Field(None, ge=1, le=525600, description="time until service is back, in minutes")
    segment: Id | None = Field(None, description="the DR site's segment it runs in (default: its own segment, "
                                                 "stretched to the DR site)")
    address: str | None = Field(None, description="its address at the DR site (default: its own address, announced "
                                                  "from the DR site); the WAN sites may reach both, the DNS name moves")

    _v_address = field_validator("address")(lambda v: v if v is None else _address(v))


class Platform(Strict):
    id: Id
    name: Name
    name_en: Name
    kind: Id = Field(description="portal, one-stop, e-office, lgsp, ioc, lris, ...")
    cluster: Id
    segment: Id
    replicas: int = Field(ge=1, le=100)
    address: str = Field(description="service address of the platform's front end, inside its segment")
    image: Image
    resources: Resources
    ports: list[Port] = Field(min_length=1)
    storage: list[Volume] = Field(default_factory=list)
    health: Health = Field(default_factory=lambda: Health())
    hostname: Annotated[str, Field(pattern=_HOST, max_length=253)] | None = Field(
        None, description="DNS name of the front end (TLS certificate, Gateway listener)")
    depends_on: list[Id] = Field(default_factory=list)
    national: list[Id] = Field(default_factory=list, description=(
        "national endpoints it connects to directly: LGSP's own links (kind lgsp); any other platform's "
        "direct link is refused unless declared in national_exceptions"))
    national_via_lgsp: list[Id] = Field(default_factory=list, description=(
        "national systems it uses through LGSP (it calls LGSP, which must list them in its 'national')"))
    national_exceptions: list["NationalException"] = Field(default_factory=list, max_length=64, description=(
        "approved direct links of a platform that is not LGSP, each with its reason"))
    slo: SLO
    security_level: SecurityLevel
    dr: Recovery = Field(default_factory=lambda: Recovery(), description="recovery objectives and DR mode")

    _v_address = field_validator("address")(_address)

    @property
    def namespace(self) -> str:
        return self.id

    @property
    def per_replica_storage(self) -> bool:
        """A StatefulSet (each replica its own volumes) rather than a Deployment."""
        return any(v.per_replica for v in self.storage)

    def health_port(self) -> Port:
        return next((x for x in self.ports if x.name == self.health.port), self.ports[0])

    @property
    def is_lgsp(self) -> bool:
        """LGSP, the province's one door to the national systems."""
        return self.kind == LGSP_KIND


LGSP_KIND = "lgsp"
"""The platform kind of LGSP: only it links to national endpoints (others through it, or by an exception)."""


class NationalException(Strict):
    """A direct link from a platform other than LGSP to a national endpoint, approved and explained."""

    endpoint: Id = Field(description="national endpoint id")
    reason: Text = Field(description="why the link cannot go through LGSP (Vietnamese)")
    reason_en: Text | None = Field(None, description="the reason in English")
    approved_by: Name | None = Field(None, description="who approved it, e.g. the decision's number")


class NationalEndpoint(Strict):
    id: Id
    name: Name
    name_en: Name
    cidr: str
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(min_length=1, max_length=64)

    _v_cidr = field_validator("cidr")(_network)


class LinkShape(Strict):
    """netem settings the lab applies to a tier's links."""

    delay_ms: int = Field(0, ge=0, le=2000)
    jitter_ms: int = Field(0, ge=0, le=1000)
    loss_pct: float = Field(0.0, ge=0, le=50)
    rate_mbit: int | None = Field(None, ge=1)


class Tier(Strict):
    id: Id
    name: Name
    name_en: Name
    link: LinkShape = Field(default_factory=LinkShape)


class Hub(Strict):
    name: Name
    wan_address: str
    tunnel_address: str
    listen_port: int = Field(51820, ge=1, le=65535)
    ntp_server: str
    log_server: str
    time_upstream: list["TimeSource"] = Field(default_factory=list, max_length=8, description=(
        "where the hub takes its time when it serves the WAN's (ntp_server = tunnel_address): the national "
        "time source or the data center's GPS/NTP appliance; required at level 3"))

    _v_addr = field_validator("wan_address", "tunnel_address", "ntp_server", "log_server")(_address)

    @property
    def serves_time(self) -> bool:
        return self.ntp_server == self.tunnel_address


class TimeSource(Strict):
    """An authoritative time source the hub follows."""

    address: Annotated[str, Field(pattern=_HOST, max_length=253)] = Field(description="IPv4 address or host name")
    name: Name = Field(description="what it is, e.g. Nguồn thời gian chuẩn quốc gia, or the GPS appliance")


class Site(Strict):
    id: Id
    name: Name
    tier: Id
    parent: Id | None = None
    lan: str
    wan_address: str
    tunnel_address: str
    reach: list[Id] = Field(default_factory=list, description="platform ids")

    _v_lan = field_validator("lan")(_network)
    _v_addr = field_validator("wan_address", "tunnel_address")(_address)


# ------------------------------------------------------------------ administrators (level 3: named accounts, MFA)

_POSIX_USER = re.compile(r"^[a-z][a-z0-9_-]{0,30}[a-z0-9]$")
RESERVED_USERS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
    "backup", "list", "irc", "gnats", "nobody", "messagebus", "sshd", "prometheus", "admin", "sudo", "adm",
    "operator", "staff", "users", "dcops", "dcops-audit", "dcops-admins",
})
"""Accounts of the base system and of dcops itself (the rollout's ``dcops``, the checks' ``dcops-audit``,
the administrators' group ``dcops-admins``): an administrator may not take one of these names."""
SSH_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa",
                 "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
SSH_RSA_MIN_BITS = 3072


def _posix_user(value: str) -> str:
    if not _POSIX_USER.fullmatch(value):
        raise bad(f"{show(value)} is not a POSIX user name",
                  "2 to 32 characters: lower-case letters, digits, '-' and '_', starting with a letter and not "
                  "ending with '-' or '_' (e.g. nguyenvana)")
    if value in RESERVED_USERS or value.startswith(("systemd-", "_")):
        raise bad(f"{show(value)} is the name of a system or dcops account", "pick the administrator's own name, e.g. nguyenvana")
    return value


def _ssh_public_key(value: str) -> str:
    import base64
    import binascii
    import struct

    bad_chars = refused_chars(value)
    parts = value.split(" ")
    fix = ("one OpenSSH public key line: TYPE BASE64 [COMMENT] (the content of id_ed25519.pub), with no options "
           f"before it; types: {', '.join(SSH_KEY_TYPES)}")
    if bad_chars or len(value) > 16384 or len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise bad(f"{show(value, 60)} is not an SSH public key", fix)
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (n,) = struct.unpack(">I", blob[:4])
        kind = blob[4:4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise bad(f"the key data of {show(value, 60)} is not base64 of an SSH key", fix) from None
    if kind != parts[0]:
        raise bad(f"the key says it is {parts[0]} but its data is {show(kind, 40)}", fix)
    if kind == "ssh-rsa":
        off, fields = 4 + n, []
        while off < len(blob) and len(fields) < 2:
            (m,) = struct.unpack(">I", blob[off:off + 4])
            fields.append(blob[off + 4:off + 4 + m])
            off += 4 + m
        bits = int.from_bytes(fields[1], "big").bit_length() if len(fields) == 2 else 0
        if bits < SSH_RSA_MIN_BITS:
            raise bad(f"the RSA key {show(value, 60)} has {bits} bits", f"use an Ed25519 key, or RSA of at least {SSH_RSA_MIN_BITS} bits")
    if len(parts) > 2 and not re.fullmatch(r"[A-Za-z0-9@._+:=-]{1,100}", " ".join(parts[2:]).replace(" ", "_")):
        raise bad(f"the comment of {show(value, 60)} holds characters an authorized_keys line must not carry",
                  "keep the comment to letters, digits and @._+:=- (e.g. nguyenvana@laptop)")
    return value


SshPublicKey = Annotated[str, AfterValidator(_ssh_public_key)]


class Administrator(Strict):
    """A named administrator of the WAN endpoints: one account per person, SSH keys plus a second
    factor, sudo that asks for it (never NOPASSWD)."""

    name: Annotated[str, AfterValidator(_posix_user)] = Field(description="the account's POSIX user name")
    full_name: Name = Field(description="the person, as the dossier names them")
    ssh_keys: list[SshPublicKey] = Field(min_length=1, max_length=8)
    mfa: Literal["totp", "fido"] = Field("totp", description=(
        "second factor: totp (key + a TOTP code, libpam-google-authenticator) or fido (FIDO security keys: "
        "every key is an sk- key, whose touch is the second factor)"))

    @model_validator(mode="after")
    def _fido_keys(self) -> "Administrator":
        if self.mfa == "fido":
            plain = [i for i, k in enumerate(self.ssh_keys) if not k.startswith("sk-")]
            if plain:
                raise bad(f"mfa is fido but ssh_keys[{plain[0]}] is not a security-key (sk-) key",
                          "use sk-ssh-ed25519@openssh.com keys (ssh-keygen -t ed25519-sk), or set mfa: totp")
        return self


class Wan(Strict):
    underlay: str = Field(description="pool of the units' WAN link addresses")
    tunnel_pool: str
    hub: Hub | None = Field(None, exclude=True, description="a single gateway: the same as hubs: [hub]")
    hubs: list[Hub] | None = Field(None, min_length=1, max_length=2, description=(
        "the center's WAN gateways: the primary first, then the standby; every site has a tunnel to each "
        "and its traffic moves to the standby while the primary does not answer"))
    tiers: list[Tier] = Field(min_length=1)
    sites: list[Site] = Field(min_length=1)
    administrators: list[Administrator] = Field(default_factory=list, max_length=200, description=(
        "named administrator accounts on every endpoint (required at level 3)"))
    admin_idle_timeout_s: int = Field(900, ge=60, le=3600, description=(
        "an administrator's SSH session with no traffic for this long is closed (sshd ChannelTimeout, "
        "UnusedConnectionTimeout); level 3 asks for idle timeouts"))

    _v_pools = field_validator("underlay", "tunnel_pool")(_network)

    @model_validator(mode="after")
    def _one_hub_form(self) -> "Wan":
        """``hub`` (one gateway) or ``hubs`` (primary, standby); afterwards both are set:
        ``hub`` is the primary everywhere, ``hubs`` every gateway (a dump writes ``hubs`` only)."""
        if self.hubs is None and self.hub is None:
            raise ValueError("no hub: give 'hubs: [<primary>, <standby>]' (or 'hub: {...}' for a single gateway)")
        if self.hubs is not None and self.hub is not None and self.hub != self.hubs[0]:
            raise ValueError("both 'hub' and 'hubs' are given: keep 'hubs' (the primary first) and remove 'hub'")
        if self.hubs is None:
            object.__setattr__(self, "hubs", [self.hub])
        if self.hub is None:
            object.__setattr__(self, "hub", self.hubs[0])
        return self

    @property
    def standby(self) -> "Hub | None":
        """The standby gateway, when the province declares two."""
        return self.hubs[1] if self.hubs and len(self.hubs) > 1 else None


# ------------------------------------------------------------------ the filed report (optional)


class Signatory(Strict):
    """Who signs a block of the report: the position, and the person when known."""

    role: Name = Field(description="position, e.g. Giám đốc Trung tâm Chuyển đổi số")
    name: Name | None = None


class LevelDecision(Strict):
    """The decision that approved an information system's security level (quyết định phê duyệt cấp độ)."""

    system: Name = Field(description="the information system as the decision names it")
    level: SecurityLevel
    number: Name = Field(description="the decision's number, e.g. 1234/QĐ-UBND")
    date: _date
    issued_by: Name | None = None


class Dossier(Strict):
    """What a filed report carries besides the checks: where and by whom it is signed, the
    unit that runs the center, and the security-level decisions of the systems."""

    place: Name | None = Field(None, description="where the report is signed, e.g. Thanh Hóa")
    operator: Name | None = Field(None, description="the unit that runs the data center and the WAN")
    prepared_by: Signatory | None = None
    checked_by: Signatory | None = None
    approved_by: Signatory | None = None
    level_decisions: list[LevelDecision] = Field(default_factory=list, max_length=200)


class ProvinceFile(Strict):
    """A whole province file."""

    province: Province
    datacenter: DataCenter
    national_endpoints: list[NationalEndpoint] = Field(default_factory=list)
    platforms: list[Platform] = Field(min_length=1)
    wan: Wan
    dossier: Dossier = Field(default_factory=lambda: Dossier())

    # Lookups used everywhere. cached_property works on frozen models.
    @cached_property
    def platform_by_id(self) -> dict[str, Platform]:
        return {p.id: p for p in self.platforms}

    @cached_property
    def site_by_id(self) -> dict[str, Site]:
        return {s.id: s for s in self.wan.sites}

    @cached_property
    def segment_by_id(self) -> dict[str, Segment]:
        return {s.id: s for s in self.datacenter.segments}

    @cached_property
    def cluster_by_id(self) -> dict[str, Cluster]:
        return {c.id: c for c in self.datacenter.clusters}

    @cached_property
    def national_by_id(self) -> dict[str, NationalEndpoint]:
        return {n.id: n for n in self.national_endpoints}

    def direct_national(self, p: Platform) -> list[tuple[NationalEndpoint, "NationalException | None"]]:
        """The national endpoints ``p`` may reach itself: LGSP's ``national``, another platform's
        declared exceptions (with the exception); nothing else."""
        if p.is_lgsp:
            return [(self.national_by_id[n], None) for n in p.national]
        return [(self.national_by_id[x.endpoint], x) for x in p.national_exceptions]

    def national_exceptions(self) -> list[tuple[Platform, "NationalException"]]:
        """Every declared direct link that bypasses LGSP, for the report."""
        return [(p, x) for p in self.platforms for x in p.national_exceptions]

    def management_segment(self) -> Segment:
        return next(s for s in self.datacenter.segments if s.zone == Zone.management)

    def platforms_on(self, cluster_id: str) -> list[Platform]:
        return [p for p in self.platforms if p.cluster == cluster_id]

    def dependents_of(self, platform_id: str) -> list[Platform]:
        """Platforms that call ``platform_id`` (ingress sources)."""
        return [p for p in self.platforms if platform_id in p.depends_on]

    def sites_reaching(self, platform_id: str) -> list[Site]:
        return [s for s in self.wan.sites if platform_id in s.reach]

    def default_storage_class(self) -> StorageClass:
        return next(c for c in self.datacenter.storage_classes if c.default)

    @cached_property
    def storage_class_by_name(self) -> dict[str, StorageClass]:
        return {c.name: c for c in self.datacenter.storage_classes}

    def storage_classes_on(self, cluster_id: str) -> list[StorageClass]:
        return [c for c in self.datacenter.storage_classes if cluster_id in c.clusters]

    def placed(self, placement: dict[str, str] | None) -> "ProvinceFile":
        """The province with each platform of ``placement`` (platform id -> cluster id) running on that
        cluster: where a failover moved it (``dcops dr failover`` records it). Without one, itself."""
        moved = {pid: c for pid, c in (placement or {}).items() if pid in self.platform_by_id
                 and self.platform_by_id[pid].cluster != c}
        if not moved:
            return self
        def move(p: Platform) -> Platform:
            update: dict = {"cluster": moved[p.id]}
            if moved[p.id] == self.dr_cluster_of(p.id):  # at the DR site: its segment and address there
                update |= {k: v for k, v in (("segment", p.dr.segment), ("address", p.dr.address)) if v}
            return p.model_copy(update=update)

        platforms = [move(p) if p.id in moved else p for p in self.platforms]
        out = self.model_copy(update={"platforms": platforms})
        for name in [k for k, v in type(self).__dict__.items() if isinstance(v, cached_property)]:
            out.__dict__.pop(name, None)  # lookups cached on the original describe the original
        return out

    def dr_cluster_of(self, platform_id: str) -> str | None:
        """The cluster that stands by for a platform (None: DR mode none)."""
        p = self.platform_by_id[platform_id]
        if p.dr.mode == "none":
            return None
        if p.dr.cluster:
            return p.dr.cluster
        return next((c.id for c in self.datacenter.clusters if c.role == "dr"), None)


Province.model_rebuild()
DataCenter.model_rebuild()
Hub.model_rebuild()
Platform.model_rebuild()
