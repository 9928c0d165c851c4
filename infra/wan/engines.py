"""Running a rollout with Ansible or pyinfra, over the stack's SSH access.

Both engines do the same two passes:

1. **keys**: on every selected host (and the gateway, whose public key every site needs)
   run the rendered key command: make the WireGuard private key on the host if it has
   none (never in check mode), print the public key;
2. **deploy**: dcops renders every selected endpoint from the province file and the
   public keys (:mod:`infra.render.endpoint`, once) and the engine deploys exactly that.

Ansible: two ``ansible-playbook`` runs (``playbooks/wan-keys.yml``, ``playbooks/wan.yml``)
over a generated inventory whose host_vars carry the rendered state; SSH connections persist
between them (ControlPersist). pyinfra: one process (:mod:`infra.wan.pyinfra_engine`) that
keeps its connections, reports the keys, receives the rendered state and deploys it.
Both report per-task JSON events that :class:`infra.wan.results.Results` turns into progress
and the summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..model import ProvinceFile
from ..paths import REPO
from ..render import endpoint as E
from . import inventory as inv
from .connection import WanConn
from .results import Results, parse

PLAYBOOKS = REPO / "playbooks"
ENGINES = ("ansible", "pyinfra")


@dataclass
class Run:
    model: ProvinceFile
    conn: WanConn
    hosts: list[str]  # selected (--limit), inventory order
    check: bool
    results: Results
    workdir: Path
    forks: int = 50
    ansible_settings: str = "tuned"  # "tuned" (playbooks/ansible.cfg) or "default" (Ansible's own defaults)
    log: Callable[[str], None] = print
    pubkeys: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, E.Endpoint] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def key_hosts(self) -> list[str]:
        return [g for g in E.gateways(self.model) if g not in self.hosts] + self.hosts


# ------------------------------------------------------------------ shared steps


def _cache_path(workdir: Path) -> Path:
    return workdir / "pubkeys.json"


def _hostkeys(known_hosts: Path) -> dict[str, str]:
    """address -> short digest of its SSH host keys (a host made anew has new host keys)."""
    import hashlib

    keys: dict[str, list[str]] = {}
    try:
        text = known_hosts.read_text()
    except FileNotFoundError:
        return {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 3 and not line.startswith("#"):
            for a in f[0].split(","):
                keys.setdefault(a, []).append(f"{f[1]} {f[2]}")
    return {a: hashlib.sha256("\n".join(sorted(v)).encode()).hexdigest()[:16] for a, v in keys.items()}


def load_pubkey_cache(workdir: Path, addresses: dict[str, str], known_hosts: Path) -> dict[str, str]:
    """Public keys gathered by earlier runs, for hosts that are still the same hosts
    (same SSH host keys): a recreated host has a new WireGuard key too."""
    try:
        data = json.loads(_cache_path(workdir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    hk = _hostkeys(known_hosts)
    out = {}
    for h, v in data.items():
        if isinstance(v, dict) and E.valid_public_key(v.get("key", "")) and h in addresses:
            if hk.get(addresses[h]) and v.get("hostkey") == hk.get(addresses[h]):
                out[h] = v["key"]
    return out


def take_keys(run: Run, stdout_by_host: dict[str, str]) -> None:
    """Record the gathered public keys (and the ones made now as changes); update the cache."""
    addresses = run.conn.ssh.addresses
    cache = load_pubkey_cache(run.workdir, addresses, run.conn.known_hosts)
    gathered: dict[str, str] = {}
    for h, text in stdout_by_host.items():
        key, created = E.parse_key_output(text or "")
        if key:
            gathered[h] = key
        if h in run.results.hosts:
            r = run.results.hosts[h]
            if created:
                r.changes.append("wireguard: private key made on the host")
            elif not key and run.check:
                r.changes.append("wireguard: private key to be made on the host")
    fresh = [h for h, k in gathered.items() if h not in E.gateways(run.model) and cache.get(h) != k]
    merged = {**cache, **gathered}
    run.pubkeys = merged
    if not run.check:
        hk = _hostkeys(run.conn.known_hosts)
        data = {h: {"key": k, "hostkey": hk.get(addresses.get(h, ""), "")} for h, k in sorted(merged.items())}
        path = _cache_path(run.workdir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    if E.GATEWAY not in run.hosts and fresh:
        run.log(
            f"note: new public key for {', '.join(fresh)}: the gateway learns it on the next apply "
            f"that includes it (e.g. `dcops wan apply --limit gateway`)"
        )


def render_selected(run: Run) -> dict[str, E.Endpoint]:
    """Render the selected hosts that passed the key pass; the others are reported as failed."""
    out: dict[str, E.Endpoint] = {}
    for h in run.hosts:
        r = run.results.hosts[h]
        if r.unreachable or r.failed:
            continue
        gws = E.gateways(run.model)
        unknown = [g for g in gws if not run.pubkeys.get(g)]
        if h not in gws and unknown:
            if run.check:
                # Nothing to compare the tunnel with yet: render with a placeholder hub key.
                keys = {**run.pubkeys, **{g: "A" * 43 + "=" for g in unknown}}
            else:
                run.results.skip(h, f"the public key of {', '.join(unknown)} is unknown (unreachable?); nothing deployed")
                continue
        else:
            keys = run.pubkeys
        if h not in gws and not run.pubkeys.get(h) and not run.check:
            run.results.skip(h, "no WireGuard public key gathered from this host; nothing deployed")
            continue
        try:
            out[h] = E.render_site(run.model, h, keys) if h not in gws else E.render_gateway(run.model, keys, h)
        except E.RenderError as e:
            run.results.skip(h, f"render: {e}")
    gw = out.get(E.GATEWAY)
    in_lab = set(run.conn.sites)
    missing = [w.split(":", 1)[0] for w in (gw.warnings if gw is not None else ())]
    missing = [m for m in missing if m in in_lab]
    if missing:
        run.log(
            f"note: gateway: {len(missing)} site(s) without a gathered public key are not its peers yet: "
            + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        )
    rendered = run.workdir / "rendered"
    rendered.mkdir(parents=True, exist_ok=True)
    for h, ep in out.items():
        (rendered / f"{h}.json").write_text(json.dumps(ep.to_vars(), indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    run.endpoints = out
    return out


def _pump(proc: subprocess.Popen, on_event: Callable[[dict], None], stderr_tail: list[str], log: Path | None = None) -> None:
    """Feed the engine's events to ``on_event``; keep the tail of its other output (and all of
    it in ``log``, for when something goes wrong)."""
    lf = open(log, "a", buffering=1) if log else None  # line by line: the log shows the run's phases as they happen

    def keep(line: str) -> None:
        stderr_tail.append(line.rstrip("\n"))
        del stderr_tail[:-60]
        if lf:
            lf.write(line if line.endswith("\n") else line + "\n")

    def read_err():
        assert proc.stderr is not None
        for line in proc.stderr:
            keep(line)

    t = threading.Thread(target=read_err, daemon=True)
    t.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        ev = parse(line.rstrip("\n"))
        if ev is not None:
            on_event(ev)
        elif line.strip():
            keep(line)
    proc.wait()
    t.join(timeout=5)
    if lf:
        lf.close()


# ----------------------------------------------------------------------- Ansible


ANSIBLE_SETTINGS = ("tuned", "default")

# What `--ansible-settings default` keeps of playbooks/ansible.cfg: only what the playbooks need
# to run at all (where roles and our event callback are, which Python, host keys checked, and
# one SSH keepalive). Everything that makes Ansible fast (forks, pipelining, a long
# ControlPersist, the poll interval) is left at Ansible's defaults: the baseline users get
# without tuning. The keepalive: without ServerAliveInterval a session whose reply the gateway's
# firewall dropped while it started tracking connections waits forever (seen: a first apply of
# 10 sites hung on 4 hosts at their first service restart); ssh_args is otherwise Ansible's
# default value.
_DEFAULT_CFG = """[defaults]
roles_path = {playbooks}/roles
callback_plugins = {playbooks}/callback_plugins
interpreter_python = /usr/bin/python3
host_key_checking = True
retry_files_enabled = False

