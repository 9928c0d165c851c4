"""Host controls (DCOPS-SSH/FW/WG/NTP/LOG/MON/SYS/USR-*) over SSH with pytest-testinfra.

Every host is reached over the stack's SSH access, either as the operations account with sudo
(the default), or as the environment's read-only audit account (``wan.audit_user``): that account
may run one root-owned program as root, the rollout's evidence collector (:data:`E.COLLECTOR`,
no arguments), which answers the commands that need root (:func:`E.evidence_commands`); every
other command runs as the audit account itself. Either way one round trip per host. Over SSH (its ssh_config: jump hosts, identity, known_hosts);
dcops runs in the environment's management namespace when it names one, so testinfra's ``ssh``
processes and their control master live there.  Hosts are checked in
parallel, one thread each; on one host the controls share the outputs of the
commands they read (``sshd -T``, ``nft list ruleset``, ``ss``...).

The expected state comes from the province file and the endpoint renderer
(:mod:`infra.render.endpoint`): the admin account, the hub's addresses, the
management range, the tunnel address, the ports.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import shlex
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import testinfra

from infra.model import ProvinceFile
from infra.render import endpoint as E

from ..catalog import Control, catalog
from ..result import Result

NOLOGIN = {"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync", "/usr/bin/sync"}
INSECURE_PACKAGES = ["telnetd", "inetutils-telnetd", "telnetd-ssl", "rsh-server", "rsh-redone-server", "vsftpd", "ftpd",
                     "inetutils-ftpd", "tftpd", "tftpd-hpa", "nis"]
INSECURE_BINARIES = ["/usr/sbin/in.telnetd", "/usr/sbin/telnetd", "/usr/sbin/in.rshd", "/usr/sbin/in.rlogind",
                     "/usr/sbin/vsftpd", "/usr/sbin/in.ftpd", "/usr/sbin/in.tftpd", "/usr/sbin/ypserv"]
WEAK_CIPHER = re.compile(r"cbc|arcfour|3des|blowfish|cast128", re.I)
WEAK_MAC = re.compile(r"md5|sha1|umac-64|ripemd", re.I)
WEAK_KEX = re.compile(r"sha1|group1-|group14-sha1|gss-", re.I)


class HostUnreachable(RuntimeError):
    pass


class EvidenceUnreadable(RuntimeError):
    """The evidence a control reads could not be read (a command failed, printed nothing where
    something must be, or a file is missing or unreadable): the result is ``error`` with this
    reason, never a pass (see :func:`check_host`)."""


# Runs on the checked host (as root, like every control command): each command (one argument each)
# as `/bin/sh -c` runs it (E.RUN_COMMAND_PY), its exit status and output kept apart, length-prefixed
# (E.read_frames).
_PREFETCH_PY = (
    E.RUN_COMMAND_PY +
    "w=begin()\n"
    "for c in sys.argv[1:]:\n"
    " frame(w,'',*run(c))\n"
)


# The audit account's round trip: the evidence collector through sudo (no arguments), then the
# commands that need no root (arguments 3 on), as the audit account itself (with PATH argument 2).
_AUDIT_PREFETCH_PY = (
    E.RUN_COMMAND_PY +
    "w=begin()\n"
    "os.environ['PATH']=sys.argv[2]\n"
    "frame(w,'collector',*run('sudo -n '+sys.argv[1]))\n"
    "for c in sys.argv[3:]:\n"
    " frame(w,'',*run(c))\n"
)


def _collector_answers(out: bytes) -> dict[str, tuple[int, bytes, bytes]] | None:
    """The evidence collector's answers by command: its length-prefixed records, or the JSON
    document (base64 outputs) that collectors rendered before dcops-evidence/2 print. None when
    it printed neither."""
    try:
        return {c: (rc, o, e) for c, rc, o, e in E.read_frames(out)}
    except ValueError:
        pass
    try:
        doc = json.loads(out)
        return {c: (rc, base64.b64decode(o), base64.b64decode(e)) for c, (rc, o, e) in doc.items()}
    except (ValueError, TypeError, AttributeError):
        return None


# The audit account's own commands run with the PATH root's would have (a user's PATH has no sbin).
_AUDIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _audit_round_trip(cmds: list[str]) -> str:
    """The audit account's one round trip: the evidence collector through sudo, then ``cmds``."""
    return (f"python3 -IS -c {shlex.quote(_AUDIT_PREFETCH_PY)} {shlex.quote(E.COLLECTOR)} {_AUDIT_PATH} "
            + " ".join(map(shlex.quote, cmds)))

# the listening sockets, with their owning processes (one of the collector's commands)
LISTENERS_COMMAND = "ss -H -tulnp"


