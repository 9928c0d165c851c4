"""Typed model of a province file (``stacks/province-*.yaml``).

The province file is the one source of truth: the Pulumi program, the WAN
renderer, the checks and the reports all read these classes.  Structure is
enforced here (unknown keys, types, ranges); rules that span the file
(duplicate ids, overlapping CIDRs, references, cycles, security-level zones)
live in :mod:`infra.validate`, which reports every problem at once.
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Id = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")]
"""Ids are DNS labels (they become namespace and host names)."""

SecurityLevel = Annotated[int, Field(ge=1, le=5)]


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

AUDIT_STANDARDS = ("TCVN 11930:2017", "TCVN 14423:2026")


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise ValueError(f"not a valid network ({e})") from None
    return value


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError as e:
        raise ValueError(f"not a valid IP address ({e})") from None
    return value


class Province(Strict):
    code: Annotated[str, Field(pattern=r"^[A-Z0-9-]{2,12}$")]
    name: str = Field(min_length=1, description="Vietnamese name, diacritics kept")
    name_en: str | None = None
    security_level: SecurityLevel
    audit_standard: Literal["TCVN 11930:2017", "TCVN 14423:2026"] = "TCVN 11930:2017"
    has_wireless: bool = False
    targets: "ProvinceTargets" = Field(default_factory=lambda: ProvinceTargets())


class ProvinceTargets(Strict):
    """The province's own goals, set against results in the report."""

    sites_connected_pct: float = Field(100.0, ge=0, le=100)
    sites_compliant_pct: float = Field(100.0, ge=0, le=100)


class Segment(Strict):
    id: Id
    name: str
    zone: Zone
    cidr: str
    vlan: int = Field(ge=1, le=4094)

    _v_cidr = field_validator("cidr")(_network)


class Taint(Strict):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(Strict):
    name: Id
    count: int = Field(ge=1, le=1000)
    cpu: int = Field(ge=1, le=512, description="cores per node")
    memory_gib: int = Field(ge=1, le=4096)
    segment: Id
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)


class Cluster(Strict):
    id: Id
    name: str
    role: Literal["primary", "dr"]
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.\d+$")] = "1.34"
    node_pools: list[NodePool] = Field(min_length=1)


class StorageClass(Strict):
    name: Id
    backend: Literal["local-path", "ceph-rbd", "nfs", "san-iscsi"]
    replication: int = Field(ge=1, le=5)
    reclaim_policy: Literal["Retain", "Delete"]
    default: bool = False


class BackupPolicy(Strict):
    schedule: str = Field(description="cron expression")
    retention_days: int = Field(ge=1)
    target: str = Field(description="where backups go")
    target_cluster: Id | None = Field(None, description="cluster that holds the copies")
    separate_infrastructure: bool
    restore_test_interval_days: int = Field(ge=1)
    encrypted: bool = True


class DataCenter(Strict):
    name: str
    segments: list[Segment] = Field(min_length=1)
    clusters: list[Cluster] = Field(min_length=1)
    storage_classes: list[StorageClass] = Field(min_length=1)
    backup: BackupPolicy
    log_retention_days: int = Field(90, ge=1)


class Port(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,15}$")]
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"


class Volume(Strict):
    name: Id
    size_gib: int = Field(ge=1)
    storage_class: Id
    mount_path: str = "/data"


class Resources(Strict):
    cpu_millicores: int = Field(ge=10)
    memory_mib: int = Field(ge=16)


class SLO(Strict):
    availability: float = Field(description="percent, for example 99.9")
    latency_ms: int = Field(ge=1, description="threshold for the latency SLI")
    latency_target: float = Field(99.0, description="percent of requests under latency_ms")
    window_days: int = Field(30, ge=1, le=365)


class Platform(Strict):
    id: Id
    name: str
    name_en: str
    kind: str = Field(description="portal, one-stop, e-office, lgsp, ioc, lris, ...")
    cluster: Id
    segment: Id
    replicas: int = Field(ge=1, le=100)
    address: str = Field(description="service address of the platform's front end, inside its segment")
    image: str
    resources: Resources
    ports: list[Port] = Field(min_length=1)
    storage: list[Volume] = Field(default_factory=list)
    depends_on: list[Id] = Field(default_factory=list)
    national: list[Id] = Field(default_factory=list)
    slo: SLO
    security_level: SecurityLevel

    _v_address = field_validator("address")(_address)

    @property
    def namespace(self) -> str:
        return self.id


class NationalEndpoint(Strict):
    id: Id
    name: str
    name_en: str
    cidr: str
    ports: list[int] = Field(min_length=1)

    _v_cidr = field_validator("cidr")(_network)


class LinkShape(Strict):
    """netem settings the lab applies to a tier's links."""

    delay_ms: int = Field(0, ge=0, le=2000)
    jitter_ms: int = Field(0, ge=0, le=1000)
    loss_pct: float = Field(0.0, ge=0, le=50)
    rate_mbit: int | None = Field(None, ge=1)


class Tier(Strict):
    id: Id
    name: str
    name_en: str
    link: LinkShape = Field(default_factory=LinkShape)


class Hub(Strict):
    name: str
    wan_address: str
    tunnel_address: str
    listen_port: int = Field(51820, ge=1, le=65535)
    ntp_server: str
    log_server: str

    _v_addr = field_validator("wan_address", "tunnel_address", "ntp_server", "log_server")(_address)


class Site(Strict):
    id: Id
    name: str
    tier: Id
    parent: Id | None = None
    lan: str
    wan_address: str
    tunnel_address: str
    reach: list[Id] = Field(default_factory=list, description="platform ids")

    _v_lan = field_validator("lan")(_network)
    _v_addr = field_validator("wan_address", "tunnel_address")(_address)


class Wan(Strict):
    underlay: str = Field(description="pool of the units' WAN link addresses")
    tunnel_pool: str
    hub: Hub
    tiers: list[Tier] = Field(min_length=1)
    sites: list[Site] = Field(min_length=1)

    _v_pools = field_validator("underlay", "tunnel_pool")(_network)


class ProvinceFile(Strict):
    """A whole province file."""

    province: Province
    datacenter: DataCenter
    national_endpoints: list[NationalEndpoint] = Field(default_factory=list)
    platforms: list[Platform] = Field(min_length=1)
    wan: Wan

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


Province.model_rebuild()
