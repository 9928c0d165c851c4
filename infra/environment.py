"""The environment of a stack: where dcops connects for one province.

One Pulumi stack is one environment.  Its stack config (``stacks/Pulumi.<stack>.yaml``,
or the file given with ``--config-file``) holds two dcops keys::

    config:
      dcops:province: stacks/province-thanhhoa.yaml
      dcops:environment: stacks/env/thanhhoa.yaml     # a file, or the mapping inline

The environment says, and nothing else in dcops decides:

- ``kind``: ``production``, ``staging`` or ``lab`` (reports print it on every page);
- ``management_netns``: optional network namespace (a management VRF/namespace on the
  workstation) that every client runs in; dcops re-executes itself there when started
  elsewhere, so nothing it starts can reach another network;
- ``work_dir``: where dcops keeps what it learns (public keys, SSH control sockets);
- ``backend``: the Pulumi state backend (``file://`` for one engineer, ``s3://`` on the data
  center's object storage for a team: Pulumi locks a stack there), the secrets provider, its
  passphrase file, an S3 credentials file;
- ``clusters``: per cluster, the ``admin`` kubeconfig/context Pulumi uses, the read-only
  ``checks`` identity the controls use, and optional ``evidence`` that settles controls the
  API cannot (the API server's flags, a read-only etcd client);
- ``wan``: SSH user, identity file or ssh-agent, port, known_hosts, jump hosts (for all hosts
  and per group or host), SSH addresses that differ from the province file's, how to become
  root, which hosts exist;
- ``prometheus``: URL (https), CA bundle, basic-auth or bearer-token credentials;
- ``log_server``: where the central log server is and where it keeps the sites' logs.

Secrets (passwords, tokens, passphrases) are never written in a committed file: a secret is
``{file: PATH}`` (a file outside the repository, readable only by its owner) or
``{config: dcops:KEY}`` (a Pulumi config secret of the stack: ``pulumi config set --secret``).

:func:`load` validates everything at once: every problem names the file, line, field and the
fix (:class:`EnvironmentError`, exit 2); nothing is contacted while loading.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .paths import REPO, cache_dir, lab_dir, lab_name
from .validate import Problem

KINDS = ("production", "staging", "lab")

# ---------------------------------------------------------------------------- grammar

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_CONTEXT = re.compile(r"^[A-Za-z0-9@:._/-]{1,253}$")
_NETNS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_CONFIG_KEY = re.compile(r"^[a-z][a-zA-Z0-9_-]*:[a-zA-Z][a-zA-Z0-9_-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KEX = re.compile(r"^[a-z0-9@.+-]{1,80}$")


def _no_control(v: str) -> str:
    if _CONTROL.search(v):
        raise ValueError("control characters (newline, tab, NUL...) are not allowed here")
    return v


def _path(v: str) -> str:
    _no_control(v)
    if not v or len(v) > 4096:
        raise ValueError("a path of 1 to 4096 characters")
    if v.startswith("-"):
        raise ValueError("a path cannot start with '-'")
    return v


def _host(v: str) -> str:
    try:
        a = ipaddress.ip_address(v)
    except ValueError:
        if not _HOSTNAME.fullmatch(v):
            raise ValueError("not an IPv4 address or a DNS name") from None
        return v
    if a.version != 4:
        raise ValueError("IPv6 addresses are not rendered yet: use an IPv4 address or a DNS name")
    return v


PathStr = Annotated[str, Field(min_length=1, max_length=4096)]
HostStr = Annotated[str, Field(min_length=1, max_length=253)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(Strict):
    """A secret: a file outside the repository, or a Pulumi config secret of the stack."""

    file: PathStr | None = None
    config: str | None = None

    _v_file = field_validator("file")(lambda v: v if v is None else _path(v))

    @field_validator("config")
    @classmethod
    def _v_config(cls, v: str | None) -> str | None:
        if v is not None and not _CONFIG_KEY.fullmatch(v):
            raise ValueError("a Pulumi config key such as dcops:prometheusPassword")
        return v

    @model_validator(mode="after")
    def _one(self) -> "Secret":
        if (self.file is None) == (self.config is None):
            raise ValueError("give exactly one of 'file' (a file outside the repository) or 'config' (a Pulumi config secret)")
        return self


def _secret_not_literal(v: Any) -> Any:
    if isinstance(v, (str, int, float)):
        raise ValueError("secrets are never written in the clear")
    return v




class Backend(Strict):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    secrets_provider: Annotated[str, Field(min_length=1, max_length=512)] = "passphrase"
    passphrase: Secret | None = None
    credentials_file: PathStr | None = None  # AWS shared credentials for s3:// (a file outside the repository)
    profile: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None
    aws_config_file: PathStr | None = None  # AWS config (region...) for s3://, instead of ~/.aws/config
    ca_file: PathStr | None = None  # the CA of an https object store (e.g. the data center's own CA for Ceph RGW)
    home: PathStr | None = None  # PULUMI_HOME (plugins, workspace settings); default ~/.cache/dcops/pulumi-home

    _v_secret = field_validator("passphrase", mode="before")(_secret_not_literal)

    @field_validator("url")
    @classmethod
    def _v_url(cls, v: str) -> str:
        _no_control(v)
        if not re.match(r"^(file|s3|gs|azblob|https)://", v):
            raise ValueError("a Pulumi backend URL: file:///ABSOLUTE/DIR, s3://BUCKET?endpoint=..., or https://...")
        if re.match(r"^https?://[^/]*@", v) or re.match(r"^s3://[^?]*:[^?]*@", v):
            raise ValueError("credentials inside the URL are secrets in the clear")
        return v

    @model_validator(mode="after")
    def _passphrase(self) -> "Backend":
        if self.secrets_provider == "passphrase" and self.passphrase is None:
            raise ValueError("the passphrase secrets provider needs 'passphrase: {file: ...}' or '{config: ...}'")
        return self


class KubeAccess(Strict):
    kubeconfig: PathStr
    context: Annotated[str, Field(max_length=253)] | None = None

    _v_kc = field_validator("kubeconfig")(_path)

    @field_validator("context")
    @classmethod
    def _v_ctx(cls, v: str | None) -> str | None:
        if v is not None and not _CONTEXT.fullmatch(v):
            raise ValueError("a kubeconfig context name (letters, digits, @ : . _ / -)")
        return v


class EtcdClient(Strict):
    endpoints: Annotated[list[Annotated[str, Field(pattern=r"^https://[A-Za-z0-9.:\[\]-]+$")]], Field(min_length=1)]
    ca_file: PathStr
    cert_file: PathStr
    key_file: PathStr


class ClusterEvidence(Strict):
    """What settles the controls that the Kubernetes API cannot (encryption at rest)."""

    apiserver_args_file: PathStr | None = None  # JSON list, or one flag per line, of kube-apiserver's arguments
    encryption_config_file: PathStr | None = None
    etcd: EtcdClient | None = None


class ClusterEnv(Strict):
    admin: KubeAccess  # Pulumi: creates and updates the objects
    checks: KubeAccess  # the controls: a read-only identity (the auditors' group)
    evidence: ClusterEvidence | None = None


class JumpHost(Strict):
    host: HostStr
    user: Annotated[str, Field(pattern=_USER.pattern)] | None = None
    port: Port = 22
    identity_file: PathStr | None = None

    _v_host = field_validator("host")(_host)


class Become(Strict):
    method: Literal["sudo", "none"] = "sudo"  # none: the SSH user is root
    password: Secret | None = None  # sudo's password (when the account is not NOPASSWD)

    _v_secret = field_validator("password", mode="before")(_secret_not_literal)


class Wan(Strict):
    user: Annotated[str, Field(pattern=_USER.pattern)]
    identity_file: PathStr | None = None
    ssh_agent: bool = False
    port: Port = 22
    known_hosts: PathStr
    jump_host: JumpHost | None = None  # for every host
    jump_hosts: dict[str, JumpHost | None] = Field(default_factory=dict)  # per group or host (null: none)
    addresses: dict[str, HostStr] = Field(default_factory=dict)  # host -> SSH address, where not the province's
    become: Become = Become()
    # the account the host checks log in as (default: user, with sudo). A separate read-only account
    # (the lab's dcops-audit) runs only the rollout's evidence collector as root (sudoers: that path,
    # no arguments) and everything else as itself.
    audit_user: Annotated[str, Field(pattern=_USER.pattern)] | None = None
    hosts: list[str] | None = None  # the hosts that exist here (default: every host of the province file)
    kex_algorithms: list[Annotated[str, Field(pattern=_KEX.pattern)]] | None = None
    connect_timeout: Annotated[int, Field(ge=1, le=600)] = 10

    @field_validator("addresses")
    @classmethod
    def _v_addresses(cls, v: dict[str, str]) -> dict[str, str]:
        for a in v.values():
            _host(a)
        return v

    @model_validator(mode="after")
    def _identity(self) -> "Wan":
        if not self.identity_file and not self.ssh_agent:
            raise ValueError("say how SSH authenticates: 'identity_file: PATH' or 'ssh_agent: true'")
        return self


class BasicAuth(Strict):
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    password: Secret

    _v_secret = field_validator("password", mode="before")(_secret_not_literal)


class Prometheus(Strict):
    url: Annotated[str, Field(max_length=2048)]
    ca_file: PathStr | None = None  # default: the system's trust store
    basic_auth: BasicAuth | None = None
    bearer_token: Secret | None = None
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0

    _v_secret = field_validator("bearer_token", mode="before")(_secret_not_literal)

    @field_validator("url")
    @classmethod
    def _v_url(cls, v: str) -> str:
        _no_control(v)
        m = re.fullmatch(r"https://([^/@\s]+)(/[^\s]*)?", v)
        if not m:
            if v.startswith("http://"):
                raise ValueError("Prometheus is reached over HTTPS only (credentials would travel in the clear)")
            raise ValueError("an https:// URL without credentials in it, e.g. https://prometheus.dc.local:9090")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _auth(self) -> "Prometheus":
        if self.basic_auth and self.bearer_token:
            raise ValueError("give one of 'basic_auth' or 'bearer_token', not both")
        return self


class LogServer(Strict):
    host: str  # the inventory name ('gateway') or a site id of the host that receives the logs
    directory: PathStr = "/var/log/remote"  # where the hub's rsyslog writes <site>.log (infra/render/endpoint.py)


class BackupTarget(Strict):
    """Where Velero writes the province's backups: S3-compatible object storage on infrastructure
    separate from the primary (Ceph RGW of the DR site; the lab: its SeaweedFS). The policy
    (schedule, retention, encryption, restore-test interval) is the province file's
    ``datacenter.backup``; this is only where and with which keys (infra/dr/backup.py)."""

    s3_url: Annotated[str, Field(pattern=r"^https://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?$", max_length=2048)]
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    region: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")] = "us-east-1"
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")] | None = None
    credentials_file: PathStr  # AWS shared-credentials file (a file outside the repository, 0600)
    profile: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "default"
    ca_file: PathStr | None = None  # the object store's CA (default: the system's trust store)
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = "velero"
    location: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = "dcops"  # the BackupStorageLocation's name
    site: Annotated[str, Field(min_length=1, max_length=120)]  # where the object store runs (a cluster id of the province, or a site name)
    fs_backup: bool = False  # volume data too, with Velero's file-system backup (needs its node agents on every node)

    _v_paths = field_validator("credentials_file", "ca_file")(lambda v: v if v is None else _path(v))


class Environment(Strict):
    kind: Literal["production", "staging", "lab"]
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    management_netns: Annotated[str, Field(pattern=_NETNS.pattern)] | None = None
    work_dir: PathStr | None = None
    backend: Backend
    clusters: dict[str, ClusterEnv]
    wan: Wan
    prometheus: Prometheus
    log_server: LogServer | None = None
    backup: BackupTarget | None = None  # Velero's object storage (dcops dr backup / restore-test)

    _v_name = field_validator("name")(lambda v: v if v is None else _no_control(v))


# ---------------------------------------------------------------------------- loading


class EnvironmentError(Exception):
    """An environment that does not validate (exit 2); carries every problem."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        super().__init__(f"{file}: {len(problems)} problem(s)\n" + "\n".join(p.render(file) for p in problems))