class CommandPlan:
    """The commands the controls ran on the first host of each kind, learned as templates
    (the host's addresses replaced by placeholders), so that every other host of that kind
    gets them all in one round trip (:meth:`HostCtx.prefetch`) instead of one SSH exec each.
    A command the plan does not hold is still run on its own: the plan changes speed, never
    verdicts."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    @staticmethod
    def _subst(t: "Target") -> list[tuple[str, str]]:
        pairs = [(t.tunnel_address, "{tunnel}"), (t.address, "{address}")]
        return sorted(((a, p) for a, p in pairs if a), key=lambda x: -len(x[0]))

    def learn(self, t: "Target", cmds: list[str]) -> None:
        out = []
        for c in cmds:
            c = c.replace("{", "{{").replace("}", "}}")
            for addr, ph in self._subst(t):
                c = re.sub(rf"(?<![\d.]){re.escape(addr)}(?![\d])", ph, c)
            out.append(c)
        with self.lock:
            have = self.by_kind.setdefault(t.kind, [])
            have += [c for c in out if c not in have]

    def commands(self, t: "Target") -> list[str]:
        with self.lock:
            tmpl = list(self.by_kind.get(t.kind, []))
        return [c.format(tunnel=t.tunnel_address, address=t.address) for c in tmpl]


@dataclass
class Target:
    """One endpoint to check: a site host or the gateway."""

    host: str  # site id or "gateway"
    kind: str  # "endpoint" | "gateway"
    address: str  # where SSH reaches it (the WAN address)
    tunnel_address: str
    level: int


@dataclass
class HostCtx:
    target: Target
    pf: ProvinceFile
    host: Any  # testinfra Host
    hub_pubkey: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    hub_pubkey_error: str = ""
    audit_user: str | None = None  # logged in as the read-only audit account (root only through the collector)
    collector_error: str = ""
    _root_cmds: frozenset[str] | None = None

    def root_commands(self) -> frozenset[str]:
        """The commands the evidence collector answers (never run as the audit account itself)."""
        if self._root_cmds is None:
            self._root_cmds = frozenset(E.evidence_commands(self.pf))
        return self._root_cmds

    def _audit_prefetch(self, cmds: list[str]) -> None:
        """As the audit account: the collector's answers and the other commands, one round trip."""
        from testinfra.backend.base import CommandResult

        root = self.root_commands()
        todo = [c for c in dict.fromkeys(cmds) if c not in self.cache and c not in root]
        r = self.host.run(_audit_round_trip(todo))
        try:
            rows = E.read_frames(r.stdout_bytes)
            if len(rows) != len(todo) + 1:
                raise ValueError(f"{len(rows)} answers to {len(todo) + 1} commands")
        except ValueError as e:
            self.collector_error = f"no answer (rc {r.rc}): {e}: {(r.stderr or '').strip()[:300]}"
            return
        _, rc, out, err = rows[0]
        if rc != 0:
            self.collector_error = (f"`sudo -n {E.COLLECTOR}` as {self.audit_user} failed (rc {rc}): "
                                    f"{err.decode(errors='replace').strip()[:300]}")
        else:
            answers = _collector_answers(out)
            if answers is None:
                answers = {}
                self.collector_error = f"{E.COLLECTOR} printed no answer that dcops reads"
            for c, (crc, cout, cerr) in answers.items():
                if c in root:
                    self.cache[c] = CommandResult(self.host.backend, crc, c.encode(), cout, cerr)
            missing = sorted(root - set(answers))
            if missing and not self.collector_error:
                self.collector_error = f"{E.COLLECTOR} does not answer {len(missing)} command(s) (not the rendered collector?)"
        for c, (_, crc, cout, cerr) in zip(todo, rows[1:]):
            self.cache[c] = CommandResult(self.host.backend, crc, c.encode(), cout, cerr)
    standby_pubkey: str | None = None  # the standby hub's (wan.hubs[1]), when declared
    standby_pubkey_error: str = ""

    # -- memoised command outputs
    def prefetch(self, cmds: list[str], must_run: bool = False) -> None:
        """Run ``cmds`` on the host in ONE round trip and keep each one's result as if it had
        been run alone (same sudo, same shell: exit status, stdout and stderr each).
        ``must_run``: make the round trip even with nothing to fetch (it is the reachability
        probe: SSH's own failure raises)."""
        if self.audit_user:
            return self._audit_prefetch(cmds)
        todo = [c for c in cmds if c not in self.cache]
        if not todo:
            if must_run:
                r = self.host.run("true")
                if r.rc != 0:
                    raise HostUnreachable((r.stderr or r.stdout).strip()[:300] or f"`true` exited {r.rc}")
            return
        r = self.host.run(f"python3 -IS -c {shlex.quote(_PREFETCH_PY)} " + " ".join(map(shlex.quote, todo)))
        if r.rc != 0:
            return  # each control then runs its own commands
        try:
            rows = E.read_frames(r.stdout_bytes)
        except ValueError:
            return
        if len(rows) != len(todo):
            return
        from testinfra.backend.base import CommandResult

        for c, (_, rc, out, err) in zip(todo, rows):
            self.cache[c] = CommandResult(self.host.backend, rc, c.encode(), out, err)

    def run(self, cmd: str) -> Any:
        if cmd not in self.cache:
            if self.audit_user and cmd in self.root_commands():
                raise EvidenceUnreadable(f"`{cmd}` needs root, and the evidence collector did not answer it on "
                                         f"{self.target.host}: {self.collector_error or 'not run'}")
            self.cache[cmd] = self._run_once(cmd)
        return self.cache[cmd]

    def _run_once(self, cmd: str) -> Any:
        """``cmd`` on the host, uncached: as the audit account with root's PATH, else through sudo."""
        return self.host.run(f"PATH={_AUDIT_PATH}; export PATH; {cmd}" if self.audit_user else cmd)

    def out(self, cmd: str) -> str:
        r = self.run(cmd)
        if r.rc != 0:
            raise RuntimeError(f"`{cmd}` failed on {self.target.host} (rc {r.rc}): {(r.stderr or r.stdout).strip()[:300]}")
        return r.stdout

    def sshd(self) -> dict[str, list[str]]:
        if "__sshd" not in self.cache:
            conf: dict[str, list[str]] = {}
            for line in self.out("/usr/sbin/sshd -T").splitlines():
                if " " in line:
                    k, v = line.split(" ", 1)
                    conf.setdefault(k.lower(), []).append(v.strip())
            if "port" not in conf:  # sshd -T always prints its port: anything else is not its configuration
                raise EvidenceUnreadable(f"`sshd -T` on {self.target.host} printed no configuration")
            self.cache["__sshd"] = conf
        return self.cache["__sshd"]

    def sshd1(self, key: str) -> str | None:
        v = self.sshd().get(key)
        return v[0] if v else None

    def nft(self) -> str:
        return self.out("nft -nn list ruleset")

    def listeners(self) -> list[dict[str, str]]:
        if "__ss" not in self.cache:
            self.cache["__ss"] = self._listening(self.out(LISTENERS_COMMAND))
        return self.cache["__ss"]

    def _listening(self, text: str) -> list[dict[str, str]]:
        """``ss -H -tulnp``'s rows: proto, address, port and the owning process ('' for none)."""
        rows = []
        for line in text.splitlines():
            f = line.split()
            if len(f) < 5:
                continue
            addr, _, port = f[4].rpartition(":")
            rows.append({"proto": f[0], "address": addr.strip("[]").split("%")[0], "port": port,
                         "process": (re.search(r'users:\(\("([^"]+)"', line) or [None, ""])[1]})
        # dcops is connected over SSH right now: a listing without sshd is not the host's listeners
        if not any(r["proto"] == "tcp" and r["port"] == "22" for r in rows):
            raise EvidenceUnreadable(f"`{LISTENERS_COMMAND}` on {self.target.host} lists {len(rows)} listening socket(s) "
                                     "and not sshd, which serves this very session: the listing is not trustworthy")
        return rows

    def listeners_again(self) -> list[dict[str, str]]:
        """A second, fresh reading of the listening sockets (never from the cache)."""
        r = self.reread(LISTENERS_COMMAND)
        if r.rc != 0:
            raise EvidenceUnreadable(f"`{LISTENERS_COMMAND}` failed on {self.target.host} when read again (rc {r.rc}): "
                                     f"{(r.stderr or r.stdout).strip()[:300]}")
        return self._listening(r.stdout)

    def reread(self, cmd: str) -> Any:
        """``cmd`` run once more on the host, its result not cached (a reading taken again, to tell a
        transient state from a lasting one). As the audit account, a root command is read again
        through the evidence collector: its answer to ``cmd``, from a new run."""
        if not (self.audit_user and cmd in self.root_commands()):
            return self._run_once(cmd)
        from testinfra.backend.base import CommandResult

        r = self.host.run(_audit_round_trip([]))
        try:
            rows = E.read_frames(r.stdout_bytes)
        except ValueError as e:
            raise EvidenceUnreadable(f"the evidence collector gave no answer when run again on {self.target.host} "
                                     f"(rc {r.rc}): {e}") from None
        answers = _collector_answers(rows[0][2]) if rows and rows[0][1] == 0 else None
        if not answers or cmd not in answers:
            raise EvidenceUnreadable(f"the evidence collector did not answer `{cmd}` when run again on {self.target.host}")
        crc, cout, cerr = answers[cmd]
        return CommandResult(self.host.backend, crc, cmd.encode(), cout, cerr)

    def sysctls(self) -> dict[str, str]:
        """Every kernel key the controls read (:data:`SYSCTL_KEYS`), from one ``sysctl`` process
        (``key = value`` lines; a key the kernel does not have is left out, ``-e``)."""
        if "__sysctl" not in self.cache:
            r = self.run(SYSCTL_COMMAND)  # a key it cannot read is reported on stderr; the others still print
            vals: dict[str, str] = {}
            for line in r.stdout.splitlines():
                k, sep, v = line.partition(" = ")
                if sep:
                    vals[k.strip()] = " ".join(v.split())
            if not vals:
                raise EvidenceUnreadable(f"`{SYSCTL_COMMAND}` printed no value on {self.target.host} (rc {r.rc}): "
                                         f"{(r.stderr or r.stdout).strip()[:300]}")
            self.cache["__sysctl"] = vals
            self.cache["__sysctl_err"] = (r.stderr or "").strip()[:300]
        return self.cache["__sysctl"]

    def sysctl(self, key: str) -> str:
        v = self.sysctls().get(key, "")
        if not v:
            why = self.cache.get("__sysctl_err") or "not in its output"
            raise EvidenceUnreadable(f"`sysctl -e ...` printed no value of {key} on {self.target.host}: {why}")
        return v

    def files(self, paths: list[str], globs: list[str] = ()) -> dict[str, str]:
        """The text of ``paths`` (each must exist and be readable) and of every file matching
        ``globs`` (none may match); EvidenceUnreadable names the file that could not be read."""
        cmd = ("set -u; for f in " + " ".join(shlex.quote(p) for p in paths) + "; do printf '\\0%s\\0' \"$f\"; "
               "cat -- \"$f\" || exit 1; done; for f in " + " ".join(globs or ["/nonexistent-dcops-glob"]) + "; do "
               "[ -e \"$f\" ] || continue; printf '\\0%s\\0' \"$f\"; cat -- \"$f\" || exit 1; done")
        r = self.run(cmd)
        if r.rc != 0:
            raise EvidenceUnreadable(f"could not read {', '.join(paths + list(globs))} on {self.target.host}: "
                                     f"{(r.stderr or r.stdout or '').strip()[:300]}")
        parts = r.stdout.split("\0")
        out = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
        missing = [p for p in paths if p not in out]
        if missing:
            raise EvidenceUnreadable(f"could not read {', '.join(missing)} on {self.target.host}")
        return out

    @property
    def mgmt_cidr(self) -> str:
        return self.pf.management_segment().cidr


# ------------------------------------------------------------------ SSH


def _sshd_is(c: Control, x: HostCtx, key: str, want: set[str], why: str) -> Result:
    got = x.sshd1(key)
    return Result.verdict(c.id, x.target.host, got in want, {key: got, "expected": sorted(want)},
                          reason_fail=f"sshd {key} is {got!r}: {why}")


def ssh_001(c, x):
    return _sshd_is(c, x, "permitrootlogin", {"no"}, "root may log in directly")


def ssh_002(c, x):
    return _sshd_is(c, x, "passwordauthentication", {"no"}, "password logins are accepted")


def ssh_003(c, x):
    key = "kbdinteractiveauthentication" if "kbdinteractiveauthentication" in x.sshd() else "challengeresponseauthentication"
    return _sshd_is(c, x, key, {"no"}, "keyboard-interactive (PAM password) logins are accepted")


def ssh_004(c, x):
    return _sshd_is(c, x, "permitemptypasswords", {"no"}, "empty passwords are accepted")


def ssh_005(c, x):
    users = sorted({u for line in x.sshd().get("allowusers", []) for u in line.split()})
    groups = sorted({g for line in x.sshd().get("allowgroups", []) for g in line.split()})
    want = sorted(set(E.ssh_allow_users(x.pf)))
    ok = users == want and not groups
    why = "no allow list (every account may log in)" if not users and not groups else f"allow list is users {users} groups {groups}, expected users {want}"
    return Result.verdict(c.id, x.target.host, ok, {"allowusers": users, "allowgroups": groups, "expected": want}, reason_fail=why)


SESSION_CHANNEL_TYPES = ("session:shell", "session:command")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def sshd_seconds(v: str | None) -> int | None:
    """An sshd time value (90, 15m, 1h30m) in seconds; 0 for none/0 (no timeout); None if not one."""
    v = (v or "").strip().lower()
    if v in ("none", "0", ""):
        return 0 if v else None
    if not re.fullmatch(r"(\d+[smhdw]?)+", v):
        return None
    return sum(int(n) * _UNIT_S[u] for n, u in re.findall(r"(\d+)([smhdw]?)", v))


def ssh_006(c, x):
    """Idle sessions end for real: ChannelTimeout for session channels (a live but idle client's
    session is closed) and UnusedConnectionTimeout (a connection left without a session), each
    within the province's wan.admin_idle_timeout_s. ClientAlive* only drops dead clients."""
    import fnmatch

    limit = min(x.pf.wan.admin_idle_timeout_s, int(c.params.get("max_idle_seconds", 3600)))
    entries = [e for line in x.sshd().get("channeltimeout", []) for e in line.split()]

    def timeout_of(ctype: str) -> int:  # the first pattern matching the channel type decides (0: none)
        v = next((e.partition("=")[2] for e in entries if "=" in e and fnmatch.fnmatchcase(ctype, e.partition("=")[0])), None)
        return (sshd_seconds(v) or 0) if v is not None else 0

    # OpenSSH 9.2 (Debian 12) names the session channels session:shell and session:command
    per_type = {t: timeout_of(t) for t in SESSION_CHANNEL_TYPES}
    sess_s = 0 if not all(per_type.values()) else max(per_type.values())
    unused_raw = x.sshd1("unusedconnectiontimeout")
    unused_s = sshd_seconds(unused_raw)
    ev = {"channeltimeout": entries, "session_timeout_s": sess_s, "per_channel_type_s": per_type, "unusedconnectiontimeout_s": unused_s, "max_s": limit,
          "clientaliveinterval": x.sshd1("clientaliveinterval"), "clientalivecountmax": x.sshd1("clientalivecountmax")}
    if not sess_s:
        return Result.fail(c.id, x.target.host, ev, "idle sessions are never ended")
    if sess_s > limit:
        return Result.fail(c.id, x.target.host, ev, f"idle sessions end after {sess_s}s (> {limit}s)")
    ok = bool(unused_s) and unused_s <= limit
    return Result.verdict(c.id, x.target.host, ok, ev,
                          reason_fail=f"connections without a session are kept open (UnusedConnectionTimeout {unused_raw}, limit {limit}s)")