[ssh_connection]
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=3
"""


def _ansible_config(run: Run) -> Path:
    if run.ansible_settings == "tuned":
        return PLAYBOOKS / "ansible.cfg"
    cfg = run.workdir / "ansible" / "ansible-defaults.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(_DEFAULT_CFG.format(playbooks=PLAYBOOKS))
    return cfg


def _ansible_env(run: Run) -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env.update(
        {
            "PATH": bindir + os.pathsep + env.get("PATH", ""),
            "ANSIBLE_CONFIG": str(_ansible_config(run)),
            "ANSIBLE_STDOUT_CALLBACK": "dcops_events",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": run.conn.control_dir,
            "ANSIBLE_LOCAL_TEMP": str(run.workdir / "ansible" / "tmp"),
            "ANSIBLE_HOME": str(run.workdir / "ansible" / "home"),
            "ANSIBLE_NOCOLOR": "1",
            **({"ANSIBLE_FORKS": str(run.forks)} if run.ansible_settings == "tuned" else {}),
            "ANSIBLE_FORCE_HANDLERS": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _ansible_playbook(run: Run, playbook: str, hosts: list[str], on_event, extra: list[str] = ()) -> tuple[int, list[str]]:
    invdir = run.workdir / "ansible" / "inventory"
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(invdir / "hosts.yml"),
        str(PLAYBOOKS / playbook),
        "--limit",
        ",".join(hosts),
        *extra,
    ]
    if run.check:
        argv += ["--check", "--diff"]
    if run.conn.become_password_file is not None:
        argv += ["--become-password-file", str(run.conn.become_password_file)]
    proc = subprocess.Popen(
        run.conn.argv(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_ansible_env(run),
        cwd=str(PLAYBOOKS),
    )
    tail: list[str] = []
    _pump(proc, on_event, tail, run.workdir / "ansible.log")
    return proc.returncode, tail


def _close_control_masters(run: Run) -> None:
    """End the SSH control masters of this run through their sockets (never by name)."""
    d = Path(run.conn.control_dir)
    socks = [p for p in d.glob("*") if p.is_socket()] if d.exists() else []
    procs = [
        subprocess.Popen(
            run.conn.argv(["ssh", "-o", f"ControlPath={s}", "-O", "exit", "dcops-control"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for s in socks
    ]
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def run_ansible(run: Run) -> None:
    try:
        _run_ansible(run)
    finally:
        _close_control_masters(run)


def _run_ansible(run: Run) -> None:
    (run.workdir / "ansible" / "tmp").mkdir(parents=True, exist_ok=True)
    Path(run.conn.control_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    invdir = run.workdir / "ansible" / "inventory"
    p = inv.plan(run.model, run.conn.ssh.addresses)
    inv.write_ansible_inventory(
        invdir,
        p,
        inv.connection_of(run.conn),
        {"wireguard_key_create": E.key_script(True), "wireguard_key_read": E.key_script(False)},
    )
    # -- pass 1: keys
    t0 = time.monotonic()
    key_stdout: dict[str, str] = {}
    gw_error: list[str] = []

    def on_key_event(ev: dict) -> None:
        if ev.get("ev") == "task":
            h = ev.get("host")
            if h not in run.results.hosts:
                if h in E.gateways(run.model) and ev.get("status") in ("failed", "unreachable"):
                    gw_error.append(ev.get("msg") or ev.get("status"))
                return
            if ev.get("status") in ("failed", "unreachable"):
                ev = {**ev, "phase": "keys"}
                run.results.feed(ev)
        elif ev.get("ev") == "stats":
            for h, data in (ev.get("custom") or {}).items():
                if isinstance(data, dict) and "wg_public_key" in data:
                    key_stdout[h] = str(data["wg_public_key"])

    rc, tail = _ansible_playbook(run, "wan-keys.yml", run.key_hosts, on_key_event)
    run.timings["keys"] = time.monotonic() - t0
    if rc not in (0, 2, 4) or (rc != 0 and not key_stdout and not any(r.done for r in run.results.hosts.values())):
        run.results.finish_all("ansible-playbook wan-keys.yml failed: " + (" | ".join(tail[-5:]) or f"exit {rc}"))
        return
    if gw_error:
        run.log(f"note: gateway (outside --limit) did not answer the key pass: {gw_error[0]}")
    take_keys(run, key_stdout)
    # -- render
    endpoints = render_selected(run)
    inv.write_host_vars(invdir, endpoints)
    targets = [h for h in run.hosts if h in endpoints]
    if not targets:
        run.results.finish_all("nothing to deploy")
        return
    # -- pass 2: deploy
    t0 = time.monotonic()
    rc, tail = _ansible_playbook(run, "wan.yml", targets, run.results.feed)
    run.timings["deploy"] = time.monotonic() - t0
    run.results.finish_all(
        "ansible-playbook wan.yml stopped before this host finished: " + (" | ".join(tail[-5:]) or f"exit {rc}")
    )


# ----------------------------------------------------------------------- pyinfra


def presync_checks(run: Run) -> dict[str, str]:
    """Each selected host's whole-state check as it renders from the public keys that earlier
    runs gathered (the key cache; a host made anew has none). The pyinfra engine runs it in the
    same round trip as the key, and trusts its verdict only when the check rendered from the keys
    read in this run is the same script: a no-change re-apply then costs one round trip per host."""
    cached = load_pubkey_cache(run.workdir, run.conn.ssh.addresses, run.conn.known_hosts)
    gws = E.gateways(run.model)
    out: dict[str, str] = {}
    for h in run.hosts:
        if h not in cached or (h not in gws and any(g not in cached for g in gws)):
            continue
        try:
            ep = E.render_site(run.model, h, cached) if h not in gws else E.render_gateway(run.model, cached, h)
        except E.RenderError:
            continue
        out[h] = ep.sync_check()
    return out


def run_pyinfra(run: Run) -> None:
    p = inv.plan(run.model, run.conn.ssh.addresses)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # started first: its imports take as long as rendering the checks below
    proc = subprocess.Popen(
        run.conn.argv([sys.executable, "-m", "infra.wan.pyinfra_engine"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )
    spec = {
        "hosts": run.key_hosts,
        "addresses": p.addresses,
        "groups": p.groups,
        "conn": {"user": run.conn.user, "ssh_config": str(run.conn.ssh_config), "port": run.conn.ssh.port,
                 "key": str(run.conn.key) if run.conn.key else None, "known_hosts": str(run.conn.known_hosts),
                 "become_password_file": str(run.conn.become_password_file) if run.conn.become_password_file else None},
        "check": run.check,
        "key_create": E.key_script(True),
        "key_read": E.key_script(False),
        "parallel": run.forks,
        "presync": presync_checks(run),
    }
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec) + "\n")
    proc.stdin.flush()
    t0 = time.monotonic()
    state = {"t_deploy": None}

    def on_event(ev: dict) -> None:
        kind = ev.get("ev")
        if kind == "task" and ev.get("host") not in run.results.hosts:
            if ev.get("host") in E.gateways(run.model) and ev.get("status") in ("failed", "unreachable"):
                run.log(f"note: {ev.get('host')} (outside --limit) did not answer the key pass: {ev.get('msg')}")
            return
        if kind == "keys":
            run.timings["keys"] = time.monotonic() - t0
            take_keys(run, ev.get("stdout") or {})
            endpoints = render_selected(run)
            payload = {"endpoints": {h: ep.to_vars() for h, ep in endpoints.items()}}
            state["t_deploy"] = time.monotonic()
            try:
                proc.stdin.write(json.dumps(payload, ensure_ascii=False) + "\n")
                proc.stdin.flush()
            except BrokenPipeError:
                pass
            return
        run.results.feed(ev)

    tail: list[str] = []
    _pump(proc, on_event, tail, run.workdir / "pyinfra.log")
    if state["t_deploy"] is not None:
        run.timings["deploy"] = time.monotonic() - state["t_deploy"]
    run.results.finish_all(
        "the pyinfra engine stopped before this host finished: " + (" | ".join(tail[-5:]) or f"exit {proc.returncode}")
    )


def run(engine: str, r: Run) -> None:
    (run_ansible if engine == "ansible" else run_pyinfra)(r)