class EnvironmentMissing(Exception):
    """The stack's config or environment file is not there (exit 3 for the lab, 2 otherwise)."""

    def __init__(self, message: str, code: int = 2):
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Stack:
    """A loaded stack: its name, config file, province file and validated environment."""

    name: str
    config_file: Path
    env_file: Path  # where the environment was read from (the config file when inline)
    province: Path
    env: Environment

    # -- derived places
    @property
    def work_dir(self) -> Path:
        if self.env.work_dir:
            return self.resolve(self.env.work_dir)
        return cache_dir() / "stacks" / self.name

    def resolve(self, p: str) -> Path:
        """A path of the environment: ~ expanded; relative to the environment file's folder."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.env_file.parent / q).resolve()

    def kubeconfig(self, cluster: str, purpose: Literal["admin", "checks"] = "admin") -> tuple[Path, str | None]:
        c = self.env.clusters[cluster]
        a = c.admin if purpose == "admin" else c.checks
        return self.resolve(a.kubeconfig), a.context

    def secret(self, s: Secret, what: str) -> str:
        """The value of a secret (read now, never logged). Raises EnvironmentMissing(code 3)."""
        if s.file is not None:
            p = self.resolve(s.file)
            try:
                return p.read_text().strip()
            except OSError as e:
                raise EnvironmentMissing(f"{what}: cannot read the secret file {p}: {e.strerror}", 3) from None
        return pulumi_config_secret(self, s.config or "", what)

    def secret_path(self, s: Secret, what: str) -> Path:
        """A secret as a file path (for tools that read a file); Pulumi secrets are written 0600 under work_dir."""
        if s.file is not None:
            return self.resolve(s.file)
        value = pulumi_config_secret(self, s.config or "", what)
        d = self.work_dir / "secrets"
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        p = d / re.sub(r"[^A-Za-z0-9_.-]", "_", s.config or "secret")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return p

    def hosts_present(self, all_hosts: list[str]) -> list[str]:
        if self.env.wan.hosts is None:
            return list(all_hosts)
        have = set(self.env.wan.hosts)
        return [h for h in all_hosts if h in have]


def pulumi_config_secret(stack: Stack, key: str, what: str) -> str:
    """Read a Pulumi config secret with the pulumi CLI (the stack's backend and secrets provider)."""
    from .pulumi_env import PulumiError, pulumi

    try:
        cp = pulumi(["config", "get", key, "--stack", stack.name, "--config-file", str(stack.config_file)], stack,
                    capture=True)
    except PulumiError as e:
        raise EnvironmentMissing(f"{what}: `pulumi config get {key}` failed (exit {e.code}); set it with "
                                 f"`pulumi config set --secret {key} ...`", 3) from None
    return cp.stdout.rstrip("\n")


def environment_from_config(raw: Any) -> tuple[Environment | None, Any, list[str]]:
    """The environment as the Pulumi program sees it (``dcops:environment``: a mapping, or the
    path of a file): ``(env, resolve(path) -> Path, problems)``."""
    base = REPO
    if isinstance(raw, str):
        f = Path(raw).expanduser()
        f = f if f.is_absolute() else REPO / f
        try:
            raw = yaml.safe_load(f.read_text())
        except (OSError, yaml.YAMLError) as e:
            return None, None, [f"{f}: {e}"]
        base = f.parent

    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q).resolve()

    env, problems = validate_data(raw, "dcops:environment")
    return env, resolve, [p.render("stack config") for p in problems]