def ssh_007(c, x):
    n = int(x.sshd1("maxauthtries") or 6)
    mx = int(c.params.get("max", 4))
    return Result.verdict(c.id, x.target.host, n <= mx, {"maxauthtries": n, "max": mx}, reason_fail=f"MaxAuthTries {n} > {mx}")


def ssh_008(c, x):
    x11, tcp = x.sshd1("x11forwarding"), x.sshd1("allowtcpforwarding")
    return Result.verdict(c.id, x.target.host, x11 == "no" and tcp == "no", {"x11forwarding": x11, "allowtcpforwarding": tcp},
                          reason_fail=f"forwarding allowed (X11 {x11}, TCP {tcp})")


def ssh_009(c, x):
    missing = [k for k in ("ciphers", "macs", "kexalgorithms") if not x.sshd1(k)]
    if missing:
        return Result.err(c.id, x.target.host, f"sshd -T does not list {', '.join(missing)}: the offered algorithms are unknown",
                          {"missing": missing})
    ciphers = x.sshd1("ciphers").split(",")
    macs = x.sshd1("macs").split(",")
    kex = x.sshd1("kexalgorithms").split(",")
    weak = [a for a in ciphers if WEAK_CIPHER.search(a)] + [a for a in macs if WEAK_MAC.search(a)] + [a for a in kex if WEAK_KEX.search(a)]
    return Result.verdict(c.id, x.target.host, not weak, {"ciphers": ciphers, "macs": macs, "kexalgorithms": kex, "weak": weak},
                          reason_fail=f"weak algorithms offered: {', '.join(weak)}")


def ssh_010(c, x):
    return _sshd_is(c, x, "loglevel", {"INFO", "VERBOSE"}, "logins are not logged with enough detail")


def ssh_011(c, x):
    rows = x.out("stat -c '%U %G %a %n' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf 2>/dev/null || true").splitlines()
    files, bad = [], []
    for r in rows:
        user, group, mode, name = r.split(" ", 3)
        files.append({"file": name, "owner": user, "group": group, "mode": mode})
        if user != "root" or int(mode, 8) & 0o022:
            bad.append(name)
    if not files:
        return Result.err(c.id, x.target.host, "could not stat /etc/ssh/sshd_config")
    return Result.verdict(c.id, x.target.host, not bad, {"files": files, "bad": bad}, reason_fail=f"writable by others or not root's: {', '.join(bad)}")


def _sshd_conf(text: str, what: str) -> dict[str, list[str]]:
    conf: dict[str, list[str]] = {}
    for line in text.splitlines():
        if " " in line:
            k, v = line.split(" ", 1)
            conf.setdefault(k.lower(), []).append(v.strip())
    if "port" not in conf:
        raise EvidenceUnreadable(f"`{what}` printed no configuration")
    return conf


def _admins_group(x: HostCtx) -> list[str] | None:
    r = x.run(f"getent group {E.ADMINS_GROUP}")
    if r.rc == 2:  # no such group
        return None
    if r.rc != 0:
        raise EvidenceUnreadable(f"`getent group {E.ADMINS_GROUP}` failed (rc {r.rc})")
    return [m for m in r.stdout.strip().split(":")[-1].split(",") if m]


def ssh_012(c, x):
    """MFA for the named administrators: what sshd applies to each one's login from management
    (sshd -T -C), the PAM stack's TOTP module (required, no nullok), and each TOTP secret."""
    admins = x.pf.wan.administrators
    if not admins:
        return Result.fail(c.id, x.target.host, {"administrators": []},
                           "the province file names no administrator (wan.administrators): no login has a second factor")
    totp = [a.name for a in admins if a.mfa == "totp"]
    problems, per = [], {}
    secrets = {}
    if totp:
        for line in x.out(E.totp_evidence_command(x.pf)).splitlines():
            f = line.split()
            if f:
                secrets[f[0]] = f[1:]
        pam = x.files([E.PAM_SSHD])[E.PAM_SSHD]
        auth = [" ".join(l.split()) for l in pam.splitlines() if l.strip() and not l.lstrip().startswith("#")
                and "pam_google_authenticator.so" in l]
        pam_ok = any(re.match(r"auth (required|requisite|\[[^\]]*default=die[^\]]*\]) \S*pam_google_authenticator\.so", l)
                     and "nullok" not in l for l in auth)
        module = x.run("ls /lib/*/security/pam_google_authenticator.so /usr/lib/*/security/pam_google_authenticator.so "
                       "2>/dev/null").stdout.split()
        usepam = x.sshd1("usepam")
        per["pam"] = {"pam_sshd_totp_lines": auth, "module": module, "usepam": usepam}
        if not pam_ok:
            problems.append(f"{E.PAM_SSHD} does not require pam_google_authenticator (without nullok)")
        if not module:
            problems.append("pam_google_authenticator.so is not installed")
        if usepam != "yes":
            problems.append(f"sshd UsePAM is {usepam!r}")
    for a in admins:
        cmd = E.sshd_match_command(x.pf, a.name)
        conf = _sshd_conf(x.out(cmd), cmd)
        methods = (conf.get("authenticationmethods") or ["any"])[0]
        lists = [m.split(",") for m in methods.split()]
        kbd = (conf.get("kbdinteractiveauthentication") or [""])[0]
        algs = (conf.get("pubkeyacceptedalgorithms") or [""])[0].split(",")
        entry = {"mfa": a.mfa, "authenticationmethods": methods, "kbdinteractiveauthentication": kbd}
        if a.mfa == "totp":
            sec = secrets.get(a.name, ["missing"])
            entry["totp_secret"] = " ".join(sec)
            if not all("publickey" in l and "keyboard-interactive" in l for l in lists) or methods == "any":
                problems.append(f"{a.name}: sshd accepts {methods} (want publickey,keyboard-interactive)")
            elif kbd != "yes":
                problems.append(f"{a.name}: keyboard-interactive is off, so the TOTP step cannot run")
            if sec[0] == "missing" or len(sec) < 3 or sec[0] != a.name or sec[1] not in ("400", "600") or sec[2] == "0":
                problems.append(f"{a.name}: no usable TOTP secret ({' '.join(sec)})")
        else:
            entry["pubkeyacceptedalgorithms"] = algs
            if not algs or not all(g.startswith("sk-") for g in algs) or methods == "any":
                problems.append(f"{a.name}: keys other than FIDO security keys are accepted")
        per[a.name] = entry
    return Result.verdict(c.id, x.target.host, not problems, per, reason_fail="; ".join(problems))


# ------------------------------------------------------------------ firewall


def _chains(ruleset: str) -> list[dict[str, Any]]:
    """Base and regular chains of an `nft -nn list ruleset` listing, with their rules."""
    chains, cur, table = [], None, ""
    for raw in ruleset.splitlines():
        line = raw.strip()
        m = re.match(r"table (\S+ \S+) \{", line)
        if m:
            table = m.group(1)
            continue
        m = re.match(r"chain (\S+) \{", line)
        if m:
            cur = {"table": table, "chain": m.group(1), "hook": None, "policy": None, "rules": []}
            chains.append(cur)
            continue
        if cur is None:
            continue
        if line == "}":
            cur = None
            continue
        m = re.match(r"type \S+ hook (\S+) .*?(?:policy (\S+);)?$", line)
        if m:
            cur["hook"], cur["policy"] = m.group(1), (m.group(2) or "accept").rstrip(";")
            continue
        if line:
            cur["rules"].append(line)
    return chains


def _hook_policy(c: Control, x: HostCtx, hook: str) -> Result:
    chains = [ch for ch in _chains(x.nft()) if ch["hook"] == hook]
    ev = {"chains": [{"table": ch["table"], "chain": ch["chain"], "policy": ch["policy"]} for ch in chains]}
    ok = any(ch["policy"] == "drop" for ch in chains)
    return Result.verdict(c.id, x.target.host, ok, ev,
                          reason_fail=f"no {hook} chain drops by default" if chains else f"no {hook} chain at all: everything is accepted")


def fw_001(c, x):
    return _hook_policy(c, x, "input")


def fw_002(c, x):
    return _hook_policy(c, x, "forward")


def expected_listeners(x: HostCtx) -> set[tuple[str, str, str]]:
    """(proto, address or '*', port) the host may listen on (loopback excluded)."""
    hub = x.pf.wan.hub
    want = {("tcp", "*", "22"), ("udp", "*", str(hub.listen_port)), ("tcp", x.target.tunnel_address, str(E.NODE_EXPORTER_PORT))}
    if x.target.kind == "gateway":
        if hub.ntp_server == hub.tunnel_address:
            want.add(("udp", "*", str(E.NTP_PORT)))
        if hub.log_server == hub.tunnel_address:
            want.add(("tcp", "*", str(E.SYSLOG_PORT)))
    return want


def _loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def _socket(r: dict[str, str]) -> str:
    return f"{r['proto']} {r['address']}:{r['port']} {r['process']}".strip()


def _unexpected_sockets(want: set[tuple[str, str, str]], rows: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
    """(every non-loopback listener, those not in ``want``), as evidence lines and rows."""
    seen, unexpected = [], []
    for r in rows:
        if _loopback(r["address"]):
            continue
        seen.append(_socket(r))
        if (r["proto"], r["address"], r["port"]) not in want and (r["proto"], "*", r["port"]) not in want:
            unexpected.append(r)
    return seen, unexpected


# how long FW-003 waits before it reads the sockets again when an unexpected one has no owner
FW003_REREAD_PAUSE_S = 0.5


def fw_003(c, x):
    want = expected_listeners(x)
    seen, unexpected = _unexpected_sockets(want, x.listeners())
    evidence: dict[str, Any] = {"listening": seen, "expected": sorted(f"{p} {a}:{n}" for p, a, n in want)}
    if any(not r["process"] for r in unexpected):
        # A socket with no owning process is a kernel socket or one whose process was closing it
        # while ss read /proc (a client's socket, bound an instant before it connects). Read
        # again: one still there is unexpected; one gone was transient, and the evidence says so.
        time.sleep(FW003_REREAD_PAUSE_S)
        _, again = _unexpected_sockets(want, x.listeners_again())
        still = {(r["proto"], r["address"], r["port"]) for r in again}
        gone = [r for r in unexpected if not r["process"] and (r["proto"], r["address"], r["port"]) not in still]
        unexpected = [r for r in unexpected if r not in gone]
        evidence["read_again"] = [_socket(r) for r in again]
        evidence["transient"] = [_socket(r) for r in gone]
    evidence["unexpected"] = [_socket(r) for r in unexpected]
    return Result.verdict(c.id, x.target.host, not unexpected, evidence,
                          reason_fail=f"unexpected listening sockets: {', '.join(evidence['unexpected'])}")


def _opens_ssh(body: str) -> bool:
    """Does an input rule (without its comment) accept TCP port 22?"""
    if not re.search(r"\baccept$", body):
        return False
    if re.search(r"ct state|iifname \"lo\"|\budp\b|icmp", body):
        return False
    m = re.search(r"tcp dport (\{[^}]*\}|\S+)", body)
    if m:
        ports = re.findall(r"\d+(?:-\d+)?", m.group(1))
        return any(int(p.split("-")[0]) <= 22 <= int(p.split("-")[-1]) for p in ports)
    return "dport" not in body  # accepts any port


def fw_004(c, x):
    mgmt = ipaddress.ip_network(x.mgmt_cidr)
    chains = [ch for ch in _chains(x.nft()) if ch["hook"] == "input"]
    if not chains or not any(ch["policy"] == "drop" for ch in chains):
        return Result.fail(c.id, x.target.host, {"input_chains": len(chains)}, "the input policy accepts: SSH is open to every source")
    ssh_rules, bad = [], []
    for ch in chains:
        for rule in ch["rules"]:
            body = rule.split(" comment ")[0].strip()
            if not _opens_ssh(body):
                continue
            ssh_rules.append(body)
            m = re.search(r"ip saddr (\S+)", body)
            if not m:
                bad.append(f"{body} (any source)")
                continue
            try:
                src = ipaddress.ip_network(m.group(1), strict=False)
            except ValueError:
                bad.append(f"{body} (source {m.group(1)} not understood)")
                continue
            if not src.subnet_of(mgmt):
                bad.append(f"{body} (source {src} is outside management {mgmt})")
    if not ssh_rules:
        return Result.fail(c.id, x.target.host, {"ssh_rules": []}, "no rule admits SSH from management")
    return Result.verdict(c.id, x.target.host, not bad, {"ssh_rules": ssh_rules, "management": str(mgmt), "too_wide": bad},
                          reason_fail=f"SSH accepted beyond management: {'; '.join(bad)}")


def fw_005(c, x):
    # every package the database knows (rc 0 even when none of ours is there), filtered here
    pk = x.out("dpkg-query -W -f='${Package} ${db:Status-Status}\\n'")
    rows = [l.split() for l in pk.splitlines() if l.strip()]
    if not any(r[0] in ("dpkg", "base-files") and r[-1] == "installed" for r in rows):
        return Result.err(c.id, x.target.host, f"the package database lists {len(rows)} package(s) and not dpkg itself: "
                          "the installed packages are unknown")
    installed = sorted(r[0].split(":")[0] for r in rows if r[-1] == "installed" and r[0].split(":")[0] in INSECURE_PACKAGES)
    bins = x.out("for f in " + " ".join(INSECURE_BINARIES) + "; do if [ -e \"$f\" ]; then echo \"$f\"; fi; done").split()
    return Result.verdict(c.id, x.target.host, not installed and not bins, {"packages": installed, "binaries": bins},
                          reason_fail=f"insecure services present: {', '.join(installed + bins)}")


# ------------------------------------------------------------------ WireGuard


def _wg(x: HostCtx, what: str, iface: str = "wg0") -> list[list[str]]:
    r = x.run(f"wg show {iface} {what}")
    if r.rc != 0:
        raise _NoWg((r.stderr or r.stdout).strip()[:200])
    return [l.split("\t") for l in r.stdout.splitlines() if l.strip()]


class _NoWg(Exception):
    pass


def wg_001(c, x):
    """One tunnel per declared hub: wg0 to the primary and, with a standby (wan.hubs[1]), wg1 to it;
    each with exactly that hub as its only peer, at its WAN address and port, with its key."""
    site = x.pf.site_by_id[x.target.host]
    tunnels = [("wg0", x.pf.wan.hub, "the hub", x.hub_pubkey, x.hub_pubkey_error, False)]
    if x.pf.wan.standby is not None:
        tunnels.append((E.WG_STANDBY_IF, x.pf.wan.standby, "the standby hub", x.standby_pubkey,
                        x.standby_pubkey_error, True))
    problems, ev, unknown = [], {}, []
    for iface, hub, who, hub_key, key_err, standby in tunnels:
        try:
            endpoints = _wg(x, "endpoints", iface)
            allowed = _wg(x, "allowed-ips", iface)
        except _NoWg as e:
            return Result.fail(c.id, x.target.host, {iface: "missing"}, f"no WireGuard interface {iface} to {who}: {e}")
        addr = x.out(f"ip -4 -o addr show dev {iface}").split()
        addrs = [a for i, a in enumerate(addr) if i > 0 and addr[i - 1] == "inet"]
        want_ips = set(E.site_allowed_ips(x.pf, site, standby=standby))
        peers = {p[0]: {"endpoint": p[1] if len(p) > 1 else None} for p in endpoints}
        for p in allowed:
            peers.setdefault(p[0], {})["allowed_ips"] = sorted(p[1].split()) if len(p) > 1 else []
        if f"{site.tunnel_address}/32" not in addrs:
            problems.append(f"{iface} address {addrs}, expected {site.tunnel_address}/32")
        if len(peers) != 1:
            problems.append(f"{iface}: {len(peers)} peers, expected {who} only")
        for key, p in peers.items():
            if p.get("endpoint") != f"{hub.wan_address}:{hub.listen_port}":
                problems.append(f"{iface}: peer endpoint {p.get('endpoint')}, expected {hub.wan_address}:{hub.listen_port}")
            if set(p.get("allowed_ips") or []) != want_ips:
                problems.append(f"{iface}: allowed IPs {p.get('allowed_ips')}, expected {sorted(want_ips)}")
            if hub_key and key != hub_key:
                problems.append(f"{iface}: peer public key is not {who}'s")
        if not hub_key:
            unknown.append(f"{who}'s public key could not be read from it ({key_err or 'not read'})")
        one = {"addresses": addrs, "peers": [{"public_key": k, **v} for k, v in peers.items()], "hub_key_compared": bool(hub_key)}
        if standby:
            ev["standby"] = one
        else:
            ev.update(one)
    if problems:
        return Result.fail(c.id, x.target.host, ev, "; ".join(problems))
    if unknown:
        return Result.err(c.id, x.target.host, "; ".join(unknown) + ": the peer cannot be shown to be the hub", ev)
    return Result.ok(c.id, x.target.host, ev)


def wg_002(c, x):
    """A recent handshake on the tunnel to each declared hub: wg0 (the primary) and, with a standby
    (wan.hubs[1]), wg1: the standby carries the site only if its tunnel is alive before it is needed."""
    tunnels = [("wg0", "the hub")]
    if x.pf.wan.standby is not None and x.target.kind == "endpoint":
        tunnels.append((E.WG_STANDBY_IF, "the standby hub"))
    mx = int(c.params.get("max_age_seconds", 300))
    now = None
    ev: dict[str, Any] = {}
    problems = []
    for iface, who in tunnels:
        try:
            hs = _wg(x, "latest-handshakes", iface)
        except _NoWg as e:
            return Result.fail(c.id, x.target.host, {**ev, iface: "missing"}, f"no WireGuard interface {iface} to {who}: {e}")
        if now is None:
            now = int(x.out("date +%s").strip())
        ages = {p[0][:8] + "…": (now - int(p[1]) if len(p) > 1 and p[1] != "0" else None) for p in hs}
        stale = [k for k, a in ages.items() if a is None or a > mx]
        if iface == "wg0":
            ev.update({"handshake_age_s": ages, "max_age_s": mx})
        else:
            ev["standby"] = {"interface": iface, "handshake_age_s": ages}
        if not ages:
            problems.append("no peer" if iface == "wg0" else f"{iface} to {who}: no peer")
        elif stale:
            peers = ", ".join(stale)
            problems.append(f"no handshake within {mx}s with: {peers}" if iface == "wg0" else
                            f"{iface} to {who}: no handshake within {mx}s with: {peers}")
    return Result.verdict(c.id, x.target.host, not problems, ev, reason_fail="; ".join(problems))


def wg_003(c, x):
    rows = x.out(f"stat -c '%U %a %n' {E.WG_DIR} {E.WG_DIR}/* 2>/dev/null || true").splitlines()
    files, bad = [], []
    for r in rows:
        user, mode, name = r.split(" ", 2)
        files.append({"path": name, "owner": user, "mode": mode})
        if user != "root" or int(mode, 8) & 0o077:
            bad.append(f"{name} ({user} {mode})")
    if not any(f["path"] == E.WG_PRIVATE_KEY for f in files):
        return Result.fail(c.id, x.target.host, {"files": files}, f"{E.WG_PRIVATE_KEY} is missing")
    return Result.verdict(c.id, x.target.host, not bad, {"files": files, "too_open": bad}, reason_fail=f"readable by others: {', '.join(bad)}")


# ------------------------------------------------------------------ time


def _chrony_sources_conf(x: HostCtx) -> list[str]:
    """Every server/pool/peer line chronyd reads: chrony.conf (must be readable) and the files of
    its confdir/sourcedir/include directives (Debian's defaults too); an unreadable one is an error."""
    main = x.files([E.CHRONY_CONF])[E.CHRONY_CONF]
    globs = ["/etc/chrony/conf.d/*.conf", "/etc/chrony/sources.d/*.sources"]
    for l in main.splitlines():
        m = re.match(r"\s*(confdir|sourcedir|include)\s+(\S+)", l)
        if m and re.fullmatch(r"[A-Za-z0-9_./*-]+", m.group(2)):
            d, arg = m.group(1), m.group(2)
            globs.append(arg if d == "include" else f"{arg}/*.conf" if d == "confdir" else f"{arg}/*.sources")
    txt = "\n".join(x.files([], sorted(set(globs))).values()) + "\n" + main
    return [l.strip() for l in txt.splitlines() if re.match(r"\s*(server|pool|peer)\s", l)]


def _own_hub(x: HostCtx):
    """The hub a gateway target is: the primary (wan.hub) for the gateway, wan.hubs[1] for the
    standby gateway (its own addresses, time and log service, as the renderer gives it)."""
    return E.as_hub(x.pf, x.target.host).wan.hub


def _hub_field(x: HostCtx, field: str) -> str:
    """The province file's path of a field of the target's own hub."""
    return f"wan.hubs[1].{field}" if x.target.host == E.STANDBY_GATEWAY and x.pf.wan.standby else f"wan.hub.{field}"


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def ntp_001(c, x):
    """Synchronised: a site (or a hub that does not serve time) to one of the declared hubs' time
    servers (the primary's, or the standby's while the primary is away); a hub that serves the WAN's
    time has a normal leap status."""
    hub = _own_hub(x) if x.target.kind == "gateway" else x.pf.wan.hub
    want = E.time_servers(x.pf)
    tracking = x.out("chronyc -n tracking")
    leap = (re.search(r"Leap status\s*:\s*(.+)", tracking) or [None, ""])[1].strip()
    ref = (re.search(r"Reference ID\s*:\s*\S+ \(([^)]*)\)", tracking) or [None, ""])[1].strip()
    sources = x.out("chronyc -n sources").splitlines()
    selected = [l.split()[1] for l in sources if l.startswith("^*")]
    ev = {"leap_status": leap, "reference": ref, "selected_source": selected,
          "expected": want[0] if len(want) == 1 else want}
    if x.target.kind == "gateway" and hub.ntp_server == hub.tunnel_address:
        # the hub is the WAN's time source (orphan mode, local reference)
        ok = leap == "Normal"
        return Result.verdict(c.id, x.target.host, ok, ev, reason_fail=f"hub's clock not serving (leap status {leap!r})")
    ok = leap == "Normal" and len(selected) == 1 and selected[0] in want
    return Result.verdict(c.id, x.target.host, ok, ev,
                          reason_fail=f"not synchronised to {_or(want)} (leap status {leap!r}, selected {selected or 'none'})")


def ntp_002(c, x):
    """The configured time sources: a site's (and a non-serving hub's) are exactly the declared
    hubs' time servers; a serving hub's are exactly its own upstream (its time_upstream)."""
    hub = _own_hub(x) if x.target.kind == "gateway" else x.pf.wan.hub
    lines = _chrony_sources_conf(x)
    servers = sorted({l.split()[1] for l in lines})
    if x.target.kind == "gateway" and hub.ntp_server == hub.tunnel_address:
        want = sorted({t.address for t in hub.time_upstream})
        ok = servers == want
        why = (f"the hub follows {servers}, expected only its upstream {want}" if want else
               f"the hub follows other sources: {servers}")
    else:
        want = E.time_servers(x.pf)
        ok = servers == sorted(want)
        why = (f"time sources {servers}, expected only {want[0]}" if len(want) == 1 else
               f"time sources {servers}, expected exactly the hubs' {sorted(want)}")
    return Result.verdict(c.id, x.target.host, ok, {"sources": lines}, reason_fail=why)


_CHRONY_SOURCE = re.compile(r"^\^([*+\-?x~ ])\s+(\S+)\s+(\d+)\s+\S+\s+([0-7]+)\s")


def ntp_003(c, x):
    """The hub, which serves the WAN's time, follows an authoritative upstream source of the
    province file (wan.hub.time_upstream): chronyd has selected one of them (``^*`` in ``chronyc
    -N sources``, names as configured) and its reference is that source, not its own clock. Each
    declared hub against its own upstream (the standby's: wan.hubs[1].time_upstream)."""
    hub = _own_hub(x)
    want = [t.address for t in hub.time_upstream]
    if not hub.serves_time:
        return Result.not_assessed(c.id, x.target.host, f"the hub does not serve the WAN's time ({_hub_field(x, 'ntp_server')} is "
                                   f"{hub.ntp_server}): that server's own upstream is assessed on it",
                                   {"ntp_server": hub.ntp_server, "would_settle": "the time server's chronyc sources, read on it"})
    tracking = x.out("chronyc -n tracking")
    m = re.search(r"Reference ID\s*:\s*(\S+)\s*\(([^)]*)\)", tracking)
    if not m:
        raise EvidenceUnreadable(f"`chronyc -n tracking` on {x.target.host} printed no reference")
    ref_id, ref = m.group(1), m.group(2).strip()
    stratum = (re.search(r"Stratum\s*:\s*(\d+)", tracking) or [None, None])[1]
    out = x.out("chronyc -N sources")
    if "Name/IP address" not in out:
        raise EvidenceUnreadable(f"`chronyc -N sources` on {x.target.host} printed no source table")
    rows = []
    for line in out.splitlines():
        s = _CHRONY_SOURCE.match(line)
        if s:
            rows.append({"state": s.group(1), "source": s.group(2), "stratum": int(s.group(3)), "reach": s.group(4)})
    selected = [r["source"] for r in rows if r["state"] == "*"]
    ev = {"upstream": [f"{t.address} ({t.name})" for t in hub.time_upstream], "sources": rows, "selected": selected,
          "reference_id": ref_id, "reference": ref, "stratum": stratum}
    if not want:
        return Result.fail(c.id, x.target.host, ev, "the province file names no upstream time source "
                           f"({_hub_field(x, 'time_upstream')}): the hub serves its own free-running clock")
    if selected and selected[0] in want and ref_id != "7F7F0101":
        return Result.ok(c.id, x.target.host, ev)
    ups = ", ".join(f"{r['source']} reach {r['reach']}" for r in rows if r["source"] in want) or "not configured"
    if ref_id == "7F7F0101" or ref.upper() == "LOCAL":
        why = f"the hub is free-running: it serves its own clock (local reference); its upstream sources {want}: {ups}"
    else:
        why = f"the hub's reference is {ref or ref_id}, not one of its upstream sources {want}: {ups}"
    return Result.fail(c.id, x.target.host, ev, why)


# ------------------------------------------------------------------ logs


def _rsyslog_conf(x: HostCtx) -> str:
    """rsyslog.conf (must be readable) and every /etc/rsyslog.d/*.conf (each must be readable)."""
    return "\n".join(x.files(["/etc/rsyslog.conf"], ["/etc/rsyslog.d/*.conf"]).values())


def _statements(conf: str) -> list[str]:
    """Non-comment statements, with action(...) continuation lines joined."""
    out, cur, depth = [], "", 0
    for raw in conf.splitlines():
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip() and depth == 0:
            continue
        cur += (" " if cur else "") + line.strip()
        depth += line.count("(") - line.count(")")
        if depth <= 0:
            out.append(cur)
            cur, depth = "", 0
    if cur:
        out.append(cur)
    return out


def log_001(c, x):
    """A hub that is the log server receives the sites' logs; every other host forwards over TCP to
    each declared hub's log server (with a standby: the primary's, and the standby's for failover)."""
    hub = _own_hub(x) if x.target.kind == "gateway" else x.pf.wan.hub
    stm = _statements(_rsyslog_conf(x))
    valid = x.run("rsyslogd -N1")
    if x.target.kind == "gateway" and hub.log_server == hub.tunnel_address:
        recv = [s for s in stm if "imtcp" in s and f'port="{E.SYSLOG_PORT}"' in s]
        ok = bool(recv) and valid.rc == 0
        return Result.verdict(c.id, x.target.host, ok, {"receivers": recv, "config_valid": valid.rc == 0},
                              reason_fail="the hub does not receive the sites' logs" if not recv else "rsyslog configuration does not validate")
    fwd = [s for s in stm if "omfwd" in s]
    legacy_all = [s for s in stm if "@@" in s]
    missing = []
    for server in E.log_servers(x.pf):
        good = [s for s in fwd if f'target="{server}"' in s and f'port="{E.SYSLOG_PORT}"' in s and 'protocol="tcp"' in s]
        legacy = [s for s in legacy_all if re.search(rf"@@{re.escape(server)}(:{E.SYSLOG_PORT})?\b", s)]
        if not (good or legacy):
            missing.append(server)
    want = [f"tcp {a}:{E.SYSLOG_PORT}" for a in E.log_servers(x.pf)]
    ok = not missing and valid.rc == 0
    return Result.verdict(c.id, x.target.host, ok, {"forwarding": fwd + legacy_all, "expected": want[0] if len(want) == 1 else want,
                                                    "config_valid": valid.rc == 0},
                          reason_fail="rsyslog configuration does not validate" if not missing else
                          "; ".join(f"no forwarding to {a}:{E.SYSLOG_PORT}/tcp" for a in missing))


def log_002(c, x):
    pids = x.run("pgrep -x rsyslogd").stdout.split()
    return Result.verdict(c.id, x.target.host, bool(pids), {"rsyslogd_pids": pids}, reason_fail="rsyslogd is not running")


INFO_OR_BELOW = {"*", "debug", "info", "=info", "notice", "=notice"}


def _selects_auth(selector: str) -> bool:
    """Does an rsyslog selector record auth or authpriv events (at info level)?"""
    added: set[str] = set()
    removed: set[str] = set()
    for part in selector.split(";"):
        if "." not in part:
            continue
        facs, pri = part.strip().rsplit(".", 1)
        for f in facs.split(","):
            if pri == "none":
                removed.add(f)
                added.discard(f)
            elif pri in INFO_OR_BELOW:
                added.add(f)
                removed.discard(f)
    return any((f in added or ("*" in added and f not in removed)) for f in ("auth", "authpriv"))


def log_003(c, x):
    stm = _statements(_rsyslog_conf(x))
    rules = []
    for s in stm:
        if s.startswith(("$", "module(", "input(", "template(", "ruleset(", "global(", "include(", "}")):
            continue
        sel = s.split()[0]
        if "." in sel and _selects_auth(sel):
            rules.append(s[:160])
    return Result.verdict(c.id, x.target.host, bool(rules), {"rules_recording_auth": rules},
                          reason_fail="no rule records auth/authpriv events")


_ROTATE_PERIOD_DAYS = {"hourly": 1 / 24, "daily": 1, "weekly": 7, "monthly": 28, "yearly": 365}


def _logrotate_stanzas(text: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """(top-level directives, stanzas) of a logrotate configuration: each stanza its path
    patterns and its directives (the last value of each), the top-level ones seen before it
    applied as defaults (logrotate's own rule)."""
    glob: dict[str, str] = {}
    stanzas: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    pending: list[str] = []
    in_script = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if in_script:
            in_script = line != "endscript"
            continue
        if cur is None:
            if "{" in line:
                pats = (" ".join(pending) + " " + line.split("{", 1)[0]).split()
                cur = {"paths": [p.strip('"') for p in pats], "directives": dict(glob)}
                pending = []
                rest = line.split("{", 1)[1].strip()
                if rest.startswith("}"):
                    stanzas.append(cur)
                    cur = None
                continue
            if line.startswith("/") or line.startswith('"'):
                pending.append(line)
                continue
            k, _, v = line.partition(" ")
            glob[k] = v.strip()
            continue
        if line.startswith("}"):
            stanzas.append(cur)
            cur = None
            continue
        if line in ("postrotate", "prerotate", "firstaction", "lastaction", "preremove"):
            in_script = True
            continue
        k, _, v = line.partition(" ")
        cur["directives"][k] = v.strip()
    return glob, stanzas


def _retention_days(d: dict[str, str]) -> tuple[float | None, str]:
    """Days a rotated log is kept under these directives (None: not bounded by time), and how."""
    # no interval: rotated on every run of logrotate (daily on Debian): the shortest reading
    period = next((p for p in ("hourly", "daily", "weekly", "monthly", "yearly") if p in d), "daily")
    if "size" in d:
        return 0.0, f"rotated by size ({d['size']}): the days kept depend on the volume, not the calendar"
    try:
        rotate = int(d.get("rotate", "0"))
    except ValueError:
        return 0.0, f"rotate {d.get('rotate')!r} not understood"
    kept = None if rotate < 0 else rotate * _ROTATE_PERIOD_DAYS[period]
    how = f"{period}, rotate {rotate}" if rotate >= 0 else f"{period}, rotate -1 (kept until maxage)"
    if "maxage" in d:
        try:
            age = int(d["maxage"])
        except ValueError:
            return 0.0, f"maxage {d['maxage']!r} not understood"
        kept = age if kept is None else min(kept, age)
        how += f", maxage {age}"
    if "maxsize" in d:
        kept = 0.0
        how += f", maxsize {d['maxsize']} (rotated early when the volume grows: the days kept are not guaranteed)"
    return kept, how


def log_004(c, x):
    """The central log server keeps the sites' logs at least the province's retention (and the
    security level's minimum): read from the log server's own logrotate configuration."""
    from infra.model import LOG_RETENTION_MIN_DAYS

    hub = _own_hub(x)
    level_min = LOG_RETENTION_MIN_DAYS.get(x.target.level, 0)
    need = max(x.pf.datacenter.log_retention_days, level_min)
    if hub.log_server != hub.tunnel_address:
        return Result.not_assessed(c.id, x.target.host, f"the central log server is {hub.log_server}, not the hub: its "
                                   "retention is read on that server (assessed by hand)",
                                   {"log_server": hub.log_server, "required_days": need,
                                    "would_settle": "its logrotate configuration and its oldest kept log"})
    files = x.files(["/etc/logrotate.conf"], ["/etc/logrotate.d/*"])
    # by path: the audit account's PATH has no sbin
    installed = x.run("for p in /usr/sbin/logrotate /usr/bin/logrotate /sbin/logrotate; do if [ -x \"$p\" ]; then echo \"$p\"; exit 0; fi; done; exit 1")
    sample = f"{E.REMOTE_LOG_DIR}/{x.pf.wan.sites[0].id}.log"
    import fnmatch

    glob, _ = _logrotate_stanzas(files["/etc/logrotate.conf"])
    covering = []
    for path, text in files.items():
        _, stanzas = _logrotate_stanzas(text) if path == "/etc/logrotate.conf" else _logrotate_stanzas(
            "\n".join(f"{k} {v}" for k, v in glob.items()) + "\n" + text)
        for st in stanzas:
            if any(fnmatch.fnmatch(sample, p) for p in st["paths"]):
                kept, how = _retention_days(st["directives"])
                covering.append({"file": path, "paths": st["paths"], "kept_days": kept, "how": how})
    ev = {"required_days": need, "province_days": x.pf.datacenter.log_retention_days, "level_minimum_days": level_min,
          "log": sample, "rotation": covering, "logrotate_installed": installed.rc == 0}
    if installed.rc != 0:
        # nothing rotates: the logs are kept as long as the disk holds them
        return Result.ok(c.id, x.target.host, {**ev, "note": "logrotate is not installed: nothing removes the remote logs"})
    if not covering:
        return Result.ok(c.id, x.target.host, {**ev, "note": f"no logrotate rule covers {sample}: nothing removes it"})
    short = [r for r in covering if r["kept_days"] is not None and r["kept_days"] < need]
    rules = "; ".join(f"{r['file']}: {r['how']}" for r in short)
    why = f"the log server keeps {sample} {min(r['kept_days'] for r in short):g} days, {need} required ({rules})" if short else ""
    return Result.verdict(c.id, x.target.host, not short, ev, reason_fail=why)


# ------------------------------------------------------------------ node_exporter


def mon_001(c, x):
    port = str(E.NODE_EXPORTER_PORT)
    socks = [f"{r['address']}:{r['port']}" for r in x.listeners() if r["port"] == port and r["proto"] == "tcp"]
    want = f"{x.target.tunnel_address}:{port}"
    ok = socks == [want]
    return Result.verdict(c.id, x.target.host, ok, {"sockets": socks, "expected": want},
                          reason_fail="node_exporter is not listening" if not socks else f"listens on {socks}, expected only {want}")


def mon_002(c, x):
    # one cheap collector (uname) is enough to show it serves metrics: node_exporter_build_info
    # comes with any; a full scrape of every collector cost more CPU on the host than the rest of
    # this control's evidence. Prometheus scrapes everything (the SLA checks read those metrics).
    url = f"http://{x.target.tunnel_address}:{E.NODE_EXPORTER_PORT}/metrics?collect%5B%5D=uname"
    r = x.run(f"curl -s -m 5 {shlex.quote(url)}")
    ok = r.rc == 0 and "node_exporter_build_info" in r.stdout
    return Result.verdict(c.id, x.target.host, ok, {"url": url, "curl_rc": r.rc, "build_info": "node_exporter_build_info" in r.stdout},
                          reason_fail=f"no metrics at {url} (curl rc {r.rc})")


# ------------------------------------------------------------------ sysctls


def _sysctls(c: Control, x: HostCtx, want: dict[str, str]) -> Result:
    got = {k: x.sysctl(k) for k in want}
    bad = {k: v for k, v in got.items() if v != want[k]}
    return Result.verdict(c.id, x.target.host, not bad, {"values": got, "expected": want},
                          reason_fail=", ".join(f"{k}={v} (want {want[k]})" for k, v in bad.items()))


def _both(key: str, v: str) -> dict[str, str]:
    return {f"net.ipv4.conf.all.{key}": v, f"net.ipv4.conf.default.{key}": v}


# What each network-namespace key control expects (DCOPS-SYS-001..007).
SYS_WANT: dict[str, dict[str, str]] = {
    "DCOPS-SYS-001": {**_both("accept_redirects", "0"), **_both("secure_redirects", "0")},
    "DCOPS-SYS-002": _both("send_redirects", "0"),
    "DCOPS-SYS-003": _both("accept_source_route", "0"),
    "DCOPS-SYS-004": _both("rp_filter", "1"),
    "DCOPS-SYS-005": {"net.ipv4.tcp_syncookies": "1"},
    "DCOPS-SYS-006": _both("log_martians", "1"),
    "DCOPS-SYS-007": {"net.ipv4.icmp_echo_ignore_broadcasts": "1"},
}
SYSCTL_KEYS: tuple[str, ...] = tuple(dict.fromkeys([k for w in SYS_WANT.values() for k in w] + list(E.MACHINE_WIDE_SYSCTLS)))
"""Every kernel key a host control reads: one ``sysctl`` process per host reads them all."""
SYSCTL_COMMAND = "sysctl -e " + " ".join(SYSCTL_KEYS)


def sys_001(c, x):
    return _sysctls(c, x, SYS_WANT["DCOPS-SYS-001"])


def sys_002(c, x):
    return _sysctls(c, x, SYS_WANT["DCOPS-SYS-002"])


def sys_003(c, x):
    return _sysctls(c, x, SYS_WANT["DCOPS-SYS-003"])


def sys_004(c, x):
    return _sysctls(c, x, SYS_WANT["DCOPS-SYS-004"])


def sys_005(c, x):
    return _sysctls(c, x, SYS_WANT["DCOPS-SYS-005"])


def sys_006(c, x):
    return _sysctls(c, x, SYS_WANT["DCOPS-SYS-006"])


def sys_007(c, x):
    return _sysctls(c, x, SYS_WANT["DCOPS-SYS-007"])


def sys_008(c, x):
    """Machine-wide kernel hardening (kernel.*, fs.*, net.core.bpf_jit_harden). In a container
    these keys are the container host's: reported as an exception (not assessed), with the
    values seen, never a pass."""
    want = {k: v for k, v in E.sysctls_for(True) if k in E.MACHINE_WIDE_SYSCTLS}
    virt = x.run("systemd-detect-virt -c")  # exit 0 and its name in a container; "none" and exit 1 outside
    if virt.rc not in (0, 1):
        raise EvidenceUnreadable(f"`systemd-detect-virt -c` failed (rc {virt.rc}): {(virt.stderr or virt.stdout).strip()[:200]}")
    ctr = virt.stdout.strip() if virt.rc == 0 else ""
    vals = x.sysctls()
    got = {k: vals.get(k) or None for k in want}
    bad = {k: v for k, v in got.items() if v != want[k]}
    ev = {"values": got, "expected": want, "container": ctr or None}
    if ctr:
        if not bad:
            return Result.ok(c.id, x.target.host, ev)
        return Result.not_assessed(c.id, x.target.host, f"exception: this host is a container ({ctr}); machine-wide kernel "
                                   f"keys are its host's, not the endpoint's: {', '.join(f'{k}={v} (want {want[k]})' for k, v in bad.items())}",
                                   {**ev, "would_settle": "the container host's own hardening, checked on that host"})
    unread = [k for k, v in got.items() if v is None]
    if unread:
        return Result.err(c.id, x.target.host, f"could not read {', '.join(unread)}", ev)
    return Result.verdict(c.id, x.target.host, not bad, ev,
                          reason_fail=", ".join(f"{k}={v} (want {want[k]})" for k, v in bad.items()))


# ------------------------------------------------------------------ accounts


def _passwd(x: HostCtx) -> list[list[str]]:
    return [l.split(":") for l in x.out("getent passwd").splitlines() if l.count(":") >= 6]


def usr_001(c, x):
    """Every account that can log in is root, the automation or audit account, or a named
    administrator of the province file; the administrators' group holds only those."""
    admins = {a.name for a in x.pf.wan.administrators}
    allowed = {"root", E.ADMIN_USER, E.AUDIT_USER} | admins
    login = {u[0]: u[6] for u in _passwd(x) if u[6] not in NOLOGIN}
    extra = sorted(set(login) - allowed)
    members = _admins_group(x) or []
    strangers = sorted(set(members) - admins)
    ev = {"login_accounts": login, "allowed": sorted(allowed), "unexpected": extra, E.ADMINS_GROUP: members}
    if extra:
        return Result.fail(c.id, x.target.host, ev, f"unexpected accounts with a login shell: {', '.join(extra)}")
    return Result.verdict(c.id, x.target.host, not strangers, ev,
                          reason_fail=f"members of {E.ADMINS_GROUP} not named in the province file: {', '.join(strangers)}")


def usr_002(c, x):
    zero = [u[0] for u in _passwd(x) if u[2] == "0"]
    return Result.verdict(c.id, x.target.host, zero == ["root"], {"uid0": zero}, reason_fail=f"UID 0 accounts: {', '.join(zero)}")


def usr_003(c, x):
    empty = x.out("awk -F: '($2 == \"\") {print $1}' /etc/shadow").split()
    return Result.verdict(c.id, x.target.host, not empty, {"empty_password": empty}, reason_fail=f"empty passwords: {', '.join(empty)}")


_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) (.*?) \[[^\]]*\]\)")