DEFAULT_STACK = "lab"


def lab_config_file(name: str | None = None) -> Path:
    """Where `dcops lab up` writes the lab's stack config (with its environment)."""
    return lab_dir(name) / "Pulumi.lab.yaml"


def config_path(stack: str | None = None, config_file: Path | str | None = None) -> tuple[str, Path]:
    """The stack's name and config file: ``--config-file``/``$DCOPS_CONFIG_FILE``, else
    ``stacks/Pulumi.<stack>.yaml``; for the stack ``lab``, the running lab's config."""
    name = stack or os.environ.get("DCOPS_STACK") or DEFAULT_STACK
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise EnvironmentMissing(f"stack name '{name}': use letters, digits, '-', '_' and '.'", 2)
    cf = config_file or os.environ.get("DCOPS_CONFIG_FILE")
    if cf:
        p = Path(cf).expanduser()
        return name, (p if p.is_absolute() else Path.cwd() / p)
    if name == DEFAULT_STACK:
        p = lab_config_file()
        if not p.exists():
            raise EnvironmentMissing(
                f"stack 'lab': the lab '{lab_name()}' has no environment ({p} is missing): start it with "
                "`dcops lab up`, or name a stack of your province with -s STACK", 3)
        return name, p
    p = REPO / "stacks" / f"Pulumi.{name}.yaml"
    if not p.exists():
        have = sorted(q.name[len("Pulumi."):-len(".yaml")] for q in (REPO / "stacks").glob("Pulumi.*.yaml"))
        raise EnvironmentMissing(f"stack '{name}': {p} does not exist (stacks here: {', '.join(have)}); "
                                 "write it (see README: Using dcops on your province) or pass --config-file", 2)
    return name, p


def _lines(text: str) -> tuple[Any, dict[str, int]]:
    from .validate import _compose

    data, lines, _dups = _compose(text)
    return data, lines


_FIX = {
    "missing": "add this field (see README: Using dcops on your province)",
    "extra_forbidden": "remove it or correct its spelling (see README: Using dcops on your province)",
    "literal_error": "use one of the allowed values",
    "string_pattern_mismatch": "write it in the allowed form",
    "greater_than_equal": "raise the value",
    "less_than_equal": "lower the value",
}


def _fmt(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def validate_data(data: Any, prefix: str = "", lines: dict[str, int] | None = None) -> tuple[Environment | None, list[Problem]]:
    """Validate an environment mapping; every problem at once (paths under ``prefix``)."""
    lines = lines or {}
    if not isinstance(data, dict):
        return None, [Problem(prefix, "the environment is not a mapping", "start from README: Using dcops on your province",
                              lines.get(prefix))]
    try:
        env = Environment.model_validate(data)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "function_"))))
            path = _fmt(loc)
            full = f"{prefix}.{path}" if prefix and path else (prefix or path)
            kind = err["type"]
            msg = err["msg"].removeprefix("Value error, ")
            if kind == "extra_forbidden":
                msg = f"unknown key '{loc[-1]}'"
            elif kind == "missing":
                msg = f"required field '{loc[-1]}' is missing"
            elif "input" in err and kind not in ("missing",) and not ("secret" in msg or "clear" in msg):
                msg += f" (got {err['input']!r})"[:200]
            fix = _FIX.get(kind, "correct the value")
            if "clear" in msg:
                fix = "write the secret into a file outside the repository (mode 0600) and give {file: PATH}, or use {config: dcops:KEY} after `pulumi config set --secret dcops:KEY`"
            line = None
            for i in range(len(loc), -1, -1):
                k = _fmt(loc[:i])
                k = f"{prefix}.{k}" if prefix and k else (prefix or k)
                if k in lines:
                    line = lines[k]
                    break
            out.append(Problem(full, msg, fix, line))
        return None, out
    return env, []