def upd_001(c, x):
    """Security updates pending on the host, from apt's own data (no fetch: apt-get -s over the
    lists the host has). Lists older than ``max_list_age_days`` (or none) cannot show that nothing
    is pending: not assessed, with when they were last updated; never a pass."""
    max_age = float(c.params.get("max_list_age_days", 7))
    cmd = ("date +%s; for f in /var/lib/apt/lists/*Release /var/lib/apt/periodic/update-success-stamp; do "
           "if [ -e \"$f\" ]; then stat -c '%Z %n' -- \"$f\" || exit 1; fi; done")
    stamps = x.out(cmd).split("\n")
    now = int(stamps[0].strip())
    seen = [(int(l.split(" ", 1)[0]), l.split(" ", 1)[1]) for l in stamps[1:] if l.strip()]
    settle = {"would_settle": "apt-get update from the province's mirror (apt's daily timer)"}
    lists = {"lists_updated": None, "lists_age_days": None, "max_list_age_days": max_age, "lists": [n for _, n in seen]}
    if not seen:  # no lists: apt knows no version but the installed ones, its simulation can show nothing
        return Result.not_assessed(c.id, x.target.host, "apt has no package lists on this host (apt-get update never ran "
                                   "against a mirror): pending security updates cannot be known", {**lists, **settle})
    newest = max(t for t, _ in seen)
    age_days = round((now - newest) / 86400, 2)
    lists.update(lists_updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest)), lists_age_days=age_days)
    sim = x.run("apt-get -s -o Debug::NoLocking=1 -o APT::Get::Show-User-Simulation-Note=false dist-upgrade")
    if sim.rc != 0:
        raise EvidenceUnreadable(f"`apt-get -s dist-upgrade` failed on {x.target.host} (rc {sim.rc}): "
                                 f"{(sim.stderr or sim.stdout).strip()[-300:]}")
    pending = []
    for line in sim.stdout.splitlines():
        m = _INST.match(line)
        if m and m.group(2) == m.group(3):
            continue  # the same version from the mirror (a record apt does not merge with the installed one): no update
        if m:
            pending.append({"package": m.group(1), "installed": m.group(2), "candidate": m.group(3), "origin": m.group(4),
                            "security": bool(re.search(r"security", m.group(4), re.I))})
    sec = [p for p in pending if p["security"]]
    ev = {**lists, "pending_security": sec, "pending_other": len(pending) - len(sec)}
    if sec:
        return Result.fail(c.id, x.target.host, ev, f"{len(sec)} security update(s) pending: "
                           + ", ".join(f"{p['package']} {p['installed']} -> {p['candidate']} ({p['origin']})" for p in sec[:10]))
    if age_days > max_age:
        return Result.not_assessed(c.id, x.target.host, f"apt's package lists were last updated {age_days:g} days ago "
                                   f"(> {max_age:g}): they cannot show that no security update is pending", {**ev, **settle})
    return Result.ok(c.id, x.target.host, ev)


def _key_ids(text: str) -> set[str]:
    """'TYPE BASE64' of each key line of an authorized_keys file."""
    return {" ".join(l.split()[:2]) for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")}


def usr_004(c, x):
    """The named administrators of the province file each have their own account: a login shell,
    in the administrators' group, exactly their keys from the province file."""
    admins = x.pf.wan.administrators
    if not admins:
        return Result.fail(c.id, x.target.host, {"administrators": []},
                           "the province file names no administrator (wan.administrators): the endpoints are administered "
                           "through a shared account")
    pw = {u[0]: u for u in _passwd(x)}
    members = set(_admins_group(x) or [])
    problems, ev = [], {}
    for a in admins:
        u = pw.get(a.name)
        keys_file = f"{E.ADMIN_KEYS_DIR}/{a.name}.keys"
        r = x.run(f"cat -- {shlex.quote(keys_file)}")
        have = _key_ids(r.stdout) if r.rc == 0 else None
        want = {" ".join(k.split()[:2]) for k in a.ssh_keys}
        ev[a.name] = {"account": bool(u), "shell": u[6] if u else None, "in_group": a.name in members,
                      "keys": len(have) if have is not None else None, "keys_expected": len(want)}
        if not u:
            problems.append(f"{a.name}: no account")
            continue
        if u[6] in NOLOGIN:
            problems.append(f"{a.name}: no login shell ({u[6]})")
        if a.name not in members:
            problems.append(f"{a.name}: not in {E.ADMINS_GROUP}")
        if have is None:
            problems.append(f"{a.name}: no keys file {keys_file}")
        elif have != want:
            problems.append(f"{a.name}: keys differ from the province file ({len(have - want)} unknown, {len(want - have)} missing)")
    return Result.verdict(c.id, x.target.host, not problems, ev, reason_fail="; ".join(problems))


def _sudo_lines(text: str) -> list[str]:
    """sudoers statements: comments dropped (not #include), continuation lines joined."""
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") and not line.startswith(("#include", "#includedir")):
            continue
        line = re.sub(r"\s#(?!include).*$", "", line) if "#" in line and not line.startswith("#include") else line
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            out.append(" ".join(cur.split()))
        cur = ""
    return out


def usr_005(c, x):
    """No sudo rule lets anyone run every command without authenticating (NOPASSWD: ALL, or
    Defaults !authenticate); the audit account's only rule is the evidence collector."""
    raw = x.out(E.SUDOERS_EVIDENCE)
    parts = raw.split("\0")
    files = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if "/etc/sudoers" not in files:
        raise EvidenceUnreadable(f"the sudo rules could not be read on {x.target.host} (no /etc/sudoers in the answer)")
    nopass_all, no_auth, nopass_other = [], [], []
    for path, text in sorted(files.items()):
        name = path.rsplit("/", 1)[-1]
        if path != "/etc/sudoers" and ("." in name or name.endswith("~")):
            continue  # sudo skips these in an includedir
        for line in _sudo_lines(text):
            if line.startswith("Defaults"):
                if re.search(r"!\s*authenticate\b", line):
                    no_auth.append(f"{path}: {line}")
                continue
            if re.match(r"(User|Runas|Host|Cmnd)_Alias\b", line) or line.startswith(("#include", "@include")):
                continue
            for m in re.finditer(r"\bNOPASSWD\s*:\s*(.*?)(?=\b(?:PASSWD|NOEXEC|EXEC|SETENV|NOSETENV|LOG_INPUT|LOG_OUTPUT)\s*:|$)", line):
                cmds = [cm.strip() for cm in m.group(1).split(",") if cm.strip()]
                if any(cm == "ALL" or cm.startswith("ALL ") or cm.endswith(" ALL") for cm in cmds):
                    nopass_all.append(f"{path}: {line}")
                elif cmds != [f'{E.COLLECTOR} ""']:
                    nopass_other.append(f"{path}: {line}")
    ev = {"files": sorted(files), "nopasswd_all": nopass_all, "no_authenticate": no_auth, "nopasswd_other": nopass_other}
    bad = nopass_all + no_auth
    return Result.verdict(c.id, x.target.host, not bad, ev,
                          reason_fail=f"sudo runs every command without authentication for: {'; '.join(bad)}")


CONTROLS: dict[str, Callable[[Control, HostCtx], Result]] = {
    "DCOPS-SSH-001": ssh_001, "DCOPS-SSH-002": ssh_002, "DCOPS-SSH-003": ssh_003, "DCOPS-SSH-004": ssh_004,
    "DCOPS-SSH-005": ssh_005, "DCOPS-SSH-006": ssh_006, "DCOPS-SSH-007": ssh_007, "DCOPS-SSH-008": ssh_008,
    "DCOPS-SSH-009": ssh_009, "DCOPS-SSH-010": ssh_010, "DCOPS-SSH-011": ssh_011, "DCOPS-SSH-012": ssh_012,
    "DCOPS-FW-001": fw_001, "DCOPS-FW-002": fw_002, "DCOPS-FW-003": fw_003, "DCOPS-FW-004": fw_004, "DCOPS-FW-005": fw_005,
    "DCOPS-WG-001": wg_001, "DCOPS-WG-002": wg_002, "DCOPS-WG-003": wg_003,
    "DCOPS-NTP-001": ntp_001, "DCOPS-NTP-002": ntp_002,
    "DCOPS-LOG-001": log_001, "DCOPS-LOG-002": log_002, "DCOPS-LOG-003": log_003,
    "DCOPS-MON-001": mon_001, "DCOPS-MON-002": mon_002,
    "DCOPS-SYS-001": sys_001, "DCOPS-SYS-002": sys_002, "DCOPS-SYS-003": sys_003, "DCOPS-SYS-004": sys_004,
    "DCOPS-SYS-005": sys_005, "DCOPS-SYS-006": sys_006, "DCOPS-SYS-007": sys_007, "DCOPS-SYS-008": sys_008,
    "DCOPS-USR-001": usr_001, "DCOPS-USR-002": usr_002, "DCOPS-USR-003": usr_003,
    "DCOPS-USR-004": usr_004, "DCOPS-USR-005": usr_005,
}

# the hub's upstream time, the log server's retention, pending security updates (issue 16)
CONTROLS.update({"DCOPS-NTP-003": ntp_003, "DCOPS-LOG-004": log_004, "DCOPS-UPD-001": upd_001})


# ------------------------------------------------------------------ running


def targets(pf: ProvinceFile, names: set[str] | None = None) -> list[Target]:
    hub = pf.wan.hub
    level = pf.province.security_level
    out = [Target(E.GATEWAY, "gateway", hub.wan_address, hub.tunnel_address, level)]
    if pf.wan.standby is not None:
        sb = pf.wan.standby
        out.append(Target(E.STANDBY_GATEWAY, "gateway", sb.wan_address, sb.tunnel_address, level))
    out += [Target(s.id, "endpoint", s.wan_address, s.tunnel_address, level) for s in pf.wan.sites]
    return [t for t in out if names is None or t.host in names]


def connect(t: Target, ssh_config: Path, control_dir: Path, timeout: int = 15, user: str | None = None,
            master: bool = True) -> Any:
    """testinfra over the stack's ssh_config: as its user with sudo, or as ``user`` (the audit
    account) without sudo.

    ``master``: keep one SSH connection open for the host's commands (a ControlMaster, closed by
    :func:`close_master`). A host whose evidence comes in one round trip (the plan knows its
    commands) needs none: one plain connection, no master to start and stop.

    Evidence is decoded as UTF-8 (Debian's locale; a non-ASCII output, e.g. a Vietnamese name in
    ``getent passwd``, would otherwise make testinfra ask the host for its encoding over one more
    SSH exec and a Python start, on every host)."""
    host = testinfra.get_host(
        f"ssh://{user + '@' if user else ''}{t.address}",
        ssh_config=str(ssh_config),
        sudo=user is None,
        controlpersist=120 if master else 0,
        controlpath=str(control_dir / f"{t.host}.sock") if master else None,
        timeout=timeout,
    )
    host.backend._encoding = "UTF-8"  # testinfra's cache of BaseBackend.get_encoding (pinned testinfra)
    return host


def close_master(t: Target, ssh_config: Path, control_dir: Path) -> None:
    import subprocess

    sock = control_dir / f"{t.host}.sock"
    if sock.exists():
        subprocess.run(["ssh", "-F", str(ssh_config), "-o", f"ControlPath={sock}", "-O", "exit", t.address],
                       capture_output=True, timeout=10)


def check_host(t: Target, pf: ProvinceFile, ssh_config: Path, control_dir: Path, only: set[str] | None = None,
               hub_pubkey: str | None = None, on_result: Callable[[Result], None] | None = None,
               plan: CommandPlan | None = None, hub_key_error: str = "",
               standby_pubkey: str | None = None, standby_key_error: str = "", audit_user: str | None = None) -> list[Result]:
    """Every host control on one host (run inside the management namespace)."""
    ids = [cid for cid in CONTROLS if (not only or cid in only)]
    results: list[Result] = []
    planned = plan.commands(t) if plan is not None else []
    # a host whose commands the plan knows needs one round trip: no ControlMaster to start and stop
    master = not (planned and (audit_user or plan is not None))
    host = connect(t, ssh_config, control_dir, user=audit_user, master=master)
    x = HostCtx(t, pf, host, hub_pubkey, hub_pubkey_error=hub_key_error, standby_pubkey=standby_pubkey,
                standby_pubkey_error=standby_key_error)
    x.audit_user = audit_user
    reachable, why = False, ""
    for attempt in range(3):  # a host whose sshd is being reloaded refuses for an instant
        try:
            # the first round trip is the probe: the evidence itself where there is a plan or an
            # audit account (ssh's own failure is exit 255: testinfra raises), else `true`
            if plan is not None or audit_user:
                x.prefetch(planned, must_run=True)
                reachable = True
            else:
                probe = host.run("true")
                reachable = probe.rc == 0
                why = (probe.stderr or probe.stdout).strip()[:300]
        except Exception as e:
            reachable, why = False, f"{e.__class__.__name__}: {e}"
        if reachable:
            break
        time.sleep(1 + attempt)
    for cid in ids:
        c = catalog().get(cid)
        t0 = time.monotonic()
        if t.kind not in c.applies_to:
            r = Result.skip(cid, t.host, f"applies to {', '.join(c.applies_to)}, not a {t.kind}")
        elif not c.applies_at(t.level):
            r = Result.skip(cid, t.host, f"applies at levels {c.levels}; host is level {t.level}")
        elif not reachable:
            r = Result.err(cid, t.host, f"host unreachable over SSH as {audit_user or E.ADMIN_USER} from management: {why}")
        else:
            try:
                r = CONTROLS[cid](c, x)
            except Exception as e:
                r = Result.err(cid, t.host, f"{e.__class__.__name__}: {e}")
        r.duration_s = round(time.monotonic() - t0, 3)
        results.append(r)
        if on_result:
            on_result(r)
    if reachable and plan is not None:
        plan.learn(t, [k for k in x.cache if not k.startswith("__")])
    if master:
        try:
            close_master(t, ssh_config, control_dir)
        except Exception:
            pass
    return results


def hub_public_key(pf: ProvinceFile, ssh_config: Path, control_dir: Path,
                   chosen_targets: list[Target] | None = None, name: str = E.GATEWAY, audit_user: str | None = None) -> tuple[str | None, str]:
    """A hub's WireGuard public key (``name``: the gateway, or the standby), read on it, or (None,
    why it could not be read)."""
    t = next((t for t in chosen_targets if t.host == name), None) if chosen_targets else targets(pf, {name})[0]
    if t is None:
        t = targets(pf, {name})[0]
    try:
        if audit_user:  # the evidence collector answers it (one of its fixed commands)
            hx = HostCtx(t, pf, connect(t, ssh_config, control_dir, user=audit_user), audit_user=audit_user)
            hx.prefetch([])
            r = hx.run("wg show wg0 public-key")
        else:
            r = connect(t, ssh_config, control_dir).run("wg show wg0 public-key")
    except Exception as e:
        return None, f"gateway unreachable: {e.__class__.__name__}: {e}"
    key = r.stdout.strip()
    if r.rc != 0:
        return None, f"`wg show wg0 public-key` failed on the gateway (rc {r.rc}): {(r.stderr or r.stdout).strip()[:200]}"
    if not E.valid_public_key(key):
        return None, "`wg show wg0 public-key` on the gateway printed no WireGuard public key"
    return key, ""


# Hosts checked at once: each is an SSH connection and a thread here, and a few short processes on
# its host. 50 held the full check of 700 lab hosts within 2x the SSH floor on two cores.
DEFAULT_PARALLEL = 50


def check_hosts(access, pf: ProvinceFile, names: set[str] | None = None, only: set[str] | None = None,
                parallel: int = DEFAULT_PARALLEL, on_result: Callable[[Result], None] | None = None,
                present: set[str] | None = None, control_root: Path | None = None) -> list[Result]:
    """Every host control on every (selected) host, hosts in parallel, over SSH.

    ``access``: the stack's SSH access (:class:`infra.environment_ssh.SshAccess`: its ssh_config
    holds the user, identity, known_hosts and jump hosts; ``addresses`` the SSH address of each
    host). ``present``: the hosts that exist in the environment (others are skipped, with the
    reason). Runs where dcops runs: the environment's management namespace, if it has one.
    """
    ssh_config = access.config
    audit_user = getattr(access, "audit_user", None)  # the environment's read-only account (wan.audit_user)
    chosen = targets(pf, names)
    for t in chosen:
        t.address = access.addresses.get(t.host, t.address)
    started = set(present) if present is not None else {t.host for t in chosen} | {E.GATEWAY}
    out: list[Result] = []
    if control_root is not None:
        control_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="dcops-check-", dir=control_root) as d:
        control_dir = Path(d)
        gw = targets(pf, {E.GATEWAY})
        gw[0].address = access.addresses.get(E.GATEWAY, gw[0].address)
        want_hub = (not only or "DCOPS-WG-001" in only) and E.GATEWAY in started
        hub_key, hub_err = (hub_public_key(pf, ssh_config, control_dir, gw, audit_user=audit_user) if want_hub else
                            (None, "the gateway is not in this environment (wan.hosts)" if E.GATEWAY not in started else "not read"))
        sb_key, sb_err = None, "no standby hub declared"
        if pf.wan.standby is not None:
            sgw = targets(pf, {E.STANDBY_GATEWAY})
            sgw[0].address = access.addresses.get(E.STANDBY_GATEWAY, sgw[0].address)
            want_sb = (not only or "DCOPS-WG-001" in only) and E.STANDBY_GATEWAY in started
            sb_key, sb_err = (hub_public_key(pf, ssh_config, control_dir, sgw, E.STANDBY_GATEWAY, audit_user=audit_user) if want_sb else
                              (None, "the standby gateway is not in this environment (wan.hosts)"
                               if E.STANDBY_GATEWAY not in started else "not read"))

        plan = CommandPlan()

        def one(t: Target) -> list[Result]:
            if t.host not in started:
                return [Result.skip(cid, t.host, "host not in this environment (wan.hosts)") for cid in CONTROLS
                        if not only or cid in only]
            return check_host(t, pf, ssh_config, control_dir, only, hub_key, on_result, plan, hub_err, sb_key, sb_err, audit_user=audit_user)

        # one host of each kind first, alone: it teaches the plan the commands the controls run
        first: dict[str, Target] = {}
        for t in chosen:
            if t.host in started and t.kind not in first:
                first[t.kind] = t
        rest = [t for t in chosen if t not in first.values()]
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(chosen)))) as ex:
            for rs in ex.map(one, list(first.values())):
                out += rs
            for rs in ex.map(one, rest):
                out += rs
        if hub_key is not None:
            close_master(gw[0], ssh_config, control_dir)
        if sb_key is not None:
            close_master(sgw[0], ssh_config, control_dir)
    return out