def _semantic(env: Environment, prefix: str, lines: dict[str, int], base: Path, province: Any | None) -> list[Problem]:
    P: list[Problem] = []

    def add(path: str, msg: str, fix: str) -> None:
        full = f"{prefix}.{path}" if prefix else path
        P.append(Problem(full, msg, fix, lines.get(full)))

    def secret_file(path: str, s: Secret | None) -> None:
        if s is None or s.file is None:
            return
        p = Path(s.file).expanduser()
        p = p if p.is_absolute() else (base / p)
        try:
            rp = p.resolve()
        except OSError:
            rp = p
        if rp == REPO or REPO in rp.parents:
            add(path + ".file", f"the secret file {p} is inside the repository",
                "keep secrets outside the repository (for example /etc/dcops/ or ~/.config/dcops/, mode 0600)")
        elif rp.exists():
            st = rp.stat()
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                add(path + ".file", f"the secret file {p} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
                    f"chmod 600 {p}")

    secret_file("backend.passphrase", env.backend.passphrase)
    secret_file("wan.become.password", env.wan.become.password)
    if env.prometheus.basic_auth:
        secret_file("prometheus.basic_auth.password", env.prometheus.basic_auth.password)
    secret_file("prometheus.bearer_token", env.prometheus.bearer_token)
    if env.backend.url.startswith("file://") and not env.backend.url.startswith("file:///"):
        add("backend.url", "a file backend needs an absolute directory", "write file:///ABSOLUTE/DIR")
    if env.backend.credentials_file:
        cf = Path(env.backend.credentials_file).expanduser()
        cf = cf if cf.is_absolute() else base / cf
        if REPO in cf.resolve().parents:
            add("backend.credentials_file", "the S3 credentials file is inside the repository",
                "keep it outside the repository (mode 0600)")
    if env.backup is not None:
        bf = Path(env.backup.credentials_file).expanduser()
        bf = bf if bf.is_absolute() else base / bf
        if REPO == bf.resolve() or REPO in bf.resolve().parents:
            add("backup.credentials_file", "the backup store's credentials file is inside the repository",
                "keep it outside the repository (mode 0600)")
    if province is not None:
        clusters = set(province.cluster_by_id)
        for c in sorted(set(env.clusters) - clusters):
            add(f"clusters.{c}", f"cluster '{c}' is not in the province file",
                f"use the cluster ids of the province file: {', '.join(sorted(clusters))}")
        hosts = {"gateway", *province.site_by_id}
        if province.wan.standby is not None:
            hosts.add("gateway-standby")  # the standby hub (wan.hubs[1])
        from .environment_ssh import groups_of  # the rollout inventory's group names

        groups = set(groups_of(province))
        for k in env.wan.jump_hosts:
            if k not in hosts and k not in groups:
                add(f"wan.jump_hosts.{k}", f"'{k}' is neither a host nor a group of the province's inventory",
                    "use a site id, 'gateway', or a group such as tier_commune or parent_<site>")
        for k in env.wan.addresses:
            if k not in hosts:
                add(f"wan.addresses.{k}", f"'{k}' is not a host of the province file", "use a site id or 'gateway'")
        for i, h in enumerate(env.wan.hosts or []):
            if h not in hosts:
                add(f"wan.hosts[{i}]", f"'{h}' is not a host of the province file", "use a site id or 'gateway'")
        if env.log_server and env.log_server.host not in hosts:
            add("log_server.host", f"'{env.log_server.host}' is not a host of the province file",
                "name the host that receives the logs: 'gateway' or a site id")
    for name, c in env.clusters.items():
        for who in ("admin", "checks"):
            a: KubeAccess = getattr(c, who)
            if REPO in (base / Path(a.kubeconfig).expanduser()).resolve().parents:
                add(f"clusters.{name}.{who}.kubeconfig", "a kubeconfig (it holds credentials) inside the repository",
                    "keep kubeconfigs outside the repository")
        if c.admin == c.checks:
            add(f"clusters.{name}.checks", "the checks use the same identity as Pulumi (an admin)",
                "give the checks a read-only identity (group dcops:auditors): its own kubeconfig or context")
    return P


def load(stack: str | None = None, config_file: Path | str | None = None, *, with_province: bool = True) -> Stack:
    """Load and validate a stack's environment (and its province file). Contacts nothing.

    Raises :class:`EnvironmentMissing` (no such stack / lab not up), :class:`EnvironmentError`
    (every problem of the environment), or :class:`infra.validate.ProvinceError`.
    """
    from .validate import load_province

    name, cfg = config_path(stack, config_file)
    try:
        text = cfg.read_text()
    except OSError as e:
        raise EnvironmentMissing(f"stack '{name}': cannot read {cfg}: {e.strerror}", 3 if name == DEFAULT_STACK else 2) from None
    try:
        doc, lines = _lines(text)
    except yaml.YAMLError as e:
        raise EnvironmentError(str(cfg), [Problem("", f"not valid YAML: {e}".replace("\n", " "), "fix the YAML syntax")]) from None
    config = (doc or {}).get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise EnvironmentError(str(cfg), [Problem("config", "no 'config:' mapping", "add config: with dcops:province and dcops:environment")])
    problems: list[Problem] = []
    prov = config.get("dcops:province")
    if not isinstance(prov, str) or not prov:
        problems.append(Problem("config.dcops:province", "required field 'dcops:province' is missing",
                                "name the province file, e.g. stacks/province-thanhhoa.yaml", lines.get("config")))
    raw = config.get("dcops:environment")
    env_file, prefix, env_lines = cfg, "config.dcops:environment", lines
    if raw is None:
        problems.append(Problem("config.dcops:environment", "required field 'dcops:environment' is missing",
                                "add the environment (a mapping, or the path of a file holding it): see README: Using dcops on your province",
                                lines.get("config")))
        raise EnvironmentError(str(cfg), problems)
    if isinstance(raw, str):
        env_file = Path(raw).expanduser()
        env_file = env_file if env_file.is_absolute() else (REPO / env_file)
        try:
            etext = env_file.read_text()
        except OSError as e:
            problems.append(Problem("config.dcops:environment", f"cannot read {env_file}: {e.strerror}",
                                    "write the environment file or correct the path", lines.get("config.dcops:environment")))
            raise EnvironmentError(str(cfg), problems) from None
        if problems:
            raise EnvironmentError(str(cfg), problems)
        try:
            raw, env_lines = _lines(etext)
        except yaml.YAMLError as e:
            raise EnvironmentError(str(env_file), [Problem("", f"not valid YAML: {e}".replace("\n", " "), "fix the YAML syntax")]) from None
        prefix = ""
    env, ps = validate_data(raw, prefix, env_lines)
    if ps:
        raise EnvironmentError(str(env_file), problems + ps)
    if problems:
        raise EnvironmentError(str(cfg), problems)
    assert env is not None
    province_path = Path(prov).expanduser()
    province_path = province_path if province_path.is_absolute() else REPO / province_path
    pf = load_province(province_path) if with_province else None
    sem = _semantic(env, prefix, env_lines, env_file.parent, pf)
    if sem:
        raise EnvironmentError(str(env_file), sem)
    return Stack(name, cfg, env_file, province_path, env)
